#!/usr/bin/env bash
# Train on a Slurm cluster: srun starts GPUS processes, GPUS_PER_NODE per
# node, one GPU each (NCCL). GPUS_PER_NODE=0 asks for no GPUs (a CPU
# partition): GPUS processes then train with gloo.
#
# Usage: [GPUS=8 GPUS_PER_NODE=8 CPUS_PER_TASK=5 SRUN_ARGS="" PORT=29500 PYTHON=python] \
#     bash tools/slurm_train.sh PARTITION JOB_NAME CONFIG WORK_DIR [tools/train.py args...]
# e.g.  GPUS=16 bash tools/slurm_train.sh gpu sdae configs/sdae/<config>.py \
#           work_dirs/sdae --resume        # restart a pre-empted job
set -euo pipefail
USAGE_LINE=6
source "$(dirname "${BASH_SOURCE[0]}")/launch_lib.sh"

[ $# -ge 4 ] || usage "PARTITION, JOB_NAME, CONFIG and WORK_DIR are required"
PARTITION=$1
JOB_NAME=$2
CONFIG=$3
WORK_DIR=$4
shift 4
[ -f "$CONFIG" ] || usage "config file not found: $CONFIG"
run_srun "$PARTITION" "$JOB_NAME" train.py "$CONFIG" --work-dir="$WORK_DIR" \
    --launcher=slurm "$@"
