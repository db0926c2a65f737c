"""Benchmark: end-to-end frames per second of the store pipeline at 320x240 on CPU, per stage.

    python -m walkout.bench --video <simulator video folder> --refs model_refs.yaml [--threads 2]
    python -m walkout.bench --video <simulator video folder> --untrained

Stages: decode (video), detection, tracking, pose (on tracked person boxes), engine. With `--refs`
the pinned models run exactly as in `walkout run`. `--untrained` builds the components' default
architectures with random weights, for a speed estimate before any model is trained: detection then
runs for its cost only, and tracking and pose get the ground-truth person boxes of annotations.json
(so they see the real number of shoppers per frame). Its numbers are labelled as such.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

from walkout.engine import Engine
from walkout.errors import WalkoutError
from walkout.groundtruth import load_video_ground_truth
from walkout.pipeline import STAGES, System, load_system
from walkout.video import iterate_frames, resolve_video


class _TruthDetector:
    """Runs an untrained detector for its cost, but answers with the ground-truth person boxes."""

    def __init__(self, detector: object, truth_persons: dict[int, np.ndarray]) -> None:
        self.detector = detector
        self.class_names = ["person"]
        self.truth_persons = truth_persons
        self.frame = 0

    def detect(self, images: list[np.ndarray], *, min_score: float | None = None) -> list[object]:
        from walkout_detection.model import Detections

        self.detector.detect(images, min_score=min_score)
        self.frame += 1
        boxes = self.truth_persons.get(self.frame, np.zeros((0, 4)))
        scores = np.ones(len(boxes))
        return [Detections(boxes=boxes, scores=scores, labels=np.zeros(len(boxes), dtype=int))]


def untrained_system(video_dir: Path) -> System:
    """The default component architectures with random weights (speed only; see the module docstring)."""
    import torch

    from walkout_detection.config import EvaluateConfig
    from walkout_detection.config import ModelConfig as DetectionModelConfig
    from walkout_detection.model import CenterNet
    from walkout_detection.predict import Detector
    from walkout_pose.config import ModelConfig as PoseModelConfig
    from walkout_pose.model import build_model
    from walkout_tracking.tracker import Tracker

    truth = load_video_ground_truth(video_dir)
    skus = sorted({slot.sku for slot in truth.layout.slots})
    detector = Detector(
        model=CenterNet.from_config(DetectionModelConfig(), num_classes=1 + len(skus)),
        class_names=["person", *skus],
        settings=EvaluateConfig(),
        device=torch.device("cpu"),
    )
    persons = {
        frame.frame: np.array([s.box for s in frame.shoppers], dtype=np.float64).reshape(-1, 4)
        for frame in truth.frames
    }
    return System(
        detector=_TruthDetector(detector, persons),
        pose_model=build_model(PoseModelConfig()).eval(),
        tracker_factory=Tracker,
    )


def benchmark(system: System, video: Path, *, frames: int | None = None) -> dict[str, float]:
    """Run the pipeline over (the first `frames` of) a video; return per-stage ms/frame and frames/s."""
    from walkout.layout import load_layout

    video_path = resolve_video(video)
    layout = load_layout(video_path.parent / "layout.yaml")
    engine = Engine(layout=layout, config=system.engine_config)
    tracker = system.tracker_factory()
    timings = dict.fromkeys(STAGES, 0.0)
    images = []
    start = time.perf_counter()
    for number, image in iterate_frames(video_path):
        images.append((number, image))
        if frames is not None and len(images) >= frames:
            break
    # Decoding is timed as its own pass so that it is not mixed into the model stages.
    timings["decode"] = time.perf_counter() - start
    start = time.perf_counter()
    for number, image in images:
        observation = system.observe(number, image, tracker, timings)
        engine_start = time.perf_counter()
        engine.step(observation)
        timings["engine"] += time.perf_counter() - engine_start
    total = time.perf_counter() - start + timings["decode"]
    count = len(images)
    result = {f"{stage}_ms_per_frame": 1000.0 * seconds / count for stage, seconds in timings.items()}
    result["frames"] = float(count)
    result["frames_per_s"] = count / total
    return result


def main(argv: list[str] | None = None) -> int:
    """CLI of the benchmark; prints a table and a JSON line."""
    parser = argparse.ArgumentParser(prog="python -m walkout.bench", description=__doc__.split("\n")[0])
    parser.add_argument("--video", required=True, help="a simulator video folder (video.avi + layout.yaml)")
    models = parser.add_mutually_exclusive_group(required=True)
    models.add_argument("--refs", help="model_refs.yaml: benchmark the pinned models")
    models.add_argument("--untrained", action="store_true", help="random-weight default architectures")
    parser.add_argument("--frames", type=int, default=None, help="only the first N frames")
    parser.add_argument("--threads", type=int, default=2, help="torch CPU threads (default 2)")
    args = parser.parse_args(argv)
    import torch

    torch.set_num_threads(args.threads)
    try:
        video_dir = resolve_video(args.video).parent
        if args.untrained:
            system = untrained_system(video_dir)
        else:
            system = load_system(args.refs, device="cpu", threads=args.threads)
        warmup = system.tracker_factory()
        for number, image in iterate_frames(video_dir):
            system.observe(number, image, warmup, dict.fromkeys(STAGES, 0.0))
            if number >= 5:
                break
        result = benchmark(system, video_dir, frames=args.frames)
    except WalkoutError as error:
        print(f"walkout bench: error: {error}", file=sys.stderr)
        return error.exit_code
    label = (
        "UNTRAINED default architectures (speed proxy)" if args.untrained else f"pinned models ({args.refs})"
    )
    print(f"walkout end-to-end benchmark, {label}, {int(result['frames'])} frames, {args.threads} threads")
    for stage in STAGES:
        print(f"  {stage:<10} {result[f'{stage}_ms_per_frame']:8.2f} ms/frame")
    fps = result["frames_per_s"]
    print(f"  {'total':<10} {1000.0 / fps:8.2f} ms/frame = {fps:.1f} frames/s")
    print(json.dumps({k: round(v, 3) for k, v in result.items()}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
