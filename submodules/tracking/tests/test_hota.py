"""Golden HOTA cases worked out by hand from Luiten et al. 2020."""

import numpy as np
import pytest

from walkout_tracking.hota import ALPHAS, hota

BOX = np.array([[0.0, 0.0, 10.0, 10.0]])


def _seq(ids_per_frame, boxes_per_frame=None):
    ids = [np.array(i, dtype=int) for i in ids_per_frame]
    boxes = boxes_per_frame or [np.repeat(BOX, len(i), axis=0).reshape(-1, 4) for i in ids_per_frame]
    return ids, boxes


def test_alphas_are_the_19_thresholds():
    assert len(ALPHAS) == 19 and ALPHAS[0] == pytest.approx(0.05) and ALPHAS[-1] == pytest.approx(0.95)


def test_perfect_tracking_is_one():
    gt_ids, gt_boxes = _seq([[1]] * 4)
    result = hota(gt_ids, gt_boxes, [np.array([9])] * 4, gt_boxes)
    assert result.hota == pytest.approx(1.0) and result.deta == pytest.approx(1.0)


def test_identity_split_in_half_gives_sqrt_half():
    # One object over 4 frames, tracked as id 5 then id 6: DetA = 1, AssA = (2 * 1/2 + 2 * 1/2) / 4.
    gt_ids, gt_boxes = _seq([[1]] * 4)
    result = hota(gt_ids, gt_boxes, [np.array([5]), np.array([5]), np.array([6]), np.array([6])], gt_boxes)
    assert result.deta == pytest.approx(1.0)
    assert result.assa == pytest.approx(0.5)
    assert result.hota == pytest.approx(np.sqrt(0.5))


def test_half_missed_gives_one_half():
    # Tracked in frames 1-2 only: DetA = 2 / (2 + 2), AssA = 2 / (4 + 2 - 2) = 1/2.
    gt_ids, gt_boxes = _seq([[1]] * 4)
    tr_ids, tr_boxes = _seq([[3], [3], [], []])
    result = hota(gt_ids, gt_boxes, tr_ids, tr_boxes)
    assert result.deta == pytest.approx(0.5) and result.assa == pytest.approx(0.5)
    assert result.hota == pytest.approx(0.5)


def test_localisation_threshold_sweep():
    # IoU 0.62 with the truth in every frame: a match for alpha 0.05 .. 0.60 (12 of 19), else nothing.
    gt_ids, gt_boxes = _seq([[1]] * 3)
    shifted = [np.array([[0.0, 0.0, 10.0, 6.2]])] * 3
    result = hota(gt_ids, gt_boxes, [np.array([2])] * 3, shifted)
    assert result.hota == pytest.approx(12 / 19)
    assert result.loca == pytest.approx((12 * 0.62 + 7 * 1.0) / 19)


def test_false_positive_track_lowers_detection_accuracy():
    gt_ids, gt_boxes = _seq([[1]] * 2)
    tr_boxes = [np.array([[0.0, 0.0, 10.0, 10.0], [50.0, 50.0, 60.0, 60.0]])] * 2
    result = hota(gt_ids, gt_boxes, [np.array([1, 2])] * 2, tr_boxes)
    # 2 TP, 2 FP: DetA = 2 / 4; the true track's association is perfect.
    assert result.deta == pytest.approx(0.5) and result.assa == pytest.approx(1.0)
    assert result.hota == pytest.approx(np.sqrt(0.5))


def test_empty_sequences():
    assert hota([np.array([], int)], [np.empty((0, 4))], [np.array([], int)], [np.empty((0, 4))]).hota == 1.0
    gt_ids, gt_boxes = _seq([[1]] * 2)
    assert hota(gt_ids, gt_boxes, [np.array([], int)] * 2, [np.empty((0, 4))] * 2).hota == 0.0
