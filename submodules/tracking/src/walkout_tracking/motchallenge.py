"""Reading and writing the MOTChallenge text formats (`det.txt`, `gt.txt`, tracker results).

Line format (comma separated, frames from 1, boxes in pixels, x y = top-left corner):
    frame, id, x, y, w, h, confidence[, class, visibility[, unused]]
`det.txt` has id -1 and the detector score as confidence; `gt.txt` uses confidence 0/1 as the
"consider this entry" flag; results files are written as `frame,id,x,y,w,h,1,-1,-1,-1`.
Coordinates are kept exactly as written (py-motmetrics shifts x and y by -1 for the MATLAB
convention; IoU is unchanged by a shift applied to both sides, so we do not).
"""

from __future__ import annotations

import math
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from walkout_tracking.errors import DataError


@dataclass(frozen=True)
class MotTable:
    """Rows of one MOTChallenge file, sorted by (frame, id).

    frames: int array [N]; ids: int array [N] (-1 in det.txt); boxes: float array [N, 4] x y w h;
    confidences: float array [N]; source: the file the rows came from.
    """

    frames: np.ndarray
    ids: np.ndarray
    boxes: np.ndarray
    confidences: np.ndarray
    source: str = "<memory>"

    def __len__(self) -> int:
        return len(self.frames)

    @property
    def num_frames(self) -> int:
        """Highest frame number present (0 when empty)."""
        return int(self.frames.max()) if len(self.frames) else 0


def _parse_number(text: str, path: Path, line_number: int, column: str) -> float:
    try:
        value = float(text)
    except ValueError as error:
        raise DataError(
            f"{path}:{line_number}: column {column} is {text.strip()!r}, not a number "
            "(MOTChallenge lines are frame,id,x,y,w,h,confidence,...)"
        ) from error
    if not math.isfinite(value):
        raise DataError(
            f"{path}:{line_number}: column {column} is {text.strip()!r}; expected a finite number"
        )
    return value


def read_mot_file(
    path: str | Path, *, min_confidence: float | None = None, num_frames: int | None = None
) -> MotTable:
    """Parse a MOTChallenge det/gt/results file strictly.

    Rows with confidence < min_confidence are dropped (use 1 for gt.txt, as py-motmetrics'
    `mot15-2D` loader with min_confidence=1 does). Blank lines are ignored. `num_frames` is the
    sequence length (seqinfo.ini's seqLength) when known: rows past it are errors.
    Raises DataError naming the file, line and column for a missing file, fewer than 7 columns, a
    non-number or NaN/inf, a frame < 1, > num_frames or non-integer, a non-integer id, a negative
    width/height, or two rows with the same (frame, id) (det.txt's id -1 is exempt: detections have
    no identity). All rows are checked, also those min_confidence drops.
    """
    path = Path(path)
    try:
        text = path.read_text()
    except FileNotFoundError as error:
        raise DataError(f"MOTChallenge file {path} does not exist") from error
    except (OSError, UnicodeDecodeError) as error:
        raise DataError(f"MOTChallenge file {path} cannot be read as text: {error}") from error
    rows: list[tuple[int, int, float, float, float, float, float]] = []
    names = ("frame", "id", "x", "y", "w", "h", "confidence")
    first_line_of: dict[tuple[int, int], int] = {}
    for line_number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        parts = line.split(",")
        if len(parts) < 7:
            raise DataError(
                f"{path}:{line_number}: expected at least 7 comma-separated columns "
                f"(frame,id,x,y,w,h,confidence,...), got {len(parts)}: {line.strip()!r}"
            )
        values = [_parse_number(parts[i], path, line_number, names[i]) for i in range(7)]
        frame, track_id, x, y, w, h, confidence = values
        if frame != int(frame) or frame < 1:
            raise DataError(
                f"{path}:{line_number}: column frame must be an integer >= 1, got {parts[0].strip()!r}"
            )
        if num_frames is not None and frame > num_frames:
            raise DataError(
                f"{path}:{line_number}: column frame is {int(frame)}, past the sequence's last frame "
                f"{num_frames} (seqinfo.ini seqLength); frames are 1..{num_frames}"
            )
        if track_id != int(track_id):
            raise DataError(f"{path}:{line_number}: column id must be an integer, got {parts[1].strip()!r}")
        if w < 0 or h < 0:
            raise DataError(
                f"{path}:{line_number}: column {'w' if w < 0 else 'h'}: negative box size "
                f"(w={w:g}, h={h:g}); columns 5-6 are width and height (>= 0), not x2/y2"
            )
        key = (int(frame), int(track_id))
        if key[1] != -1:
            if key in first_line_of:
                raise DataError(
                    f"{path}:{line_number}: duplicate (frame, id) = {key}, already on line "
                    f"{first_line_of[key]}; each id appears at most once per frame"
                )
            first_line_of[key] = line_number
        if min_confidence is not None and confidence < min_confidence:
            continue
        rows.append((int(frame), int(track_id), x, y, w, h, confidence))
    rows.sort(key=lambda row: (row[0], row[1]))
    data = np.array(rows, dtype=np.float64).reshape(-1, 7)
    return MotTable(
        frames=data[:, 0].astype(np.int64),
        ids=data[:, 1].astype(np.int64),
        boxes=data[:, 2:6].copy(),
        confidences=data[:, 6].copy(),
        source=str(path),
    )


def xywh_to_xyxy(boxes: np.ndarray) -> np.ndarray:
    """boxes: float array [N, 4] x y w h -> [N, 4] x1 y1 x2 y2."""
    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    return np.concatenate([boxes[:, :2], boxes[:, :2] + boxes[:, 2:]], axis=1)


def xyxy_to_xywh(boxes: np.ndarray) -> np.ndarray:
    """boxes: float array [N, 4] x1 y1 x2 y2 -> [N, 4] x y w h."""
    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    return np.concatenate([boxes[:, :2], boxes[:, 2:] - boxes[:, :2]], axis=1)


def detections_per_frame(table: MotTable, num_frames: int | None = None) -> list[np.ndarray]:
    """Split a det.txt table into per-frame tracker input.

    Returns a list with one entry per frame 1..num_frames (default: the table's last frame); entry
    f-1 is a float array [N, 5] = x1 y1 x2 y2 score (possibly [0, 5]).
    """
    total = num_frames if num_frames is not None else table.num_frames
    xyxy = xywh_to_xyxy(table.boxes)
    out = []
    order = np.argsort(table.frames, kind="stable")
    frames = table.frames[order]
    starts = np.searchsorted(frames, np.arange(1, total + 2))
    for frame_index in range(total):
        rows = order[starts[frame_index] : starts[frame_index + 1]]
        out.append(np.concatenate([xyxy[rows], table.confidences[rows, None]], axis=1))
    return out


def tracks_to_table(tracks_per_frame: list[np.ndarray], source: str = "<tracker>") -> MotTable:
    """Turn tracker output (list over frames 1..F of float arrays [M, 5] x1 y1 x2 y2 id) into a MotTable."""
    frames, ids, boxes = [], [], []
    for frame_index, tracks in enumerate(tracks_per_frame, start=1):
        tracks = np.asarray(tracks, dtype=np.float64).reshape(-1, 5)
        frames.append(np.full(len(tracks), frame_index, dtype=np.int64))
        ids.append(tracks[:, 4].astype(np.int64))
        boxes.append(xyxy_to_xywh(tracks[:, :4]))
    frames_array = np.concatenate(frames) if frames else np.empty(0, dtype=np.int64)
    ids_array = np.concatenate(ids) if ids else np.empty(0, dtype=np.int64)
    boxes_array = np.concatenate(boxes) if boxes else np.empty((0, 4))
    order = np.lexsort((ids_array, frames_array))
    return MotTable(
        frames=frames_array[order],
        ids=ids_array[order],
        boxes=boxes_array[order],
        confidences=np.ones(len(order)),
        source=source,
    )


def format_results(table: MotTable) -> str:
    """MOTChallenge results text: one `frame,id,x,y,w,h,1,-1,-1,-1` line per row."""
    lines = [
        f"{frame},{track_id},{x:.2f},{y:.2f},{w:.2f},{h:.2f},1,-1,-1,-1"
        for frame, track_id, (x, y, w, h) in zip(table.frames, table.ids, table.boxes, strict=True)
    ]
    return "\n".join(lines) + ("\n" if lines else "")


def write_atomic(path: str | Path, text: str) -> Path:
    """Write text to `path` via a temporary file in the same folder and a rename (never half-written)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temp_name = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(handle, "w") as stream:
            stream.write(text)
        os.replace(temp_name, path)
    except BaseException:
        Path(temp_name).unlink(missing_ok=True)
        raise
    return path


def write_mot_results(path: str | Path, table: MotTable) -> Path:
    """Write a MOTChallenge results file atomically. Returns the path."""
    return write_atomic(path, format_results(table))
