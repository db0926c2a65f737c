"""Crop geometry, heatmap targets and heatmap decoding: the pure functions of the top-down pipeline.

Coordinate conventions: frame and crop coordinates are pixels with integer values at pixel centres
(OpenCV's warpAffine convention). Heatmap pixel j covers crop pixels [j * stride, (j + 1) * stride),
so its centre sits at crop coordinate j * stride + (stride - 1) / 2.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import cv2
import numpy as np

# Left/right keypoint pairs in KEYPOINT_NAMES order; a horizontal flip swaps them.
FLIP_PAIRS = ((1, 2), (3, 4), (5, 6))
# Limbs drawn on debug images, in KEYPOINT_NAMES indices.
SKELETON = ((0, 1), (0, 2), (1, 2), (1, 3), (3, 5), (2, 4), (4, 6))


def box_to_crop_region(
    box_xyxy: Sequence[float], *, aspect: float, margin: float
) -> tuple[np.ndarray, np.ndarray]:
    """The region of the frame a person crop covers.

    box_xyxy: x1 y1 x2 y2 in frame pixels. aspect: crop width / crop height. margin: enlargement factor.
    Returns (center float [2] x y, size float [2] width height): the box padded to the crop's aspect
    ratio (never cropped) and enlarged by `margin`.
    """
    x1, y1, x2, y2 = (float(value) for value in box_xyxy)
    width, height = max(x2 - x1, 1.0), max(y2 - y1, 1.0)
    if width > aspect * height:
        height = width / aspect
    else:
        width = height * aspect
    center = np.array([(x1 + x2) / 2.0, (y1 + y2) / 2.0])
    return center, np.array([width, height]) * margin


def crop_matrix(
    center: np.ndarray,
    size: np.ndarray,
    output_size: tuple[int, int],
    *,
    rotation_degrees: float = 0.0,
    flip: bool = False,
) -> np.ndarray:
    """Affine map frame -> crop (float [2, 3]) for cv2.warpAffine.

    center, size: the frame region (see box_to_crop_region). output_size: (width, height) of the crop.
    rotation_degrees rotates the content counter-clockwise; flip mirrors it horizontally.
    """
    out_width, out_height = output_size
    scale = out_width / float(size[0])
    angle = math.radians(rotation_degrees)
    cos, sin = math.cos(angle) * scale, math.sin(angle) * scale
    linear = np.array([[cos, sin], [-sin, cos]])
    if flip:
        linear = np.array([[-1.0, 0.0], [0.0, 1.0]]) @ linear
    out_center = np.array([(out_width - 1) / 2.0, (out_height - 1) / 2.0])
    translation = out_center - linear @ np.asarray(center, dtype=np.float64)
    return np.hstack([linear, translation[:, None]])


def apply_affine(points_xy: np.ndarray, matrix: np.ndarray) -> np.ndarray:
    """Map points float [..., 2] through an affine matrix float [2, 3]; returns float [..., 2]."""
    points_xy = np.asarray(points_xy, dtype=np.float64)
    return points_xy @ matrix[:, :2].T + matrix[:, 2]


def invert_affine(matrix: np.ndarray) -> np.ndarray:
    """Inverse of an affine matrix float [2, 3]."""
    return cv2.invertAffineTransform(np.asarray(matrix, dtype=np.float64))


def warp_crop(image_bgr: np.ndarray, matrix: np.ndarray, output_size: tuple[int, int]) -> np.ndarray:
    """Cut the crop out of a frame: uint8 [H, W, 3] -> uint8 [out_height, out_width, 3], black outside."""
    return cv2.warpAffine(
        image_bgr, matrix, output_size, flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT, borderValue=0
    )


def crop_to_heatmap(points_xy: np.ndarray, stride: int) -> np.ndarray:
    """Crop pixel coordinates float [..., 2] -> heatmap pixel coordinates (see module docstring)."""
    return (np.asarray(points_xy, dtype=np.float64) - (stride - 1) / 2.0) / stride


def heatmap_to_crop(points_xy: np.ndarray, stride: int) -> np.ndarray:
    """Heatmap pixel coordinates float [..., 2] -> crop pixel coordinates."""
    return np.asarray(points_xy, dtype=np.float64) * stride + (stride - 1) / 2.0


def gaussian_targets(
    points_xy: np.ndarray, valid: np.ndarray, heatmap_size: tuple[int, int], sigma: float
) -> tuple[np.ndarray, np.ndarray]:
    """Target heatmaps for one person.

    points_xy: float [K, 2] keypoints in heatmap pixels. valid: bool [K] (labelled keypoints).
    heatmap_size: (height, width). sigma: Gaussian standard deviation in heatmap pixels.
    Returns (heatmaps float32 [K, height, width] with peak 1 at each keypoint, weights float32 [K]);
    a keypoint that is unlabelled or whose peak falls outside the heatmap gets weight 0 and an all-zero
    heatmap (the network is neither rewarded nor punished for it).
    """
    height, width = heatmap_size
    ys = np.arange(height, dtype=np.float32)[:, None]
    xs = np.arange(width, dtype=np.float32)[None, :]
    heatmaps = np.zeros((len(points_xy), height, width), dtype=np.float32)
    weights = np.zeros(len(points_xy), dtype=np.float32)
    for index, ((x, y), is_valid) in enumerate(zip(points_xy, valid, strict=True)):
        if not is_valid or not (-0.5 <= x <= width - 0.5 and -0.5 <= y <= height - 0.5):
            continue
        heatmaps[index] = np.exp(-((xs - x) ** 2 + (ys - y) ** 2) / (2.0 * sigma**2))
        weights[index] = 1.0
    return heatmaps, weights


def decode_heatmaps(heatmaps: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Sub-pixel keypoint locations from heatmaps.

    heatmaps: float [N, K, H, W]. Returns (points float [N, K, 2] x y in heatmap pixels, confidence
    float [N, K] = the peak value clipped to [0, 1]).

    The argmax is refined per axis by fitting a parabola through the log of the peak and its two
    neighbours: for a Gaussian blob that fit is exact (the log of a Gaussian is a parabola), so the
    refinement recovers the centre to a small fraction of a heatmap pixel, far better than the classic
    quarter-pixel shift. The shift is clipped to half a pixel; at borders and flat peaks it falls back
    to zero.
    """
    heatmaps = np.asarray(heatmaps, dtype=np.float64)
    count, keypoints, height, width = heatmaps.shape
    flat = heatmaps.reshape(count, keypoints, -1)
    best = flat.argmax(axis=2)
    peak = np.take_along_axis(flat, best[..., None], axis=2)[..., 0]
    ys, xs = np.divmod(best, width)
    log_maps = np.log(np.clip(heatmaps, 1e-10, None))
    points = np.stack([xs, ys], axis=-1).astype(np.float64)
    for axis, (coordinate, limit) in enumerate(((xs, width), (ys, height))):
        inside = (coordinate > 0) & (coordinate < limit - 1)
        before_x, before_y = (
            (np.clip(xs - 1, 0, width - 1), ys) if axis == 0 else (xs, np.clip(ys - 1, 0, height - 1))
        )
        after_x, after_y = (
            (np.clip(xs + 1, 0, width - 1), ys) if axis == 0 else (xs, np.clip(ys + 1, 0, height - 1))
        )
        n_index, k_index = np.indices((count, keypoints))
        before = log_maps[n_index, k_index, before_y, before_x]
        center = log_maps[n_index, k_index, ys, xs]
        after = log_maps[n_index, k_index, after_y, after_x]
        curvature = before - 2.0 * center + after
        with np.errstate(divide="ignore", invalid="ignore"):
            shift = np.where(curvature < -1e-6, 0.5 * (before - after) / curvature, 0.0)
        shift = np.clip(np.nan_to_num(shift), -0.5, 0.5)
        points[..., axis] += np.where(inside, shift, 0.0)
    return points, np.clip(peak, 0.0, 1.0)
