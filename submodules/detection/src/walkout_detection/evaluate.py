"""Evaluation: COCO AP through pycocotools, per-image scores for paired tests, failure cases.

The report follows the walkout-ci report contract (schema_version 1, see ARCHITECTURE.md section 3):
metrics AP/AP50/AP75 (+ per-image F1 mean), per-class AP/AP50, per_sample scores (F1 at the
operating point, with per-class recall in `classes`), failures with debug images. `gate.py` feeds it
(the scoring stage of the gate and of the `evaluate` command alike).
"""

from __future__ import annotations

import contextlib
import copy
import io
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from tqdm import tqdm

from walkout_detection.data import CocoDataset, ImageRecord
from walkout_detection.drawing import (
    FALSE_POSITIVE_COLOUR,
    GROUND_TRUTH_COLOUR,
    MISSED_COLOUR,
    PREDICTION_COLOUR,
    draw_box,
    upscale,
)
from walkout_detection.errors import DataError, EvaluationError
from walkout_detection.model import Detections
from walkout_detection.predict import Detector

COMPONENT = "detection"
DEBUG_IMAGE_SCALE = 3


@dataclass
class EvaluationResult:
    """Everything an evaluation measured (the report body without provenance)."""

    metrics: dict[str, float]
    per_class: dict[str, dict[str, float]]
    per_sample: list[dict[str, Any]] = field(default_factory=list)
    failures: list[dict[str, Any]] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)


def run_detector(
    detector: Detector, dataset: CocoDataset, *, batch_size: int = 16, progress: bool = True
) -> tuple[dict[int, Detections], float]:
    """Detections for every image of the dataset (keyed by COCO image id) and the inference seconds."""
    detections: dict[int, Detections] = {}
    elapsed = 0.0
    records = dataset.images
    for start in tqdm(
        range(0, len(records), batch_size), desc="detect", unit="batch", disable=not progress, leave=False
    ):
        chunk = records[start : start + batch_size]
        frames = []
        for record in chunk:
            frame = cv2.imread(str(record.path), cv2.IMREAD_COLOR)
            if frame is None:
                raise DataError(f"image {record.path} is missing or cannot be decoded")
            frames.append(frame)
        began = time.perf_counter()
        outputs = detector.detect(frames)
        elapsed += time.perf_counter() - began
        detections.update({record.image_id: result for record, result in zip(chunk, outputs, strict=True)})
    return detections, elapsed


def coco_results(dataset: CocoDataset, detections: dict[int, Detections]) -> list[dict[str, Any]]:
    """COCO result records [{"image_id", "category_id", "bbox": [x, y, w, h], "score"}]; detections of
    model classes the dataset lacks (category id -1) are dropped."""
    results = []
    for image_id, found in detections.items():
        for box, score, label in zip(found.boxes, found.scores, found.labels, strict=True):
            category_id = dataset.category_ids[int(label)]
            if category_id < 0:
                continue
            x1, y1, x2, y2 = (float(value) for value in box)
            results.append(
                {
                    "image_id": image_id,
                    "category_id": category_id,
                    "bbox": [x1, y1, x2 - x1, y2 - y1],
                    "score": float(score),
                }
            )
    return results


def _ground_truth_for_cocoeval(coco: dict[str, Any]) -> dict[str, Any]:
    """A copy of the COCO dict with the fields COCOeval needs but COCO files may omit (area, iscrowd)."""
    ground_truth = copy.deepcopy(coco)
    for annotation in ground_truth["annotations"]:
        annotation.setdefault("iscrowd", 0)
        if "area" not in annotation:
            annotation["area"] = float(annotation["bbox"][2] * annotation["bbox"][3])
    ground_truth.setdefault("info", {})
    return ground_truth


def coco_metrics(
    coco: dict[str, Any], results: list[dict[str, Any]], *, class_names: dict[int, str]
) -> tuple[dict[str, float], dict[str, dict[str, float]]]:
    """COCOeval bbox metrics.

    coco: ground-truth COCO dict; results: COCO result records; class_names: {category_id: name}.
    Returns (metrics {"AP", "AP50", "AP75", "AP_small", "AP_medium", "AP_large", "AR100"},
    per_class {name: {"AP", "AP50"}}). Per-class values are read from COCOeval's precision array
    [T, R, K, A, M] at area "all" and the largest maxDets; classes without ground truth are omitted.
    Detections scoring nothing (an empty result list) give zeros, not an error.
    """
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    ground_truth = _ground_truth_for_cocoeval(coco)
    if not ground_truth["annotations"]:
        raise EvaluationError("the dataset has no annotations: AP is undefined, nothing to evaluate")
    quiet = io.StringIO()
    with contextlib.redirect_stdout(quiet):
        gt = COCO()
        gt.dataset = ground_truth
        gt.createIndex()
        if not results:
            metrics = dict.fromkeys(("AP", "AP50", "AP75", "AP_small", "AP_medium", "AP_large", "AR100"), 0.0)
            present = {annotation["category_id"] for annotation in ground_truth["annotations"]}
            return metrics, {
                class_names[c]: {"AP": 0.0, "AP50": 0.0} for c in sorted(present) if c in class_names
            }
        dt = gt.loadRes(results)
        evaluator = COCOeval(gt, dt, "bbox")
        evaluator.evaluate()
        evaluator.accumulate()
        evaluator.summarize()
    stats = evaluator.stats
    # -1 in COCOeval's stats means "no ground truth in this area range": report 0 only for the main metrics.
    metrics = {
        "AP": max(float(stats[0]), 0.0),
        "AP50": max(float(stats[1]), 0.0),
        "AP75": max(float(stats[2]), 0.0),
        "AP_small": float(stats[3]),
        "AP_medium": float(stats[4]),
        "AP_large": float(stats[5]),
        "AR100": float(stats[8]),
    }
    metrics = {key: value for key, value in metrics.items() if value >= 0}
    precision = evaluator.eval["precision"]
    area_all = evaluator.params.areaRngLbl.index("all")
    per_class: dict[str, dict[str, float]] = {}
    for k, category_id in enumerate(evaluator.params.catIds):
        curves = precision[:, :, k, area_all, -1]
        valid = curves[curves > -1]
        if valid.size == 0 or category_id not in class_names:
            continue
        at50 = curves[0][curves[0] > -1]
        per_class[class_names[category_id]] = {
            "AP": float(valid.mean()),
            "AP50": float(at50.mean()) if at50.size else 0.0,
        }
    return metrics, per_class


def box_iou(first: np.ndarray, second: np.ndarray) -> np.ndarray:
    """IoU matrix [N, M] of boxes first [N, 4] and second [M, 4] (x1 y1 x2 y2)."""
    if len(first) == 0 or len(second) == 0:
        return np.zeros((len(first), len(second)), dtype=np.float64)
    top_left = np.maximum(first[:, None, :2], second[None, :, :2])
    bottom_right = np.minimum(first[:, None, 2:], second[None, :, 2:])
    intersection = np.clip(bottom_right - top_left, 0, None).prod(axis=2)
    area_first = (first[:, 2:] - first[:, :2]).prod(axis=1)
    area_second = (second[:, 2:] - second[:, :2]).prod(axis=1)
    return intersection / np.maximum(area_first[:, None] + area_second[None, :] - intersection, 1e-12)


@dataclass
class ImageMatch:
    """Greedy same-class matching of one image's detections (above the threshold) to its ground truth.

    gt_matched: bool [N]; pred_matched: bool [M] (predictions sorted by decreasing score).
    """

    gt_matched: np.ndarray
    pred_matched: np.ndarray
    boxes: np.ndarray
    scores: np.ndarray
    labels: np.ndarray


def match_image(
    record: ImageRecord, found: Detections, *, score_threshold: float, iou_threshold: float
) -> ImageMatch:
    """Match detections scoring >= score_threshold to ground truth of the same class at IoU >= iou_threshold,
    highest score first (the COCO rule at a single operating point)."""
    keep = found.scores >= score_threshold
    order = np.argsort(-found.scores[keep], kind="stable")
    boxes, scores, labels = found.boxes[keep][order], found.scores[keep][order], found.labels[keep][order]
    ious = box_iou(boxes.astype(np.float64), record.boxes.astype(np.float64))
    gt_matched = np.zeros(len(record.boxes), dtype=bool)
    pred_matched = np.zeros(len(boxes), dtype=bool)
    for p in range(len(boxes)):
        candidates = np.where((record.labels == labels[p]) & ~gt_matched & (ious[p] >= iou_threshold))[0]
        if len(candidates):
            best = candidates[np.argmax(ious[p, candidates])]
            gt_matched[best] = True
            pred_matched[p] = True
    return ImageMatch(
        gt_matched=gt_matched, pred_matched=pred_matched, boxes=boxes, scores=scores, labels=labels
    )


def image_f1(match: ImageMatch) -> float:
    """F1 = 2TP / (2TP + FP + FN); 1.0 for an image with neither ground truth nor detections."""
    true_positives = int(match.gt_matched.sum())
    denominator = 2 * true_positives + int((~match.pred_matched).sum()) + int((~match.gt_matched).sum())
    return 1.0 if denominator == 0 else 2 * true_positives / denominator


def class_recalls(record: ImageRecord, match: ImageMatch, class_names: list[str]) -> dict[str, float]:
    """Recall of each class present in the image's ground truth: matched / present."""
    recalls = {}
    for label in np.unique(record.labels):
        present = record.labels == label
        recalls[class_names[int(label)]] = float(match.gt_matched[present].mean())
    return recalls


def _rounded(box: np.ndarray) -> list[float]:
    return [round(float(value), 1) for value in box]


def image_failures(
    record: ImageRecord, match: ImageMatch, class_names: list[str], *, iou_threshold: float
) -> list[dict[str, Any]]:
    """Failure records of one image: a missed box that an unmatched detection of another class covers
    is "confused"; other missed boxes are "missed"; remaining unmatched detections are "false_positive"."""
    failures = []
    unmatched_predictions = set(np.where(~match.pred_matched)[0].tolist())
    ious = box_iou(record.boxes.astype(np.float64), match.boxes.astype(np.float64))
    for g in np.where(~match.gt_matched)[0]:
        expected = class_names[int(record.labels[g])]
        box = _rounded(record.boxes[g])
        candidates = [p for p in unmatched_predictions if ious[g, p] >= iou_threshold]
        if candidates:
            p = max(candidates, key=lambda index: ious[g, index])
            unmatched_predictions.discard(p)
            predicted = class_names[int(match.labels[p])]
            failures.append(
                {
                    "sample_id": record.sample_id,
                    "class": expected,
                    "kind": "confused",
                    "expected": f"{expected} at {box}",
                    "predicted": f"{predicted} ({match.scores[p]:.2f}) at {_rounded(match.boxes[p])}",
                }
            )
        else:
            failures.append(
                {
                    "sample_id": record.sample_id,
                    "class": expected,
                    "kind": "missed",
                    "expected": f"{expected} at {box}",
                    "predicted": "nothing",
                }
            )
    for p in sorted(unmatched_predictions):
        predicted = class_names[int(match.labels[p])]
        failures.append(
            {
                "sample_id": record.sample_id,
                "class": predicted,
                "kind": "false_positive",
                "expected": "nothing",
                "predicted": f"{predicted} ({match.scores[p]:.2f}) at {_rounded(match.boxes[p])}",
            }
        )
    return failures


def draw_failure_image(record: ImageRecord, match: ImageMatch, class_names: list[str]) -> np.ndarray:
    """Debug frame (upscaled): ground truth thin green, matched detections orange, missed ground truth
    thick red, false detections thick yellow, each labelled with its class."""
    frame = cv2.imread(str(record.path), cv2.IMREAD_COLOR)
    if frame is None:
        raise DataError(f"image {record.path} is missing or cannot be decoded")
    canvas = upscale(frame, DEBUG_IMAGE_SCALE)
    scale = DEBUG_IMAGE_SCALE
    for box, label, matched in zip(record.boxes, record.labels, match.gt_matched, strict=True):
        colour, thickness = (GROUND_TRUTH_COLOUR, 1) if matched else (MISSED_COLOUR, 3)
        prefix = "" if matched else "MISSED "
        draw_box(canvas, box * scale, colour, text=prefix + class_names[int(label)], thickness=thickness)
    for box, score, label, matched in zip(
        match.boxes, match.scores, match.labels, match.pred_matched, strict=True
    ):
        colour, thickness = (PREDICTION_COLOUR, 1) if matched else (FALSE_POSITIVE_COLOUR, 2)
        text = "" if matched else f"{class_names[int(label)]} {score:.2f}"
        draw_box(canvas, box * scale, colour, text=text, thickness=thickness)
    return canvas


def evaluate_detections(
    dataset: CocoDataset,
    detections: dict[int, Detections],
    *,
    score_threshold: float,
    match_iou: float,
    max_failure_images: int = 0,
    debug_dir: Path | None = None,
) -> EvaluationResult:
    """COCO metrics + per-image scores + failures (with up to max_failure_images debug images written
    to debug_dir/images/<sample_id>.png, paths in the records relative to debug_dir)."""
    names_by_id = {
        category_id: name
        for category_id, name in zip(dataset.category_ids, dataset.class_names, strict=True)
        if category_id >= 0
    }
    metrics, per_class = coco_metrics(
        dataset.coco, coco_results(dataset, detections), class_names=names_by_id
    )
    per_sample = []
    failures: list[dict[str, Any]] = []
    images_written = 0
    for record in dataset.images:
        found = detections.get(record.image_id)
        if found is None:
            raise EvaluationError(f"no detections were computed for image {record.sample_id}")
        match = match_image(record, found, score_threshold=score_threshold, iou_threshold=match_iou)
        per_sample.append(
            {
                "id": record.sample_id,
                "score": image_f1(match),
                "classes": class_recalls(record, match, dataset.class_names),
            }
        )
        found_failures = image_failures(record, match, dataset.class_names, iou_threshold=match_iou)
        if found_failures and debug_dir is not None and images_written < max_failure_images:
            relative = f"images/{record.sample_id}.png"
            (debug_dir / "images").mkdir(parents=True, exist_ok=True)
            cv2.imwrite(str(debug_dir / relative), draw_failure_image(record, match, dataset.class_names))
            images_written += 1
            for failure in found_failures:
                failure["image"] = relative
        failures.extend(found_failures)
    metrics["F1_per_image"] = (
        float(np.mean([sample["score"] for sample in per_sample])) if per_sample else 0.0
    )
    return EvaluationResult(metrics=metrics, per_class=per_class, per_sample=per_sample, failures=failures)


def build_report(
    result: EvaluationResult,
    *,
    model_ref: str,
    weights_sha256: str,
    experiment_id: str | None,
    code_commit: str | None,
    dataset: CocoDataset,
    dataset_id: str,
    dataset_hash: str,
    score_threshold: float,
    match_iou: float,
) -> dict[str, Any]:
    """The report-contract dict (schema_version 1) for one evaluation; provenance is recorded as given."""
    return {
        "schema_version": 1,
        "component": COMPONENT,
        "experiment_id": experiment_id,
        "code_commit": code_commit,
        "model": {"ref": model_ref, "weights_sha256": weights_sha256},
        "dataset": {"id": dataset_id, "hash": dataset_hash},
        "metrics": result.metrics,
        "per_class": result.per_class,
        "per_sample": result.per_sample,
        "failures": result.failures,
        "timings": result.timings,
        # How per_sample / failures were computed, so a reader can interpret them.
        "extra": {
            "per_sample_score": "F1 at IoU >= match_iou of detections scoring >= score_threshold",
            "per_sample_classes": "per-class recall in the image (classes present in its ground truth)",
            "score_threshold": score_threshold,
            "match_iou": match_iou,
            "class_names": dataset.class_names,
        },
    }


def write_evaluation_report(report_dir: Path, report: dict[str, Any]) -> Path:
    """Validate and write report_dir/report.json atomically through walkout_ci."""
    from walkout_ci import report as report_contract
    from walkout_ci.errors import WalkoutCIError

    report_dir.mkdir(parents=True, exist_ok=True)
    try:
        written = report_contract.write_report(report_dir, report)
    except WalkoutCIError as error:
        raise EvaluationError(
            f"the evaluation report for {report_dir} does not follow the contract: {error}"
        ) from error
    return Path(written) if written else report_dir / "report.json"
