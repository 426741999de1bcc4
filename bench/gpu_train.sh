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
# 3. measures the metrics with the bundled classifier and writes the model card.
# Everything lands in $OUT (default /tmp/gpu-train): run/export/ holds the weights,
# training.json, metrics.json, MODEL_CARD.md and the sample grids; *.log the output.
# To ship it, copy run/export/ over generation/default_model/ (keep classifier/).
# Environment: PYTHON, TRAIN_MINUTES (6), FROM_SCRATCH (0), PRESET (half64), BATCH (64),
# COUNT (20000), HELDOUT (2000), DEVICE (cuda).
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
train train "$OUT/data" "$OUT/run" --device "$DEVICE" "${start[@]}" --batch "${BATCH:-64}" \
    --r1-gamma 1 --augment translation,cutout --class-loss 1 --mode-seeking 0.05 --max-minutes "${TRAIN_MINUTES:-6}" --snapshot-kimg 100 \
    --log-seconds 20 2>&1 | tee "$OUT/train.log"
train metrics "$OUT/run/export" --data "$OUT/data" --heldout "$OUT/heldout" \
    --classifier generation/default_model/classifier --device "$DEVICE" --out "$OUT/run/export/metrics.json" \
    > "$OUT/metrics.log"
defaults='from generation.management.commands import load_default_model as d'
train card "$OUT/run/export" --name "$("$PY" manage.py shell -v 0 -c "$defaults; print(d.DEFAULT_NAME)")" \
    --licence "$("$PY" manage.py shell -v 0 -c "$defaults; print(d.LICENCE_NOTE)")"
grep -A12 "^| metric" "$OUT/run/export/MODEL_CARD.md"
