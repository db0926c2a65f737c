"""The system's predictions over a QC split: the file `walkout gate-predict` writes, `gate-score` reads.

`<out>/predictions.json`, format ``walkout-app-predictions`` version 1:

```
{"format": "walkout-app-predictions", "version": 1,
 "mode": "models" | "oracle",
 "jobs": int >= 1,                  # worker processes used
 "wall_seconds": float >= 0,        # predict's wall-clock time (a measurement, reported as is)
 "videos": [                        # one entry per input video, each name exactly once
   {"video": "<name>",
    "frames": int,                  # frames processed: must equal the video's frame count
    "seconds": float >= 0, "stage_seconds": {"<stage>": float >= 0},   # measurements
    "receipts": {"<shopper id>": {"<sku>": int >= 0}},                 # shoppers the engine saw leave
    "review": {"<shopper id>": ["<reason>", ...]},                     # keys: receipt shoppers
    "events": [{"type": "pick" | "put_back" | "handover" | "rejected_pick" | "rejected_put_back",
                "frame": 1..frames, "shopper_id": int, "sku": str, "shelf": str | null,
                "slot": str | null, "confidence": 0..1, "review": str | null,
                "to_shopper_id": int (handover only)}],
    "trajectories": {"<shopper id>": {"<frame>": [x1, y1, x2, y2]}}}  # pixels, x2 >= x1, y2 >= y1
 ]}
```

Shopper ids are the engine's (integers; JSON keys as their decimal strings). Everything but the
timings is deterministic for a given model and input. `read_predictions` is the trusted side: it
checks every field strictly, because the file is written by a pull request's code.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from walkout.errors import WalkoutError
from walkout.results import VideoResult, write_json_atomic

PREDICTIONS_FORMAT = "walkout-app-predictions"
PREDICTIONS_VERSION = 1
PREDICTIONS_NAME = "predictions.json"
MODES = ("models", "oracle")
# The engine also emits rejected_pick / rejected_put_back: a reach it saw but did not book (kept for
# review and contact sheets; never scored as an event, never on a receipt).
EVENT_TYPES = ("pick", "put_back", "handover", "rejected_pick", "rejected_put_back")
_TOP_KEYS = {"format", "version", "mode", "jobs", "wall_seconds", "videos"}
_VIDEO_KEYS = {"video", "frames", "seconds", "stage_seconds", "receipts", "review", "events", "trajectories"}
_EVENT_KEYS = {"type", "frame", "shopper_id", "sku", "shelf", "slot", "confidence", "review"}


class PredictionsError(WalkoutError):
    """A predictions file is missing or does not follow the walkout-app-predictions format."""


@dataclass(frozen=True)
class VideoExpectation:
    """What the scorer knows a video's predictions must fit: its frame count, SKUs and shelf slots."""

    frames: int
    skus: frozenset[str]
    slots: frozenset[tuple[str, str]]  # (shelf, slot)


@dataclass(frozen=True)
class Predictions:
    """A checked predictions file: the run's mode, jobs and wall time, and one VideoResult per video."""

    mode: str
    jobs: int
    wall_seconds: float
    results: dict[str, VideoResult]


def video_prediction(result: VideoResult) -> dict:
    """One `videos[]` entry of the predictions file from a run's result."""
    return {
        "video": result.video,
        "frames": result.frames,
        "seconds": result.seconds,
        "stage_seconds": dict(result.stage_seconds),
        "receipts": result.receipts,
        "review": result.review,
        "events": result.events,
        "trajectories": {
            str(shopper): {str(frame): list(box) for frame, box in boxes.items()}
            for shopper, boxes in result.trajectories.items()
        },
    }


def write_predictions(
    out_dir: str | os.PathLike, results: list[VideoResult], *, mode: str, jobs: int, wall_seconds: float
) -> Path:
    """Write `<out_dir>/predictions.json` atomically (NaN/inf refused); return its path."""
    document = {
        "format": PREDICTIONS_FORMAT,
        "version": PREDICTIONS_VERSION,
        "mode": mode,
        "jobs": jobs,
        "wall_seconds": wall_seconds,
        "videos": [video_prediction(result) for result in results],
    }
    return write_json_atomic(Path(out_dir) / PREDICTIONS_NAME, document)


# --------------------------------------------------------------------------------------------------
# Strict reading


def _fail(where: str, message: str) -> PredictionsError:
    return PredictionsError(f"{where}: {message}")


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _number(value: object, where: str, *, low: float | None = 0.0, high: float | None = None) -> float:
    """A finite JSON number within [low, high]."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise _fail(where, f"must be a number, got {value!r}")
    if not math.isfinite(value):
        raise _fail(where, f"must be finite, got {value!r}")
    if (low is not None and value < low) or (high is not None and value > high):
        raise _fail(where, f"must be within [{low}, {high if high is not None else 'inf'}], got {value!r}")
    return float(value)


def _integer(value: object, where: str, *, low: int | None = None, high: int | None = None) -> int:
    if not _is_int(value):
        raise _fail(where, f"must be an integer, got {value!r}")
    if (low is not None and value < low) or (high is not None and value > high):
        raise _fail(where, f"must be within [{low}, {high}], got {value}")
    return int(value)


def _mapping(value: object, where: str) -> dict:
    if not isinstance(value, dict):
        raise _fail(where, f"must be a mapping, got {type(value).__name__}")
    return value


def _keys(value: dict, where: str, required: set[str], optional: set[str] = frozenset()) -> None:
    missing = sorted(required - set(value))
    unknown = sorted(set(value) - required - optional)
    if missing:
        raise _fail(where, f"missing key(s) {missing}")
    if unknown:
        raise _fail(where, f"unknown key(s) {unknown} (allowed: {sorted(required | optional)})")


def _int_key(key: str, where: str, *, low: int | None = None, high: int | None = None) -> int:
    """A JSON object key that must be an integer's canonical decimal form ("12", not "012" or "a")."""
    try:
        number = int(key)
    except ValueError:
        number = None
    if number is None or str(number) != key:
        raise _fail(where, f"key {key!r} must be an integer written in decimal")
    if (low is not None and number < low) or (high is not None and number > high):
        raise _fail(where, f"key {key!r} must be within [{low}, {high}]")
    return number


def _sku(value: object, where: str, skus: frozenset[str]) -> str:
    if not isinstance(value, str):
        raise _fail(where, f"must be a SKU name string, got {value!r}")
    if value not in skus:
        raise _fail(where, f"unknown SKU {value!r} (known: {', '.join(sorted(skus))})")
    return value


def _receipts(value: object, where: str, skus: frozenset[str]) -> dict[str, dict[str, int]]:
    receipts = {}
    for shopper, items in _mapping(value, where).items():
        _int_key(shopper, where)
        at = f"{where}[{shopper!r}]"
        receipts[shopper] = {
            _sku(sku, f"{at} key", skus): _integer(quantity, f"{at}[{sku!r}]", low=0)
            for sku, quantity in _mapping(items, at).items()
        }
    return receipts


def _review(value: object, where: str, receipts: Mapping[str, object]) -> dict[str, list[str]]:
    review = {}
    for shopper, reasons in _mapping(value, where).items():
        if shopper not in receipts:
            raise _fail(where, f"shopper {shopper!r} has no receipt (review reasons are per receipt)")
        if not isinstance(reasons, list) or not all(isinstance(r, str) for r in reasons):
            raise _fail(f"{where}[{shopper!r}]", f"must be a list of strings, got {reasons!r}")
        review[shopper] = list(reasons)
    return review


def _event(value: object, where: str, expected: VideoExpectation) -> dict:
    event = _mapping(value, where)
    is_handover = event.get("type") == "handover"
    _keys(event, where, _EVENT_KEYS | ({"to_shopper_id"} if is_handover else set()))
    if event["type"] not in EVENT_TYPES:
        raise _fail(
            f"{where}.type", f"unknown event type {event['type']!r} (allowed: {', '.join(EVENT_TYPES)})"
        )
    _integer(event["frame"], f"{where}.frame", low=1, high=expected.frames)
    _integer(event["shopper_id"], f"{where}.shopper_id")
    if is_handover:
        _integer(event["to_shopper_id"], f"{where}.to_shopper_id")
    _sku(event["sku"], f"{where}.sku", expected.skus)
    shelf, slot = event["shelf"], event["slot"]
    if (shelf, slot) != (None, None):
        if not isinstance(shelf, str) or not isinstance(slot, str):
            raise _fail(f"{where}.shelf/slot", f"must both be strings or both null, got {shelf!r}/{slot!r}")
        if (shelf, slot) not in expected.slots:
            raise _fail(f"{where}.slot", f"shelf {shelf!r} has no slot {slot!r} in the video's layout")
    _number(event["confidence"], f"{where}.confidence", low=0.0, high=1.0)
    if event["review"] is not None and not isinstance(event["review"], str):
        raise _fail(f"{where}.review", f"must be a string or null, got {event['review']!r}")
    return event


def _trajectories(value: object, where: str, frames: int) -> dict[int, dict[int, list[float]]]:
    trajectories: dict[int, dict[int, list[float]]] = {}
    for shopper, boxes in _mapping(value, where).items():
        shopper_id = _int_key(shopper, where)
        at = f"{where}[{shopper!r}]"
        track = trajectories.setdefault(shopper_id, {})
        for frame, box in _mapping(boxes, at).items():
            number = _int_key(frame, at, low=1, high=frames)
            box_at = f"{at}[{frame!r}]"
            if not isinstance(box, list) or len(box) != 4:
                raise _fail(box_at, f"must be a box [x1, y1, x2, y2], got {box!r}")
            x1, y1, x2, y2 = (_number(v, box_at, low=None) for v in box)
            if x2 < x1 or y2 < y1:
                raise _fail(box_at, f"negative box size (x2 < x1 or y2 < y1): {box!r}")
            track[number] = [x1, y1, x2, y2]
    return trajectories


def _video(value: object, where: str, expected: VideoExpectation) -> VideoResult:
    entry = _mapping(value, where)
    _keys(entry, where, _VIDEO_KEYS)
    frames = _integer(entry["frames"], f"{where}.frames")
    if frames != expected.frames:
        raise _fail(f"{where}.frames", f"{frames} frames processed, but the video has {expected.frames}")
    stages = _mapping(entry["stage_seconds"], f"{where}.stage_seconds")
    stage_seconds = {str(k): _number(v, f"{where}.stage_seconds[{k!r}]") for k, v in stages.items()}
    receipts = _receipts(entry["receipts"], f"{where}.receipts", expected.skus)
    events = entry["events"]
    if not isinstance(events, list):
        raise _fail(f"{where}.events", f"must be a list, got {type(events).__name__}")
    return VideoResult(
        video=entry["video"],
        events=[_event(e, f"{where}.events[{i}]", expected) for i, e in enumerate(events)],
        receipts=receipts,
        review=_review(entry["review"], f"{where}.review", receipts),
        trajectories=_trajectories(entry["trajectories"], f"{where}.trajectories", frames),
        frames=frames,
        seconds=_number(entry["seconds"], f"{where}.seconds"),
        stage_seconds=stage_seconds,
    )


def _no_duplicate_keys(pairs: list[tuple[str, object]]) -> dict:
    """json object hook: a key given twice would silently keep only its last value."""
    result: dict = {}
    for key, value in pairs:
        if key in result:
            raise PredictionsError(f"duplicate key {key!r} in a JSON object")
        result[key] = value
    return result


def read_predictions(path: str | os.PathLike, expected: Mapping[str, VideoExpectation]) -> Predictions:
    """Read a predictions file and check it strictly against the videos the scorer has ground truth of.

    Every video of `expected` must appear exactly once and no other; every field must have its type
    and range (finite numbers, frames within the video, known SKUs and slots, boxes of positive size).
    Raises PredictionsError naming the file, the record and the field.
    """
    path = Path(path)
    if path.is_dir():
        path = path / PREDICTIONS_NAME
    if not path.is_file():
        raise PredictionsError(f"{path} does not exist: pass the folder `walkout gate-predict --out` wrote")
    try:
        document = json.loads(path.read_text(encoding="utf-8"), object_pairs_hook=_no_duplicate_keys)
    except PredictionsError as error:
        raise PredictionsError(f"{path}: {error}") from error
    except (json.JSONDecodeError, UnicodeDecodeError, RecursionError) as error:
        raise PredictionsError(f"{path} is not valid JSON: {error}") from error
    where = str(path)
    top = _mapping(document, where)
    _keys(top, where, _TOP_KEYS)
    if top["format"] != PREDICTIONS_FORMAT or top["version"] != PREDICTIONS_VERSION:
        raise _fail(
            f"{where}: format/version",
            f"got {top['format']!r}/{top['version']!r}, "
            f"expected {PREDICTIONS_FORMAT!r}/{PREDICTIONS_VERSION}",
        )
    if top["mode"] not in MODES:
        raise _fail(f"{where}: mode", f"must be one of {', '.join(MODES)}, got {top['mode']!r}")
    jobs = _integer(top["jobs"], f"{where}: jobs", low=1)
    wall_seconds = _number(top["wall_seconds"], f"{where}: wall_seconds")
    if not isinstance(top["videos"], list):
        raise _fail(f"{where}: videos", "must be a list with one entry per video")
    results: dict[str, VideoResult] = {}
    for index, entry in enumerate(top["videos"]):
        at = f"{where}: videos[{index}]"
        name = entry.get("video") if isinstance(entry, dict) else None
        if not isinstance(name, str):
            raise _fail(f"{at}.video", f"must be the video's name, got {name!r}")
        if name not in expected:
            raise _fail(
                f"{at}.video", f"unknown video {name!r} (the split has: {', '.join(sorted(expected))})"
            )
        if name in results:
            raise _fail(f"{at}.video", f"video {name!r} is listed twice")
        results[name] = _video(entry, f"{at} ({name})", expected[name])
    missing = sorted(set(expected) - set(results))
    if missing:
        raise _fail(f"{where}: videos", f"no predictions for video(s) {', '.join(missing)}")
    return Predictions(mode=top["mode"], jobs=jobs, wall_seconds=wall_seconds, results=results)
