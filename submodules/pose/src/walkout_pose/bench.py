"""Throughput benchmark: persons per second through `estimate` on CPU, at batch 1 and batch 32.

    python -m walkout_pose.bench [--model REF] [--threads N] [--seconds S]

Measures the whole per-person path the app uses (crop, network, decoding, mapping back to the frame)
on a synthetic 320x240 frame with 32 person boxes. Without --model the production model is used
(weights do not change the speed, only the architecture does). Prints one line per batch size and a
JSON summary. Timings on a shared machine depend on what else runs: report the load with them.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

import numpy as np
import torch

from walkout_pose.predict import estimate, load_model, load_production_model

BOXES_PER_FRAME = 32


def synthetic_frame(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """A 320x240 noise frame and 32 person-sized boxes (about 30x25 px, like the simulator's)."""
    frame = rng.integers(0, 255, size=(240, 320, 3), dtype=np.uint8)
    x1 = rng.uniform(0, 285, BOXES_PER_FRAME)
    y1 = rng.uniform(0, 210, BOXES_PER_FRAME)
    boxes = np.stack(
        [x1, y1, x1 + rng.uniform(22, 34, BOXES_PER_FRAME), y1 + rng.uniform(18, 30, BOXES_PER_FRAME)], 1
    )
    return frame, boxes


def persons_per_second(model: torch.nn.Module, batch_size: int, seconds: float) -> tuple[float, float]:
    """(persons per wall-clock second, persons per CPU second of this process) of estimate() called
    with `batch_size` boxes at a time. On a shared machine the wall figure depends on the load; the
    CPU figure is what one dedicated core per torch thread would give."""
    frame, boxes = synthetic_frame(np.random.default_rng(0))
    boxes = boxes[:batch_size]
    estimate(model, frame, boxes, batch_size=batch_size)  # warm-up (allocator, oneDNN kernels)
    persons = 0
    started, cpu_started = time.perf_counter(), time.process_time()
    while time.perf_counter() - started < seconds:
        estimate(model, frame, boxes, batch_size=batch_size)
        persons += len(boxes)
    wall, cpu = time.perf_counter() - started, time.process_time() - cpu_started
    return persons / wall, persons / max(cpu, 1e-9)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m walkout_pose.bench", description=__doc__.splitlines()[0])
    parser.add_argument(
        "--model", help="experiment id, model_ref.yaml or checkpoint (default: production pin)"
    )
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0 = torch default)")
    parser.add_argument("--seconds", type=float, default=5.0, help="measuring time per batch size")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    model = load_model(args.model)[0] if args.model else load_production_model()
    figures = {}
    for batch_size in (1, BOXES_PER_FRAME):
        rate, cpu_rate = persons_per_second(model, batch_size, args.seconds)
        figures[f"batch_{batch_size}_persons_per_s"] = round(rate, 1)
        figures[f"batch_{batch_size}_persons_per_cpu_s"] = round(cpu_rate, 1)
        print(f"batch {batch_size:>2}: {rate:8.1f} persons/s wall, {cpu_rate:8.1f} persons per CPU-second")
    figures.update(
        threads=torch.get_num_threads(),
        cpu_count=os.cpu_count(),
        load_average_1min=round(os.getloadavg()[0], 2),
        input_size=[model.config.input_height, model.config.input_width],
        parameters=sum(p.numel() for p in model.parameters()),
    )
    print(json.dumps(figures))
    return 0


if __name__ == "__main__":
    sys.exit(main())
