"""Keypoint metrics: OKS (our implementation for per-person scores, pycocotools for AP) and PCK.

OKS (COCO's object keypoint similarity) of a prediction against a ground-truth person:

    similarity_k = exp(-d_k^2 / (2 * area * (2 * sigma_k)^2)),   OKS = mean of similarity_k over
    the labelled keypoints (visibility > 0)

with d_k the pixel distance of keypoint k and `area` the ground truth's COCO area. This is exactly
pycocotools' `COCOeval.computeOks` for persons with at least one labelled keypoint (the tests check it
on fixtures). OKS AP is computed by pycocotools itself.

PCK@alpha: a labelled keypoint is correct when d_k <= alpha * max(box width, box height) of the
ground-truth box.
"""

from __future__ import annotations

import contextlib
import copy
import io
from collections.abc import Sequence

import numpy as np

from walkout_pose.errors import EvaluationError


def keypoint_similarities(
    ground_truth: np.ndarray, predicted: np.ndarray, area: float, sigmas: Sequence[float]
) -> np.ndarray:
    """Per-keypoint OKS terms of one person.

    ground_truth: float [K, 3] x y visibility. predicted: float [K, >=2] x y (...). area: COCO area.
    Returns float [K]; NaN where the keypoint is unlabelled (visibility 0).
    """
    sigmas = np.asarray(sigmas, dtype=np.float64)
    variances = (2.0 * sigmas) ** 2
    squared = ((predicted[:, :2] - ground_truth[:, :2]) ** 2).sum(axis=1)
    # pycocotools adds machine epsilon to the area; kept for bit-level agreement with it.
    similarity = np.exp(-squared / variances / (area + np.spacing(1)) / 2.0)
    return np.where(ground_truth[:, 2] > 0, similarity, np.nan)


def object_keypoint_similarity(
    ground_truth: np.ndarray, predicted: np.ndarray, area: float, sigmas: Sequence[float]
) -> float:
    """OKS of one person in [0, 1] (mean over labelled keypoints); NaN when none is labelled."""
    similarity = keypoint_similarities(ground_truth, predicted, area, sigmas)
    if np.isnan(similarity).all():
        return float("nan")
    return float(np.nanmean(similarity))


def pck_hits(
    ground_truth: np.ndarray, predicted: np.ndarray, box_xyxy: np.ndarray, alpha: float
) -> np.ndarray:
    """Per-keypoint PCK@alpha of one person: float [K] of 1.0 / 0.0, NaN where unlabelled."""
    size = max(box_xyxy[2] - box_xyxy[0], box_xyxy[3] - box_xyxy[1])
    distance = np.linalg.norm(predicted[:, :2] - ground_truth[:, :2], axis=1)
    return np.where(ground_truth[:, 2] > 0, (distance <= alpha * size).astype(np.float64), np.nan)


def coco_ground_truth(coco: dict, category_id: int) -> dict:
    """A pycocotools-ready copy of a COCO keypoints dict: only the person category, with the fields
    COCOeval needs (`num_keypoints`, `iscrowd`, `area`) filled in where the file omits them."""
    annotations = []
    for annotation in coco["annotations"]:
        if annotation.get("category_id") != category_id:
            continue
        annotation = copy.deepcopy(annotation)
        visibility = annotation["keypoints"][2::3]
        annotation.setdefault("num_keypoints", int(sum(1 for value in visibility if value > 0)))
        annotation.setdefault("iscrowd", 0)
        annotation.setdefault("area", float(annotation["bbox"][2] * annotation["bbox"][3]))
        annotations.append(annotation)
    categories = [c for c in coco["categories"] if c.get("id") == category_id]
    return {"images": coco["images"], "annotations": annotations, "categories": categories}


def coco_keypoint_ap(ground_truth: dict, results: list[dict], sigmas: Sequence[float]) -> dict[str, float]:
    """OKS keypoint AP by pycocotools' COCOeval(iouType="keypoints") with our sigmas.

    ground_truth: see coco_ground_truth. results: COCO keypoint results ({"image_id", "category_id",
    "keypoints": [x, y, v] * K, "score"}). Returns {"AP", "AP50", "AP75", "AR", "AR50", "AR75"} plus
    "AP_medium"/"AP_large" when that area range holds persons. Raises EvaluationError when there is
    nothing to evaluate or pycocotools fails (an evaluation that errors is never a pass).
    """
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    if not results:
        raise EvaluationError("no predictions to evaluate: the dataset has no person annotations")
    if not any(annotation.get("num_keypoints", 0) > 0 for annotation in ground_truth["annotations"]):
        raise EvaluationError("no ground-truth person has a labelled keypoint: OKS AP is undefined")
    # pycocotools prints progress on stdout; library code must not.
    with contextlib.redirect_stdout(io.StringIO()):
        try:
            coco_gt = COCO()
            coco_gt.dataset = copy.deepcopy(ground_truth)
            coco_gt.createIndex()
            coco_dt = coco_gt.loadRes(copy.deepcopy(results))
            evaluator = COCOeval(coco_gt, coco_dt, iouType="keypoints")
            evaluator.params.kpt_oks_sigmas = np.asarray(sigmas, dtype=np.float64)
            evaluator.evaluate()
            evaluator.accumulate()
            evaluator.summarize()
        except Exception as error:  # pycocotools raises bare Exceptions/AssertionErrors on bad input
            raise EvaluationError(f"pycocotools COCOeval failed: {type(error).__name__}: {error}") from error
    names = ("AP", "AP50", "AP75", "AP_medium", "AP_large", "AR", "AR50", "AR75", "AR_medium", "AR_large")
    stats = {name: float(value) for name, value in zip(names, evaluator.stats, strict=True)}
    # -1 means "no ground truth in this area range": leave it out rather than report a fake number.
    return {name: value for name, value in stats.items() if value >= 0 and not name.startswith("AR_")}
