"""Evaluation: run the model on every ground-truth person box of a COCO keypoints split and write the
walkout-ci report contract (ARCHITECTURE.md section 3).

What goes into the report:
- metrics: OKS keypoint AP / AP50 / AP75 / AR (pycocotools, our sigmas), PCK@0.05 and PCK@0.1 (mean
  over all labelled keypoints), wrist_PCK@0.05 / wrist_PCK@0.1 (both wrists pooled), mean_OKS.
- per_class: one "class" per keypoint name: {"PCK@0.05", "PCK@0.1", "OKS"} (OKS = mean per-keypoint
  similarity), the gate's per-class rules read these.
- per_sample: one per person (`<frame>#<annotation id>`), score = the person's OKS, classes = the
  per-keypoint similarity of each labelled keypoint (continuous in [0, 1], for paired tests).
- failures: persons with OKS below `evaluate.broken_oks`, worst first, class = their worst keypoint;
  the worst `max_failure_images` get a debug image (ground truth green, prediction red).
"""

from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import torch

from walkout_ci.errors import ReportError
from walkout_ci.gitrepo import code_commit
from walkout_ci.report import dataset_hash, sha256_of_file, write_report
from walkout_pose.config import KEYPOINT_NAMES, EvaluateConfig
from walkout_pose.data import KeypointDataset, Person, load_keypoints_dataset, read_image
from walkout_pose.draw import failure_image
from walkout_pose.errors import EvaluationError
from walkout_pose.gate import (
    group_by_frame,
    predict_inputs,
    read_inputs,
    read_predictions,
    write_inputs,
    write_predictions,
)
from walkout_pose.metrics import (
    coco_ground_truth,
    coco_keypoint_ap,
    keypoint_similarities,
    object_keypoint_similarity,
    pck_hits,
)
from walkout_pose.model import PoseNet
from walkout_pose.predict import predict_frames

WRISTS = ("left_wrist", "right_wrist")
# Keypoints below this confidence do not count towards a person's instance score (SimpleBaseline's rule).
SCORE_CONFIDENCE_FLOOR = 0.2


def predict_persons(
    model: PoseNet, dataset: KeypointDataset, persons: list[Person], *, batch_size: int, progress: bool = True
) -> tuple[np.ndarray, float]:
    """Keypoints for every person from its ground-truth box (training's validation uses this).

    Returns (float32 [N, K, 3] x y confidence in frame pixels, in `persons` order; seconds spent).
    Frames are read once; crops of several frames share a batch (the same order and batches as the
    gate's predict stage, walkout_pose.gate.group_by_frame).
    """
    groups = group_by_frame(persons)
    frames = [
        (dataset.image_paths[persons[indices[0]].image_id], np.stack([persons[i].box_xyxy for i in indices]))
        for indices in groups
    ]
    keypoints, seconds = predict_frames(model, frames, batch_size=batch_size, progress=progress)
    result = np.zeros_like(keypoints)
    result[[index for indices in groups for index in indices]] = keypoints
    return result, seconds


def instance_score(keypoints: np.ndarray) -> float:
    """COCO result score of one predicted person: mean confidence of its confident keypoints."""
    confident = keypoints[:, 2][keypoints[:, 2] > SCORE_CONFIDENCE_FLOOR]
    return float(confident.mean()) if confident.size else 0.0


def coco_results(persons: list[Person], predictions: np.ndarray, category_id: int) -> list[dict]:
    """COCO keypoint results (one per person) for pycocotools."""
    results = []
    for person, keypoints in zip(persons, predictions, strict=True):
        flat = np.concatenate([keypoints[:, :2], np.ones((len(keypoints), 1))], axis=1).reshape(-1)
        results.append(
            {
                "image_id": person.image_id,
                "category_id": category_id,
                "keypoints": [float(value) for value in flat],
                "score": instance_score(keypoints),
            }
        )
    return results


def compute_metrics(
    dataset: KeypointDataset, persons: list[Person], predictions: np.ndarray, config: EvaluateConfig
) -> dict[str, Any]:
    """All figures of a report from predictions (float [N, K, 3]) of `persons`.

    Returns {"metrics", "per_class", "per_sample", "oks" (float [N], NaN for unlabelled persons),
    "similarities" (float [N, K])}.
    """
    category_id = next(c["id"] for c in dataset.coco["categories"] if "keypoints" in c)
    ground_truth = coco_ground_truth(dataset.coco, category_id)
    metrics = coco_keypoint_ap(ground_truth, coco_results(persons, predictions, category_id), config.sigmas)
    similarities = np.array(
        [
            keypoint_similarities(person.keypoints, keypoints, person.area, config.sigmas)
            for person, keypoints in zip(persons, predictions, strict=True)
        ]
    )
    oks = np.array(
        [
            object_keypoint_similarity(person.keypoints, keypoints, person.area, config.sigmas)
            for person, keypoints in zip(persons, predictions, strict=True)
        ]
    )
    pck = {
        alpha: np.array(
            [
                pck_hits(person.keypoints, keypoints, person.box_xyxy, alpha)
                for person, keypoints in zip(persons, predictions, strict=True)
            ]
        )
        for alpha in (0.05, 0.1)
    }
    per_class = {}
    for index, name in enumerate(KEYPOINT_NAMES):
        labelled = ~np.isnan(similarities[:, index])
        if not labelled.any():
            continue
        per_class[name] = {
            "PCK@0.05": float(pck[0.05][labelled, index].mean()),
            "PCK@0.1": float(pck[0.1][labelled, index].mean()),
            "OKS": float(similarities[labelled, index].mean()),
        }
    wrist_columns = [KEYPOINT_NAMES.index(name) for name in WRISTS]
    for alpha in (0.05, 0.1):
        metrics[f"PCK@{alpha}"] = float(np.nanmean(pck[alpha]))
        metrics[f"wrist_PCK@{alpha}"] = float(np.nanmean(pck[alpha][:, wrist_columns]))
    metrics["mean_OKS"] = float(np.nanmean(oks))
    per_sample = []
    for person, person_oks, person_similarities in zip(persons, oks, similarities, strict=True):
        if np.isnan(person_oks):
            continue  # nothing labelled: no score to pair on
        classes = {
            name: float(value)
            for name, value in zip(KEYPOINT_NAMES, person_similarities, strict=True)
            if not np.isnan(value)
        }
        per_sample.append({"id": person.sample_id, "score": float(person_oks), "classes": classes})
    return {
        "metrics": metrics,
        "per_class": per_class,
        "per_sample": per_sample,
        "oks": oks,
        "similarities": similarities,
    }


def _atomic_write_image(path: Path, image: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temp_name = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=".png", dir=path.parent)
    os.close(handle)
    try:
        if not cv2.imwrite(temp_name, image):
            raise EvaluationError(f"could not write debug image {path}")
        os.replace(temp_name, path)
    except BaseException:
        Path(temp_name).unlink(missing_ok=True)
        raise


def failure_records(
    dataset: KeypointDataset,
    persons: list[Person],
    predictions: np.ndarray,
    figures: dict[str, Any],
    config: EvaluateConfig,
    report_dir: Path,
) -> list[dict]:
    """Failure entries (worst OKS first) and their debug images under report_dir/images/."""
    oks = figures["oks"]
    order = [index for index in np.argsort(np.nan_to_num(oks, nan=2.0)) if oks[index] < config.broken_oks]
    records = []
    for rank, index in enumerate(order):
        person, keypoints = persons[index], predictions[index]
        similarity = figures["similarities"][index]
        worst = int(np.nanargmin(similarity))
        image = None
        if rank < config.max_failure_images:
            relative = Path("images") / f"{person.sample_id.replace('#', '_')}.png"
            frame = read_image(dataset.image_paths[person.image_id])
            _atomic_write_image(
                report_dir / relative, failure_image(frame, person.box_xyxy, person.keypoints, keypoints)
            )
            image = relative.as_posix()
        records.append(
            {
                "sample_id": person.sample_id,
                "class": KEYPOINT_NAMES[worst],
                "kind": "mislocalized",
                "expected": {"xy": [round(float(v), 2) for v in person.keypoints[worst, :2]]},
                "predicted": {
                    "xy": [round(float(v), 2) for v in keypoints[worst, :2]],
                    "confidence": round(float(keypoints[worst, 2]), 3),
                    "person_oks": round(float(oks[index]), 4),
                },
                "image": image,
            }
        )
    return records


def dataset_identity(dataset: KeypointDataset) -> dict[str, str]:
    """{"id": split folder, "hash": walkout_ci.report.dataset_hash (sha256 of manifest.json)}.

    A plain COCO file without a manifest (a human's evaluate) is identified by the file's own sha256.
    """
    if (dataset.root / "manifest.json").is_file():
        return {"id": str(dataset.root), "hash": dataset_hash(dataset.root)}
    return {"id": str(dataset.root), "hash": sha256_of_file(dataset.annotation_path)}


def score_predictions(
    *,
    data: str | os.PathLike,
    predictions: str | os.PathLike,
    report_dir: str | os.PathLike,
    model_ref: str,
    weights_sha256: str,
    experiment_id: str | None,
    code_commit: str | None,
    config: EvaluateConfig,
    started: float | None = None,
    model_seconds: float | None = None,
    device: str | None = None,
) -> dict[str, Any]:
    """Stage 3: score a predictions folder against a split's ground truth; write report_dir/report.json.

    The only scoring path (`evaluate` ends here too). predictions: folder with predictions.json
    (walkout_pose.gate format, read strictly). model_ref / weights_sha256 / experiment_id /
    code_commit go into the report as given (the gate knows them; nothing is recomputed from a
    model). started: time.perf_counter() when the whole evaluation began (default: now);
    model_seconds: inference time, when known, for `timings.model_s` / `samples_per_s`.
    Returns the report dict. Raises DataError (split), PredictionsError (predictions file),
    EvaluationError (nothing to score, pycocotools failure, invalid report).
    """
    started = time.perf_counter() if started is None else started
    report_dir = Path(report_dir)
    dataset = load_keypoints_dataset(data)
    persons = list(dataset.persons)
    if not persons:
        raise EvaluationError(f"{dataset.annotation_path} holds no person annotations: nothing to evaluate")
    predicted = read_predictions(predictions, [person.sample_id for person in persons])
    figures = compute_metrics(dataset, persons, predicted, config)
    failures = failure_records(dataset, persons, predicted, figures, config, report_dir)
    timings: dict[str, float] = {"total_s": time.perf_counter() - started}
    if model_seconds is not None:
        timings["model_s"] = model_seconds
        timings["samples_per_s"] = len(persons) / model_seconds if model_seconds > 0 else 0.0
    extra: dict[str, Any] = {
        "persons": len(persons),
        "labelled_keypoints": {
            name: int((~np.isnan(figures["similarities"][:, index])).sum())
            for index, name in enumerate(KEYPOINT_NAMES)
        },
        "oks_sigmas": dict(zip(KEYPOINT_NAMES, config.sigmas, strict=True)),
        "pck_reference": "max(box width, box height) of the ground-truth box",
    }
    if device is not None:
        extra["device"] = device
    report = {
        "schema_version": 1,
        "component": "pose",
        "experiment_id": experiment_id,
        "code_commit": code_commit,
        "model": {"ref": model_ref, "weights_sha256": weights_sha256},
        "dataset": dataset_identity(dataset),
        "metrics": figures["metrics"],
        "per_class": figures["per_class"],
        "per_sample": figures["per_sample"],
        "failures": failures,
        "timings": timings,
        "extra": extra,
    }
    try:
        write_report(report_dir, report)
    except ReportError as error:
        raise EvaluationError(f"the evaluation produced an invalid report: {error}") from error
    return report


def evaluate_model(
    *,
    model: PoseNet,
    weights_path: Path,
    model_ref: str,
    experiment_id: str | None,
    data: str | os.PathLike,
    report_dir: str | os.PathLike,
    config: EvaluateConfig,
    progress: bool = True,
) -> dict[str, Any]:
    """Evaluate `model` on a split and write report_dir/report.json; returns the report dict.

    Exactly the gate's three stages in one process: inputs (frames + boxes) into a temp folder,
    predict from those alone, score the written predictions file. The temp folder is removed on
    return, error or interrupt. Raises DataError for unreadable data, EvaluationError when no
    trustworthy figure can be computed.
    """
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="walkout-pose-evaluate-") as work:
        inputs = write_inputs(data, Path(work) / "inputs").parent
        with torch.inference_mode():
            ids, keypoints, model_seconds = predict_inputs(
                model, read_inputs(inputs), batch_size=config.batch_size, progress=progress
            )
        predictions = write_predictions(Path(work) / "predictions", ids, keypoints).parent
        return score_predictions(
            data=data,
            predictions=predictions,
            report_dir=report_dir,
            model_ref=model_ref,
            weights_sha256=sha256_of_file(weights_path),
            experiment_id=experiment_id,
            code_commit=code_commit(Path(__file__).parent),
            config=config,
            started=started,
            model_seconds=model_seconds,
            device=str(next(model.parameters()).device),
        )
