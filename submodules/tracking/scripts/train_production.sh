#!/usr/bin/env bash
# Reproduce the production appearance model from scratch:
#   1. generate simulator training parts (one process per part), a validation split and, when
#      WALKOUT_BLIND_SEED is set, the blind split, under OUT (default out/tracking, git-ignored);
#   2. train the embedding on all parts (PyTorch-Ignite; TensorBoard + a ClearML experiment through
#      walkout-ci; the experiment records the parts' manifests joined);
#   3. evaluate it and motion-only mode on the blind split (only with WALKOUT_BLIND_SEED);
#   4. print how to gate, export and pin it.
#
#   [PARTS="default:181 busy:185"] [WALKOUT_BLIND_SEED=<secret>] submodules/tracking/scripts/train_production.sh [OUT]
#
# PARTS lists the training parts as PRESET:SEED (presets of `walkout-sim generate --config`); each part
# is 24 videos x 300 frames. The default is the production model's recipe (README, "Production
# model"): four default-store and four busy-store parts, about 1,500 shoppers. configs/production.yaml
# trains 20 x 200 batches of 32 shoppers x 4 crops, batches built from whole videos: 65 s on one H200,
# a few minutes of the 2-core VM's time per epoch on CPU.
#
# Run from the repository root. PYTHON defaults to the venv's (`make` creates .venv), else python3 with
# the packages' src folders on PYTHONPATH (the GPU machine, which has no entry points installed).
set -euo pipefail
OUT=${1:-out/tracking}
HERE=$(cd "$(dirname "$0")/.." && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
if [[ -z "${PYTHON:-}" ]]; then
  if [[ -x "$ROOT/.venv/bin/python" ]]; then PYTHON="$ROOT/.venv/bin/python"; else PYTHON=python3; fi
fi
export PYTHONPATH="$ROOT/ci/src:$ROOT/sim/src:$HERE/src${PYTHONPATH:+:$PYTHONPATH}"
export WALKOUT_HOME=${WALKOUT_HOME:-$ROOT/.walkout}
PARTS=${PARTS:-"default:181 default:182 default:183 default:184 busy:185 busy:186 busy:187 busy:188"}
mkdir -p "$OUT"
data_args=()
for part in $PARTS; do data_args+=(--data "$OUT/parts/part-${part%%:*}-${part##*:}"); done
"$PYTHON" -m walkout_sim.cli parts $PARTS --out "$OUT/parts" --videos 24 --frames 300 --image-stride 300 \
  --jobs "$(nproc)" --force --quiet &
"$PYTHON" -m walkout_sim.cli generate --split val --videos 6 --frames 300 --image-stride 300 --seed 189 \
  --out "$OUT/sim_val" --force --quiet &
if [[ -n "${WALKOUT_BLIND_SEED:-}" ]]; then
  "$PYTHON" -m walkout_sim.cli generate --split blind --videos 4 --frames 300 --image-stride 50 \
    --out "$OUT/sim_blind" --force --quiet &
fi
# `wait` alone ignores the children's exit status: wait for each so a failed part stops the run.
for job in $(jobs -p); do wait "$job"; done

"$PYTHON" -m walkout_tracking.cli train "${data_args[@]}" --val-data "$OUT/sim_val" \
  --config "$HERE/configs/production.yaml" --out "$OUT/production" --quiet
EXP=$("$PYTHON" -c 'import json, sys; print(json.load(open(sys.argv[1]))["experiment_id"])' "$OUT/production/train_result.json")

BLIND_ARG=""
if [[ -n "${WALKOUT_BLIND_SEED:-}" ]]; then
  "$PYTHON" -m walkout_tracking.cli evaluate --model "$OUT/production/best.pt" --data "$OUT/sim_blind" \
    --report-dir "$OUT/blind_appearance" --quiet
  "$PYTHON" -m walkout_tracking.cli evaluate --model motion-only --config "$HERE/configs/production.yaml" \
    --data "$OUT/sim_blind" --report-dir "$OUT/blind_motion" --quiet
  BLIND_ARG=" --blind-metrics $OUT/blind_appearance/report.json"
else
  echo "WALKOUT_BLIND_SEED is not set: no blind evaluation (the pin will carry no blind metrics)."
fi
echo
echo "To make it the production model (after its model gate against the current pin passes):"
echo "  (cd $HERE && walkout-ci gate --component-dir . --candidate $EXP --data <fresh split> --out <dir>)"
echo "  walkout-ci experiment export $EXP --to $HERE/experiments/"
echo "  walkout-ci pin $EXP --component tracking --out $HERE/model_ref.yaml$BLIND_ARG"
