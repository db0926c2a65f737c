import numpy as np
import pytest

from walkout_tracking.boxes import bbox_to_z, iou_batch, z_to_bbox


def test_iou_batch_golden_values():
    a = np.array([[0, 0, 10, 10], [0, 0, 2, 2]], dtype=float)
    b = np.array([[0, 0, 10, 10], [5, 0, 15, 10], [20, 20, 30, 30]], dtype=float)
    expected = np.array([[1.0, 50 / 150, 0.0], [4 / 100, 0.0, 0.0]])
    np.testing.assert_allclose(iou_batch(a, b), expected)


def test_iou_batch_ignores_score_column_and_handles_empty_and_degenerate():
    a = np.array([[0, 0, 10, 10, 0.9]])
    assert iou_batch(a, np.array([[0, 0, 10, 10, 0.1]]))[0, 0] == pytest.approx(1.0)
    assert iou_batch(a, np.empty((0, 5))).shape == (1, 0)
    assert iou_batch(np.empty((0, 4)), a).shape == (0, 1)
    assert iou_batch(np.array([[5, 5, 5, 5]]), np.array([[5, 5, 5, 5]]))[0, 0] == 0.0


def test_bbox_to_z_golden_and_round_trip():
    z = bbox_to_z(np.array([10.0, 20.0, 30.0, 60.0]))
    np.testing.assert_allclose(z.ravel(), [20.0, 40.0, 800.0, 0.5])
    assert z.shape == (4, 1)
    np.testing.assert_allclose(z_to_bbox(z), [10.0, 20.0, 30.0, 60.0])


def test_z_to_bbox_collapsed_state_gives_zero_size_box_not_nan():
    box = z_to_bbox(np.array([5.0, 6.0, -3.0, 0.5, 0, 0, 0]))
    np.testing.assert_allclose(box, [5.0, 6.0, 5.0, 6.0])
