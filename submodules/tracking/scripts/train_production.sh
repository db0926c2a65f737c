#!/usr/bin/env bash
# Reproduce the production appearance model from scratch (CPU, ~10-20 min on 2 shared cores):
#   1. generate simulator train/val data under out/tracking/ (git-ignored),
#   2. train the embedding (PyTorch-Ignite; TensorBoard + a ClearML experiment through walkout-ci),
#   3. evaluate it and motion-only mode on the blind split (needs WALKOUT_BLIND_SEED),
#   4. export the experiment into submodules/tracking/experiments/ and pin it in model_ref.yaml.
# Run from the repository root: WALKOUT_BLIND_SEED=<secret> submodules/tracking/scripts/train_production.sh
set -euo pipefail
BIN=${BIN:-.venv/bin}
PKG=submodules/tracking
OUT=${OUT:-out/tracking}
export WALKOUT_HOME=${WALKOUT_HOME:-$PWD/.walkout}
: "${WALKOUT_BLIND_SEED:?set WALKOUT_BLIND_SEED to the secret seed of the blind split}"

nice -n 5 "$BIN/walkout-sim" generate --split train --videos 8 --frames 300 --seed 1 --image-stride 50 \
  --out "$OUT/sim_train" --force --quiet
nice -n 5 "$BIN/walkout-sim" generate --split val --videos 4 --frames 300 --seed 2 --image-stride 50 \
  --out "$OUT/sim_val" --force --quiet
nice -n 5 "$BIN/walkout-sim" generate --split blind --videos 4 --frames 300 --image-stride 50 \
  --out "$OUT/sim_blind" --force --quiet

nice -n 5 "$BIN/walkout-tracking" train --data "$OUT/sim_train" --val-data "$OUT/sim_val" \
  --config "$PKG/configs/production.yaml" --out "$OUT/production" --quiet
EXPERIMENT_ID=$("$BIN/python" -c 'import json, sys; print(json.load(open(sys.argv[1]))["experiment_id"])' "$OUT/production/train_result.json")

nice -n 5 "$BIN/walkout-tracking" evaluate --model "$OUT/production/best.pt" --data "$OUT/sim_blind" \
  --report-dir "$OUT/blind_appearance" --quiet
nice -n 5 "$BIN/walkout-tracking" evaluate --model motion-only --config "$PKG/configs/production.yaml" \
  --data "$OUT/sim_blind" --report-dir "$OUT/blind_motion" --quiet

rm -rf "$PKG/experiments/$EXPERIMENT_ID"
"$BIN/walkout-ci" experiment export "$EXPERIMENT_ID" --to "$PKG/experiments/"
"$BIN/walkout-ci" pin "$EXPERIMENT_ID" --component tracking --out "$PKG/model_ref.yaml" --blind-metrics "$OUT/blind_appearance/report.json"
echo "pinned $EXPERIMENT_ID"
grep -A6 blind_metrics "$PKG/model_ref.yaml" || true
