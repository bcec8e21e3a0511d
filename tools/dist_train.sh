#!/usr/bin/env bash
# Train with NUM_PROCS processes on this machine (torchrun): one process per
# GPU with NCCL, or any number of processes on a CPU-only machine with gloo
# (tools/train.py picks the backend; see mmsdae/utils/dist.py).
#
# Usage: [NNODES=1 NODE_RANK=0 PORT=29500 MASTER_ADDR=127.0.0.1 PYTHON=python] \
#     bash tools/dist_train.sh CONFIG NUM_PROCS [tools/train.py args...]
# e.g.  bash tools/dist_train.sh configs/sdae/<config>.py 8 --resume \
#           --cfg-options train_dataloader.batch_size=64
set -euo pipefail
USAGE_LINE=6
source "$(dirname "${BASH_SOURCE[0]}")/launch_lib.sh"

[ $# -ge 2 ] || usage "CONFIG and NUM_PROCS are required"
CONFIG=$1
NUM_PROCS=$2
shift 2
[ -f "$CONFIG" ] || usage "config file not found: $CONFIG"
run_torchrun "$NUM_PROCS" train.py "$CONFIG" --launcher pytorch "$@"
