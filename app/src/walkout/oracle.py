"""Oracle mode: the engine fed the simulator's ground-truth tracks, keypoints and product boxes.

With perfect inputs every wrong receipt is a fusion bug, never a model error.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterable, Sequence

from walkout.engine import Engine, EngineConfig
from walkout.groundtruth import VideoGroundTruth, load_video_ground_truth
from walkout.layout import StoreLayout
from walkout.observations import FrameObservation
from walkout.results import VideoResult


def run_engine(
    frames: Iterable[FrameObservation],
    *,
    layout: StoreLayout,
    video: str,
    config: EngineConfig | None = None,
    doorway: Sequence[tuple[int, int]] | None = None,
) -> VideoResult:
    """Feed `frames` (in order) through a fresh engine and collect its decisions.

    doorway: the last frame's look at the exit border (`walkout.doorway.watch_video`), for `finish`.
    """
    start = time.perf_counter()
    engine = Engine(layout=layout, config=config)
    count = 0
    for frame in frames:
        engine.step(frame)
        count += 1
    engine.finish(doorway=doorway)
    seconds = time.perf_counter() - start
    return VideoResult(
        video=video,
        events=[event.to_dict() for event in engine.events],
        receipts=engine.receipts_json(),
        review=engine.review_reasons(),
        trajectories=engine.trajectories,
        frames=count,
        seconds=seconds,
        stage_seconds={"engine": seconds},
    )


def run_oracle(
    video_dir: str | os.PathLike, *, config: EngineConfig | None = None, truth: VideoGroundTruth | None = None
) -> VideoResult:
    """Run the engine on a video folder's ground truth (annotations.json) instead of model outputs."""
    truth = truth if truth is not None else load_video_ground_truth(video_dir)
    return run_engine(truth.frames, layout=truth.layout, video=truth.name, config=config)
