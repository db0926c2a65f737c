"""What the engine sees in one frame: shoppers (track id, box, keypoints) and product detections.

Both the model pipeline and oracle mode (ground truth) produce these, so the engine never knows
which one fed it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

# Keypoint order of the simulator and the pose model (ARCHITECTURE.md section 1).
KEYPOINT_NAMES = (
    "head",
    "left_shoulder",
    "right_shoulder",
    "left_elbow",
    "right_elbow",
    "left_wrist",
    "right_wrist",
)
WRIST_INDICES = {"left": 5, "right": 6}

Box = tuple[float, float, float, float]


def box_center(box: Box) -> tuple[float, float]:
    """Center (x, y) of a box given as x1 y1 x2 y2 pixels."""
    return ((box[0] + box[2]) / 2.0, (box[1] + box[3]) / 2.0)


def point_in_box(x: float, y: float, box: Box, margin: float = 0.0) -> bool:
    """True when (x, y) lies inside `box` (x1 y1 x2 y2) grown by `margin` pixels on every side."""
    return box[0] - margin <= x <= box[2] + margin and box[1] - margin <= y <= box[3] + margin


@dataclass(frozen=True)
class ShopperObservation:
    """One tracked person in one frame.

    track_id: the tracker's id (ground-truth id in oracle mode).
    box: x1 y1 x2 y2 in pixels.
    keypoints: float array [7, 3]: x, y in pixels and visibility / confidence (0 = not visible), in
        KEYPOINT_NAMES order.
    """

    track_id: int
    box: Box
    keypoints: np.ndarray

    def wrist(self, side: str, min_visibility: float) -> tuple[float, float] | None:
        """(x, y) of the left/right wrist, or None when it is not visible enough."""
        x, y, visibility = self.keypoints[WRIST_INDICES[side]]
        return (float(x), float(y)) if visibility >= min_visibility else None


@dataclass(frozen=True)
class ProductObservation:
    """One product detection: its SKU name, box (x1 y1 x2 y2 pixels) and detection score in [0, 1]."""

    sku: str
    box: Box
    score: float = 1.0


@dataclass(frozen=True)
class FrameObservation:
    """Everything the engine is told about one frame (frames are numbered from 1, as in the simulator)."""

    frame: int
    shoppers: tuple[ShopperObservation, ...]
    products: tuple[ProductObservation, ...]
