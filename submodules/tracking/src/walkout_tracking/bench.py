"""Throughput benchmark: `python -m walkout_tracking.bench [--sim DIR] [--model REF]`.

1. Motion-only tracking on the MOT15 TUD-Campus public detections (71 frames, tests/data): frames per
   second of `Tracker.update` alone (detections pre-parsed), best of `--repeats` runs, alternating
   with the SORT baseline (`sort_baseline.py`) so both are timed under the same load. The reference
   SORT ran about 3,200 frames/s on this kind of machine (issue 6).
2. With appearance, on simulator videos (`--sim`, e.g. a `walkout-sim generate` export): frames per
   second of the whole per-frame loop (video decoding, crop embedding, association).
CPU figures depend on what else runs on the machine: say so next to them.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from walkout_tracking.config import TrackerConfig
from walkout_tracking.data import find_sequences
from walkout_tracking.motchallenge import detections_per_frame, read_mot_file
from walkout_tracking.predict import PACKAGE_DIR, load_tracking_model, sequence_length, track_sequence
from walkout_tracking.sort_baseline import SortReference
from walkout_tracking.tracker import Tracker

TUD_DETECTIONS = PACKAGE_DIR / "tests" / "data" / "TUD-Campus" / "det.txt"
REFERENCE_SORT_FPS = 3200.0


def motion_only_fps(det_path: Path, repeats: int) -> tuple[float, float, int]:
    """Best-of-`repeats` frames/s over one det.txt of (our motion-only tracker, the SORT baseline),
    timed alternately so both see the same machine load; returns (ours, sort, frames)."""
    frames = detections_per_frame(read_mot_file(det_path))
    best = {"ours": float("inf"), "sort": float("inf")}
    factories = {
        "ours": lambda: Tracker(config=TrackerConfig(use_appearance=False)),
        "sort": lambda: SortReference(max_age=1, min_hits=3, iou_threshold=0.3),
    }
    for _ in range(repeats):
        for name, factory in factories.items():
            tracker = factory()
            started = time.perf_counter()
            for detections in frames:
                tracker.update(detections)
            best[name] = min(best[name], time.perf_counter() - started)
    return len(frames) / best["ours"], len(frames) / best["sort"], len(frames)


def appearance_fps(sim_dir: Path, model_ref: str) -> tuple[float, int]:
    """Frames/s of the full loop with appearance over every sequence of `sim_dir`; (fps, frames)."""
    model = load_tracking_model(model_ref)
    seconds = 0.0
    frames = 0
    for sequence in find_sequences(sim_dir):
        _, _, elapsed = track_sequence(sequence, model)
        seconds += elapsed
        frames += sequence_length(sequence)
    return frames / max(seconds, 1e-9), frames


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m walkout_tracking.bench", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--det", type=Path, default=TUD_DETECTIONS, help="det.txt for the motion-only figure")
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--sim", type=Path, help="simulator export for the appearance figure")
    parser.add_argument("--model", default=str(PACKAGE_DIR / "model_ref.yaml"), help="model reference")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    args = parser.parse_args(argv)
    import torch

    torch.set_num_threads(args.threads)
    fps, sort_fps, count = motion_only_fps(args.det, args.repeats)
    print(
        f"motion-only on {args.det.parent.name}: {fps:,.0f} frames/s over {count} frames, "
        f"best of {args.repeats}; "
        f"SORT baseline in the same run: {sort_fps:,.0f} frames/s (issue's reference SORT figure: "
        f"~{REFERENCE_SORT_FPS:,.0f} frames/s)"
    )
    if args.sim is not None:
        fps, count = appearance_fps(args.sim, args.model)
        print(
            f"with appearance on {args.sim}: {fps:,.1f} frames/s over {count} frames (decode + embed + track)"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
