#!/usr/bin/env bash
# Reproduce the production pose model from scratch, on CPU:
#   generate the training / validation splits with walkout-sim, train with configs/production.yaml,
#   evaluate on the validation split and, when WALKOUT_BLIND_SEED is set, on a blind split.
# Then (by hand, after reading the figures) export and pin the experiment it prints:
#   walkout-ci experiment export <id> --to submodules/pose/experiments
#   walkout-ci pin <id> --component pose --out submodules/pose/model_ref.yaml \
#       --blind-metrics out/pose/report_blind/report.json --search submodules/pose/experiments
#
# Usage (from the repository root): submodules/pose/scripts/train_production.sh [OUT_DIR]
set -euo pipefail

OUT=${1:-out/pose}
BIN=${BIN:-.venv/bin}
PACKAGE=submodules/pose
export WALKOUT_HOME=${WALKOUT_HOME:-$PWD/.walkout}

# The splits of the pinned model: 24 training videos (every 2nd frame), 4 validation videos.
nice -n 5 "$BIN/walkout-sim" generate --split train --videos 24 --frames 150 --seed 101 --image-stride 2 \
    --out "$OUT/train" --force --quiet
nice -n 5 "$BIN/walkout-sim" generate --split val --videos 4 --frames 150 --seed 202 --image-stride 3 \
    --out "$OUT/val" --force --quiet

# summary.json records the wall and CPU time of the run.
nice -n 5 "$BIN/walkout-pose" train --data "$OUT/train" --val-data "$OUT/val" \
    --out "$OUT/prod" --config "$PACKAGE/configs/production.yaml" --name production --no-progress

nice -n 5 "$BIN/walkout-pose" evaluate --model "$OUT/prod/best.pt" --data "$OUT/val" \
    --report-dir "$OUT/report_val" --no-progress

if [[ -n "${WALKOUT_BLIND_SEED:-}" ]]; then
    nice -n 5 "$BIN/walkout-sim" generate --split blind --videos 4 --frames 150 --image-stride 2 \
        --out "$OUT/blind" --force --quiet
    nice -n 5 "$BIN/walkout-pose" evaluate --model "$OUT/prod/best.pt" --data "$OUT/blind" \
        --report-dir "$OUT/report_blind" --no-progress
fi

echo "experiment: $(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["experiment_id"])' "$OUT/prod/summary.json")"
