#!/usr/bin/env bash
# Test a checkpoint with NUM_PROCS processes on this machine (torchrun): NCCL
# on GPUs, gloo on a CPU-only machine (see mmsdae/utils/dist.py).
#
# Usage: [NNODES=1 NODE_RANK=0 PORT=29500 MASTER_ADDR=127.0.0.1 PYTHON=python] \
#     bash tools/dist_test.sh CONFIG CHECKPOINT NUM_PROCS [tools/test.py args...]
set -euo pipefail
USAGE_LINE=5
source "$(dirname "${BASH_SOURCE[0]}")/launch_lib.sh"

[ $# -ge 3 ] || usage "CONFIG, CHECKPOINT and NUM_PROCS are required"
CONFIG=$1
CHECKPOINT=$2
NUM_PROCS=$3
shift 3
[ -f "$CONFIG" ] || usage "config file not found: $CONFIG"
[ -f "$CHECKPOINT" ] || usage "checkpoint file not found: $CHECKPOINT"
run_torchrun "$NUM_PROCS" test.py "$CONFIG" "$CHECKPOINT" --launcher pytorch "$@"
