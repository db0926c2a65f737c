"""Drawing skeletons on frames (debug images of evaluation failures, `predict --draw`)."""

from __future__ import annotations

import cv2
import numpy as np

from walkout_pose.transforms import SKELETON

GROUND_TRUTH_COLOR = (0, 200, 0)  # BGR green
PREDICTION_COLOR = (0, 0, 255)  # BGR red


def draw_skeleton(
    image_bgr: np.ndarray,
    keypoints: np.ndarray,
    *,
    color: tuple[int, int, int],
    min_value: float = 0.0,
    scale: float = 1.0,
) -> np.ndarray:
    """Draw one person in place and return the image.

    keypoints: float [K, 3] x y (visibility or confidence) in the image's original pixels; a keypoint
    is drawn when its third value is above `min_value`. scale: the image was resized by this factor.
    """
    points = [
        (round(float(x) * scale), round(float(y) * scale)) if value > min_value else None
        for x, y, value in keypoints
    ]
    for start, end in SKELETON:
        if points[start] is not None and points[end] is not None:
            cv2.line(image_bgr, points[start], points[end], color, 1, cv2.LINE_AA)
    for point in points:
        if point is not None:
            cv2.circle(image_bgr, point, 2, color, -1, cv2.LINE_AA)
    return image_bgr


def failure_image(
    frame_bgr: np.ndarray,
    box_xyxy: np.ndarray,
    ground_truth: np.ndarray,
    predicted: np.ndarray,
    *,
    upscale: int = 3,
) -> np.ndarray:
    """A close-up of one person with ground truth (green) and prediction (red) skeletons.

    box_xyxy: float [4] frame pixels. ground_truth: float [K, 3] x y visibility; predicted: float
    [K, 3] x y confidence. Returns uint8 BGR, the box plus a margin, enlarged `upscale` times.
    """
    height, width = frame_bgr.shape[:2]
    x1, y1, x2, y2 = box_xyxy
    pad = 0.25 * max(x2 - x1, y2 - y1)
    left, top = int(max(0, np.floor(x1 - pad))), int(max(0, np.floor(y1 - pad)))
    right, bottom = int(min(width, np.ceil(x2 + pad))), int(min(height, np.ceil(y2 + pad)))
    if right <= left or bottom <= top:
        left, top, right, bottom = 0, 0, width, height
    patch = cv2.resize(
        frame_bgr[top:bottom, left:right], None, fx=upscale, fy=upscale, interpolation=cv2.INTER_NEAREST
    )
    offset = np.array([left, top, 0.0])
    draw_skeleton(patch, ground_truth - offset, color=GROUND_TRUTH_COLOR, scale=upscale)
    draw_skeleton(patch, predicted - offset, color=PREDICTION_COLOR, min_value=-1.0, scale=upscale)
    return patch
