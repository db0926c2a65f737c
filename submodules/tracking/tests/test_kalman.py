import numpy as np
import pytest

from walkout_tracking.kalman import (
    filter_box,
    new_box_filter,
    predict_box,
    predict_boxes,
    update_box,
    update_boxes,
)


def test_new_filter_starts_on_the_box_with_sort_noise_settings():
    kf = new_box_filter(np.array([0.0, 0.0, 10.0, 20.0]))
    np.testing.assert_allclose(kf.x.ravel(), [5, 10, 200, 0.5, 0, 0, 0])
    np.testing.assert_allclose(np.diag(kf.P), [10, 10, 10, 10, 1e4, 1e4, 1e4])
    np.testing.assert_allclose(np.diag(kf.R), [1, 1, 10, 10])
    np.testing.assert_allclose(np.diag(kf.Q), [1, 1, 1, 1, 0.01, 0.01, 1e-4])


def test_predict_golden_constant_velocity():
    kf = new_box_filter(np.array([0.0, 0.0, 10.0, 20.0]))
    kf.x[4:, 0] = [2.0, -1.0, 0.0]
    box = predict_box(kf)
    np.testing.assert_allclose(box, [2.0, -1.0, 12.0, 19.0])
    # P' = F P F^T + Q: the centre variance gains the velocity variance.
    assert kf.P[0, 0] == pytest.approx(10 + 1e4 + 1)
    assert kf.P[0, 4] == pytest.approx(1e4)
    assert kf.P[4, 4] == pytest.approx(1e4 + 0.01)


def test_predict_zeroes_area_velocity_that_would_make_the_area_negative():
    kf = new_box_filter(np.array([0.0, 0.0, 10.0, 20.0]))
    kf.x[6, 0] = -500.0
    predict_box(kf)
    assert kf.x[2, 0] == pytest.approx(200.0)


def test_update_golden_scalar_gain_on_centre():
    kf = new_box_filter(np.array([0.0, 0.0, 10.0, 20.0]))
    update_box(kf, np.array([2.0, 0.0, 12.0, 20.0]))
    # Centre x: prior variance 10, measurement variance 1 -> gain 10/11 on a 2-pixel residual.
    assert kf.x[0, 0] == pytest.approx(5.0 + 2.0 * 10.0 / 11.0)
    assert kf.P[0, 0] == pytest.approx(10.0 * 1.0 / 11.0)
    np.testing.assert_allclose(filter_box(kf)[[1, 3]], [0.0, 20.0])


def _random_filters(rng, count):
    filters = []
    for _ in range(count):
        x1, y1 = rng.uniform(0, 100, 2)
        kf = new_box_filter(np.array([x1, y1, x1 + rng.uniform(5, 40), y1 + rng.uniform(10, 80)]))
        kf.x[4:, 0] = rng.normal(0, 2, 3)
        filters.append(kf)
    return filters


def test_batched_predict_and_update_equal_filterpy_per_track():
    rng = np.random.default_rng(0)
    batched = _random_filters(rng, 5)
    single = _random_filters(np.random.default_rng(0), 5)
    for _ in range(3):
        boxes = predict_boxes(batched)
        np.testing.assert_allclose(boxes, [predict_box(kf) for kf in single])
        observed = boxes + rng.normal(0, 1.5, boxes.shape)
        update_boxes(batched, observed)
        for kf, box in zip(single, observed, strict=True):
            update_box(kf, box)
    for a, b in zip(batched, single, strict=True):
        for name in ("x", "P", "x_prior", "P_prior", "x_post", "P_post", "y", "S", "SI", "K", "z"):
            np.testing.assert_allclose(getattr(a, name), getattr(b, name), rtol=1e-9, atol=1e-9, err_msg=name)
