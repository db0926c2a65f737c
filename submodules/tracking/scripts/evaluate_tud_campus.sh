#!/usr/bin/env bash
# Score motion-only mode on the MOT15 TUD-Campus public detections (real data) through the CLI:
# assembles out/tracking/mot15/TUD-Campus/{det,gt} from tests/data and py-motmetrics' bundled gt.txt.
# Run from the repository root.
set -euo pipefail
BIN=${BIN:-.venv/bin}
OUT=${OUT:-out/tracking}
SEQ="$OUT/mot15/TUD-Campus"
GT=$("$BIN/python" -c 'import motmetrics, os; print(os.path.join(os.path.dirname(motmetrics.__file__), "data", "TUD-Campus", "gt.txt"))')
mkdir -p "$SEQ/det" "$SEQ/gt"
cp submodules/tracking/tests/data/TUD-Campus/det.txt "$SEQ/det/det.txt"
cp "$GT" "$SEQ/gt/gt.txt"
"$BIN/walkout-tracking" evaluate --model motion-only --data "$OUT/mot15" --report-dir "$OUT/tud_motion" --quiet
