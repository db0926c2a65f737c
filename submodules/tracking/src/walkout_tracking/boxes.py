"""Pure box geometry used by the tracker: IoU and the SORT box <-> measurement conversions.

Box format everywhere: float array [..., 4] = x1 y1 x2 y2 in pixels (x2 > x1, y2 > y1).
Measurement format `z` (SORT): [u, v, s, r] = centre x, centre y, area (w*h), aspect ratio (w/h).
"""

from __future__ import annotations

import math

import numpy as np


def iou_batch(boxes_a: np.ndarray, boxes_b: np.ndarray) -> np.ndarray:
    """Pairwise intersection-over-union.

    boxes_a: float array [N, >=4], boxes_b: float array [M, >=4], both x1 y1 x2 y2 (extra columns such
    as a score are ignored).
    Returns float array [N, M] in [0, 1]; an empty input gives an empty [N, M] matrix.
    Degenerate boxes (zero area) have IoU 0 with everything instead of NaN.
    """
    a = np.asarray(boxes_a, dtype=np.float64)
    b = np.asarray(boxes_b, dtype=np.float64)
    if a.size == 0 or b.size == 0:
        return np.zeros((len(a), len(b)), dtype=np.float64)
    a = a.reshape(-1, a.shape[-1])[:, :4]
    b = b.reshape(-1, b.shape[-1])[:, :4]
    overlap = np.minimum(a[:, None, 2:], b[None, :, 2:]) - np.maximum(a[:, None, :2], b[None, :, :2])
    np.maximum(overlap, 0.0, out=overlap)
    inter = overlap[..., 0] * overlap[..., 1]
    sizes_a = a[:, 2:] - a[:, :2]
    sizes_b = b[:, 2:] - b[:, :2]
    union = (sizes_a[:, 0] * sizes_a[:, 1])[:, None] + (sizes_b[:, 0] * sizes_b[:, 1])[None, :] - inter
    with np.errstate(divide="ignore", invalid="ignore"):
        iou = np.where(union > 0, inter / union, 0.0)
    return iou


def bbox_to_z(box: np.ndarray) -> np.ndarray:
    """Convert one box x1 y1 x2 y2 (array [4] or longer; extra columns ignored) to z = [u, v, s, r] as a
    column vector [4, 1], the Kalman filter's measurement."""
    x1, y1, x2, y2 = float(box[0]), float(box[1]), float(box[2]), float(box[3])
    width = x2 - x1
    height = y2 - y1
    return np.array([[x1 + width / 2.0], [y1 + height / 2.0], [width * height], [width / height]])


def z_to_bbox(state: np.ndarray) -> np.ndarray:
    """Convert a state or measurement whose first four entries are [u, v, s, r] back to a box.

    state: array [K] or [K, 1] with K >= 4. Returns float array [4] = x1 y1 x2 y2. A non-positive
    area or aspect (a filter that extrapolated a shrinking box too far) gives a zero-size box at the
    centre instead of NaN, so callers can drop it explicitly.
    """
    flat = np.asarray(state).ravel()
    u, v, s, r = float(flat[0]), float(flat[1]), float(flat[2]), float(flat[3])
    product = s * r
    width = math.sqrt(product) if product > 0 and s > 0 else 0.0
    height = s / width if width > 0 else 0.0
    return np.array([u - width / 2.0, v - height / 2.0, u + width / 2.0, v + height / 2.0])
