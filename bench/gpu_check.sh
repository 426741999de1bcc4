#!/usr/bin/env bash
# One run on a lent GPU machine: build our CUDA ops, run the GPU tests, run the benchmark.
#
#   bash bench/gpu_check.sh [arguments for bench/engine.py ...]
#
# Steps (each logged with its time; a failing step does not stop the later ones, and the
# exit status is non-zero if any step failed):
#   1. the machine: nvidia-smi, python, torch, CUDA
#   2. prebuild the CUDA ops (generation/stylegan/ops/cuda/build.py's build_all)
#   3. pytest -m gpu over tests/stylegan (kernel vs reference comparisons, gradients)
#   4. python bench/engine.py --device cuda "$@"
# Environment: PYTHON (default python3, else python), PERSONA_OPS_BUILD_DIR (default a
# fresh folder under /tmp), GPU_CHECK_STEP_TIMEOUT (seconds per step, default 420),
# OUT (where logs are copied, if set: the device tool's output folder).
set -uo pipefail

cd "$(dirname "$0")/.."
PY="${PYTHON:-$(command -v python3 || command -v python)}"
STEP_TIMEOUT="${GPU_CHECK_STEP_TIMEOUT:-420}"
export PYTHONUNBUFFERED=1
export PERSONA_OPS_BUILD_DIR="${PERSONA_OPS_BUILD_DIR:-/tmp/persona-ops-$$}"
LOG_DIR="${OUT:-/tmp/gpu-check-$$}"
mkdir -p "$LOG_DIR"
status=0

step() {  # step NAME COMMAND...
    local name="$1"; shift
    echo
    echo "===== ${name}: $* ====="
    local started=$SECONDS
    timeout --kill-after=10 "$STEP_TIMEOUT" "$@" 2>&1 | tee "$LOG_DIR/${name}.log"
    local rc=${PIPESTATUS[0]}
    echo "===== ${name}: exit ${rc} after $((SECONDS - started)) s ====="
    if [ "$rc" -ne 0 ]; then status=1; fi
    return 0
}

MACHINE_PY='
import sys, torch
print("python", sys.version.split()[0], "torch", torch.__version__, "cuda", torch.version.cuda)
print("gpu:", torch.cuda.get_device_name(0) if torch.cuda.is_available() else "none visible")
'
BUILD_PY='
import sys
from generation.stylegan.ops.cuda.build import _main
sys.exit(_main(["-v"]))
'
step machine bash -c "nvidia-smi; \"\$0\" -c '$MACHINE_PY'; nvcc --version | tail -n 2" "$PY"
step build-ops "$PY" -c "$BUILD_PY"
# The GPU image has no Django: the engine tests need none of tests/conftest.py.
step gpu-tests "$PY" -m pytest tests/stylegan -m gpu -ra -q -p no:cacheprovider -p no:django --noconftest
step bench "$PY" bench/engine.py --device cuda "$@"

cp -f "$PERSONA_OPS_BUILD_DIR"/*/build.log "$LOG_DIR/ops-build.log" 2>/dev/null || true
echo
echo "gpu_check: $([ $status -eq 0 ] && echo all steps passed || echo SOME STEPS FAILED); logs in $LOG_DIR"
exit $status
