"""Drawing boxes on frames for previews and failure debug images (OpenCV, BGR uint8 images)."""

from __future__ import annotations

import cv2
import numpy as np

GROUND_TRUTH_COLOUR = (0, 200, 0)
PREDICTION_COLOUR = (255, 140, 0)
MISSED_COLOUR = (0, 0, 255)
FALSE_POSITIVE_COLOUR = (0, 215, 255)


def class_colour(label: int) -> tuple[int, int, int]:
    """A stable, distinct BGR colour per class index."""
    hue = (label * 47) % 180
    pixel = cv2.cvtColor(np.uint8([[[hue, 220, 255]]]), cv2.COLOR_HSV2BGR)[0, 0]
    return int(pixel[0]), int(pixel[1]), int(pixel[2])


def draw_box(
    image: np.ndarray, box: np.ndarray, colour: tuple[int, int, int], *, text: str = "", thickness: int = 1
) -> None:
    """Draw one box (x1 y1 x2 y2 pixels) with an optional small label above it, in place."""
    x1, y1, x2, y2 = (round(float(value)) for value in box)
    cv2.rectangle(image, (x1, y1), (x2, y2), colour, thickness)
    if text:
        cv2.putText(image, text, (x1, max(8, y1 - 2)), cv2.FONT_HERSHEY_PLAIN, 0.6, colour, 1, cv2.LINE_AA)


def upscale(image: np.ndarray, factor: int) -> np.ndarray:
    """Nearest-neighbour upscale so 10-20 px products stay legible in debug images."""
    return cv2.resize(image, None, fx=factor, fy=factor, interpolation=cv2.INTER_NEAREST)
