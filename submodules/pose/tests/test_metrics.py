"""Our OKS and PCK against the reference library (pycocotools) and hand-computed values."""

from __future__ import annotations

import contextlib
import copy
import io

import numpy as np
import pytest
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

from walkout_pose.errors import EvaluationError
from walkout_pose.metrics import (
    coco_ground_truth,
    coco_keypoint_ap,
    keypoint_similarities,
    object_keypoint_similarity,
    pck_hits,
)

SIGMAS = [0.04, 0.08, 0.08, 0.06, 0.06, 0.035, 0.035]
NAMES = ["head", "left_shoulder", "right_shoulder", "left_elbow", "right_elbow", "left_wrist", "right_wrist"]


def fixture_coco(rng: np.random.Generator, images: int = 4, per_image: int = 3) -> tuple[dict, list[dict]]:
    """Ground truth with some unlabelled / occluded keypoints and noisy predictions of every person."""
    gt_images, annotations, results = [], [], []
    annotation_id = 1
    for image_id in range(1, images + 1):
        gt_images.append({"id": image_id, "file_name": f"v_{image_id:06d}.png", "width": 320, "height": 240})
        for _ in range(per_image):
            x, y = rng.uniform(20, 280), rng.uniform(20, 200)
            points = np.stack([x + rng.uniform(-12, 12, 7), y + rng.uniform(-12, 12, 7)], axis=1)
            visibility = rng.choice([0, 1, 2, 2, 2], size=7)
            visibility[0] = 2
            keypoints = np.concatenate([points, visibility[:, None]], axis=1)
            keypoints[visibility == 0, :2] = 0
            box = [x - 15, y - 15, 30.0, 30.0]
            annotations.append(
                {
                    "id": annotation_id,
                    "image_id": image_id,
                    "category_id": 1,
                    "bbox": box,
                    "area": float(rng.uniform(250, 450)),
                    "iscrowd": 0,
                    "keypoints": keypoints.reshape(-1).tolist(),
                    "num_keypoints": int((visibility > 0).sum()),
                }
            )
            noisy = points + rng.normal(0, rng.uniform(0.3, 3.0), size=points.shape)
            flat = np.concatenate([noisy, np.ones((7, 1))], axis=1).reshape(-1)
            results.append(
                {
                    "image_id": image_id,
                    "category_id": 1,
                    "keypoints": flat.tolist(),
                    "score": float(rng.uniform()),
                }
            )
            annotation_id += 1
    coco = {
        "images": gt_images,
        "annotations": annotations,
        "categories": [{"id": 1, "name": "person", "keypoints": NAMES, "skeleton": []}],
    }
    return coco, results


def reference_oks(coco: dict, results: list[dict], image_id: int) -> np.ndarray:
    """pycocotools' OKS matrix [detections, ground truths] of one image (detections sorted by score)."""
    with contextlib.redirect_stdout(io.StringIO()):
        coco_gt = COCO()
        coco_gt.dataset = copy.deepcopy(coco)
        coco_gt.createIndex()
        coco_dt = coco_gt.loadRes(copy.deepcopy(results))
        evaluator = COCOeval(coco_gt, coco_dt, iouType="keypoints")
        evaluator.params.kpt_oks_sigmas = np.array(SIGMAS)
        evaluator.params.imgIds = [image_id]
        evaluator._prepare()
        return np.asarray(evaluator.computeOks(image_id, 1))


def test_per_person_oks_matches_pycocotools_compute_oks():
    coco, results = fixture_coco(np.random.default_rng(3))
    compared = 0
    for image_id in (1, 2, 3, 4):
        image_results = [r for r in results if r["image_id"] == image_id]
        image_truth = [a for a in coco["annotations"] if a["image_id"] == image_id]
        reference = reference_oks(coco, results, image_id)
        # pycocotools orders detections by descending score.
        order = np.argsort([-r["score"] for r in image_results], kind="mergesort")
        for row, detection_index in enumerate(order):
            predicted = np.array(image_results[detection_index]["keypoints"]).reshape(7, 3)
            for column, truth in enumerate(image_truth):
                ground_truth = np.array(truth["keypoints"]).reshape(7, 3)
                ours = object_keypoint_similarity(ground_truth, predicted, truth["area"], SIGMAS)
                assert ours == pytest.approx(reference[row, column], abs=1e-12)
                compared += 1
    assert compared == 4 * 3 * 3


def test_keypoint_similarity_matches_the_coco_formula_by_hand():
    truth = np.array([[10.0, 10.0, 2], [0, 0, 0], [20.0, 20.0, 1]] + [[0, 0, 0]] * 4)
    predicted = truth.copy()
    predicted[0, 0] += 2.0
    predicted[2, 1] -= 1.0
    similarities = keypoint_similarities(truth, predicted, area=400.0, sigmas=SIGMAS)
    expected_head = np.exp(-4.0 / (2 * 400.0 * (2 * SIGMAS[0]) ** 2))
    expected_shoulder = np.exp(-1.0 / (2 * 400.0 * (2 * SIGMAS[2]) ** 2))
    assert similarities[0] == pytest.approx(expected_head, rel=1e-9)
    assert similarities[2] == pytest.approx(expected_shoulder, rel=1e-9)
    assert np.isnan(similarities[1]) and np.isnan(similarities[3:]).all()


def test_ap_uses_our_sigmas():
    coco, results = fixture_coco(np.random.default_rng(5))
    ground_truth = coco_ground_truth(coco, 1)
    strict = coco_keypoint_ap(ground_truth, results, [s / 4 for s in SIGMAS])["AP"]
    lenient = coco_keypoint_ap(ground_truth, results, [s * 4 for s in SIGMAS])["AP"]
    assert strict < lenient


def test_ap_equals_direct_cocoeval_run():
    coco, results = fixture_coco(np.random.default_rng(9))
    with contextlib.redirect_stdout(io.StringIO()):
        coco_gt = COCO()
        coco_gt.dataset = copy.deepcopy(coco)
        coco_gt.createIndex()
        evaluator = COCOeval(coco_gt, coco_gt.loadRes(copy.deepcopy(results)), iouType="keypoints")
        evaluator.params.kpt_oks_sigmas = np.array(SIGMAS)
        evaluator.evaluate()
        evaluator.accumulate()
        evaluator.summarize()
    ours = coco_keypoint_ap(coco_ground_truth(coco, 1), results, SIGMAS)
    assert ours["AP"] == pytest.approx(evaluator.stats[0])
    assert ours["AP50"] == pytest.approx(evaluator.stats[1])
    assert ours["AR"] == pytest.approx(evaluator.stats[5])


def test_perfect_predictions_give_ap_one():
    coco, _ = fixture_coco(np.random.default_rng(1))
    perfect = [
        {"image_id": a["image_id"], "category_id": 1, "keypoints": a["keypoints"], "score": 1.0}
        for a in coco["annotations"]
    ]
    assert coco_keypoint_ap(coco_ground_truth(coco, 1), perfect, SIGMAS)["AP"] == pytest.approx(1.0)


def test_ground_truth_copy_fills_fields_cocoeval_needs():
    coco, _ = fixture_coco(np.random.default_rng(2), images=1, per_image=1)
    for field in ("num_keypoints", "iscrowd", "area"):
        del coco["annotations"][0][field]
    annotation = coco_ground_truth(coco, 1)["annotations"][0]
    assert annotation["iscrowd"] == 0 and annotation["area"] == 900.0
    assert annotation["num_keypoints"] == sum(1 for v in annotation["keypoints"][2::3] if v > 0)


def test_no_predictions_is_an_error_not_a_zero():
    coco, _ = fixture_coco(np.random.default_rng(1))
    with pytest.raises(EvaluationError, match="no predictions"):
        coco_keypoint_ap(coco_ground_truth(coco, 1), [], SIGMAS)


def test_pck_uses_the_longer_box_side():
    truth = np.array([[10.0, 10.0, 2]] * 2 + [[0, 0, 0]] * 5)
    predicted = truth.copy()
    predicted[0, 0] += 3.9  # inside 0.1 * 40
    predicted[1, 0] += 4.1  # outside
    hits = pck_hits(truth, predicted, np.array([0, 0, 20, 40]), alpha=0.1)
    assert hits[:2].tolist() == [1.0, 0.0]
    assert np.isnan(hits[2:]).all()
