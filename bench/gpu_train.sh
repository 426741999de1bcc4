#!/usr/bin/env bash
# Train a default-model candidate on a lent GPU in one run of the device tool (budget:
# 15 minutes of device time, a 10-minute limit per command):
#
#   bash bench/gpu_train.sh
#
# 1. renders the notionists dataset (seed 0) and held-out renders (seed 1);
# 2. fine-tunes the bundled default (generation/default_model) with its recipe (R1 γ 1,
#    translation + cutout, auxiliary classifier, mode seeking) on CUDA for TRAIN_MINUTES,
#    float16 on the highest resolutions; FROM_SCRATCH=1 trains the PRESET network from
#    scratch instead;
#    With IDENTITY=1 (the default) it first trains an attribute teacher (a second
#    classifier, not the one the metrics use) and adds the identity terms: a relabelled
#    persona keeps its person under the bundled identity embedding, different seeds stay
#    different people (generation/stylegan/training/losses.py);
# 3. measures the metrics with the bundled classifier, the looks-and-poses identity
#    targets (bench/identity_looks.py) and writes the model card. No Django needed.
# Everything lands in $OUT (default /tmp/gpu-train): run/export/ holds the weights,
# training.json, metrics.json, MODEL_CARD.md and the sample grids; *.log the output.
# To ship it, copy run/export/ over generation/default_model/ (keep classifier/).
# To ship it, also copy generation/default_model/identity/ into it.
# Environment: PYTHON, TRAIN_MINUTES (6), FROM_SCRATCH (0), PRESET (half64), BATCH (64),
# COUNT (20000), HELDOUT (2000), DEVICE (cuda), IDENTITY (1).
set -euo pipefail

cd "$(dirname "$0")/.."
PY="${PYTHON:-$(command -v python3 || command -v python)}"
OUT="${OUT:-/tmp/gpu-train}"
DEVICE="${DEVICE:-cuda}"
mkdir -p "$OUT"
export PYTHONUNBUFFERED=1
train() { "$PY" -m generation.stylegan.training "$@"; }

"$PY" -c 'import sys, torch; print("python", sys.version.split()[0], "torch", torch.__version__, "cuda", torch.version.cuda)'
if [ "${FROM_SCRATCH:-0}" = 1 ]; then
    start=(--preset "${PRESET:-half64}")
else
    start=(--init-from generation/default_model)
fi
train dataset "$OUT/data" --count "${COUNT:-20000}" --seed 0 > "$OUT/dataset.log" &
train dataset "$OUT/heldout" --count "${HELDOUT:-2000}" --seed 1 > "$OUT/heldout.log"
wait
identity=()
if [ "${IDENTITY:-1}" = 1 ]; then
    "$PY" - "$OUT" "$DEVICE" <<'PY' > "$OUT/teacher.log"
import sys
from pathlib import Path

from generation.stylegan.training.dataset import load_dataset
from generation.stylegan.training.metrics import save_classifier, train_classifier

out = Path(sys.argv[1])
teacher = train_classifier(load_dataset(out / "data"), epochs=3, seed=1, log=print)
save_classifier(teacher, out / "teacher", {"data": "gpu_train.sh data, seed 0", "epochs": 3, "seed": 1})
PY
    identity=(--identity generation/default_model/identity --teacher "$OUT/teacher" --identity-weight 1
              --identity-diversity 4 --identity-batch 32 --ema-kimg 2)
fi
train train "$OUT/data" "$OUT/run" --device "$DEVICE" "${start[@]}" --batch "${BATCH:-64}" \
    --r1-gamma 1 --augment translation,cutout --class-loss 1 --mode-seeking 0.05 --max-minutes "${TRAIN_MINUTES:-6}" --snapshot-kimg 100 \
    "${identity[@]}" --log-seconds 20 2>&1 | tee "$OUT/train.log"
train metrics "$OUT/run/export" --data "$OUT/data" --heldout "$OUT/heldout" \
    --classifier generation/default_model/classifier --device "$DEVICE" --out "$OUT/run/export/metrics.json" \
    > "$OUT/metrics.log"
cp -r generation/default_model/identity "$OUT/run/export/"
if [ "${IDENTITY:-1}" = 1 ]; then
    "$PY" bench/identity_looks.py "$OUT/run/export" --out "$OUT/run/export/metrics.json" > "$OUT/identity_looks.log"
    tail -2 "$OUT/identity_looks.log"
fi
# The card's name and licence line, read from the command's source: the GPU image has no Django.
constant() { "$PY" -c "import ast, sys; tree = ast.parse(open(sys.argv[1]).read()); print(next(ast.literal_eval(n.value) for n in tree.body if isinstance(n, ast.Assign) and n.targets[0].id == sys.argv[2]))" generation/management/commands/load_default_model.py "$1"; }
train card "$OUT/run/export" --name "$(constant DEFAULT_NAME)" --licence "$(constant LICENCE_NOTE)"
grep -A12 "^| metric" "$OUT/run/export/MODEL_CARD.md"
