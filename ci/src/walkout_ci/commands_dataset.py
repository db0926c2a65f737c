"""`walkout-ci dataset merge OUT PART...`: one training set from simulator parts generated in parallel."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from walkout_ci.datasets import merge_exports


def register(subparsers: Any) -> None:
    """Add the `dataset` subcommand."""
    dataset = subparsers.add_parser("dataset", help="training sets: merge parts generated in parallel")
    actions = dataset.add_subparsers(dest="dataset_command", metavar="ACTION", required=True)
    merge = actions.add_parser(
        "merge",
        help="merge walkout-sim train exports into one training set (no images copied)",
        description="Write OUT/detection.json and/or OUT/keypoints.json (every COCO file all parts have; "
        "ids renumbered, image paths relative to OUT) and OUT/manifest.json (the parts' frame hashes "
        "joined, for the gate's leakage check). Blind or validation parts are refused.",
    )
    merge.add_argument("out", type=Path, help="folder of the merged training set")
    merge.add_argument("parts", type=Path, nargs="+", help="walkout-sim train export folders")
    merge.set_defaults(handler=_merge)


def _merge(args: argparse.Namespace) -> int:
    counts = merge_exports(args.out, args.parts)
    for name, count in counts.items():
        images, annotations = count["images"], count["annotations"]
        print(f"{name}: {images} images, {annotations} annotations from {len(args.parts)} parts")
    return 0
