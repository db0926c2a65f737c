"""Debug images: frames around an identity switch with the two tracks involved drawn."""

from __future__ import annotations

import cv2
import numpy as np

from walkout_tracking.motchallenge import MotTable

GT_COLOUR = (255, 255, 255)
PREVIOUS_COLOUR = (0, 0, 255)  # red (BGR): the track the person had before the switch
NEW_COLOUR = (0, 200, 0)  # green: the track the person has after it


def _draw_box(image: np.ndarray, box_xywh: np.ndarray, colour: tuple[int, int, int], label: str) -> None:
    x, y, w, h = (round(float(v)) for v in box_xywh)
    cv2.rectangle(image, (x, y), (x + w, y + h), colour, 1)
    cv2.putText(image, label, (x, max(8, y - 2)), cv2.FONT_HERSHEY_PLAIN, 0.8, colour, 1, cv2.LINE_AA)


def switch_strip(
    frames: dict[int, np.ndarray],
    gt: MotTable,
    tracks: MotTable,
    *,
    gt_id: int,
    previous_track_id: int,
    track_id: int,
    switch_frame: int,
) -> np.ndarray:
    """A horizontal strip of the given frames (frame number -> BGR uint8 [H, W, 3]) in order, each
    with the ground-truth box of `gt_id` (white), the previous track (red) and the new track (green)
    drawn and the frame number written; the switch frame is outlined in yellow. Returns uint8 [H, W*n, 3]."""
    panels = []
    for number in sorted(frames):
        image = frames[number].copy()
        for table, wanted, colour, name in (
            (gt, gt_id, GT_COLOUR, f"gt{gt_id}"),
            (tracks, previous_track_id, PREVIOUS_COLOUR, f"t{previous_track_id}"),
            (tracks, track_id, NEW_COLOUR, f"t{track_id}"),
        ):
            rows = np.flatnonzero((table.frames == number) & (table.ids == wanted))
            for row in rows:
                _draw_box(image, table.boxes[row], colour, name)
        cv2.putText(
            image, f"frame {number}", (3, 12), cv2.FONT_HERSHEY_PLAIN, 0.9, (0, 255, 255), 1, cv2.LINE_AA
        )
        if number == switch_frame:
            cv2.rectangle(image, (0, 0), (image.shape[1] - 1, image.shape[0] - 1), (0, 255, 255), 2)
        panels.append(image)
    return np.concatenate(panels, axis=1)
