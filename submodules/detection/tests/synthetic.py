"""Hand-made COCO detection fixtures: coloured boxes on a noisy background, written as a standard
COCO export (coco/detection.json + coco/images/*.png + manifest.json), so tests do not depend on
the simulator being available or fast."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import cv2
import numpy as np

CATEGORIES = [
    {"id": 1, "name": "person"},
    {"id": 2, "name": "sku_red"},
    {"id": 3, "name": "sku_blue"},
]
COLOURS = {1: (40, 40, 40), 2: (30, 30, 220), 3: (220, 60, 30)}
SIZES = {1: (24, 48), 2: (14, 14), 3: (12, 18)}


def make_dataset(
    root: Path, *, images: int, seed: int, width: int = 160, height: int = 128, blind: bool = False
) -> Path:
    """Write a small dataset under `root` and return `root`. Each image holds 1-4 objects."""
    rng = np.random.default_rng(seed)
    image_dir = root / "coco" / "images"
    image_dir.mkdir(parents=True, exist_ok=True)
    coco = {"images": [], "annotations": [], "categories": CATEGORIES}
    content_hashes = []
    annotation_id = 1
    for image_id in range(1, images + 1):
        frame = np.full((height, width, 3), 170, dtype=np.uint8)
        frame = np.clip(frame + rng.normal(0, 4, frame.shape), 0, 255).astype(np.uint8)
        for _ in range(int(rng.integers(1, 5))):
            category = int(rng.integers(1, 4))
            box_w, box_h = SIZES[category]
            x = int(rng.integers(0, width - box_w))
            y = int(rng.integers(0, height - box_h))
            cv2.rectangle(frame, (x, y), (x + box_w - 1, y + box_h - 1), COLOURS[category], -1)
            coco["annotations"].append(
                {
                    "id": annotation_id,
                    "image_id": image_id,
                    "category_id": category,
                    "bbox": [x, y, box_w, box_h],
                    "area": box_w * box_h,
                    "iscrowd": 0,
                }
            )
            annotation_id += 1
        name = f"synthetic_{image_id:06d}.png"
        cv2.imwrite(str(image_dir / name), frame)
        content_hashes.append(hashlib.sha256(frame.tobytes()).hexdigest())
        coco["images"].append({"id": image_id, "file_name": name, "width": width, "height": height})
    (root / "coco" / "detection.json").write_text(json.dumps(coco))
    manifest = {
        "format_version": 1,
        "split": "blind" if blind else "train",
        "blind": blind,
        "generator": {"synthetic": True, "seed": seed},
        "files": {},
        "content_hashes": content_hashes,
    }
    (root / "manifest.json").write_text(json.dumps(manifest))
    return root
