"""Recorded model outputs of one video: what `walkout qc --save-observations` writes, `walkout replay` reads.

One file per video, `<dir>/<video>.npz` (numpy, no pickles), format ``walkout-observations`` version 1:

| array | dtype, shape | what |
|---|---|---|
| `format`, `version` | str, int | ``walkout-observations``, 1 |
| `video` | str | the video's name |
| `fps`, `frame_count` | float, int | the camera's frame rate; frames recorded (numbered 1..frame_count) |
| `class_names` | str [C] | the detector's classes (a label is an index into it) |
| `meta` | str | JSON: the lock file's experiments and weights hashes, the pipeline's score thresholds |
| `det_frame`, `det_label` | int64 [D] | every detection the detector kept (persons too): frame, class |
| `det_score` | float64 [D] | its score |
| `det_box` | float64 [D, 4] | x1 y1 x2 y2 px |
| `shopper_frame`, `shopper_id` | int64 [S] | the tracker's output, clipped to the image: frame, track id |
| `shopper_box` | float64 [S, 4] | x1 y1 x2 y2 px |
| `shopper_keypoints` | float64 [S, 7, 3] | the pose model on that box: x, y px and confidence |

Rows of one frame are consecutive and in the order the pipeline produced them, so rebuilding the
engine's input from a recording (`RecordedVideo.observations`) gives exactly what the engine saw.
"""

from __future__ import annotations

import io
import json
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from walkout.errors import WalkoutError
from walkout.observations import FrameObservation, ProductObservation, ShopperObservation
from walkout_ci.store import atomic_write_bytes

RECORDING_FORMAT = "walkout-observations"
RECORDING_VERSION = 1
RECORDING_SUFFIX = ".npz"
PERSON_CLASS = "person"
KEYPOINTS = 7

_ARRAYS = {
    "det_frame": (np.integer, 1),
    "det_label": (np.integer, 1),
    "det_score": (np.floating, 1),
    "det_box": (np.floating, 2),
    "shopper_frame": (np.integer, 1),
    "shopper_id": (np.integer, 1),
    "shopper_box": (np.floating, 2),
    "shopper_keypoints": (np.floating, 3),
}
_SCALARS = {"format", "version", "video", "fps", "frame_count", "class_names", "meta"}


class RecordingError(WalkoutError):
    """A recorded-observations file is missing, unreadable or not in the walkout-observations format."""


@dataclass(frozen=True)
class FrameRecord:
    """One frame as the models saw it: every kept detection and the tracked, posed shoppers.

    labels: class name per detection; boxes: float [N, 4] x1 y1 x2 y2 px; scores: float [N].
    """

    frame: int
    labels: tuple[str, ...]
    boxes: np.ndarray
    scores: np.ndarray
    shoppers: tuple[ShopperObservation, ...]

    def products(self) -> tuple[ProductObservation, ...]:
        """The engine's product observations: every detection that is not a person, in detector order."""
        return products_from_detections(self.labels, self.boxes, self.scores)

    def person_rows(self, min_score: float) -> np.ndarray:
        """The tracker's input: float [P, 5] x1 y1 x2 y2 score of person detections scoring >= min_score."""
        keep = np.array([label == PERSON_CLASS for label in self.labels], dtype=bool)
        if not keep.any():
            return np.zeros((0, 5))
        rows = np.column_stack([self.boxes[keep], self.scores[keep]])
        return rows[rows[:, 4] >= min_score]

    def observation(self) -> FrameObservation:
        """What the engine was given for this frame."""
        return FrameObservation(frame=self.frame, shoppers=self.shoppers, products=self.products())


def products_from_detections(
    labels: Sequence[str], boxes: np.ndarray, scores: np.ndarray
) -> tuple[ProductObservation, ...]:
    """Product observations from detections: labels [N], boxes float [N, 4] px, scores [N]; no persons."""
    return tuple(
        ProductObservation(sku=label, box=tuple(float(v) for v in box), score=float(score))
        for label, box, score in zip(labels, boxes, scores, strict=True)
        if label != PERSON_CLASS
    )


class ObservationRecorder:
    """Collects a video's model outputs frame by frame (`add`), then writes them (`save`)."""

    def __init__(self, class_names: Sequence[str]) -> None:
        self.class_names = tuple(str(name) for name in class_names)
        self._index = {name: i for i, name in enumerate(self.class_names)}
        self._detections: list[tuple[int, int, float, tuple[float, ...]]] = []
        self._shoppers: list[tuple[int, ShopperObservation]] = []
        self.frames = 0

    def add(
        self,
        frame: int,
        labels: Sequence[str],
        boxes: np.ndarray,
        scores: np.ndarray,
        shoppers: Sequence[ShopperObservation],
    ) -> None:
        """Record one frame: detections (labels [N], boxes [N, 4], scores [N]) and the engine's shoppers."""
        for label, box, score in zip(labels, boxes, scores, strict=True):
            self._detections.append((frame, self._index[label], float(score), tuple(float(v) for v in box)))
        self._shoppers.extend((frame, shopper) for shopper in shoppers)
        self.frames = max(self.frames, frame)

    def save(self, path: str | os.PathLike, *, video: str, fps: float, meta: dict) -> Path:
        """Write the recording to `path` (through a temporary file and a rename: never half-written)."""
        detections = self._detections
        shoppers = self._shoppers
        arrays = {
            "format": np.array(RECORDING_FORMAT),
            "version": np.array(RECORDING_VERSION),
            "video": np.array(video),
            "fps": np.array(float(fps)),
            "frame_count": np.array(self.frames),
            "class_names": np.array(self.class_names, dtype=str),
            "meta": np.array(json.dumps(meta, sort_keys=True)),
            "det_frame": np.array([d[0] for d in detections], dtype=np.int64),
            "det_label": np.array([d[1] for d in detections], dtype=np.int64),
            "det_score": np.array([d[2] for d in detections], dtype=np.float64),
            "det_box": np.array([d[3] for d in detections], dtype=np.float64).reshape(-1, 4),
            "shopper_frame": np.array([f for f, _ in shoppers], dtype=np.int64),
            "shopper_id": np.array([s.track_id for _, s in shoppers], dtype=np.int64),
            "shopper_box": np.array([s.box for _, s in shoppers], dtype=np.float64).reshape(-1, 4),
            "shopper_keypoints": np.array(
                [np.asarray(s.keypoints, dtype=np.float64) for _, s in shoppers], dtype=np.float64
            ).reshape(-1, KEYPOINTS, 3),
        }
        buffer = io.BytesIO()
        np.savez_compressed(buffer, **arrays)
        return atomic_write_bytes(path, buffer.getvalue())


@dataclass(frozen=True)
class RecordedVideo:
    """A loaded recording (see the module docstring for the arrays)."""

    path: Path
    video: str
    fps: float
    frame_count: int
    class_names: tuple[str, ...]
    meta: dict
    arrays: dict[str, np.ndarray]

    def frames(self) -> Iterator[FrameRecord]:
        """Every frame 1..frame_count in order (a frame nothing was seen in has empty arrays)."""
        a = self.arrays
        det_start = np.searchsorted(a["det_frame"], np.arange(1, self.frame_count + 2))
        shopper_start = np.searchsorted(a["shopper_frame"], np.arange(1, self.frame_count + 2))
        for index in range(self.frame_count):
            d0, d1 = det_start[index], det_start[index + 1]
            s0, s1 = shopper_start[index], shopper_start[index + 1]
            yield FrameRecord(
                frame=index + 1,
                labels=tuple(self.class_names[int(label)] for label in a["det_label"][d0:d1]),
                boxes=a["det_box"][d0:d1],
                scores=a["det_score"][d0:d1],
                shoppers=tuple(
                    ShopperObservation(
                        track_id=int(a["shopper_id"][i]),
                        box=tuple(float(v) for v in a["shopper_box"][i]),
                        keypoints=a["shopper_keypoints"][i],
                    )
                    for i in range(s0, s1)
                ),
            )

    def observations(self) -> Iterator[FrameObservation]:
        """The engine's input, frame by frame, exactly as the recorded run gave it."""
        for record in self.frames():
            yield record.observation()


def recording_path(directory: str | os.PathLike, video: str) -> Path:
    """Where a video's recording lives in an observations folder."""
    if not video or "/" in video or video.startswith("."):
        raise RecordingError(f"video name {video!r} cannot name a recording file (no '/', no leading '.')")
    return Path(directory) / f"{video}{RECORDING_SUFFIX}"


def load_recording(path: str | os.PathLike) -> RecordedVideo:
    """Read and check one recording; RecordingError names the file and the field that is wrong."""
    path = Path(path)
    if not path.is_file():
        raise RecordingError(f"{path}: no such recording (record with `walkout qc --save-observations DIR`)")
    try:
        with np.load(path, allow_pickle=False) as data:
            arrays = {name: data[name] for name in data.files}
    except (OSError, ValueError, EOFError) as error:
        raise RecordingError(f"{path}: not a readable .npz recording ({error})") from error
    missing = sorted((_SCALARS | set(_ARRAYS)) - set(arrays))
    if missing:
        raise RecordingError(f"{path}: missing field(s) {', '.join(missing)}")
    if str(arrays["format"]) != RECORDING_FORMAT or int(arrays["version"]) != RECORDING_VERSION:
        raise RecordingError(
            f"{path}: format {str(arrays['format'])!r} version {arrays['version']}, expected "
            f"{RECORDING_FORMAT!r} version {RECORDING_VERSION} (re-record with this walkout)"
        )
    for name, (kind, ndim) in _ARRAYS.items():
        array = arrays[name]
        if not np.issubdtype(array.dtype, kind) or array.ndim != ndim:
            raise RecordingError(f"{path}: field {name} has dtype {array.dtype} and {array.ndim} dims")
        if np.issubdtype(array.dtype, np.floating) and not np.isfinite(array).all():
            raise RecordingError(f"{path}: field {name} holds NaN or infinite values")
    frame_count = int(arrays["frame_count"])
    class_names = tuple(str(name) for name in arrays["class_names"])
    shapes = {
        "det": (arrays["det_frame"], arrays["det_label"], arrays["det_score"], arrays["det_box"]),
        "shopper": (
            arrays["shopper_frame"],
            arrays["shopper_id"],
            arrays["shopper_box"],
            arrays["shopper_keypoints"],
        ),
    }
    for prefix, (frames, *rest) in shapes.items():
        if any(len(array) != len(frames) for array in rest):
            raise RecordingError(f"{path}: the {prefix}_* fields differ in length")
        if len(frames) and (np.any(np.diff(frames) < 0) or frames.min() < 1 or frames.max() > frame_count):
            raise RecordingError(f"{path}: {prefix}_frame must be sorted and within 1..{frame_count}")
    if arrays["det_box"].shape[1:] != (4,) or arrays["shopper_box"].shape[1:] != (4,):
        raise RecordingError(f"{path}: boxes must have 4 columns (x1 y1 x2 y2)")
    if arrays["shopper_keypoints"].shape[1:] != (KEYPOINTS, 3):
        raise RecordingError(f"{path}: shopper_keypoints must be [S, {KEYPOINTS}, 3]")
    labels = arrays["det_label"]
    if len(labels) and (labels.min() < 0 or labels.max() >= len(class_names)):
        raise RecordingError(f"{path}: det_label must index class_names (0..{len(class_names) - 1})")
    try:
        meta = json.loads(str(arrays["meta"]))
    except json.JSONDecodeError as error:
        raise RecordingError(f"{path}: field meta is not JSON ({error})") from error
    return RecordedVideo(
        path=path,
        video=str(arrays["video"]),
        fps=float(arrays["fps"]),
        frame_count=frame_count,
        class_names=class_names,
        meta=meta if isinstance(meta, dict) else {},
        arrays={name: arrays[name] for name in _ARRAYS},
    )
