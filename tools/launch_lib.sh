# Shared by tools/dist_{train,test}.sh and tools/slurm_{train,test}.sh,
# which source it after setting USAGE_LINE; not a launcher itself.
#
#   usage [MESSAGE]                      the caller's usage, the error; exit 2
#   run_torchrun NUM_PROCS TOOL ARGS...  NUM_PROCS processes of tools/TOOL on
#                                        this node (NCCL on GPUs, gloo on CPU)
#   run_srun PARTITION JOB_NAME TOOL ARGS...
#                                        GPUS processes of tools/TOOL via srun
# Environment: see the Usage lines of the four scripts.

# the two comment lines of the calling script from line USAGE_LINE on
usage() {
    sed -n "${USAGE_LINE},$((USAGE_LINE + 1))p" "$0" | sed 's/^# \{0,1\}//' >&2
    [ $# -eq 0 ] || echo "error: $*" >&2
    exit 2
}

TOOLS="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
PYTHON=${PYTHON:-python}
export PYTHONPATH="$TOOLS/..${PYTHONPATH:+:$PYTHONPATH}"

run_torchrun() {
    local num_procs=$1 tool=$2
    shift 2
    [[ "$num_procs" =~ ^[1-9][0-9]*$ ]] || usage "NUM_PROCS must be a" \
        "positive integer (processes, one per GPU), got '$num_procs'"
    exec "$PYTHON" -m torch.distributed.run \
        --nnodes="${NNODES:-1}" \
        --node_rank="${NODE_RANK:-0}" \
        --master_addr="${MASTER_ADDR:-127.0.0.1}" \
        --master_port="${PORT:-29500}" \
        --nproc_per_node="$num_procs" \
        "$TOOLS/$tool" "$@"
}

run_srun() {
    local partition=$1 job_name=$2 tool=$3 var
    shift 3
    GPUS=${GPUS:-8}
    GPUS_PER_NODE=${GPUS_PER_NODE:-8}
    CPUS_PER_TASK=${CPUS_PER_TASK:-5}
    for var in GPUS GPUS_PER_NODE CPUS_PER_TASK; do
        [[ "${!var}" =~ ^[0-9]+$ ]] || \
            usage "$var must be a whole number, got '${!var}'"
    done
    [ "$GPUS" -ge 1 ] || usage "GPUS (the number of processes) must be at least 1"
    [ "$CPUS_PER_TASK" -ge 1 ] || usage "CPUS_PER_TASK must be at least 1"

    # A job smaller than a node asks for only the GPUs it uses;
    # GPUS_PER_NODE=0 (a CPU partition) asks for none.
    local tasks_per_node=$(( GPUS < GPUS_PER_NODE ? GPUS : GPUS_PER_NODE ))
    local node_args=() extra_srun=()
    [ "$GPUS_PER_NODE" -eq 0 ] || node_args=(
        --gres="gpu:$tasks_per_node" --ntasks-per-node="$tasks_per_node")
    # several srun options, split on spaces (the ${a[@]+...} below: an
    # empty array under set -u, for bash < 4.4)
    read -r -a extra_srun <<< "${SRUN_ARGS:-}"
    # two jobs on one node need two ports
    [ -z "${PORT:-}" ] || export MASTER_PORT=$PORT

    set -x
    exec srun -p "$partition" \
        --job-name="$job_name" \
        --ntasks="$GPUS" \
        ${node_args[@]+"${node_args[@]}"} \
        --cpus-per-task="$CPUS_PER_TASK" \
        --kill-on-bad-exit=1 \
        ${extra_srun[@]+"${extra_srun[@]}"} \
        "$PYTHON" -u "$TOOLS/$tool" "$@"
}
