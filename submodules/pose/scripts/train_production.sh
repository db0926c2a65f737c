#!/usr/bin/env bash
# Reproduce the production pose model from scratch: generate training parts with walkout-sim (one
# process per part, merged with `walkout-ci dataset merge`), train, evaluate on the validation split
# and, when WALKOUT_BLIND_SEED is set, on a blind split. Then (by hand, after its model gate against
# the current pin passes) export and pin the experiment it prints:
#   walkout-ci experiment export <id> --to submodules/pose/experiments
#   walkout-ci pin <id> --component pose --out submodules/pose/model_ref.yaml \
#       [--blind-metrics OUT/report_blind/report.json] --search submodules/pose/experiments
#
#   [PARTS="default:101"] [CONFIG=path/to/config.yaml] [WALKOUT_BLIND_SEED=<secret>] \
#       submodules/pose/scripts/train_production.sh [OUT_DIR]
#
# PARTS lists the training parts as PRESET:SEED, each 24 videos x 150 frames, every 2nd frame; PRESET
# is a `walkout-sim generate --config` preset or `default` (the default store). The defaults are the
# current production model's recipe (README "Measured figures"): six busy parts, one hard and one
# default part, configs/production.yaml, about 7 minutes on two CPU cores (a GPU is used when present).
# The earlier model's data was PARTS=default:101 alone.
#
# Run from the repository root. PYTHON defaults to the venv's (`make` creates .venv), else python3 with
# the packages' src folders on PYTHONPATH (the GPU machine, which has no entry points installed).
set -euo pipefail

OUT=${1:-out/pose}
HERE=$(cd "$(dirname "$0")/.." && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
if [[ -z "${PYTHON:-}" ]]; then
  if [[ -x "$ROOT/.venv/bin/python" ]]; then PYTHON="$ROOT/.venv/bin/python"; else PYTHON=python3; fi
fi
export PYTHONPATH="$ROOT/ci/src:$ROOT/sim/src:$HERE/src${PYTHONPATH:+:$PYTHONPATH}"
PARTS=${PARTS:-"busy:61 busy:62 busy:63 busy:64 busy:65 busy:66 hard:67 default:68"}
CONFIG=${CONFIG:-$HERE/configs/production.yaml}
mkdir -p "$OUT"

part_dirs=()
for part in $PARTS; do part_dirs+=("$OUT/part-${part%%:*}-${part##*:}"); done
# One process per part (`walkout-sim parts`), beside the validation and blind splits.
"$PYTHON" -m walkout_sim.cli parts $PARTS --out "$OUT" --videos 24 --frames 150 --image-stride 2 \
  --jobs "$(nproc)" --force &
# The validation split of the pinned models: 4 videos, every 3rd frame.
"$PYTHON" -m walkout_sim.cli generate --split val --videos 4 --frames 150 --seed 202 --image-stride 3 \
  --out "$OUT/val" --force --quiet &
if [[ -n "${WALKOUT_BLIND_SEED:-}" ]]; then
  "$PYTHON" -m walkout_sim.cli generate --split blind --videos 4 --frames 150 --image-stride 2 \
    --out "$OUT/blind" --force --quiet &
fi
# `wait` alone ignores the children's exit status: wait for each so a failed part stops the run.
for job in $(jobs -p); do wait "$job"; done
"$PYTHON" -m walkout_ci.cli dataset merge "$OUT/train" "${part_dirs[@]}"

# summary.json records the wall and CPU time of the run.
"$PYTHON" -m walkout_pose.cli train --data "$OUT/train" --val-data "$OUT/val" \
  --out "$OUT/prod" --config "$CONFIG" --name production --no-progress
"$PYTHON" -m walkout_pose.cli evaluate --model "$OUT/prod/best.pt" --data "$OUT/val" \
  --report-dir "$OUT/report_val" --no-progress
if [[ -n "${WALKOUT_BLIND_SEED:-}" ]]; then
  "$PYTHON" -m walkout_pose.cli evaluate --model "$OUT/prod/best.pt" --data "$OUT/blind" \
    --report-dir "$OUT/report_blind" --no-progress
else
  echo "WALKOUT_BLIND_SEED is not set: no blind evaluation (the pin will carry no blind metrics)."
fi
echo "experiment: $("$PYTHON" -c 'import json,sys; print(json.load(open(sys.argv[1]))["experiment_id"])' "$OUT/prod/summary.json")"
