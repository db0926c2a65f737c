"""The three gate stages' file formats: what prediction may see, and what the scorer accepts back.

The gate splits evaluation so a pull request never grades itself (ARCHITECTURE.md, issue 11):

1. `gate-inputs` (trusted code) copies from a split only what top-down prediction needs: the frames
   that hold persons and, per frame, the ground-truth person boxes with a person id. Never keypoints,
   visibilities or areas. `<out>/inputs.json`:

       {"format": "walkout-pose-gate-inputs", "version": 1,
        "keypoint_names": ["head", ..., "right_wrist"],
        "frames": [{"image": "images/video1_000001.png",
                    "persons": [{"id": "video1_000001#17", "box_xyxy": [x1, y1, x2, y2]}, ...]}, ...]}

   `image` is relative to the inputs folder; person ids are the report's per-sample ids
   (`<frame stem>#<annotation id>`); boxes are float frame pixels.
2. `gate-predict` (the pull request's code) reads only that folder and writes
   `<out>/predictions.json`:

       {"format": "walkout-pose-predictions", "version": 1,
        "keypoint_names": ["head", ..., "right_wrist"],
        "persons": [{"id": "video1_000001#17", "keypoints": [[x, y, confidence], ...7]}, ...]}

   x, y in frame pixels, confidence in [0, 1], keypoints in KEYPOINT_NAMES order; one record per
   person of inputs.json, nothing else. No timings or other run-dependent fields: the file of a
   model on a dataset is always the same bytes.
3. `gate-score` (trusted code) validates that file strictly (`read_predictions`) and scores it against
   the ground truth (walkout_pose.evaluate.score_predictions).
"""

from __future__ import annotations

import json
import math
import os
import shutil
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

import numpy as np

from walkout_ci.store import atomic_write_json
from walkout_pose.config import KEYPOINT_NAMES
from walkout_pose.data import Person, load_keypoints_dataset
from walkout_pose.errors import DataError, EvaluationError, InputError, PredictionsError
from walkout_pose.model import PoseNet
from walkout_pose.predict import predict_frames

INPUTS_FORMAT = "walkout-pose-gate-inputs"
INPUTS_VERSION = 1
INPUTS_FILE = "inputs.json"
PREDICTIONS_FORMAT = "walkout-pose-predictions"
PREDICTIONS_VERSION = 1
PREDICTIONS_FILE = "predictions.json"
# How many missing / unknown ids an error message lists before "and N more".
_LISTED = 5


@dataclass(frozen=True)
class InputFrame:
    """One frame to predict: its image, and per person an id and a box float [4] x1 y1 x2 y2."""

    image_path: Path
    person_ids: tuple[str, ...]
    boxes_xyxy: np.ndarray


def group_by_frame(persons: Sequence[Person]) -> list[list[int]]:
    """Indices of `persons` grouped by frame, frames in order of first appearance, persons in order.

    Evaluation predicts (and batches) in exactly this order, so every path gives the same numbers.
    """
    groups: dict[int, list[int]] = defaultdict(list)
    for index, person in enumerate(persons):
        groups[person.image_id].append(index)
    return list(groups.values())


def _clear_created(out_dir: Path, existed: bool) -> None:
    """Remove what write_inputs wrote (all of `out_dir` when it created the folder)."""
    if not existed:
        shutil.rmtree(out_dir, ignore_errors=True)
        return
    shutil.rmtree(out_dir / "images", ignore_errors=True)
    (out_dir / INPUTS_FILE).unlink(missing_ok=True)


def write_inputs(data: str | os.PathLike, out_dir: str | os.PathLike) -> Path:
    """Stage 1: copy the frames with persons and their boxes (no labels) into `out_dir`.

    `out_dir` must be missing or empty. Image bytes are copied unchanged (prediction decodes exactly
    the pixels evaluation would). inputs.json is written last, so a folder without it is incomplete;
    on any failure or interrupt what was written is removed. Returns the inputs.json path.
    Raises DataError for an unreadable split, EvaluationError when it holds no person, InputError for
    a non-empty `out_dir`.
    """
    out_dir = Path(out_dir)
    existed = out_dir.exists()
    if existed and (not out_dir.is_dir() or any(out_dir.iterdir())):
        raise InputError(f"--out {out_dir} must be an empty folder or not exist yet; it is not empty")
    dataset = load_keypoints_dataset(data)
    persons = dataset.persons
    if not persons:
        raise EvaluationError(f"{dataset.annotation_path} holds no person annotations: nothing to evaluate")
    try:
        (out_dir / "images").mkdir(parents=True)
        frames = []
        copied: dict[str, Path] = {}
        for indices in group_by_frame(persons):
            source = persons[indices[0]].image_path
            name = source.name
            if name in copied:
                raise DataError(
                    f"{dataset.annotation_path}: images {copied[name]} and {source} share the file name "
                    f"{name!r}; image file names must be unique within a split"
                )
            copied[name] = source
            shutil.copyfile(source, out_dir / "images" / name)
            frames.append(
                {
                    "image": f"images/{name}",
                    "persons": [
                        {"id": persons[i].sample_id, "box_xyxy": [float(v) for v in persons[i].box_xyxy]}
                        for i in indices
                    ],
                }
            )
        index = {
            "format": INPUTS_FORMAT,
            "version": INPUTS_VERSION,
            "keypoint_names": list(KEYPOINT_NAMES),
            "frames": frames,
        }
        return atomic_write_json(out_dir / INPUTS_FILE, index)
    except BaseException:
        _clear_created(out_dir, existed)
        raise


def _is_number(value: Any) -> bool:
    """A JSON number (bools are ints in Python but not numbers here)."""
    return isinstance(value, int | float) and not isinstance(value, bool)


def _reject_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """json object hook: a key given twice is an error, not "the last one wins"."""
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            raise ValueError(f"duplicate key {key!r} in one JSON object")
        result[key] = value
    return result


def _load_json(path: Path, error: type[Exception]) -> Any:
    """Parse a JSON file strictly (no duplicate keys); `error` names the file otherwise."""
    try:
        return json.loads(path.read_text(encoding="utf-8"), object_pairs_hook=_reject_duplicate_keys)
    except FileNotFoundError as failure:
        raise error(f"{path} does not exist") from failure
    except (OSError, UnicodeDecodeError, ValueError) as failure:
        raise error(f"{path} is not readable JSON: {failure}") from failure


def _check_header(
    document: Any, path: Path, *, fmt: str, version: int, list_key: str, error: type[Exception]
) -> list:
    """Check the common header (format, version, keypoint_names, one list) and return that list."""
    expected_keys = {"format", "version", "keypoint_names", list_key}
    if not isinstance(document, dict):
        raise error(f"{path}: the top level must be a JSON object with keys {sorted(expected_keys)}")
    unknown = sorted(set(document) - expected_keys)
    missing = sorted(expected_keys - set(document))
    if unknown or missing:
        raise error(
            f"{path}: top-level field(s) {unknown or missing} {'not allowed' if unknown else 'missing'}; "
            f"exactly {sorted(expected_keys)} are expected"
        )
    if document["format"] != fmt:
        raise error(f"{path}: field 'format' is {document['format']!r}; expected {fmt!r}")
    if not isinstance(document["version"], int) or isinstance(document["version"], bool):
        raise error(f"{path}: field 'version' is {document['version']!r}; expected the integer {version}")
    if document["version"] != version:
        raise error(
            f"{path}: field 'version' is {document['version']}; this walkout-pose reads version {version}"
        )
    names = document["keypoint_names"]
    if names != list(KEYPOINT_NAMES):
        unknown_names = (
            [name for name in names if name not in KEYPOINT_NAMES] if isinstance(names, list) else names
        )
        raise error(
            f"{path}: field 'keypoint_names' is {names!r} (unknown: {unknown_names!r}); expected exactly "
            f"{list(KEYPOINT_NAMES)} in that order"
        )
    records = document[list_key]
    if not isinstance(records, list):
        raise error(f"{path}: field {list_key!r} is a {type(records).__name__}; expected a list")
    return records


def _check_record_keys(record: Any, keys: set[str], where: str, error: type[Exception]) -> None:
    if not isinstance(record, dict):
        raise error(f"{where} is a {type(record).__name__}; expected an object with keys {sorted(keys)}")
    if set(record) != keys:
        unknown, missing = sorted(set(record) - keys), sorted(keys - set(record))
        raise error(
            f"{where}: field(s) {unknown or missing} {'not allowed' if unknown else 'missing'}; "
            f"a record has exactly {sorted(keys)}"
        )


def _safe_relative(root: Path, relative: Any, where: str) -> Path:
    """`root / relative` for a plain relative POSIX path that stays inside `root`; InputError otherwise."""
    if not isinstance(relative, str) or not relative:
        raise InputError(
            f"{where} field 'image' is {relative!r}; expected a path relative to the inputs folder"
        )
    parts = PurePosixPath(relative).parts
    if PurePosixPath(relative).is_absolute() or ".." in parts or "\\" in relative:
        raise InputError(
            f"{where} field 'image' {relative!r} leaves the inputs folder; expected images/<name>"
        )
    path = root.joinpath(*parts)
    if not path.is_file():
        raise InputError(f"{where} field 'image': {path} does not exist")
    return path


def read_inputs(inputs_dir: str | os.PathLike) -> list[InputFrame]:
    """Stage 2's view of the data: the validated frames of `<inputs_dir>/inputs.json`.

    Raises InputError naming the file, the record (`frames[i]`, `persons[j]`) and the field.
    """
    root = Path(inputs_dir)
    path = root / INPUTS_FILE
    records = _check_header(
        _load_json(path, InputError),
        path,
        fmt=INPUTS_FORMAT,
        version=INPUTS_VERSION,
        list_key="frames",
        error=InputError,
    )
    frames = []
    seen: set[str] = set()
    for index, record in enumerate(records):
        where = f"{path}: frames[{index}]"
        _check_record_keys(record, {"image", "persons"}, where, InputError)
        image_path = _safe_relative(root, record["image"], where)
        if not isinstance(record["persons"], list) or not record["persons"]:
            raise InputError(f"{where} field 'persons' must be a non-empty list")
        ids, boxes = [], []
        for number, person in enumerate(record["persons"]):
            person_where = f"{where}.persons[{number}]"
            _check_record_keys(person, {"id", "box_xyxy"}, person_where, InputError)
            person_id, box = person["id"], person["box_xyxy"]
            if not isinstance(person_id, str) or not person_id:
                raise InputError(f"{person_where} field 'id' is {person_id!r}; expected a non-empty string")
            if person_id in seen:
                raise InputError(f"{person_where} field 'id': duplicate person id {person_id!r}")
            seen.add(person_id)
            if (
                not isinstance(box, list)
                or len(box) != 4
                or not all(_is_number(v) and math.isfinite(v) for v in box)
                or box[2] <= box[0]
                or box[3] <= box[1]
            ):
                raise InputError(
                    f"{person_where} (id {person_id!r}) field 'box_xyxy' is {box!r}; expected 4 finite "
                    "numbers x1 y1 x2 y2 with x2 > x1, y2 > y1"
                )
            ids.append(person_id)
            boxes.append(box)
        frames.append(InputFrame(image_path, tuple(ids), np.asarray(boxes, dtype=np.float64)))
    return frames


def predict_inputs(
    model: PoseNet, frames: Sequence[InputFrame], *, batch_size: int, progress: bool = False
) -> tuple[list[str], np.ndarray, float]:
    """Stage 2: keypoints for every person of `frames`.

    Returns (person ids, float32 [N, K, 3] x y confidence in the same order, seconds of inference).
    """
    keypoints, seconds = predict_frames(
        model,
        [(frame.image_path, frame.boxes_xyxy) for frame in frames],
        batch_size=batch_size,
        progress=progress,
    )
    ids = [person_id for frame in frames for person_id in frame.person_ids]
    return ids, keypoints, seconds


def write_predictions(out_dir: str | os.PathLike, ids: Sequence[str], keypoints: np.ndarray) -> Path:
    """Write `<out_dir>/predictions.json` atomically (creating `out_dir`); returns its path.

    ids: N person ids. keypoints: float [N, K, 3] x y confidence. Values are written at full
    precision: float32 numbers survive the JSON round trip exactly, so scoring the file gives the
    same figures as scoring the array.
    """
    if len(ids) != len(keypoints):
        raise ValueError(f"{len(ids)} person ids for {len(keypoints)} keypoint arrays")
    document = {
        "format": PREDICTIONS_FORMAT,
        "version": PREDICTIONS_VERSION,
        "keypoint_names": list(KEYPOINT_NAMES),
        "persons": [
            {"id": person_id, "keypoints": [[float(v) for v in point] for point in person]}
            for person_id, person in zip(ids, keypoints, strict=True)
        ],
    }
    return atomic_write_json(Path(out_dir) / PREDICTIONS_FILE, document)


def _listed(values: Sequence[str]) -> str:
    shown = ", ".join(repr(value) for value in values[:_LISTED])
    return shown + (f" and {len(values) - _LISTED} more" if len(values) > _LISTED else "")


def _check_keypoints(value: Any, where: str) -> np.ndarray:
    """A person's keypoints as float32 [K, 3]; PredictionsError naming the field otherwise."""
    count = len(KEYPOINT_NAMES)
    if not isinstance(value, list) or len(value) != count:
        found = f"{len(value)} entries" if isinstance(value, list) else f"a {type(value).__name__}"
        raise PredictionsError(
            f"{where} field 'keypoints' holds {found}; expected {count} [x, y, confidence] triples "
            f"({', '.join(KEYPOINT_NAMES)})"
        )
    for index, point in enumerate(value):
        field = f"keypoints[{index}] ({KEYPOINT_NAMES[index]})"
        if not isinstance(point, list) or len(point) != 3:
            raise PredictionsError(f"{where} field '{field}' is {point!r}; expected [x, y, confidence]")
        for axis, number in zip(("x", "y", "confidence"), point, strict=True):
            if not _is_number(number):
                raise PredictionsError(
                    f"{where} field '{field}' {axis} is {number!r} ({type(number).__name__}); "
                    "expected a number"
                )
            # float32 is what scoring computes in: a finite float64 beyond its range is no position either.
            if not math.isfinite(number) or not np.isfinite(np.float32(number)):
                raise PredictionsError(
                    f"{where} field '{field}' {axis} is {number}; expected a finite number"
                )
        if not 0.0 <= point[2] <= 1.0:
            raise PredictionsError(
                f"{where} field '{field}' confidence is {point[2]}; expected 0 <= confidence <= 1"
            )
    return np.asarray(value, dtype=np.float32)


def read_predictions(predictions: str | os.PathLike, expected_ids: Sequence[str]) -> np.ndarray:
    """Stage 3's strict reader: float32 [N, K, 3] x y confidence in `expected_ids` order.

    predictions: the predictions folder (or the predictions.json file itself). Every expected person
    must appear exactly once and nothing else may: unknown / missing / duplicate ids, wrong types,
    NaN or infinite values, a confidence outside [0, 1], a wrong number of keypoints, unknown fields,
    keypoint names or format / version are PredictionsError naming the file, the record and the field.
    """
    path = Path(predictions)
    if path.is_dir():
        path = path / PREDICTIONS_FILE
    records = _check_header(
        _load_json(path, PredictionsError),
        path,
        fmt=PREDICTIONS_FORMAT,
        version=PREDICTIONS_VERSION,
        list_key="persons",
        error=PredictionsError,
    )
    position = {person_id: index for index, person_id in enumerate(expected_ids)}
    result = np.zeros((len(expected_ids), len(KEYPOINT_NAMES), 3), dtype=np.float32)
    seen: dict[str, int] = {}
    for index, record in enumerate(records):
        where = f"{path}: persons[{index}]"
        _check_record_keys(record, {"id", "keypoints"}, where, PredictionsError)
        person_id = record["id"]
        if not isinstance(person_id, str):
            raise PredictionsError(f"{where} field 'id' is {person_id!r}; expected a person id string")
        where = f"{where} (id {person_id!r})"
        if person_id not in position:
            raise PredictionsError(f"{where} field 'id': unknown person; the inputs hold no such person id")
        if person_id in seen:
            raise PredictionsError(f"{where} field 'id': duplicate person (also persons[{seen[person_id]}])")
        seen[person_id] = index
        result[position[person_id]] = _check_keypoints(record["keypoints"], where)
    missing = [person_id for person_id in expected_ids if person_id not in seen]
    if missing:
        raise PredictionsError(
            f"{path}: field 'persons' lacks {len(missing)} of the {len(expected_ids)} persons of the inputs: "
            f"{_listed(missing)}; predict every person of inputs.json"
        )
    return result
