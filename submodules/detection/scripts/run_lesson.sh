#!/usr/bin/env bash
# The lesson run: the same long-tailed training data (cola_zero in 4 of 612 images), trained once with
# the class-balanced sampler and once with the plain one, both evaluated on a blind split of the
# default store, then gated one against the other with `walkout-ci gate` on the two reports.
#
#   WALKOUT_BLIND_SEED=<secret> submodules/detection/scripts/run_lesson.sh [OUT_DIR [TRAIN ARGS...]]
#
# Extra arguments go to both `walkout-detection train` runs (e.g. `--set train.num_threads=1`).
#
# Exit status: that of the gate (1 = the plain-sampler candidate is refused).
set -uo pipefail
OUT=${1:-out/detection/lesson}
shift || true
HERE=$(cd "$(dirname "$0")/.." && pwd)
export PATH="$PWD/.venv/bin:$PATH"
: "${WALKOUT_BLIND_SEED:?set WALKOUT_BLIND_SEED to the secret blind seed}"
set -e
mkdir -p "$OUT"
python3 "$HERE/scripts/make_lesson_data.py" --out "$OUT/train" --videos 32 --stride 8
walkout-sim generate --split val --videos 6 --frames 150 --image-stride 10 --seed 12 --out "$OUT/val" --force --quiet
walkout-sim generate --split blind --videos 4 --frames 150 --image-stride 10 --out "$OUT/blind" --force --quiet
for sampler in balanced plain; do
  balanced=true; [ "$sampler" = plain ] && balanced=false
  walkout-detection train --config "$HERE/configs/lesson.yaml" --set "train.balanced_sampling=$balanced" \
    --data "$OUT/train" --val-data "$OUT/val" --output "$OUT/$sampler" --name "lesson_$sampler" --no-progress "$@"
  walkout-detection evaluate --model "$OUT/$sampler/best.pt" --data "$OUT/blind" --report-dir "$OUT/report_$sampler" --no-progress
done
set +e
walkout-ci gate --component-dir "$HERE" --baseline-report "$OUT/report_balanced" \
  --candidate-report "$OUT/report_plain" --out "$OUT/gate"
status=$?
sed -n '/### Per class/,/### Newly/p' "$OUT/gate/report.md"
exit $status
