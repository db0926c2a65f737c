"""Pure association helpers: cost matrices and Hungarian assignment with gating.

Rows are tracks, columns are detections throughout, so `matches[:, 0]` indexes tracks and
`matches[:, 1]` indexes detections.
"""

from __future__ import annotations

import numpy as np
from scipy.optimize import linear_sum_assignment

# Cost given to gated-out pairs: large enough that the Hungarian solver only picks one when nothing
# else is possible, after which `linear_assignment` drops it.
INFEASIBLE = 1e6


def linear_assignment(cost: np.ndarray, max_cost: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Minimum-cost one-to-one assignment keeping only pairs with cost <= max_cost.

    cost: float array [T, D] (tracks x detections); entries > max_cost (e.g. INFEASIBLE) are gated out.
    Returns (matches int array [K, 2] of (track, detection), unmatched track indices int array,
    unmatched detection indices int array), each sorted ascending.
    """
    cost = np.asarray(cost, dtype=np.float64)
    n_tracks, n_dets = cost.shape
    if n_tracks == 0 or n_dets == 0:
        return np.empty((0, 2), dtype=np.int64), np.arange(n_tracks), np.arange(n_dets)
    feasible = cost <= max_cost
    rows, cols = np.nonzero(feasible)
    row_list, col_list = rows.tolist(), cols.tolist()
    if len(set(row_list)) != len(row_list) or len(set(col_list)) != len(col_list):
        # Some track or detection has several candidates: solve the assignment. Otherwise the
        # candidate pairs are already the optimum (the common case; SORT skips the solver too).
        rows, cols = linear_sum_assignment(np.where(feasible, cost, INFEASIBLE))
        keep = feasible[rows, cols]
        rows, cols = rows[keep], cols[keep]
        row_list, col_list = rows.tolist(), cols.tolist()
    matches = np.array([row_list, col_list], dtype=np.int64).T.reshape(-1, 2)
    matched_rows, matched_cols = set(row_list), set(col_list)
    unmatched_tracks = np.array([i for i in range(n_tracks) if i not in matched_rows], dtype=np.int64)
    unmatched_dets = np.array([j for j in range(n_dets) if j not in matched_cols], dtype=np.int64)
    return matches, unmatched_tracks, unmatched_dets


def saving_assignment(cost: np.ndarray, cost_limit: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One-to-one assignment maximising the total saving `cost_limit - cost` over matched pairs.

    cost: float array [T, D] (tracks x detections); a pair costing `cost_limit` or more (gated-out
    pairs included) is never matched. Unlike `linear_assignment`, which matches as many pairs as the
    gate allows, leaving a track and a detection unmatched is worth `cost_limit` here: when the one
    close pair (track A, detection a) can only be kept by leaving track B unmatched, A-a wins over the
    two poor pairs A-b + B-a unless those together cost less than A-a plus `cost_limit` (ByteTrack's
    `lapjv(..., cost_limit=...)`). That is the swap two tracks make when one of two people walking
    past each other was hidden for a few frames: the hidden one's track grabs the other's box and
    the other's track the leftover, rather than leaving the hidden one's track unmatched.
    Returns (matches int array [K, 2] of (track, detection), unmatched track indices, unmatched
    detection indices), each sorted ascending.
    """
    cost = np.asarray(cost, dtype=np.float64)
    n_tracks, n_dets = cost.shape
    if n_tracks == 0 or n_dets == 0:
        return np.empty((0, 2), dtype=np.int64), np.arange(n_tracks), np.arange(n_dets)
    saving = np.maximum(cost_limit - cost, 0.0)
    rows, cols = linear_sum_assignment(saving, maximize=True)
    keep = saving[rows, cols] > 0
    order = np.argsort(rows[keep], kind="stable")
    rows, cols = rows[keep][order], cols[keep][order]
    matches = np.stack([rows, cols], axis=1).astype(np.int64).reshape(-1, 2)
    unmatched_tracks = np.setdiff1d(np.arange(n_tracks), rows).astype(np.int64)
    unmatched_dets = np.setdiff1d(np.arange(n_dets), cols).astype(np.int64)
    return matches, unmatched_tracks, unmatched_dets


def cosine_distance(track_features: np.ndarray, det_features: np.ndarray) -> np.ndarray:
    """Pairwise cosine distance 1 - cos(a, b) in [0, 2].

    track_features: float array [T, D]; det_features: float array [N, D]. Rows need not be normalised.
    Returns float array [T, N].
    """
    a = np.asarray(track_features, dtype=np.float64)
    b = np.asarray(det_features, dtype=np.float64)
    if len(a) == 0 or len(b) == 0:
        return np.zeros((len(a), len(b)), dtype=np.float64)
    a = a / np.maximum(np.linalg.norm(a, axis=1, keepdims=True), 1e-12)
    b = b / np.maximum(np.linalg.norm(b, axis=1, keepdims=True), 1e-12)
    return 1.0 - a @ b.T


def within_tolerance(distance: np.ndarray, tolerance: float, rows: np.ndarray | None = None) -> np.ndarray:
    """In the chosen rows, the distances within `tolerance` of that row's smallest set to the smallest.

    distance: float array [T, D] (tracks x detections); rows: bool [T], which rows to change (None:
    all). Two shoppers in similar clothes are 0.02-0.1 apart to the appearance model, no further
    than one shopper from frame to frame: a difference that small says nothing about which of them a
    box shows, yet with a high appearance weight it outweighs where the boxes are. After this,
    detections about as close to a track as its best one differ for that track by their overlap
    alone; those clearly further keep their distance. tolerance 0 returns the distances unchanged.
    Returns float array [T, D].
    """
    distance = np.asarray(distance, dtype=np.float64)
    if tolerance <= 0 or distance.size == 0:
        return distance
    best = distance.min(axis=1, keepdims=True)
    flattened = np.where(distance <= best + tolerance, best, distance)
    if rows is None:
        return flattened
    return np.where(np.asarray(rows, dtype=bool)[:, None], flattened, distance)


def look_alike_tracks(track_features: np.ndarray, max_distance: float) -> np.ndarray:
    """Which tracks look like another track: cosine distance <= max_distance to some other row.

    track_features: float array [T, D] (rows need not be normalised). Returns bool [T]; all False
    when max_distance is 0 or there are fewer than two tracks.
    """
    features = np.asarray(track_features, dtype=np.float64)
    if max_distance <= 0 or len(features) < 2:
        return np.zeros(len(features), dtype=bool)
    between = cosine_distance(features, features)
    np.fill_diagonal(between, np.inf)
    return between.min(axis=1) <= max_distance


def reachable_pairs(
    last_boxes: np.ndarray, frames_lost: np.ndarray, det_boxes: np.ndarray, max_speed: float
) -> np.ndarray | None:
    """Which detections a track's person could have walked to since the track was last matched.

    last_boxes: float [T, 4] x1 y1 x2 y2 px, each track's last matched box; frames_lost: int [T],
    frames since then (>= 1); det_boxes: float [D, 4]. A pair is reachable when the centres are at
    most (1 + max_speed * frames_lost) heights of the last box apart: one height for where the
    detector places a box, and a walking speed in box heights per frame, so the limit holds for near
    and far persons alike. max_speed 0 returns None (no limit).
    Returns bool [T, D] or None.
    """
    if max_speed <= 0:
        return None
    last = np.asarray(last_boxes, dtype=np.float64).reshape(-1, 4)
    dets = np.asarray(det_boxes, dtype=np.float64).reshape(-1, 4)
    centre_last = (last[:, :2] + last[:, 2:]) / 2.0
    centre_det = (dets[:, :2] + dets[:, 2:]) / 2.0
    apart = np.linalg.norm(centre_last[:, None, :] - centre_det[None, :, :], axis=2)
    height = np.maximum(last[:, 3] - last[:, 1], 1.0)
    reach = (1.0 + max_speed * np.asarray(frames_lost, dtype=np.float64)) * height
    return apart <= reach[:, None]


def iou_cost(iou: np.ndarray, min_iou: float) -> np.ndarray:
    """SORT's cost: 1 - IoU, with pairs below `min_iou` gated out (INFEASIBLE). iou: [T, D] -> [T, D]."""
    cost = 1.0 - np.asarray(iou, dtype=np.float64)
    cost[np.asarray(iou) < min_iou] = INFEASIBLE
    return cost


def fused_cost(
    iou: np.ndarray,
    appearance_distance: np.ndarray,
    *,
    min_iou: float,
    max_appearance_distance: float,
    reid_appearance_distance: float,
    appearance_weight: float,
    appearance_tolerance: float = 0.0,
    tolerant_rows: np.ndarray | None = None,
    reachable: np.ndarray | None = None,
) -> np.ndarray:
    """DeepSORT-style gated cost mixing motion (IoU) and appearance (cosine distance).

    iou, appearance_distance: float arrays [T, D]. A pair is feasible when its appearance distance is
    at most `max_appearance_distance` AND either it overlaps enough (IoU >= min_iou) or it looks
    almost the same (distance <= reid_appearance_distance: re-identification after an occlusion,
    when the predicted box has drifted away). Feasible cost = w * d_app + (1 - w) * (1 - IoU), where
    d_app is the distance after `within_tolerance(distance, appearance_tolerance, tolerant_rows)`;
    the gates use the distance itself. reachable: bool [T, D] or None (all True): where a track's
    person could have walked to since it was last seen (`reachable_pairs`); re-identification without
    overlap is allowed only there. Returns float array [T, D], infeasible pairs INFEASIBLE.
    """
    iou = np.asarray(iou, dtype=np.float64)
    distance = np.asarray(appearance_distance, dtype=np.float64)
    counted = within_tolerance(distance, appearance_tolerance, tolerant_rows)
    cost = appearance_weight * counted + (1.0 - appearance_weight) * (1.0 - iou)
    reid = distance <= reid_appearance_distance
    if reachable is not None:
        reid &= np.asarray(reachable, dtype=bool)
    feasible = (distance <= max_appearance_distance) & ((iou >= min_iou) | reid)
    return np.where(feasible, cost, INFEASIBLE)
