"""Shared fixtures: tiny hand-made COCO keypoints splits (stick figures drawn with OpenCV).

The figures are drawn from their keypoints, so the labels are exact and a tiny model can learn them
in seconds; the files follow the standard formats the package reads (COCO keypoints JSON + PNG
images + a simulator-style manifest.json).
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import cv2
import numpy as np
import pytest

LIMBS = ((0, 1), (0, 2), (1, 2), (1, 3), (3, 5), (2, 4), (4, 6))
NAMES = ["head", "left_shoulder", "right_shoulder", "left_elbow", "right_elbow", "left_wrist", "right_wrist"]


def stick_figure(rng: np.random.Generator, x: float, y: float, height: float) -> np.ndarray:
    """Keypoints float [7, 2] of a figure whose head is at (x, y) and whose box is about `height` tall."""
    unit = height / 4.0
    shoulder_y = y + 0.6 * unit
    points = [(x, y), (x + 0.55 * unit, shoulder_y), (x - 0.55 * unit, shoulder_y)]
    for side, (sx, sy) in ((1, points[1]), (-1, points[2])):
        elbow = (sx + side * rng.uniform(0.1, 0.9) * unit, sy + rng.uniform(0.6, 1.1) * unit)
        points.append(elbow)
    for side, elbow in ((1, points[3]), (-1, points[4])):
        points.append(
            (elbow[0] + side * rng.uniform(-0.3, 1.0) * unit, elbow[1] + rng.uniform(-0.6, 1.0) * unit)
        )
    ordered = [points[0], points[1], points[2], points[3], points[4], points[5], points[6]]
    return np.array(ordered)


def write_split(root: Path, *, frames: int, seed: int, split: str = "train", blind: bool = False) -> Path:
    """A tiny split: `frames` frames of 160x120, one or two figures each, across two 'videos'."""
    rng = np.random.default_rng(seed)
    images_dir = root / "coco" / "images"
    images_dir.mkdir(parents=True, exist_ok=True)
    images, annotations, hashes = [], [], []
    annotation_id = 1
    for index in range(frames):
        video = f"video{index % 2 + 1}"
        file_name = f"{video}_{index + 1:06d}.png"
        frame = np.full((120, 160, 3), 90, dtype=np.uint8)
        frame[80:] = 60
        for person in range(1 + index % 2):
            height = rng.uniform(55, 75)
            x = rng.uniform(30, 130) if person == 0 else rng.uniform(20, 140)
            y = rng.uniform(8, 30)
            keypoints = stick_figure(rng, x, y, height)
            color = tuple(int(c) for c in rng.integers(150, 255, size=3))
            for start, end in LIMBS:
                p0 = tuple(round(float(v)) for v in keypoints[start])
                p1 = tuple(round(float(v)) for v in keypoints[end])
                cv2.line(frame, p0, p1, color, 2)
            cv2.circle(frame, tuple(round(float(v)) for v in keypoints[0]), 4, (40, 200, 240), -1)
            for wrist in (5, 6):
                cv2.circle(frame, tuple(round(float(v)) for v in keypoints[wrist]), 2, (30, 30, 230), -1)
            x1, y1 = keypoints.min(axis=0) - 4
            x2, y2 = keypoints.max(axis=0) + 4
            x2 = max(x2, x1 + height * 0.4)
            y2 = max(y2, y1 + height)
            x1, y1, x2, y2 = max(x1, 0), max(y1, 0), min(x2, 159), min(y2, 119)
            visibility = np.full(7, 2.0)
            flat = np.concatenate([keypoints, visibility[:, None]], axis=1).reshape(-1)
            annotations.append(
                {
                    "id": annotation_id,
                    "image_id": index + 1,
                    "category_id": 1,
                    "bbox": [float(x1), float(y1), float(x2 - x1), float(y2 - y1)],
                    "area": float((x2 - x1) * (y2 - y1)),
                    "iscrowd": 0,
                    "keypoints": [round(float(v), 2) for v in flat],
                    "num_keypoints": 7,
                }
            )
            annotation_id += 1
        cv2.imwrite(str(images_dir / file_name), frame)
        hashes.append(hashlib.sha256(frame.tobytes()).hexdigest())
        images.append({"id": index + 1, "file_name": file_name, "width": 160, "height": 120})
    coco = {
        "images": images,
        "annotations": annotations,
        "categories": [
            {"id": 1, "name": "person", "keypoints": NAMES, "skeleton": [[a + 1, b + 1] for a, b in LIMBS]}
        ],
    }
    (root / "coco" / "keypoints.json").write_text(json.dumps(coco))
    manifest = {
        "format_version": 1,
        "split": split,
        "blind": blind,
        "generator": {"tests": "stick figures", "seed": seed},
        "files": {},
        "content_hashes": hashes,
    }
    (root / "manifest.json").write_text(json.dumps(manifest))
    return root


@pytest.fixture(scope="session")
def tiny_split(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 24-frame training split (read-only for tests: copy it before changing anything)."""
    return write_split(tmp_path_factory.mktemp("tiny") / "train", frames=24, seed=1)


@pytest.fixture(scope="session")
def tiny_val_split(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An 8-frame validation split of other figures."""
    return write_split(tmp_path_factory.mktemp("tiny") / "val", frames=8, seed=2, split="val")


@pytest.fixture()
def walkout_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An isolated walkout-ci store (experiments) and no ClearML server."""
    home = tmp_path / "walkout_home"
    monkeypatch.setenv("WALKOUT_HOME", str(home))
    monkeypatch.delenv("CLEARML_API_HOST", raising=False)
    return home


# The store the session started with. In this package's own repository (a clone from the org) there are
# no bundled experiments/: git carries only the pin's id, and CI points WALKOUT_HOME at the org's store
# (a ClearML file server stand-in). Read before the per-test stores above replace WALKOUT_HOME.
OUTER_WALKOUT_HOME = os.environ.get("WALKOUT_HOME")
PACKAGE_ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture()
def pinned_experiment(walkout_home: Path) -> Path:
    """The folder the pinned experiment resolves from (walkout_ci.testing.pinned_experiment_folder)."""
    from walkout_ci.testing import pinned_experiment_folder

    return pinned_experiment_folder(PACKAGE_ROOT, OUTER_WALKOUT_HOME, walkout_home)
