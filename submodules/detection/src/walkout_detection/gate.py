"""The gate's three evaluation stages: inputs (trusted), predict (untrusted), score (trusted).

`walkout-ci gate` runs the pull request's code only for `predict`, which sees the images and nothing
of the ground truth; `prepare_inputs` and `score_predictions` run the target branch's code. The
human `evaluate` command is the same three stages in a temp folder (one scoring path).

Inputs folder (written by `prepare_inputs`):

    inputs.json   {"format": "walkout-detection-inputs", "version": 1,
                   "class_names": [dataset category names, by category id],
                   "images": [{"file_name": COCO file_name, "path": "images/<name>", "width": W,
                               "height": H}]}
    images/       copies of the dataset's images (no annotations, no manifest)

Predictions file (`predictions.json`, written by `predict_inputs`):

    {"format": "walkout-detection-predictions", "version": 1,
     "score_threshold": operating point in [0, 1] (per-image F1, recall and failures use it),
     "timings": {"inference_s": seconds >= 0},
     "predictions": [{"file_name": COCO file_name,
                      "detections": [{"bbox": [x, y, w, h] pixels, "score": [0, 1], "category": name}]}]}

Every input image has exactly one entry (an empty list when nothing was found); categories are names
of `class_names`. `read_predictions` enforces all of it (PredictionsError, exit code 2).
"""

from __future__ import annotations

import json
import math
import re
import shutil
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

import cv2
import numpy as np
from tqdm import tqdm

from walkout_detection.config import EvaluateConfig
from walkout_detection.data import CocoDataset, load_coco
from walkout_detection.errors import DataError, EvaluationError, PredictionsError
from walkout_detection.model import Detections

INPUTS_FORMAT = "walkout-detection-inputs"
INPUTS_VERSION = 1
INPUTS_FILE = "inputs.json"
PREDICTIONS_FORMAT = "walkout-detection-predictions"
PREDICTIONS_VERSION = 1
PREDICTIONS_FILE = "predictions.json"
# More than any decoder setting allows (evaluate.max_detections <= 10,000): a bound against a
# predictions file built to exhaust the scorer.
MAX_DETECTIONS_PER_IMAGE = 10_000
_SHA256 = re.compile(r"^[0-9a-f]{64}$")


@dataclass(frozen=True)
class InputImage:
    """One image of an inputs folder: its COCO file_name (the sample's identity), its file and size."""

    file_name: str
    path: Path
    width: int
    height: int


@dataclass(frozen=True)
class Inputs:
    """A validated inputs folder: the dataset's class names and its images, in dataset order."""

    folder: Path
    class_names: list[str]
    images: list[InputImage]


# ---------------------------------------------------------------------------------------------- inputs


def _ensure_empty_folder(folder: Path, *, what: str) -> None:
    """Create `folder`, or accept an existing empty one (a stale file could be mistaken for output)."""
    if folder.exists() and not folder.is_dir():
        raise DataError(f"{what} {folder} exists and is not a folder")
    if folder.is_dir() and any(folder.iterdir()):
        raise DataError(f"{what} {folder} is not empty; pass a new or empty folder")
    folder.mkdir(parents=True, exist_ok=True)


def _copy_names(dataset: CocoDataset) -> list[str]:
    """Names of the image copies under images/: the file's own name, prefixed by the image's position
    when two images share a name (merged datasets name files by relative paths such as ../a/x.png)."""
    names = [record.path.name for record in dataset.images]
    if len(set(names)) == len(names):
        return names
    return [f"{index:06d}_{name}" for index, name in enumerate(names)]


def prepare_inputs(data: Path, out: Path) -> dict[str, Any]:
    """`gate-inputs`: copy what prediction needs of the dataset `data` into `out` and index it.

    data: a dataset folder or COCO JSON (see data.find_coco_json); out: a new or empty folder.
    Writes out/images/* and out/inputs.json (format in the module docstring); returns the index.
    Nothing of the annotations is written. Raises DataError for a bad dataset or a non-empty `out`.
    """
    from walkout_ci.store import atomic_copy, atomic_write_json

    dataset = load_coco(data)
    _ensure_empty_folder(out, what="inputs folder")
    file_names = _file_names_by_id(dataset)
    images = []
    for record, name in zip(dataset.images, _copy_names(dataset), strict=True):
        width, height = record.width, record.height
        if not width or not height:
            frame = cv2.imread(str(record.path), cv2.IMREAD_COLOR)
            if frame is None:
                raise DataError(f"image {record.path} is missing or cannot be decoded")
            height, width = frame.shape[:2]
        atomic_copy(record.path, out / "images" / name)
        images.append(
            {"file_name": file_names[record.image_id], "path": f"images/{name}", "width": width,
             "height": height}
        )  # fmt: skip
    index = {
        "format": INPUTS_FORMAT,
        "version": INPUTS_VERSION,
        "class_names": list(dataset.class_names),
        "images": images,
    }
    atomic_write_json(out / INPUTS_FILE, index)
    return index


def _file_names_by_id(dataset: CocoDataset) -> dict[int, str]:
    """{COCO image id: file_name} in the dataset's image order (the key predictions are filed under)."""
    return {image["id"]: image["file_name"] for image in dataset.coco["images"]}


def _strict_json(path: Path, *, error: type[Exception]) -> Any:
    """Parse a JSON file, refusing duplicate keys (json.loads would keep the last one silently)."""

    def no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        keys = [key for key, _ in pairs]
        repeated = sorted({key for key in keys if keys.count(key) > 1})
        if repeated:
            raise ValueError(f"key {repeated[0]!r} appears twice in one object")
        return dict(pairs)

    try:
        return json.loads(path.read_text(encoding="utf-8"), object_pairs_hook=no_duplicates)
    except FileNotFoundError as failure:
        raise error(f"{path} does not exist") from failure
    except (OSError, UnicodeDecodeError, ValueError) as failure:
        raise error(f"{path} is not valid JSON: {failure}") from failure


def _check_keys(record: Any, required: set[str], optional: set[str], where: str, error: type) -> None:
    if not isinstance(record, dict):
        raise error(f"{where} must be an object; got {type(record).__name__}")
    missing = sorted(required - set(record))
    if missing:
        raise error(f"{where} lacks field {missing[0]!r}")
    unknown = sorted(set(record) - required - optional)
    if unknown:
        allowed = ", ".join(sorted(required | optional))
        raise error(f"{where} has unknown field {unknown[0]!r}; allowed: {allowed}")


def _is_integer(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def read_inputs(folder: Path) -> Inputs:
    """Read and validate an inputs folder written by `prepare_inputs` (DataError naming the field).

    Image paths must stay inside `folder` (the predictor reads nothing else).
    """
    folder = Path(folder)
    path = folder / INPUTS_FILE
    index = _strict_json(path, error=DataError)
    where = f"inputs index {path}"
    _check_keys(index, {"format", "version", "class_names", "images"}, set(), where, DataError)
    if index["format"] != INPUTS_FORMAT or index["version"] != INPUTS_VERSION:
        raise DataError(
            f"{where}: field 'format'/'version' is {index['format']!r} version {index['version']!r}; "
            f"this package reads {INPUTS_FORMAT!r} version {INPUTS_VERSION}"
        )
    names = index["class_names"]
    if not isinstance(names, list) or not names or not all(isinstance(n, str) for n in names):
        raise DataError(f"{where}: field 'class_names' must be a non-empty list of strings")
    if not isinstance(index["images"], list):
        raise DataError(f"{where}: field 'images' must be a list")
    root = folder.resolve()
    images = []
    for position, entry in enumerate(index["images"]):
        at = f"{where}: images[{position}]"
        _check_keys(entry, {"file_name", "path", "width", "height"}, set(), at, DataError)
        relative = entry["path"]
        if (
            not isinstance(relative, str)
            or PurePosixPath(relative).is_absolute()
            or ".." in PurePosixPath(relative).parts
        ):
            raise DataError(f"{at}: field 'path' must be a relative path inside the folder; got {relative!r}")
        image_path = (folder / relative).resolve()
        if root not in image_path.parents:
            raise DataError(f"{at}: field 'path' {relative!r} leaves the inputs folder")
        for key in ("width", "height"):
            if not _is_integer(entry[key]) or entry[key] <= 0:
                raise DataError(f"{at}: field {key!r} must be a positive integer; got {entry[key]!r}")
        if not isinstance(entry["file_name"], str):
            raise DataError(f"{at}: field 'file_name' must be a string")
        images.append(InputImage(entry["file_name"], image_path, entry["width"], entry["height"]))
    return Inputs(folder=folder, class_names=list(names), images=images)


# --------------------------------------------------------------------------------------------- predict


def _batches(images: list[InputImage], size: int) -> Iterator[list[InputImage]]:
    for start in range(0, len(images), size):
        yield images[start : start + size]


def detections_to_records(found: Detections, model_classes: list[str], allowed: set[str]) -> list[dict]:
    """Prediction records [{"bbox": [x, y, w, h], "score", "category"}] of one image, in the detector's
    order; classes the dataset lacks are left out (they cannot be scored). Values are kept at full
    precision so scoring them equals scoring the detector's arrays."""
    records = []
    for box, score, label in zip(found.boxes, found.scores, found.labels, strict=True):
        name = model_classes[int(label)]
        if name not in allowed:
            continue
        x1, y1, x2, y2 = (float(value) for value in box)
        records.append({"bbox": [x1, y1, x2 - x1, y2 - y1], "score": float(score), "category": name})
    return records


def predict_inputs(
    detector: Any, inputs_dir: Path, out: Path, *, batch_size: int = 16, progress: bool = True
) -> dict[str, Any]:
    """`gate-predict`: run `detector` (a predict.Detector) on an inputs folder; write out/predictions.json.

    Reads only `inputs_dir`. The model must know every class of the dataset (DataError otherwise).
    Returns the predictions payload (format in the module docstring).
    """
    from walkout_ci.store import atomic_write_text

    inputs = read_inputs(inputs_dir)
    unknown = [name for name in inputs.class_names if name not in detector.class_names]
    if unknown:
        raise DataError(
            f"the dataset has categories {unknown} that the model does not know "
            f"(model classes: {detector.class_names}); evaluate a model trained on these categories"
        )
    allowed = set(inputs.class_names)
    entries = []
    inference_s = 0.0
    chunks = list(_batches(inputs.images, batch_size))
    for chunk in tqdm(chunks, desc="detect", unit="batch", disable=not progress, leave=False):
        frames = []
        for image in chunk:
            frame = cv2.imread(str(image.path), cv2.IMREAD_COLOR)
            if frame is None:
                raise DataError(f"input image {image.path} is missing or cannot be decoded")
            if frame.shape[:2] != (image.height, image.width):
                raise DataError(
                    f"input image {image.path} is {frame.shape[1]}x{frame.shape[0]}, but {INPUTS_FILE} "
                    f"says {image.width}x{image.height}"
                )
            frames.append(frame)
        began = time.perf_counter()
        outputs = detector.detect(frames)
        inference_s += time.perf_counter() - began
        for image, found in zip(chunk, outputs, strict=True):
            entries.append(
                {
                    "file_name": image.file_name,
                    "detections": detections_to_records(found, detector.class_names, allowed),
                }
            )
    payload = {
        "format": PREDICTIONS_FORMAT,
        "version": PREDICTIONS_VERSION,
        "score_threshold": float(detector.settings.score_threshold),
        "timings": {"inference_s": round(inference_s, 3)},
        "predictions": entries,
    }
    out.mkdir(parents=True, exist_ok=True)
    # allow_nan=False: a NaN from a broken model fails here, in the predictor, not as bad JSON later.
    try:
        text = json.dumps(payload, allow_nan=False)
    except ValueError as error:
        raise EvaluationError(f"the model produced a non-finite box or score: {error}") from error
    atomic_write_text(out / PREDICTIONS_FILE, text)
    return payload


# ----------------------------------------------------------------------------------------------- score


@dataclass(frozen=True)
class Predictions:
    """A validated predictions file: detections per COCO file_name and the model's operating point."""

    detections: dict[str, list[dict[str, Any]]]
    score_threshold: float
    inference_s: float


def predictions_path(predictions: Path) -> Path:
    """`predictions` is the predict output folder (holding predictions.json) or the file itself."""
    predictions = Path(predictions)
    return predictions / PREDICTIONS_FILE if predictions.is_dir() else predictions


def _check_detection(record: Any, where: str, class_names: set[str]) -> None:
    """One detection record: bbox [x, y, w, h] finite with w, h >= 0, score in [0, 1], a known category."""
    _check_keys(record, {"bbox", "score", "category"}, set(), where, PredictionsError)
    bbox = record["bbox"]
    if not isinstance(bbox, list) or len(bbox) != 4 or not all(_is_number(v) for v in bbox):
        raise PredictionsError(f"{where}: field 'bbox' must be [x, y, w, h] of 4 numbers; got {bbox!r}")
    if not all(math.isfinite(v) for v in bbox):
        raise PredictionsError(f"{where}: field 'bbox' holds NaN or infinity: {bbox!r}")
    if bbox[2] < 0 or bbox[3] < 0:
        raise PredictionsError(f"{where}: field 'bbox' has a negative width or height: {bbox!r}")
    score = record["score"]
    if not _is_number(score) or not math.isfinite(score) or not 0.0 <= score <= 1.0:
        raise PredictionsError(f"{where}: field 'score' must be a finite number in [0, 1]; got {score!r}")
    category = record["category"]
    if not isinstance(category, str) or category not in class_names:
        raise PredictionsError(
            f"{where}: field 'category' {category!r} is not a class of the dataset; "
            f"allowed: {sorted(class_names)}"
        )


def read_predictions(path: Path, *, file_names: list[str], class_names: list[str]) -> Predictions:
    """Read a predictions file and validate it strictly against the dataset.

    file_names: the dataset's COCO file names (each needs exactly one entry); class_names: the
    dataset's category names. Raises PredictionsError naming the file, the record and the field.
    """
    payload = _strict_json(path, error=PredictionsError)
    where = f"predictions file {path}"
    _check_keys(
        payload, {"format", "version", "score_threshold", "predictions"}, {"timings"}, where, PredictionsError
    )
    if payload["format"] != PREDICTIONS_FORMAT:
        raise PredictionsError(
            f"{where}: field 'format' is {payload['format']!r}; expected {PREDICTIONS_FORMAT!r}"
        )
    if payload["version"] != PREDICTIONS_VERSION or not _is_integer(payload["version"]):
        raise PredictionsError(
            f"{where}: field 'version' is {payload['version']!r}; this package reads {PREDICTIONS_VERSION}"
        )
    threshold = payload["score_threshold"]
    if not _is_number(threshold) or not math.isfinite(threshold) or not 0.0 <= threshold <= 1.0:
        raise PredictionsError(
            f"{where}: field 'score_threshold' must be a finite number in [0, 1]; got {threshold!r}"
        )
    inference_s = 0.0
    if "timings" in payload:
        timings = payload["timings"]
        _check_keys(timings, set(), {"inference_s"}, f"{where}: field 'timings'", PredictionsError)
        inference_s = timings.get("inference_s", 0.0)
        if not _is_number(inference_s) or not math.isfinite(inference_s) or inference_s < 0:
            raise PredictionsError(
                f"{where}: field 'timings.inference_s' must be a finite number >= 0; got {inference_s!r}"
            )
    entries = payload["predictions"]
    if not isinstance(entries, list):
        raise PredictionsError(f"{where}: field 'predictions' must be a list")
    expected = set(file_names)
    allowed = set(class_names)
    detections: dict[str, list[dict[str, Any]]] = {}
    for position, entry in enumerate(entries):
        at = f"{where}: predictions[{position}]"
        _check_keys(entry, {"file_name", "detections"}, set(), at, PredictionsError)
        name = entry["file_name"]
        if not isinstance(name, str) or name not in expected:
            raise PredictionsError(f"{at}: field 'file_name' {name!r} is not an image of the dataset")
        if name in detections:
            raise PredictionsError(f"{at}: field 'file_name' {name!r} appears twice; one entry per image")
        found = entry["detections"]
        if not isinstance(found, list):
            raise PredictionsError(f"{at} ({name}): field 'detections' must be a list")
        if len(found) > MAX_DETECTIONS_PER_IMAGE:
            raise PredictionsError(
                f"{at} ({name}): field 'detections' holds {len(found)} records; at most "
                f"{MAX_DETECTIONS_PER_IMAGE} per image"
            )
        for index, record in enumerate(found):
            _check_detection(record, f"{at} ({name}): detections[{index}]", allowed)
        detections[name] = found
    missing = [name for name in file_names if name not in detections]
    if missing:
        shown = ", ".join(missing[:5]) + (f" and {len(missing) - 5} more" if len(missing) > 5 else "")
        raise PredictionsError(
            f"{where}: field 'predictions' has no entry for {len(missing)} image(s): {shown}"
        )
    return Predictions(
        detections=detections, score_threshold=float(threshold), inference_s=float(inference_s)
    )


def predictions_to_detections(dataset: CocoDataset, predictions: Predictions) -> dict[int, Detections]:
    """Detections per COCO image id (boxes x1 y1 x2 y2 float64, labels = dataset class indices), in
    the predictor's order, for `evaluate.evaluate_detections`."""
    index_of = {name: index for index, name in enumerate(dataset.class_names)}
    result: dict[int, Detections] = {}
    for image_id, file_name in _file_names_by_id(dataset).items():
        records = predictions.detections[file_name]
        boxes = np.array([record["bbox"] for record in records], dtype=np.float64).reshape(-1, 4)
        # x + w gives back the predictor's x2 (to float64 rounding): scoring sees the boxes it found.
        boxes[:, 2:] += boxes[:, :2]
        result[image_id] = Detections(
            boxes=boxes,
            scores=np.array([record["score"] for record in records], dtype=np.float64),
            labels=np.array([index_of[record["category"]] for record in records], dtype=np.int64),
        )
    return result


def dataset_fingerprint(data: Path, dataset: CocoDataset) -> str:
    """`dataset.hash`: walkout_ci.report.dataset_hash of an export folder (sha256 of manifest.json);
    for a bare COCO JSON without a manifest, the sha256 of that JSON."""
    from walkout_ci.report import dataset_hash
    from walkout_detection.data import dataset_hash as coco_hash

    if Path(data).is_dir() and (Path(data) / "manifest.json").is_file():
        return dataset_hash(data)
    return coco_hash(dataset.json_path)


def score_predictions(
    *,
    data: Path,
    predictions: Path,
    report_dir: Path,
    model_ref: str,
    weights_sha256: str,
    experiment_id: str | None,
    code_commit: str | None,
    settings: EvaluateConfig | None = None,
) -> dict[str, Any]:
    """`gate-score`: validate the predictions, score them against `data`, write report_dir/report.json.

    model_ref / weights_sha256 / experiment_id / code_commit are recorded as given (the gate verified
    the weights; nothing is recomputed from a model). settings: match_iou and max_failure_images
    (default: EvaluateConfig's); the operating point is the predictions' score_threshold.
    Returns the report dict. Raises PredictionsError / DataError / EvaluationError (exit code 2).
    """
    from walkout_detection.evaluate import build_report, evaluate_detections, write_evaluation_report

    began = time.perf_counter()
    settings = settings or EvaluateConfig()
    if not _SHA256.match(weights_sha256 or ""):
        raise EvaluationError(
            "--weights-sha256 must be 64 lowercase hex digits (the sha256 of the weights file); "
            f"got {weights_sha256!r}"
        )
    dataset = load_coco(data)
    file_names = [image["file_name"] for image in dataset.coco["images"]]
    parsed = read_predictions(
        predictions_path(predictions), file_names=file_names, class_names=dataset.class_names
    )
    report_dir.mkdir(parents=True, exist_ok=True)
    result = evaluate_detections(
        dataset,
        predictions_to_detections(dataset, parsed),
        score_threshold=parsed.score_threshold,
        match_iou=settings.match_iou,
        max_failure_images=settings.max_failure_images,
        debug_dir=report_dir,
    )
    scoring_s = time.perf_counter() - began
    result.timings = {
        "total_s": round(scoring_s + parsed.inference_s, 3),
        "inference_s": round(parsed.inference_s, 3),
        "scoring_s": round(scoring_s, 3),
        "samples_per_s": round(len(dataset) / parsed.inference_s, 2) if parsed.inference_s > 0 else 0.0,
    }
    report = build_report(
        result,
        model_ref=model_ref,
        weights_sha256=weights_sha256,
        experiment_id=experiment_id or None,
        code_commit=code_commit or None,
        dataset=dataset,
        dataset_id=str(data),
        dataset_hash=dataset_fingerprint(data, dataset),
        score_threshold=parsed.score_threshold,
        match_iou=settings.match_iou,
    )
    write_evaluation_report(report_dir, report)
    return report


# -------------------------------------------------------------------------------------------- evaluate


def evaluate_to_report(
    *, model_ref: str, data: Path, report_dir: Path, device: str = "auto", progress: bool = True
) -> dict[str, Any]:
    """The human `evaluate` command: the gate's three stages in a temp folder (removed on any exit,
    SIGTERM included, since walkout_ci.signals turns it into an exception).

    Resolves `model_ref` (experiment id, model_ref.yaml or checkpoint), then inputs -> predict -> score.
    """
    from walkout_ci.gitrepo import code_commit
    from walkout_ci.report import sha256_of_file
    from walkout_detection.predict import load_detector

    detector = load_detector(model_ref, device=device)
    if detector.weights_path is None:
        raise EvaluationError(f"model {model_ref!r} resolved to no weights file")
    workspace = Path(tempfile.mkdtemp(prefix="walkout-detection-evaluate-"))
    try:
        prepare_inputs(data, workspace / "inputs")
        predict_inputs(detector, workspace / "inputs", workspace / "predictions", progress=progress)
        report = score_predictions(
            data=data,
            predictions=workspace / "predictions",
            report_dir=report_dir,
            model_ref=model_ref,
            weights_sha256=sha256_of_file(detector.weights_path),
            experiment_id=detector.experiment_id,
            code_commit=code_commit(Path(__file__).resolve().parent),
        )
    finally:
        shutil.rmtree(workspace, ignore_errors=True)
    return report
