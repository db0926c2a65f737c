#!/usr/bin/env bash
# Reproduce the production detector from scratch on CPU: generate the data with walkout-sim, train
# (8 minutes, 2 threads), evaluate on a blind split, and print how to export + pin the experiment.
#
#   WALKOUT_BLIND_SEED=<secret> submodules/detection/scripts/train_production.sh [OUT_DIR [TRAIN ARGS...]]
#
# Extra arguments go to `walkout-detection train`, e.g. `--set train.num_threads=1` on a busy machine.
#
# Run from the repository root with the venv's tools on PATH (`make` creates .venv).
set -euo pipefail
OUT=${1:-out/detection/production}
shift || true
HERE=$(cd "$(dirname "$0")/.." && pwd)
export PATH="$PWD/.venv/bin:$PATH"
: "${WALKOUT_BLIND_SEED:?set WALKOUT_BLIND_SEED to the secret blind seed}"
mkdir -p "$OUT"
walkout-sim generate --split train --videos 32 --frames 150 --image-stride 8 --seed 11 --out "$OUT/train" --force --quiet
walkout-sim generate --split val --videos 6 --frames 150 --image-stride 10 --seed 12 --out "$OUT/val" --force --quiet
walkout-sim generate --split blind --videos 4 --frames 150 --image-stride 10 --out "$OUT/blind" --force --quiet
# Pin the 2 training threads to 2 cores when taskset exists, so the timing means "2 CPU cores".
PIN=()
if command -v taskset >/dev/null; then PIN=(taskset -c 0,1); fi
"${PIN[@]}" walkout-detection train --config "$HERE/configs/production.yaml" \
  --data "$OUT/train" --val-data "$OUT/val" --output "$OUT/run" --name production "$@"
walkout-detection evaluate --model "$OUT/run/best.pt" --data "$OUT/blind" --report-dir "$OUT/blind_report"
EXP=$(python3 -c "import json,sys; print(json.load(open(sys.argv[1]))['experiment_id'])" "$OUT/run/metrics.json")
echo
echo "To make it the production model:"
echo "  walkout-ci experiment export $EXP --to $HERE/experiments/"
echo "  walkout-ci pin $EXP --component detection --out $HERE/model_ref.yaml \\"
echo "      --blind-metrics $OUT/blind_report/report.json --search $HERE/experiments"
