"""Drawing what the system saw and decided: preview frames and debug contact sheets (OpenCV, BGR uint8)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import cv2
import numpy as np

from walkout.observations import FrameObservation

# Pairs of keypoint indices drawn as bones (head-shoulders, shoulders, arms).
SKELETON = ((0, 1), (0, 2), (1, 2), (1, 3), (3, 5), (2, 4), (4, 6))
_FONT = cv2.FONT_HERSHEY_SIMPLEX


def _colour(track_id: int) -> tuple[int, int, int]:
    """A stable, distinct BGR colour per id."""
    hue = (track_id * 47) % 180
    hsv = np.uint8([[[hue, 200, 255]]])
    b, g, r = cv2.cvtColor(hsv, cv2.COLOR_HSV2BGR)[0, 0]
    return int(b), int(g), int(r)


def draw_observation(
    image: np.ndarray,
    observation: FrameObservation,
    *,
    shopper_of_track: Mapping[int, int] | None = None,
    min_visibility: float = 0.5,
) -> np.ndarray:
    """A copy of `image` with person boxes + ids, skeletons and product boxes + SKU names drawn."""
    canvas = image.copy()
    for product in observation.products:
        x1, y1, x2, y2 = (round(v) for v in product.box)
        cv2.rectangle(canvas, (x1, y1), (x2, y2), (255, 255, 255), 1)
        cv2.putText(canvas, product.sku, (x1, max(7, y1 - 1)), _FONT, 0.22, (255, 255, 255), 1, cv2.LINE_AA)
    for shopper in observation.shoppers:
        shopper_id = (shopper_of_track or {}).get(shopper.track_id, shopper.track_id)
        colour = _colour(shopper_id)
        x1, y1, x2, y2 = (round(v) for v in shopper.box)
        cv2.rectangle(canvas, (x1, y1), (x2, y2), colour, 1)
        cv2.putText(canvas, str(shopper_id), (x1, max(8, y1 - 2)), _FONT, 0.3, colour, 1, cv2.LINE_AA)
        points = shopper.keypoints
        for a, b in SKELETON:
            if points[a, 2] >= min_visibility and points[b, 2] >= min_visibility:
                pa = (round(points[a, 0]), round(points[a, 1]))
                pb = (round(points[b, 0]), round(points[b, 1]))
                cv2.line(canvas, pa, pb, colour, 1, cv2.LINE_AA)
        for x, y, visibility in points:
            if visibility >= min_visibility:
                cv2.circle(canvas, (round(x), round(y)), 1, colour, -1)
    return canvas


def add_cart_panel(
    image: np.ndarray, carts: Mapping[int, Mapping[str, int]], lines: Sequence[str] = ()
) -> np.ndarray:
    """`image` with a side panel listing each shopper's cart and a few extra lines (events)."""
    height = image.shape[0]
    panel = np.full((height, 150, 3), 32, dtype=np.uint8)
    y = 12
    for shopper_id, items in sorted(carts.items()):
        text = f"{shopper_id}: " + (", ".join(f"{q}x{s}" for s, q in sorted(items.items())) or "-")
        cv2.putText(panel, text[:34], (3, y), _FONT, 0.3, _colour(shopper_id), 1, cv2.LINE_AA)
        y += 11
        if y > height - 40:
            break
    for line in list(lines)[-3:]:
        cv2.putText(panel, line[:34], (3, y + 4), _FONT, 0.28, (0, 220, 255), 1, cv2.LINE_AA)
        y += 11
    return np.concatenate([image, panel], axis=1)


def contact_sheet(
    tiles: Sequence[tuple[str, np.ndarray]], *, title: str, columns: int = 4, scale: float = 1.0
) -> np.ndarray:
    """A grid of labelled images under a title bar; every tile is resized to the first tile's size."""
    if not tiles:
        raise ValueError("a contact sheet needs at least one image")
    height, width = tiles[0][1].shape[:2]
    height, width = int(height * scale), int(width * scale)
    rows = (len(tiles) + columns - 1) // columns
    sheet = np.full((rows * (height + 14) + 30, columns * width, 3), 24, dtype=np.uint8)
    cv2.putText(sheet, title[:140], (4, 18), _FONT, 0.45, (255, 255, 255), 1, cv2.LINE_AA)
    for index, (label, image) in enumerate(tiles):
        row, column = divmod(index, columns)
        x, y = column * width, 30 + row * (height + 14)
        sheet[y + 14 : y + 14 + height, x : x + width] = cv2.resize(image, (width, height))
        cv2.putText(sheet, label[:40], (x + 3, y + 11), _FONT, 0.35, (200, 255, 200), 1, cv2.LINE_AA)
    return sheet
