"""Benchmark: rendered frames per second at the default 320x240 on one core (``make bench-sim``).

Measures simulation + rendering + ground truth (what every frame of a split costs before file
writing), then the whole ``generate_split`` throughput including PNG/MJPG/JSON writing. Not a test:
it prints figures. OpenCV is limited to one thread so the figure is per core.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

from walkout_sim.config import GeneratorConfig
from walkout_sim.generate import generate_split
from walkout_sim.layout import load_layout
from walkout_sim.render import Renderer
from walkout_sim.scenario import sample_scenario
from walkout_sim.simulate import simulate


def render_fps(frames: int, videos: int, seed: int = 0) -> tuple[float, float]:
    """(frames per second of simulate+render+GT, mean persons per frame) over ``videos`` random videos."""
    layout = load_layout()
    config = GeneratorConfig()
    total, persons, elapsed = 0, 0, 0.0
    for video in range(videos):
        rng = np.random.default_rng([seed, video])
        scenario = sample_scenario(layout, config.shoppers, frames, config.camera.fps, rng, f"bench_{video}")
        start = time.perf_counter()
        renderer = Renderer(layout, config.camera, np.random.default_rng([seed, video, 1]))
        for state in simulate(
            scenario, layout, config.camera.fps, np.random.default_rng([seed, video, 2]), frames=frames
        ):
            renderer.render(state)
            persons += len(state.persons)
            total += 1
        elapsed += time.perf_counter() - start
    return total / elapsed, persons / total


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m walkout_sim.bench", description=__doc__)
    parser.add_argument("--frames", type=int, default=300, help="frames per video (default 300)")
    parser.add_argument("--videos", type=int, default=4, help="videos (default 4)")
    args = parser.parse_args(argv)
    cv2.setNumThreads(1)
    fps, persons = render_fps(args.frames, args.videos)
    sys.stdout.write(
        f"walkout-sim render: {fps:.0f} frames/s at 320x240 on one core "
        f"(simulate + render + ground truth; {persons:.1f} shoppers per frame on average; target >= 300)\n"
    )
    with tempfile.TemporaryDirectory() as temp:
        start = time.perf_counter()
        generate_split(
            Path(temp) / "bench", split="train", videos=args.videos, frames=args.frames // 2, seed=0
        )
        elapsed = time.perf_counter() - start
    written = args.videos * (args.frames // 2)
    sys.stdout.write(
        f"walkout-sim generate: {written / elapsed:.0f} frames/s end to end "
        f"({args.videos} videos x {args.frames // 2} frames in {elapsed:.1f} s, "
        "PNG + MJPG + JSON + manifest)\n"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
