"""Evaluation metrics against pycocotools run independently, and the per-image / failure logic."""

from __future__ import annotations

import contextlib
import copy
import io
from pathlib import Path

import cv2
import numpy as np
import pytest
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

from walkout_detection.data import load_coco
from walkout_detection.errors import EvaluationError
from walkout_detection.evaluate import (
    box_iou,
    coco_metrics,
    coco_results,
    evaluate_detections,
    image_f1,
    match_image,
)
from walkout_detection.model import Detections


def _noisy_detections(dataset, seed: int) -> dict[int, Detections]:
    """Perturbed ground truth: jittered boxes, dropped boxes, swapped classes and random extras."""
    rng = np.random.default_rng(seed)
    found = {}
    for record in dataset.images:
        boxes, labels, scores = [], [], []
        for box, label in zip(record.boxes, record.labels, strict=True):
            if rng.random() < 0.15:
                continue
            jitter = rng.normal(0, 2.0, 4)
            boxes.append(box + jitter)
            labels.append(label if rng.random() > 0.1 else (label + 1) % 3)
            scores.append(rng.uniform(0.3, 1.0))
        for _ in range(int(rng.integers(0, 3))):
            x, y = rng.uniform(0, 120), rng.uniform(0, 90)
            boxes.append([x, y, x + rng.uniform(8, 30), y + rng.uniform(8, 30)])
            labels.append(int(rng.integers(0, 3)))
            scores.append(rng.uniform(0.0, 0.6))
        order = np.argsort(-np.array(scores)) if scores else np.array([], dtype=int)
        found[record.image_id] = Detections(
            boxes=np.array(boxes, np.float32).reshape(-1, 4)[order],
            scores=np.array(scores, np.float32)[order],
            labels=np.array(labels, np.int64)[order],
        )
    return found


def _reference(coco_dict: dict, results: list[dict], category_ids: list[int] | None = None) -> np.ndarray:
    """COCOeval.summarize() stats, straight from pycocotools (optionally for some categories only)."""
    with contextlib.redirect_stdout(io.StringIO()):
        gt = COCO()
        gt.dataset = copy.deepcopy(coco_dict)
        gt.createIndex()
        evaluator = COCOeval(gt, gt.loadRes(copy.deepcopy(results)), "bbox")
        if category_ids is not None:
            evaluator.params.catIds = category_ids
        evaluator.evaluate()
        evaluator.accumulate()
        evaluator.summarize()
    return evaluator.stats


def test_metrics_equal_pycocotools(small_dataset: Path) -> None:
    dataset = load_coco(small_dataset)
    detections = _noisy_detections(dataset, seed=0)
    results = coco_results(dataset, detections)
    names = dict(zip(dataset.category_ids, dataset.class_names, strict=True))
    metrics, per_class = coco_metrics(dataset.coco, results, class_names=names)
    stats = _reference(dataset.coco, results)
    assert 0.2 < stats[0] < 0.95  # the fixture is neither trivial nor hopeless
    assert metrics["AP"] == pytest.approx(stats[0], abs=1e-12)
    assert metrics["AP50"] == pytest.approx(stats[1], abs=1e-12)
    assert metrics["AP75"] == pytest.approx(stats[2], abs=1e-12)
    assert metrics["AR100"] == pytest.approx(stats[8], abs=1e-12)
    # Per-class values read from the precision array equal COCOeval run on that category alone.
    assert set(per_class) == {"person", "sku_red", "sku_blue"}
    for category_id, name in names.items():
        single = _reference(dataset.coco, results, category_ids=[category_id])
        assert per_class[name]["AP"] == pytest.approx(single[0], abs=1e-12), name
        assert per_class[name]["AP50"] == pytest.approx(single[1], abs=1e-12), name
    assert len({round(values["AP"], 6) for values in per_class.values()}) == 3


def test_perfect_detections_score_one(small_dataset: Path) -> None:
    dataset = load_coco(small_dataset)
    perfect = {
        record.image_id: Detections(
            boxes=record.boxes.copy(),
            scores=np.ones(len(record.labels), np.float32),
            labels=record.labels.copy(),
        )
        for record in dataset.images
    }
    result = evaluate_detections(dataset, perfect, score_threshold=0.5, match_iou=0.5)
    assert result.metrics["AP"] == pytest.approx(1.0)
    assert all(values["AP50"] == pytest.approx(1.0) for values in result.per_class.values())
    assert all(sample["score"] == 1.0 for sample in result.per_sample)
    assert result.failures == []


def test_no_detections_give_zero_not_an_error(small_dataset: Path) -> None:
    dataset = load_coco(small_dataset)
    empty = {
        record.image_id: Detections(
            np.zeros((0, 4), np.float32), np.zeros(0, np.float32), np.zeros(0, np.int64)
        )
        for record in dataset.images
    }
    result = evaluate_detections(dataset, empty, score_threshold=0.5, match_iou=0.5)
    assert result.metrics["AP50"] == 0.0
    assert all(values["AP50"] == 0.0 for values in result.per_class.values())
    assert {failure["kind"] for failure in result.failures} == {"missed"}


def test_dataset_without_annotations_cannot_be_evaluated(small_dataset: Path) -> None:
    dataset = load_coco(small_dataset)
    coco = dict(dataset.coco, annotations=[])
    with pytest.raises(EvaluationError, match="no annotations"):
        coco_metrics(coco, [], class_names={1: "person"})


def test_box_iou() -> None:
    first = np.array([[0, 0, 10, 10]], np.float64)
    second = np.array([[0, 0, 10, 10], [5, 0, 15, 10], [20, 20, 30, 30]], np.float64)
    np.testing.assert_allclose(box_iou(first, second), [[1.0, 1 / 3, 0.0]])


def _one_image_case(small_dataset: Path):
    """The first image's ground truth plus hand-made detections: one exact hit, one confused class,
    one miss, one false positive and one low-score box (below the threshold: ignored)."""
    dataset = load_coco(small_dataset)
    record = next(r for r in dataset.images if len(r.labels) >= 3)
    boxes = [record.boxes[0], record.boxes[1] + 0.5, np.array([150, 2, 158, 10], np.float32), record.boxes[2]]
    labels = [record.labels[0], (record.labels[1] + 1) % 3, 0, record.labels[2]]
    scores = [0.9, 0.8, 0.7, 0.1]
    found = Detections(np.array(boxes, np.float32), np.array(scores, np.float32), np.array(labels, np.int64))
    return dataset, record, found


def test_per_image_f1_recall_and_failure_kinds(small_dataset: Path, tmp_path: Path) -> None:
    dataset, record, found = _one_image_case(small_dataset)
    match = match_image(record, found, score_threshold=0.5, iou_threshold=0.5)
    true_positives = 1
    false_positives = 2  # the confused box and the stray box
    false_negatives = len(record.labels) - 1
    expected_f1 = 2 * true_positives / (2 * true_positives + false_positives + false_negatives)
    assert image_f1(match) == pytest.approx(expected_f1)

    detections = {
        r.image_id: Detections(r.boxes.copy(), np.ones(len(r.labels), np.float32), r.labels.copy())
        for r in dataset.images
    }
    detections[record.image_id] = found
    result = evaluate_detections(
        dataset, detections, score_threshold=0.5, match_iou=0.5, max_failure_images=5, debug_dir=tmp_path
    )
    sample = next(s for s in result.per_sample if s["id"] == record.sample_id)
    assert sample["score"] == pytest.approx(expected_f1)
    first_class = dataset.class_names[record.labels[0]]
    present = record.labels == record.labels[0]
    assert sample["classes"][first_class] == pytest.approx(1 / present.sum())
    failures = [f for f in result.failures if f["sample_id"] == record.sample_id]
    kinds = sorted(f["kind"] for f in failures)
    assert kinds == sorted(["confused", "false_positive"] + ["missed"] * (len(record.labels) - 2))
    confused = next(f for f in failures if f["kind"] == "confused")
    assert confused["class"] == dataset.class_names[record.labels[1]]
    assert confused["predicted"].startswith(dataset.class_names[(record.labels[1] + 1) % 3])
    image = tmp_path / confused["image"]
    assert image.is_file()
    assert cv2.imread(str(image)).shape[:2] == (record.height * 3, record.width * 3)
    assert len(result.failures) == len(failures)  # every other image is perfect
