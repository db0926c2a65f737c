from __future__ import annotations

import numpy as np
import pytest

from walkout_pose.transforms import (
    apply_affine,
    box_to_crop_region,
    crop_matrix,
    crop_to_heatmap,
    decode_heatmaps,
    gaussian_targets,
    heatmap_to_crop,
    invert_affine,
    warp_crop,
)


def test_crop_region_pads_to_the_aspect_ratio_and_applies_the_margin():
    center, size = box_to_crop_region([10, 20, 30, 60], aspect=1.0, margin=1.25)
    np.testing.assert_allclose(center, [20, 40])
    np.testing.assert_allclose(size, [50, 50])


@pytest.mark.parametrize("flip", [False, True])
def test_crop_matrix_maps_the_region_onto_the_crop_and_inverts(flip):
    matrix = crop_matrix(
        np.array([100.0, 50.0]), np.array([40.0, 40.0]), (64, 64), rotation_degrees=20, flip=flip
    )
    np.testing.assert_allclose(apply_affine(np.array([100.0, 50.0]), matrix), [31.5, 31.5])
    points = np.array([[90.0, 40.0], [120.5, 61.25]])
    np.testing.assert_allclose(
        apply_affine(apply_affine(points, matrix), invert_affine(matrix)), points, atol=1e-9
    )


def test_warp_crop_puts_a_frame_pixel_where_the_matrix_says():
    frame = np.zeros((100, 200, 3), dtype=np.uint8)
    frame[40, 120] = 255
    matrix = crop_matrix(np.array([110.0, 45.0]), np.array([32.0, 32.0]), (64, 64))
    crop = warp_crop(frame, matrix, (64, 64))
    x, y = apply_affine(np.array([120.0, 40.0]), matrix)
    peak_y, peak_x = np.unravel_index(crop[..., 0].argmax(), crop.shape[:2])
    assert abs(peak_x - x) <= 1 and abs(peak_y - y) <= 1


def test_heatmap_coordinates_round_trip():
    points = np.array([[0.0, 0.0], [13.7, 40.2]])
    for stride in (1, 2, 4):
        np.testing.assert_allclose(heatmap_to_crop(crop_to_heatmap(points, stride), stride), points)


def test_decoding_recovers_sub_pixel_positions_of_gaussian_targets():
    rng = np.random.default_rng(0)
    points = rng.uniform(2, 29, size=(7, 2))
    heatmaps, weights = gaussian_targets(points, np.ones(7, bool), (32, 32), sigma=1.5)
    decoded, confidence = decode_heatmaps(heatmaps[None])
    assert weights.tolist() == [1.0] * 7
    # Far below the 0.5 px error of a plain argmax and the ~0.25 px of the quarter-offset rule.
    np.testing.assert_allclose(decoded[0], points, atol=0.02)
    assert (confidence > 0.7).all()


def test_unlabelled_and_outside_keypoints_get_zero_weight():
    points = np.array([[5.0, 5.0], [5.0, 5.0], [40.0, 5.0]])
    heatmaps, weights = gaussian_targets(points, np.array([True, False, True]), (16, 16), sigma=1.0)
    assert weights.tolist() == [1.0, 0.0, 0.0]
    assert heatmaps[1].max() == 0 and heatmaps[2].max() == 0
