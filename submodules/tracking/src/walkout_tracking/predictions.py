"""predictions.json: what `gate-predict` hands to `gate-score`, and its strict reader.

Format (version 1):

    {"format": "walkout-tracking-predictions", "version": 1,
     "model": {"appearance": true, "tracker_config": {...}},   # what the predictor says it ran
     "timings": {"tracking_s": 1.93},                          # the predictor's own tracking time
     "sequences": {
       "train_0000": [{"frame": 1, "id": 3, "x": 12.5, "y": 40.0, "w": 20.1, "h": 31.7, "score": 1.0},
                      ...],
       ...}}

One row per reported track per frame (MOTChallenge results as JSON): `frame` integer 1..num_frames of
the sequence, `id` integer >= 1 (unique within a frame), `x y` top-left corner and `w h` size in
pixels (finite; w, h >= 0; a coasting box may extend past the image), `score` in [0, 1] (the tracker
writes 1.0). Every scored sequence must be present, no other. The reader is written for a file made
by code that is not trusted: any deviation is a PredictionsError naming the file, record and field.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from walkout_ci.store import atomic_write_text
from walkout_tracking.errors import PredictionsError
from walkout_tracking.motchallenge import MotTable

PREDICTIONS_FORMAT = "walkout-tracking-predictions"
PREDICTIONS_VERSION = 1
PREDICTIONS_NAME = "predictions.json"
ROW_KEYS = ("frame", "id", "x", "y", "w", "h", "score")
_TOP_KEYS = {"format", "version", "model", "timings", "sequences"}
_MODEL_KEYS = {"appearance", "tracker_config"}
_MAX_NESTING = 8


@dataclass(frozen=True)
class Predictions:
    """A checked predictions file: tracks per sequence (MotTables sorted by frame, id; confidences =
    the rows' scores), the predictor's model description and its tracking time in seconds."""

    tables: dict[str, MotTable]
    appearance: bool
    tracker_config: dict[str, Any]
    tracking_s: float


def table_rows(table: MotTable) -> list[dict[str, Any]]:
    """A tracks table as predictions rows (score 1.0: the tracker reports no per-box confidence)."""
    return [
        {"frame": frame, "id": track_id, "x": x, "y": y, "w": w, "h": h, "score": 1.0}
        for frame, track_id, (x, y, w, h) in zip(
            table.frames.tolist(), table.ids.tolist(), table.boxes.tolist(), strict=True
        )
    ]


def write_predictions(
    out_dir: str | Path,
    tables: dict[str, MotTable],
    *,
    appearance: bool,
    tracker_config: dict[str, Any],
    tracking_s: float,
) -> Path:
    """Write `<out_dir>/predictions.json` atomically (out_dir created if missing); returns its path."""
    document = {
        "format": PREDICTIONS_FORMAT,
        "version": PREDICTIONS_VERSION,
        "model": {"appearance": bool(appearance), "tracker_config": tracker_config},
        "timings": {"tracking_s": float(tracking_s)},
        "sequences": {name: table_rows(table) for name, table in tables.items()},
    }
    # Python floats' repr round-trips, so the scorer sees exactly the tracker's numbers.
    return atomic_write_text(Path(out_dir) / PREDICTIONS_NAME, json.dumps(document, allow_nan=False) + "\n")


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return (isinstance(value, int | float)) and not isinstance(value, bool) and math.isfinite(value)


def _check_plain(value: Any, where: str, depth: int = 0) -> None:
    """Free-form metadata must be plain JSON with finite numbers (it is copied into the report)."""
    if depth > _MAX_NESTING:
        raise PredictionsError(f"{where}: nested deeper than {_MAX_NESTING} levels")
    if isinstance(value, dict):
        for key, item in value.items():
            _check_plain(item, f"{where}.{key}", depth + 1)
    elif isinstance(value, list):
        for index, item in enumerate(value):
            _check_plain(item, f"{where}[{index}]", depth + 1)
    elif isinstance(value, float) and not math.isfinite(value):
        raise PredictionsError(f"{where}: {value!r} is not a finite number")
    elif value is not None and not isinstance(value, str | int | float | bool):
        raise PredictionsError(f"{where}: unexpected value {value!r}")


def _check_row(row: Any, where: str, num_frames: int) -> tuple[int, int, float, float, float, float, float]:
    if not isinstance(row, dict):
        raise PredictionsError(f"{where}: expected an object with keys {', '.join(ROW_KEYS)}, got {row!r}")
    missing = [key for key in ROW_KEYS if key not in row]
    unknown = sorted(set(row) - set(ROW_KEYS))
    if missing or unknown:
        raise PredictionsError(
            f"{where}: missing fields {missing}, unknown fields {unknown}; a row has exactly "
            f"{', '.join(ROW_KEYS)}"
        )
    frame, track_id = row["frame"], row["id"]
    if not _is_int(frame) or not 1 <= frame <= num_frames:
        raise PredictionsError(
            f"{where}.frame: {frame!r}; must be an integer in 1..{num_frames} (the sequence's frames)"
        )
    if not _is_int(track_id) or track_id < 1:
        raise PredictionsError(f"{where}.id: {track_id!r}; must be an integer >= 1")
    for key in ("x", "y", "w", "h", "score"):
        if not _is_number(row[key]):
            raise PredictionsError(f"{where}.{key}: {row[key]!r}; must be a finite number")
    for key in ("w", "h"):
        if row[key] < 0:
            raise PredictionsError(f"{where}.{key}: {row[key]!r} is negative; box sizes must be >= 0")
    if not 0.0 <= row["score"] <= 1.0:
        raise PredictionsError(f"{where}.score: {row['score']!r}; must be in [0, 1]")
    return frame, track_id, row["x"], row["y"], row["w"], row["h"], row["score"]


def _sequence_table(rows: Any, where: str, num_frames: int, source: str) -> MotTable:
    if not isinstance(rows, list):
        raise PredictionsError(f"{where}: expected a list of rows, got {type(rows).__name__}")
    parsed = []
    first_of: dict[tuple[int, int], int] = {}
    for index, row in enumerate(rows):
        values = _check_row(row, f"{where}[{index}]", num_frames)
        key = (values[0], values[1])
        if key in first_of:
            raise PredictionsError(
                f"{where}[{index}]: duplicate (frame, id) = {key}, already at [{first_of[key]}]; "
                "a track appears at most once per frame"
            )
        first_of[key] = index
        parsed.append(values)
    parsed.sort(key=lambda values: (values[0], values[1]))
    data = np.array(parsed, dtype=np.float64).reshape(-1, 7)
    return MotTable(
        frames=data[:, 0].astype(np.int64),
        ids=data[:, 1].astype(np.int64),
        boxes=data[:, 2:6].copy(),
        confidences=data[:, 6].copy(),
        source=source,
    )


def read_predictions(path: str | Path, num_frames: dict[str, int]) -> Predictions:
    """Read and strictly check a predictions.json (or the folder holding it).

    num_frames: sequence name -> number of frames, for every sequence that must be predicted.
    Raises PredictionsError naming the file, record and field: missing/unreadable file, invalid
    JSON, wrong format/version, unknown or missing keys and sequences, wrong types, NaN/inf, negative
    sizes, frames out of range, ids < 1, duplicate (frame, id), scores outside [0, 1].
    """
    path = Path(path)
    if path.is_dir():
        path = path / PREDICTIONS_NAME
    try:
        # NaN/Infinity literals are parsed so that the row check below can name the record.
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as error:
        raise PredictionsError(
            f"{path} does not exist: gate-predict writes <out>/{PREDICTIONS_NAME}"
        ) from error
    except (OSError, UnicodeDecodeError, ValueError, RecursionError) as error:
        raise PredictionsError(f"{path} is not readable JSON: {error}") from error
    if not isinstance(data, dict):
        raise PredictionsError(f"{path}: expected a JSON object, got {type(data).__name__}")
    if data.get("format") != PREDICTIONS_FORMAT or data.get("version") != PREDICTIONS_VERSION:
        raise PredictionsError(
            f"{path}: format {data.get('format')!r} version {data.get('version')!r}; expected format "
            f"{PREDICTIONS_FORMAT!r} version {PREDICTIONS_VERSION}"
        )
    missing, unknown = sorted(_TOP_KEYS - set(data)), sorted(set(data) - _TOP_KEYS)
    if missing or unknown:
        raise PredictionsError(f"{path}: missing keys {missing}, unknown keys {unknown}")
    model = data["model"]
    if not isinstance(model, dict) or set(model) != _MODEL_KEYS:
        raise PredictionsError(f"{path}: model must be an object with keys {sorted(_MODEL_KEYS)}")
    if not isinstance(model["appearance"], bool):
        raise PredictionsError(f"{path}: model.appearance: {model['appearance']!r}; must be true or false")
    if not isinstance(model["tracker_config"], dict):
        raise PredictionsError(f"{path}: model.tracker_config must be an object")
    _check_plain(model["tracker_config"], f"{path}: model.tracker_config")
    timings = data["timings"]
    if not isinstance(timings, dict) or set(timings) != {"tracking_s"}:
        raise PredictionsError(f"{path}: timings must be an object with the one key tracking_s")
    tracking_s = timings["tracking_s"]
    if not _is_number(tracking_s) or tracking_s < 0:
        raise PredictionsError(f"{path}: timings.tracking_s: {tracking_s!r}; must be a finite number >= 0")
    sequences = data["sequences"]
    if not isinstance(sequences, dict):
        raise PredictionsError(f"{path}: sequences must be an object: sequence name -> list of rows")
    missing, unknown = sorted(set(num_frames) - set(sequences)), sorted(set(sequences) - set(num_frames))
    if missing or unknown:
        raise PredictionsError(
            f"{path}: sequences: missing {missing}, unknown {unknown}; expected exactly {sorted(num_frames)}"
        )
    tables = {
        name: _sequence_table(
            sequences[name], f"{path}: sequences[{name!r}]", num_frames[name], f"{path} [{name}]"
        )
        for name in sorted(num_frames)
    }
    return Predictions(
        tables=tables,
        appearance=model["appearance"],
        tracker_config=model["tracker_config"],
        tracking_s=float(tracking_s),
    )
