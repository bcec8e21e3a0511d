#!/usr/bin/env bash
# Test a checkpoint on a Slurm cluster: srun starts GPUS processes,
# GPUS_PER_NODE per node, one GPU each (NCCL). GPUS_PER_NODE=0 asks for no
# GPUs (a CPU partition): GPUS processes then run with gloo.
#
# Usage: [GPUS=8 GPUS_PER_NODE=8 CPUS_PER_TASK=5 SRUN_ARGS="" PORT=29500 PYTHON=python] \
#     bash tools/slurm_test.sh PARTITION JOB_NAME CONFIG CHECKPOINT [tools/test.py args...]
set -euo pipefail
USAGE_LINE=6
source "$(dirname "${BASH_SOURCE[0]}")/launch_lib.sh"

[ $# -ge 4 ] || usage "PARTITION, JOB_NAME, CONFIG and CHECKPOINT are required"
PARTITION=$1
JOB_NAME=$2
CONFIG=$3
CHECKPOINT=$4
shift 4
[ -f "$CONFIG" ] || usage "config file not found: $CONFIG"
[ -f "$CHECKPOINT" ] || usage "checkpoint file not found: $CHECKPOINT"
run_srun "$PARTITION" "$JOB_NAME" test.py "$CONFIG" "$CHECKPOINT" \
    --launcher=slurm "$@"
