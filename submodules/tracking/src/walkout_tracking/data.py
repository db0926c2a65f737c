"""Data the tracker reads: MOTChallenge-style sequence folders (a simulator export is one) and
person crops for training the appearance model.

A sequence folder holds `gt/gt.txt` and optionally `det/det.txt`, `seqinfo.ini` and frames (a video
named in seqinfo.ini / `video.avi`, or images in `img1/`). A dataset root is either a simulator
export (`<root>/videos/<sequence>/`, with `<root>/manifest.json`), a folder of sequence folders, or
one sequence folder. Only these standard files are read, never the simulator's internals.
"""

from __future__ import annotations

import configparser
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from walkout_tracking.errors import DataError
from walkout_tracking.motchallenge import MotTable, read_mot_file


@dataclass(frozen=True)
class Sequence:
    """One sequence folder. Paths are None when the file is absent."""

    name: str
    directory: Path
    gt_path: Path | None
    det_path: Path | None
    video_path: Path | None
    image_dir: Path | None
    num_frames: int | None  # seqLength from seqinfo.ini
    width: int | None
    height: int | None


def _read_seqinfo(directory: Path) -> dict[str, str]:
    path = directory / "seqinfo.ini"
    if not path.is_file():
        return {}
    parser = configparser.ConfigParser()
    try:
        parser.read(path)
    except configparser.Error as error:
        raise DataError(f"{path} is not a valid seqinfo.ini: {error}") from error
    return dict(parser["Sequence"]) if parser.has_section("Sequence") else {}


def _int_or_none(info: dict[str, str], key: str, path: Path) -> int | None:
    if key not in info:
        return None
    try:
        return int(info[key])
    except ValueError as error:
        raise DataError(f"{path / 'seqinfo.ini'}: {key} = {info[key]!r} is not an integer") from error


def read_sequence(directory: str | Path) -> Sequence:
    """Describe one sequence folder (see the module docstring)."""
    directory = Path(directory)
    if not directory.is_dir():
        raise DataError(f"sequence folder {directory} does not exist")
    info = _read_seqinfo(directory)
    video = directory / info.get("video", "video.avi")
    image_dir = directory / "img1"
    gt = directory / "gt" / "gt.txt"
    det = directory / "det" / "det.txt"
    return Sequence(
        name=info.get("name", directory.name),
        directory=directory,
        gt_path=gt if gt.is_file() else None,
        det_path=det if det.is_file() else None,
        video_path=video if video.is_file() else None,
        image_dir=image_dir if image_dir.is_dir() else None,
        num_frames=_int_or_none(info, "seqlength", directory),
        width=_int_or_none(info, "imwidth", directory),
        height=_int_or_none(info, "imheight", directory),
    )


def _is_sequence(directory: Path) -> bool:
    return (directory / "gt" / "gt.txt").is_file() or (directory / "det" / "det.txt").is_file()


def find_sequences(root: str | Path) -> list[Sequence]:
    """All sequences of a dataset root, sorted by name. Raises DataError when there are none."""
    root = Path(root)
    if not root.is_dir():
        raise DataError(f"dataset folder {root} does not exist")
    if _is_sequence(root):
        return [read_sequence(root)]
    parent = root / "videos" if (root / "videos").is_dir() else root
    sequences = [read_sequence(d) for d in sorted(parent.iterdir()) if d.is_dir() and _is_sequence(d)]
    if not sequences:
        raise DataError(
            f"no sequences under {root}: expected a simulator export (videos/<name>/gt/gt.txt) or "
            "MOTChallenge folders (<name>/gt/gt.txt or <name>/det/det.txt)"
        )
    return sequences


def read_ground_truth(sequence: Sequence) -> MotTable:
    """The sequence's gt.txt with only the rows flagged to be considered (confidence >= 1).

    Frames past seqinfo.ini's seqLength (when the sequence has one) are DataErrors."""
    if sequence.gt_path is None:
        raise DataError(f"sequence {sequence.directory} has no gt/gt.txt")
    return read_mot_file(sequence.gt_path, min_confidence=1, num_frames=sequence.num_frames)


def iter_frames(sequence: Sequence) -> Iterator[np.ndarray]:
    """Yield the sequence's frames in order as uint8 BGR arrays [H, W, 3] (frame 1 first)."""
    if sequence.video_path is not None:
        capture = cv2.VideoCapture(str(sequence.video_path))
        if not capture.isOpened():
            raise DataError(f"cannot open video {sequence.video_path} (is it a valid AVI/MP4 file?)")
        try:
            while True:
                ok, frame = capture.read()
                if not ok:
                    break
                yield frame
        finally:
            capture.release()
        return
    if sequence.image_dir is not None:
        for path in sorted(sequence.image_dir.glob("*.jpg")) + sorted(sequence.image_dir.glob("*.png")):
            frame = cv2.imread(str(path), cv2.IMREAD_COLOR)
            if frame is None:
                raise DataError(f"cannot read image {path}")
            yield frame
        return
    raise DataError(f"sequence {sequence.directory} has no frames: expected video.avi or img1/")


def synthesize_detections(
    gt: MotTable,
    *,
    seed: int,
    jitter: float = 0.05,
    dropout: float = 0.05,
    low_score_fraction: float = 0.1,
) -> MotTable:
    """Detector-like input made from ground truth, for sequences without det/det.txt.

    Each gt box is kept with probability 1 - dropout, its corners are moved by Gaussian noise with
    standard deviation `jitter` x the box size, and it gets a score in [0.7, 1.0] (or, for a
    `low_score_fraction` of boxes, in [0.2, 0.6]: the occluded/blurred detections ByteTrack's second
    pass is for). Deterministic for a given seed. Returns a det.txt-like table (ids -1).
    """
    rng = np.random.default_rng(seed)
    keep = rng.random(len(gt)) >= dropout
    boxes = gt.boxes[keep].copy()
    sizes = np.repeat(boxes[:, 2:4], 2, axis=1)
    corners = np.concatenate([boxes[:, :2], boxes[:, :2] + boxes[:, 2:]], axis=1)
    corners = corners + rng.normal(0.0, jitter, corners.shape) * sizes
    width = np.maximum(corners[:, 2] - corners[:, 0], 1.0)
    height = np.maximum(corners[:, 3] - corners[:, 1], 1.0)
    scores = rng.uniform(0.7, 1.0, len(boxes))
    low = rng.random(len(boxes)) < low_score_fraction
    scores[low] = rng.uniform(0.2, 0.6, int(low.sum()))
    return MotTable(
        frames=gt.frames[keep].copy(),
        ids=np.full(int(keep.sum()), -1, dtype=np.int64),
        boxes=np.stack([corners[:, 0], corners[:, 1], width, height], axis=1),
        confidences=scores,
        source=f"synthesized from {gt.source} (seed {seed})",
    )


def crop_patches(frame: np.ndarray, boxes: np.ndarray, *, height: int, width: int) -> np.ndarray:
    """Cut and resize boxes out of a frame.

    frame: uint8 BGR [H, W, 3]; boxes: float [N, >=4] x1 y1 x2 y2 in pixels (clipped to the frame;
    a box outside the frame gives a black patch). Returns uint8 [N, height, width, 3].
    """
    out = np.zeros((len(boxes), height, width, 3), dtype=np.uint8)
    frame_h, frame_w = frame.shape[:2]
    for index, box in enumerate(np.asarray(boxes, dtype=np.float64)):
        x1 = int(np.clip(np.floor(box[0]), 0, frame_w))
        y1 = int(np.clip(np.floor(box[1]), 0, frame_h))
        x2 = int(np.clip(np.ceil(box[2]), 0, frame_w))
        y2 = int(np.clip(np.ceil(box[3]), 0, frame_h))
        if x2 - x1 < 1 or y2 - y1 < 1:
            continue
        out[index] = cv2.resize(frame[y1:y2, x1:x2], (width, height), interpolation=cv2.INTER_LINEAR)
    return out


def jitter_boxes(boxes: np.ndarray, amount: float, rng: np.random.Generator) -> np.ndarray:
    """Perturbed copies of boxes: float [N, 4] x1 y1 x2 y2 px -> float [N, 4].

    Each box's centre moves by up to `amount` of its width/height, and each side length is scaled by
    exp(U(-amount, amount)) independently (aspect changes too). amount = 0 returns the boxes as given.
    """
    boxes = np.asarray(boxes, dtype=np.float64)
    if amount <= 0 or not len(boxes):
        return boxes.copy()
    size = boxes[:, 2:4] - boxes[:, 0:2]
    centre = (boxes[:, 0:2] + boxes[:, 2:4]) / 2 + rng.uniform(-amount, amount, size.shape) * size
    half = size * np.exp(rng.uniform(-amount, amount, size.shape)) / 2
    return np.concatenate([centre - half, centre + half], axis=1)


@dataclass(frozen=True)
class CropSet:
    """Person crops for metric learning.

    images: uint8 [N, H, W, 3] BGR; labels: int [N] identity (unique across sequences);
    groups: int [N] index of the sequence each crop comes from; frames: int [N] frame number.
    """

    images: np.ndarray
    labels: np.ndarray
    groups: np.ndarray
    frames: np.ndarray

    def __len__(self) -> int:
        return len(self.labels)


def extract_crops(
    sequences: list[Sequence],
    *,
    height: int,
    width: int,
    max_per_identity: int,
    min_box_height: int,
    seed: int,
    box_jitter: float = 0.0,
) -> CropSet:
    """Crop every ground-truth person of the given sequences (at most `max_per_identity` frames per
    identity, spread evenly over its lifetime; boxes shorter than `min_box_height` skipped).

    box_jitter > 0 cuts each crop from a perturbed box (`jitter_boxes`), as a detector's box is
    placed: shifted, too large or too small, part of a neighbour inside it."""
    rng = np.random.default_rng(seed)
    # Its own stream, so that jitter leaves the choice of crops unchanged.
    jitter_rng = np.random.default_rng([seed, 1])
    images, labels, groups, frames_out = [], [], [], []
    next_label = 0
    for group, sequence in enumerate(sequences):
        gt = read_ground_truth(sequence)
        tall = gt.boxes[:, 3] >= min_box_height
        wanted = np.zeros(len(gt), dtype=bool)
        label_of = {}
        for identity in np.unique(gt.ids[tall]):
            rows = np.flatnonzero(tall & (gt.ids == identity))
            if len(rows) > max_per_identity:
                rows = np.sort(rng.choice(rows, max_per_identity, replace=False))
            wanted[rows] = True
            label_of[int(identity)] = next_label
            next_label += 1
        boxes_xyxy = np.concatenate([gt.boxes[:, :2], gt.boxes[:, :2] + gt.boxes[:, 2:]], axis=1)
        if box_jitter > 0:
            boxes_xyxy = jitter_boxes(boxes_xyxy, box_jitter, jitter_rng)
        for frame_number, frame in enumerate(iter_frames(sequence), start=1):
            rows = np.flatnonzero(wanted & (gt.frames == frame_number))
            if not len(rows):
                continue
            images.append(crop_patches(frame, boxes_xyxy[rows], height=height, width=width))
            labels.extend(label_of[int(i)] for i in gt.ids[rows])
            groups.extend([group] * len(rows))
            frames_out.extend([frame_number] * len(rows))
    if not images:
        raise DataError(
            f"no person crops found in {len(sequences)} sequence(s): check that gt/gt.txt has boxes at least "
            f"{min_box_height} pixels tall and that the videos can be read"
        )
    return CropSet(
        images=np.concatenate(images),
        labels=np.array(labels, dtype=np.int64),
        groups=np.array(groups, dtype=np.int64),
        frames=np.array(frames_out, dtype=np.int64),
    )
