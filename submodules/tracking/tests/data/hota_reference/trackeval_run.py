"""How trackeval_golden.json was made: TrackEval 1.3.0's HOTA on MOT files (not a test).

python trackeval_run.py BENCHMARK PREPROC GT_ROOT TRACKER_ROOT SEQ=FRAMES ... prints JSON
{sequence | "COMBINED_SEQ": {HOTA, DetA, AssA, LocA, HOTA_per_alpha}}. GT_ROOT/<seq>/gt/gt.txt;
TRACKER_ROOT/t/<seq>.txt. BENCHMARK MOT15 + PREPROC 0 for the TUD files, MOT17 + 1 for the crowd
case. TrackEval came from `pip download --no-deps trackeval==1.3.0`, unpacked onto PYTHONPATH.
"""

import json
import sys
from pathlib import Path

import trackeval

bench, preproc, gt_root, tr_root = sys.argv[1], sys.argv[2] == "1", Path(sys.argv[3]), Path(sys.argv[4])
seqs = {s.split("=")[0]: int(s.split("=")[1]) for s in sys.argv[5:]}
cfg = trackeval.datasets.MotChallenge2DBox.get_default_dataset_config()
cfg.update(
    GT_FOLDER=str(gt_root),
    TRACKERS_FOLDER=str(tr_root),
    BENCHMARK=bench,
    SPLIT_TO_EVAL="train",
    SKIP_SPLIT_FOL=True,
    TRACKERS_TO_EVAL=["t"],
    TRACKER_SUB_FOLDER="",
    SEQ_INFO=seqs,
    DO_PREPROC=preproc,
    GT_LOC_FORMAT="{gt_folder}/{seq}/gt/gt.txt",
    OUTPUT_FOLDER=str(tr_root / "out"),
    PRINT_CONFIG=False,
)
ecfg = trackeval.Evaluator.get_default_eval_config()
ecfg.update(
    USE_PARALLEL=False,
    PRINT_RESULTS=False,
    PRINT_CONFIG=False,
    OUTPUT_SUMMARY=False,
    OUTPUT_DETAILED=False,
    PLOT_CURVES=False,
    TIME_PROGRESS=False,
    DISPLAY_LESS_PROGRESS=True,
)
evaluator = trackeval.Evaluator(ecfg)
res, msg = evaluator.evaluate([trackeval.datasets.MotChallenge2DBox(cfg)], [trackeval.metrics.HOTA()])
print(msg)
out = {}
for seq, r in res["MotChallenge2DBox"]["t"].items():
    h = r["pedestrian"]["HOTA"]
    out[seq] = {k: float(h[k].mean()) for k in ("HOTA", "DetA", "AssA", "LocA")}
    out[seq]["HOTA_per_alpha"] = [float(v) for v in h["HOTA"]]
print(json.dumps(out, indent=1))
