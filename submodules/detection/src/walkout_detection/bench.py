"""Inference throughput of the detector at 320x240 (frames per second), batch 1 and batch 16.

`python -m walkout_detection.bench [--model REF] [--threads N]`: without --model it measures an
untrained network of the default config (speed does not depend on the weights). Network-only and
end-to-end (with decoding) figures are printed. Not a test: numbers depend on the machine's load.
"""

from __future__ import annotations

import argparse
import sys
import time

import numpy as np
import torch

from walkout_detection.config import load_config
from walkout_detection.model import CenterNet
from walkout_detection.predict import Detector, load_detector

WIDTH, HEIGHT = 320, 240


def frames_per_second(detector: Detector, *, batch_size: int, seconds: float) -> tuple[float, float]:
    """(network-only fps, end-to-end fps incl. colour conversion and decoding) over ~`seconds` each."""
    rng = np.random.default_rng(0)
    frames = [rng.integers(0, 255, (HEIGHT, WIDTH, 3), dtype=np.uint8) for _ in range(batch_size)]
    tensor = torch.rand(batch_size, 3, HEIGHT, WIDTH, device=detector.device)
    results = []
    for run in ("network", "end_to_end"):
        with torch.inference_mode():
            for _ in range(3):
                detector.detect(frames)
            count, began = 0, time.perf_counter()
            while time.perf_counter() - began < seconds:
                if run == "network":
                    detector.model(tensor)
                else:
                    decode_check = detector.detect(frames)
                    del decode_check
                count += batch_size
            results.append(count / (time.perf_counter() - began))
    return results[0], results[1]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m walkout_detection.bench", description=__doc__)
    parser.add_argument("--model", help="model reference (default: an untrained default-config network)")
    parser.add_argument("--threads", type=int, default=2, help="torch CPU threads (default 2)")
    parser.add_argument("--seconds", type=float, default=5.0, help="measuring time per figure")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    if args.model:
        detector = load_detector(args.model, device="cpu")
    else:
        config = load_config()
        model = CenterNet.from_config(config.model, num_classes=15)
        detector = Detector(
            model=model,
            class_names=[f"class_{i}" for i in range(15)],
            settings=config.evaluate,
            device=torch.device("cpu"),
        )
    parameters = sum(parameter.numel() for parameter in detector.model.parameters())
    print(
        f"detector: {parameters} parameters, {len(detector.class_names)} classes, CPU threads {args.threads}"
    )
    for batch_size in (1, 16):
        network, end_to_end = frames_per_second(detector, batch_size=batch_size, seconds=args.seconds)
        print(
            f"{WIDTH}x{HEIGHT} batch {batch_size:2d}: "
            f"network {network:6.1f} fps, end-to-end {end_to_end:6.1f} fps"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
