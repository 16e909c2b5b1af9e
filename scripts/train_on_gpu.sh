#!/usr/bin/env bash
# Train parser, GMM and TOM on one GPU in one resumable run, everything under $OUT.
#
#   DATA=/data/viton/train OUT=/out MINUTES=10 scripts/train_on_gpu.sh
#
# Installs nothing: run it where `tryon` is installed (PYTHON names the interpreter). Run
# it again with the same OUT to continue a run that was stopped. Settings, by environment:
#   DATA      training data in the VITON layout (required)
#   OUT       output folder (required): OUT/run/{parser,gmm,tom}, OUT/run/curves.png
#   MINUTES   training minutes for the three networks together (default 10)
#   RECIPES   recipes folder (default configs/viton; run from the repository root, as its
#             pairs files are relative to it)
#   VAL_DATA  held-out data (default: DATA, with the recipes' held-out pairs files)
#   WORKERS   data-loading processes (default 6), BATCH batch size (default: the recipes')
set -euo pipefail
: "${DATA:?set DATA to the training data folder (VITON layout)}"
: "${OUT:?set OUT to the output folder}"
PYTHON=${PYTHON:-python}
arguments=(
    train all
    --recipes "${RECIPES:-configs/viton}"
    --data "$DATA"
    --out "$OUT/run"
    --max-minutes "${MINUTES:-10}"
    --device cuda
    --workers "${WORKERS:-6}"
)
[[ -n "${VAL_DATA:-}" ]] && arguments+=(--val-data "$VAL_DATA")
[[ -n "${BATCH:-}" ]] && arguments+=(--batch "$BATCH")
[[ -d "$OUT/run" ]] && arguments+=(--resume)  # continue what is there
exec "$PYTHON" -m tryon.cli "${arguments[@]}"
