"""Previews for people: GT boxes, keypoints, skeletons and track ids drawn over a rendered video.

Reads what an export contains (video.avi + annotations.json), so it also checks that the files agree.
Output: a contact sheet PNG (``.png``) or an annotated MJPG video (``.avi``).
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import cv2
import numpy as np

from walkout_sim.errors import SimError
from walkout_sim.export import SKELETON

SCALE = 2  # previews are upscaled so 10-px products and labels are legible


def _colour(track_id: int) -> tuple[int, int, int]:
    hue = (track_id * 47) % 180
    bgr = cv2.cvtColor(np.uint8([[[hue, 220, 255]]]), cv2.COLOR_HSV2BGR)[0, 0]
    return int(bgr[0]), int(bgr[1]), int(bgr[2])


def find_video_dir(path: Path) -> Path:
    """A video folder from either a video folder or an export root (its first video)."""
    path = Path(path)
    if (path / "annotations.json").exists():
        return path
    videos = sorted((path / "videos").glob("*/annotations.json")) if (path / "videos").exists() else []
    if not videos:
        raise SimError(
            f"{path} is neither a video folder (with annotations.json) nor an export root with videos/"
        )
    return videos[0].parent


def read_frames(video_path: Path) -> list[np.ndarray]:
    """All frames of a video file as BGR uint8 [H, W, 3]."""
    capture = cv2.VideoCapture(str(video_path))
    frames = []
    while True:
        ok, frame = capture.read()
        if not ok:
            break
        frames.append(frame)
    capture.release()
    if not frames:
        raise SimError(f"cv2.VideoCapture read no frames from {video_path}")
    return frames


def annotate(frame: np.ndarray, annotations: list[dict], names: dict[int, str]) -> np.ndarray:
    """Frame upscaled by SCALE with boxes (products: SKU name; persons: id, keypoints, skeleton)."""
    image = cv2.resize(frame, None, fx=SCALE, fy=SCALE, interpolation=cv2.INTER_NEAREST)
    for record in annotations:
        x, y, w, h = (v * SCALE for v in record["bbox"])
        if record["category_id"] == 1:
            colour = _colour(record["track_id"])
            cv2.rectangle(image, (x, y), (x + w - 1, y + h - 1), colour, 1 + (not record["iscrowd"]))
            points = np.array(record.get("keypoints", []), dtype=float).reshape(-1, 3)
            for a, b in SKELETON:
                if len(points) and points[a - 1, 2] > 0 and points[b - 1, 2] > 0:
                    pa = tuple(int(v * SCALE) for v in points[a - 1, :2])
                    pb = tuple(int(v * SCALE) for v in points[b - 1, :2])
                    cv2.line(image, pa, pb, colour, 1, cv2.LINE_AA)
            for px, py, v in points:
                if v > 0:
                    cv2.circle(
                        image,
                        (int(px * SCALE), int(py * SCALE)),
                        2,
                        (255, 255, 255) if v == 2 else (0, 0, 0),
                        -1,
                    )
            cv2.putText(
                image,
                f"id{record['track_id']}",
                (x, max(y - 3, 8)),
                cv2.FONT_HERSHEY_SIMPLEX,
                0.35,
                colour,
                1,
                cv2.LINE_AA,
            )
        else:
            colour = (0, 255, 255) if "held_by" in record else (255, 255, 255)
            thickness = 1
            cv2.rectangle(image, (x, y), (x + w - 1, y + h - 1), colour, thickness)
            if "held_by" in record:
                label = f"{names[record['category_id']]}@{record['held_by']}"
                cv2.putText(
                    image, label, (x, y + h + 9), cv2.FONT_HERSHEY_SIMPLEX, 0.3, colour, 1, cv2.LINE_AA
                )
    return image


def show(source: Path, out: Path, frames: int = 12) -> Path:
    """Write a contact sheet (out ending .png: ``frames`` evenly spaced frames) or an annotated video (.avi).

    source: a video folder or an export root. Returns ``out``. Raises SimError on unreadable input.
    """
    video_dir = find_video_dir(source)
    truth = json.loads((video_dir / "annotations.json").read_text())
    names = {c["id"]: c["name"] for c in truth["categories"]}
    by_frame: dict[int, list[dict]] = {}
    for record in truth["annotations"]:
        by_frame.setdefault(record["image_id"], []).append(record)
    images = read_frames(video_dir / "video.avi")
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    temp = out.with_name(f".{out.name}.tmp{out.suffix}")
    # A failed or stopped (SIGTERM / Ctrl-C) preview leaves no temp file behind.
    try:
        if out.suffix.lower() == ".png":
            picks = np.linspace(0, len(images) - 1, min(frames, len(images))).round().astype(int)
            tiles = []
            for index in picks:
                tile = annotate(images[index], by_frame.get(index + 1, []), names)
                cv2.putText(
                    tile,
                    f"{video_dir.name} frame {index + 1}",
                    (4, 12),
                    cv2.FONT_HERSHEY_SIMPLEX,
                    0.4,
                    (0, 0, 0),
                    2,
                    cv2.LINE_AA,
                )
                cv2.putText(
                    tile,
                    f"{video_dir.name} frame {index + 1}",
                    (4, 12),
                    cv2.FONT_HERSHEY_SIMPLEX,
                    0.4,
                    (255, 255, 255),
                    1,
                    cv2.LINE_AA,
                )
                tiles.append(tile)
            columns = min(4, len(tiles))
            rows = math.ceil(len(tiles) / columns)
            blank = np.zeros_like(tiles[0])
            tiles += [blank] * (rows * columns - len(tiles))
            sheet = np.vstack([np.hstack(tiles[r * columns : (r + 1) * columns]) for r in range(rows)])
            if not cv2.imwrite(str(temp), sheet):
                raise SimError(f"could not write {out}")
        elif out.suffix.lower() == ".avi":
            first = annotate(images[0], by_frame.get(1, []), names)
            writer = cv2.VideoWriter(
                str(temp),
                cv2.CAP_OPENCV_MJPEG,
                cv2.VideoWriter_fourcc(*"MJPG"),
                10,
                (first.shape[1], first.shape[0]),
            )
            for index, image in enumerate(images):
                writer.write(annotate(image, by_frame.get(index + 1, []), names))
            writer.release()
        else:
            raise SimError(f"{out}: use a .png (contact sheet) or .avi (annotated video) output name")
        temp.replace(out)
    except BaseException:
        temp.unlink(missing_ok=True)
        raise
    return out
