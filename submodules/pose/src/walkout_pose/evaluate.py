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
from collections import defaultdict
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import torch
from tqdm import tqdm

from walkout_ci.errors import ReportError
from walkout_ci.gitrepo import code_commit
from walkout_ci.report import write_report
from walkout_pose.config import KEYPOINT_NAMES, EvaluateConfig
from walkout_pose.data import KeypointDataset, Person, load_keypoints_dataset, read_image
from walkout_pose.draw import failure_image
from walkout_pose.errors import EvaluationError
from walkout_pose.metrics import (
    coco_ground_truth,
    coco_keypoint_ap,
    keypoint_similarities,
    object_keypoint_similarity,
    pck_hits,
)
from walkout_pose.model import PoseNet, file_sha256
from walkout_pose.predict import crop_persons, keypoints_from_crops

WRISTS = ("left_wrist", "right_wrist")
# Keypoints below this confidence do not count towards a person's instance score (SimpleBaseline's rule).
SCORE_CONFIDENCE_FLOOR = 0.2


def predict_persons(
    model: PoseNet, dataset: KeypointDataset, persons: list[Person], *, batch_size: int, progress: bool = True
) -> tuple[np.ndarray, float]:
    """Keypoints for every person from its ground-truth box.

    Returns (float32 [N, K, 3] x y confidence in frame pixels, in `persons` order; seconds spent).
    Frames are read once; crops of several frames share a batch.
    """
    by_image: dict[int, list[int]] = defaultdict(list)
    for index, person in enumerate(persons):
        by_image[person.image_id].append(index)
    result = np.zeros((len(persons), len(KEYPOINT_NAMES), 3), dtype=np.float32)
    started = time.perf_counter()
    pending_crops: list[np.ndarray] = []
    pending_matrices: list[np.ndarray] = []
    pending_indices: list[int] = []

    def flush() -> None:
        if pending_indices:
            keypoints = keypoints_from_crops(
                model, np.concatenate(pending_crops), np.concatenate(pending_matrices), batch_size=batch_size
            )
            result[pending_indices] = keypoints
            pending_crops.clear()
            pending_matrices.clear()
            pending_indices.clear()

    model.eval()
    for image_id, indices in tqdm(by_image.items(), desc="pose evaluate", unit="frame", disable=not progress):
        frame = read_image(dataset.image_paths[image_id])
        boxes = np.stack([persons[index].box_xyxy for index in indices])
        crops, matrices = crop_persons(frame, boxes, model.config)
        pending_crops.append(crops)
        pending_matrices.append(matrices)
        pending_indices.extend(indices)
        if len(pending_indices) >= batch_size:
            flush()
    flush()
    return result, time.perf_counter() - started


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
    """{"id": split folder, "hash": sha256 of its manifest.json (of the annotation file without one)}."""
    manifest = dataset.root / "manifest.json"
    hashed = manifest if manifest.is_file() else dataset.annotation_path
    return {"id": str(dataset.root), "hash": file_sha256(hashed)}


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

    Raises DataError for unreadable data, EvaluationError when no trustworthy figure can be computed.
    """
    started = time.perf_counter()
    report_dir = Path(report_dir)
    dataset = load_keypoints_dataset(data)
    persons = list(dataset.persons)
    if not persons:
        raise EvaluationError(f"{dataset.annotation_path} holds no person annotations: nothing to evaluate")
    with torch.inference_mode():
        predictions, model_seconds = predict_persons(
            model, dataset, persons, batch_size=config.batch_size, progress=progress
        )
    figures = compute_metrics(dataset, persons, predictions, config)
    failures = failure_records(dataset, persons, predictions, figures, config, report_dir)
    total = time.perf_counter() - started
    report = {
        "schema_version": 1,
        "component": "pose",
        "experiment_id": experiment_id,
        "code_commit": code_commit(Path(__file__).parent),
        "model": {"ref": model_ref, "weights_sha256": file_sha256(weights_path)},
        "dataset": dataset_identity(dataset),
        "metrics": figures["metrics"],
        "per_class": figures["per_class"],
        "per_sample": figures["per_sample"],
        "failures": failures,
        "timings": {
            "total_s": total,
            "model_s": model_seconds,
            "samples_per_s": len(persons) / model_seconds if model_seconds > 0 else 0.0,
        },
        "extra": {
            "persons": len(persons),
            "labelled_keypoints": {
                name: int((~np.isnan(figures["similarities"][:, index])).sum())
                for index, name in enumerate(KEYPOINT_NAMES)
            },
            "oks_sigmas": dict(zip(KEYPOINT_NAMES, config.sigmas, strict=True)),
            "pck_reference": "max(box width, box height) of the ground-truth box",
            "device": str(next(model.parameters()).device),
        },
    }
    try:
        write_report(report_dir, report)
    except ReportError as error:
        raise EvaluationError(f"the evaluation produced an invalid report: {error}") from error
    return report
