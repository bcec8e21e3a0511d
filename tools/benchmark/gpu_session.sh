#!/usr/bin/env bash
# Everything one lent-GPU call runs (one call: the machine's start-up is paid
# once), in order of importance, each part with its own time limit so a
# stopped part keeps what it wrote:
#   1. tools/benchmark/gpu_check.sh (speed, train.py --amp, tiny downstream)
#      with --budget-s CHECK_S (default 200: the compiled-blocks section is
#      left out below 150 s of it);
#   2. tools/benchmark/learning_signal.py --device cuda (its 'gpu' budget),
#      stopped after LEARN_S seconds (default 300; rows are saved as they
#      come).
#
#   WHEELS=.whl bash tools/benchmark/gpu_session.sh OUT_DIR
#
# Writes OUT_DIR/check/ (gpu_check.json/.md and the speed JSONs) and
# OUT_DIR/learn/ (learning_signal.json/.png). See gpu_check.sh for WHEELS.
# CPU dry run: CHECK_ARGS=--dry-run LEARN_DEVICE=cpu LEARN_BUDGET=test.
set -uo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
OUT="${1:?usage: bash tools/benchmark/gpu_session.sh OUT_DIR}"
mkdir -p "$OUT/check" "$OUT/learn"
export PYTHONUNBUFFERED=1
bash "$ROOT/tools/benchmark/gpu_check.sh" "$OUT/check" \
  --budget-s "${CHECK_S:-200}" --scratch /tmp/gpu_check_scratch ${CHECK_ARGS:-}
echo "[gpu_session] gpu_check rc=$?"
# gpu_check.sh installed the wheels and printed the interpreter it used
if [ -n "${WHEELS:-}" ]; then
  export PYTHONPATH="${SITE:-/tmp/mmsdae_site}:$ROOT${PYTHONPATH:+:$PYTHONPATH}"
  PY="${PYTHON:-python3}"
else
  PY="${PYTHON:-$ROOT/.venv/bin/python}"
fi
cd "$ROOT" && timeout "${LEARN_S:-300}" "$PY" tools/benchmark/learning_signal.py \
  --device "${LEARN_DEVICE:-cuda}" ${LEARN_BUDGET:+--budget $LEARN_BUDGET} \
  --work-dir /tmp/learning_signal_wd --out-dir "$OUT/learn"
echo "[gpu_session] learning_signal rc=$? (124: stopped at LEARN_S; the rows so far are saved)"
