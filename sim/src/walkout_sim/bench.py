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


def render_fps(frames: int, videos: int, seed: int = 0) -> tuple[float, float, float]:
    """Simulate + render + GT over ``videos`` random videos.

    Returns (frames per CPU second, frames per wall second, mean persons per frame). CPU seconds
    (process time, one thread) give the per-core speed even when other jobs share the machine.
    """
    layout = load_layout()
    config = GeneratorConfig()
    total, persons, elapsed, cpu = 0, 0, 0.0, 0.0
    for video in range(videos):
        rng = np.random.default_rng([seed, video])
        scenario = sample_scenario(layout, config.shoppers, frames, config.camera.fps, rng, f"bench_{video}")
        start, start_cpu = time.perf_counter(), time.process_time()
        renderer = Renderer(layout, config.camera, np.random.default_rng([seed, video, 1]))
        for state in simulate(
            scenario, layout, config.camera.fps, np.random.default_rng([seed, video, 2]), frames=frames
        ):
            renderer.render(state)
            persons += len(state.persons)
            total += 1
        elapsed += time.perf_counter() - start
        cpu += time.process_time() - start_cpu
    return total / cpu, total / elapsed, persons / total


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m walkout_sim.bench", description=__doc__)
    parser.add_argument("--frames", type=int, default=300, help="frames per video (default 300)")
    parser.add_argument("--videos", type=int, default=4, help="videos (default 4)")
    args = parser.parse_args(argv)
    cv2.setNumThreads(1)
    fps, wall_fps, persons = render_fps(args.frames, args.videos)
    sys.stdout.write(
        f"walkout-sim render: {fps:.0f} frames per CPU second at 320x240 on one core "
        f"({wall_fps:.0f} per wall second on this machine now; simulate + render + ground truth; "
        f"{persons:.1f} shoppers per frame on average; target >= 300)\n"
    )
    with tempfile.TemporaryDirectory() as temp:
        start, start_cpu = time.perf_counter(), time.process_time()
        generate_split(
            Path(temp) / "bench", split="train", videos=args.videos, frames=args.frames // 2, seed=0
        )
        elapsed, cpu = time.perf_counter() - start, time.process_time() - start_cpu
    written = args.videos * (args.frames // 2)
    sys.stdout.write(
        f"walkout-sim generate: {written / cpu:.0f} frames per CPU second ({written / elapsed:.0f} per wall "
        f"second) end to end: {args.videos} videos x {args.frames // 2} frames, "
        "PNG + MJPG + JSON + manifest\n"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
