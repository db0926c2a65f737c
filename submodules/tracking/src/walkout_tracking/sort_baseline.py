"""The reference SORT tracker's logic (Bewley et al. 2016), reimplemented as the baseline.

Not used by `Tracker`. It exists so that the tests can check our scoring against the published
TUD-Campus figures (MOTA 0.632, IDF1 0.606, 6 switches) and the benchmark can time the baseline next
to our tracker on the same machine at the same moment. It reuses our pure helpers (iou_batch, the
SORT Kalman filter, one filterpy predict/update per track as SORT does) and keeps SORT's own
bookkeeping: `hit_streak` resets after a miss, tracks are reported with their Kalman estimate, no
score thresholds.
"""

from __future__ import annotations

import numpy as np
from scipy.optimize import linear_sum_assignment

from walkout_tracking.boxes import iou_batch
from walkout_tracking.kalman import filter_box, new_box_filter, predict_box, update_box


class _SortTrack:
    def __init__(self, box: np.ndarray, track_id: int) -> None:
        self.kf = new_box_filter(box)
        self.id = track_id
        self.time_since_update = 0
        self.hit_streak = 0

    def predict(self) -> np.ndarray:
        box = predict_box(self.kf)
        if self.time_since_update > 0:
            self.hit_streak = 0
        self.time_since_update += 1
        return box

    def update(self, box: np.ndarray) -> None:
        self.time_since_update = 0
        self.hit_streak += 1
        update_box(self.kf, box)


def _associate(dets: np.ndarray, trks: np.ndarray, iou_threshold: float):
    if len(trks) == 0:
        return np.empty((0, 2), dtype=int), np.arange(len(dets))
    iou = iou_batch(dets, trks)
    if min(iou.shape) > 0:
        above = (iou > iou_threshold).astype(np.int32)
        if above.sum(1).max() == 1 and above.sum(0).max() == 1:
            matched = np.stack(np.where(above), axis=1)
        else:
            rows, cols = linear_sum_assignment(-iou)
            matched = np.stack([rows, cols], axis=1)
    else:
        matched = np.empty((0, 2), dtype=int)
    matches = [m for m in matched if iou[m[0], m[1]] >= iou_threshold]
    matched_dets = {int(m[0]) for m in matches}
    unmatched_dets = np.array([d for d in range(len(dets)) if d not in matched_dets], dtype=int)
    return np.array(matches, dtype=int).reshape(-1, 2), unmatched_dets


class SortReference:
    """update(dets [N, 5] x1 y1 x2 y2 score) -> [M, 5] x1 y1 x2 y2 id, as the reference SORT."""

    def __init__(self, max_age: int = 1, min_hits: int = 3, iou_threshold: float = 0.3) -> None:
        self.max_age = max_age
        self.min_hits = min_hits
        self.iou_threshold = iou_threshold
        self.trackers: list[_SortTrack] = []
        self.frame_count = 0
        self.next_id = 1

    def update(self, dets: np.ndarray) -> np.ndarray:
        self.frame_count += 1
        predicted = [t.predict() for t in self.trackers]
        # SORT drops tracks whose prediction is NaN; our z_to_bbox returns a zero-size box instead.
        valid = [i for i, box in enumerate(predicted) if box[2] > box[0] and box[3] > box[1]]
        self.trackers = [self.trackers[i] for i in valid]
        trks = np.array([predicted[i] for i in valid]).reshape(-1, 4)
        matches, unmatched_dets = _associate(dets, trks, self.iou_threshold)
        for det_index, trk_index in matches:
            self.trackers[trk_index].update(dets[det_index, :4])
        for det_index in unmatched_dets:
            self.trackers.append(_SortTrack(dets[det_index, :4], self.next_id))
            self.next_id += 1
        out = []
        for track in reversed(list(self.trackers)):
            if track.time_since_update < 1 and (
                track.hit_streak >= self.min_hits or self.frame_count <= self.min_hits
            ):
                out.append([*filter_box(track.kf), track.id])
        self.trackers = [t for t in self.trackers if t.time_since_update <= self.max_age]
        return np.array(out, dtype=np.float64).reshape(-1, 5)
