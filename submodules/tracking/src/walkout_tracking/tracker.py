"""The multi-object tracker: SORT's Kalman + Hungarian core, DeepSORT-style appearance gating and
ByteTrack's second pass for low-score detections.

Usage, once per frame (also for frames with no detections)::

    tracker = Tracker(config=TrackerConfig(), embedder=None)
    tracks = tracker.update(detections)            # motion only
    tracks = tracker.update(detections, embeddings=features)   # appearance given by the caller
    tracks = tracker.update(detections, frame=image_bgr)       # appearance computed by `embedder`

detections: float array [N, 5] = x1 y1 x2 y2 score (pixels; score in [0, 1]); [0, 5] or None for
an empty frame. embeddings: optional float array [N, D], one row per detection.
Returns tracks: float array [M, 5] = x1 y1 x2 y2 track_id (ids are positive integers, unique within
one Tracker instance, never reused), sorted by id: confirmed tracks matched in this frame, plus
confirmed tracks missed for at most `coast_frames` frames (their predicted box).

All state (tracks, the id counter, the frame counter) lives on the instance: two trackers never
share ids and nothing happens at import.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

import numpy as np
from filterpy.kalman import KalmanFilter

from walkout_tracking.association import (
    cosine_distance,
    fused_cost,
    iou_cost,
    linear_assignment,
    look_alike_tracks,
    reachable_pairs,
    saving_assignment,
)
from walkout_tracking.boxes import iou_batch
from walkout_tracking.config import TrackerConfig
from walkout_tracking.errors import DetectionsError
from walkout_tracking.kalman import new_box_filter, predict_boxes, update_boxes


class Embedder(Protocol):
    """Computes appearance features of boxes in a frame."""

    def embed(self, frame: np.ndarray, boxes: np.ndarray) -> np.ndarray:
        """frame: uint8 BGR image [H, W, 3]; boxes: float [N, 4] x1 y1 x2 y2 -> float [N, D] unit rows."""
        ...


@dataclass
class Track:
    """One tracked object. `feature` is the running mean appearance (unit vector [D]) or None."""

    track_id: int
    kf: KalmanFilter
    box: np.ndarray  # last reported box x1 y1 x2 y2 [4]
    feature: np.ndarray | None = None
    hits: int = 1
    age: int = 0
    time_since_update: int = 0
    confirmed: bool = False
    predicted: np.ndarray = field(default_factory=lambda: np.zeros(4))


def validate_detections(detections: np.ndarray | None, embeddings: np.ndarray | None) -> np.ndarray:
    """Check the documented input format and return detections as float64 [N, 5].

    Raises DetectionsError naming the problem (wrong shape, NaN/inf, x2 < x1 or y2 < y1, embeddings
    row count different from the detection count).
    """
    if detections is None:
        dets = np.empty((0, 5), dtype=np.float64)
    else:
        dets = np.asarray(detections, dtype=np.float64)
        if dets.size == 0:
            dets = dets.reshape(0, 5)
    if dets.ndim != 2 or dets.shape[1] != 5:
        raise DetectionsError(
            f"detections must be a float array [N, 5] = x1 y1 x2 y2 score, got shape {dets.shape}"
        )
    if not np.all(np.isfinite(dets)):
        row = int(np.argwhere(~np.isfinite(dets))[0, 0])
        raise DetectionsError(f"detection row {row} has a NaN or infinite value: {dets[row].tolist()}")
    bad = np.flatnonzero((dets[:, 2] < dets[:, 0]) | (dets[:, 3] < dets[:, 1]))
    if len(bad):
        row = int(bad[0])
        raise DetectionsError(
            f"detection row {row} has a negative size (need x2 >= x1 and y2 >= y1; boxes are x1 y1 x2 y2, "
            f"not x y w h): {dets[row].tolist()}"
        )
    if embeddings is not None:
        emb = np.asarray(embeddings)
        if emb.ndim != 2 or emb.shape[0] != len(dets):
            raise DetectionsError(
                f"embeddings must be an array [N, D] with one row per detection (N = {len(dets)}), "
                f"got shape {emb.shape}"
            )
    return dets


def duplicate_detections(
    boxes: np.ndarray,
    features: np.ndarray | None,
    *,
    candidates: np.ndarray,
    matched_dets: np.ndarray,
    matched_features: list[np.ndarray | None],
    max_distance: float,
    min_iou: float,
) -> set[int]:
    """The candidate detections that are second boxes on persons tracked in this frame.

    boxes: float [N, 4] x1 y1 x2 y2 (this frame's detections); features: float [N, D] unit rows or
    None; candidates: int [C] indices into boxes (unmatched detections); matched_dets: int [M]
    indices of the detections matched this frame, matched_features: the [D] features of their
    tracks (same order; None where a track has none). A candidate is a duplicate when it overlaps a
    matched detection by IoU >= min_iou and its cosine distance to that detection's track is
    <= max_distance. max_distance 0 (or no features) disables the check: returns an empty set.
    """
    if max_distance <= 0 or features is None or not len(candidates) or not len(matched_dets):
        return set()
    usable = [i for i, feature in enumerate(matched_features) if feature is not None]
    if not usable:
        return set()
    overlap = iou_batch(boxes[candidates], boxes[matched_dets[usable]])  # [C, M']
    distance = cosine_distance(features[candidates], np.stack([matched_features[i] for i in usable]))
    duplicate = np.any((overlap >= min_iou) & (distance <= max_distance), axis=1)
    return {int(index) for index in candidates[duplicate]}


def occluded_detections(boxes: np.ndarray, config: TrackerConfig) -> np.ndarray:
    """Which detections overlap another one by IoU >= config.occluded_feature_iou: their crops show
    two persons. boxes: float [N, 4] x1 y1 x2 y2. Returns bool [N]; all False when the setting is 0."""
    if config.occluded_feature_iou <= 0 or len(boxes) < 2:
        return np.zeros(len(boxes), dtype=bool)
    overlap = iou_batch(boxes, boxes)
    np.fill_diagonal(overlap, 0.0)
    return overlap.max(axis=1) >= config.occluded_feature_iou


class Tracker:
    """SORT + appearance + ByteTrack multi-object tracker. See the module docstring for formats."""

    def __init__(self, *, config: TrackerConfig | None = None, embedder: Embedder | None = None) -> None:
        self.config = config if config is not None else TrackerConfig()
        self.embedder = embedder
        self.tracks: list[Track] = []
        self.frame_count = 0
        self._next_id = 1

    def reset(self) -> None:
        """Forget every track and restart ids at 1 (use between sequences)."""
        self.tracks = []
        self.frame_count = 0
        self._next_id = 1

    def update(
        self,
        detections: np.ndarray | None = None,
        *,
        embeddings: np.ndarray | None = None,
        frame: np.ndarray | None = None,
    ) -> np.ndarray:
        """Advance one frame. See the module docstring for the input and output formats."""
        cfg = self.config
        dets = validate_detections(detections, embeddings)
        self.frame_count += 1

        keep = dets[:, 4] >= cfg.low_score
        dets = dets[keep]
        features = None
        if cfg.use_appearance:
            if embeddings is not None:
                features = np.asarray(embeddings, dtype=np.float64)[keep]
            elif frame is not None and self.embedder is not None and len(dets):
                features = np.asarray(self.embedder.embed(frame, dets[:, :4]), dtype=np.float64)
            if features is not None:
                features = features / np.maximum(np.linalg.norm(features, axis=1, keepdims=True), 1e-12)

        # Predict every track; drop those whose filter collapsed (zero-size box).
        predicted = predict_boxes([track.kf for track in self.tracks])
        valid = (predicted[:, 2] > predicted[:, 0]) & (predicted[:, 3] > predicted[:, 1])
        alive = []
        for track, box, ok in zip(self.tracks, predicted, valid, strict=True):
            track.age += 1
            track.time_since_update += 1
            if ok:
                track.predicted = box
                alive.append(track)
        self.tracks = alive
        track_boxes = predicted[valid]

        high = np.flatnonzero(dets[:, 4] >= cfg.high_score)
        low = np.flatnonzero(dets[:, 4] < cfg.high_score)

        # First pass: high-score detections against all tracks, appearance-gated when available.
        iou_high = iou_batch(track_boxes, dets[high, :4])
        track_features = [t.feature for t in self.tracks]
        if features is not None and all(f is not None for f in track_features) and len(self.tracks):
            looks = np.stack(track_features)  # [T, D]
            cost = fused_cost(
                iou_high,
                cosine_distance(looks, features[high]),
                min_iou=cfg.iou_threshold,
                max_appearance_distance=cfg.max_appearance_distance,
                reid_appearance_distance=cfg.reid_appearance_distance,
                appearance_weight=cfg.appearance_weight,
                appearance_tolerance=cfg.appearance_tolerance,
                tolerant_rows=look_alike_tracks(looks, cfg.appearance_tolerance),
                reachable=(
                    reachable_pairs(
                        np.stack([t.box for t in self.tracks]),
                        np.array([t.time_since_update for t in self.tracks]),
                        dets[high, :4],
                        cfg.reid_max_speed,
                    )
                    if cfg.reid_max_speed > 0
                    else None  # off: no per-frame work
                ),
            )
        else:
            cost = iou_cost(iou_high, cfg.iou_threshold)
        if cfg.cost_limit > 0:
            matches, unmatched_tracks, unmatched_high = saving_assignment(cost, cfg.cost_limit)
        else:
            matches, unmatched_tracks, unmatched_high = linear_assignment(cost, max_cost=1.0)
        matched_tracks = [self.tracks[i] for i in matches[:, 0]]
        matched_dets = list(high[matches[:, 1]])

        # Second pass (ByteTrack): low-score detections recover tracks that were visible last frame.
        remaining = [i for i in unmatched_tracks if self.tracks[i].time_since_update == 1]
        if len(remaining) and len(low):
            iou_low = iou_batch(track_boxes[remaining], dets[low, :4])
            low_matches, _, _ = linear_assignment(iou_cost(iou_low, cfg.second_pass_iou), max_cost=1.0)
            matched_tracks += [self.tracks[remaining[i]] for i in low_matches[:, 0]]
            matched_dets += list(low[low_matches[:, 1]])
        self._apply_matches(
            matched_tracks, dets, matched_dets, features, occluded=occluded_detections(dets[:, :4], cfg)
        )

        # Remove dead tracks: lost too long, or tentative tracks that missed.
        survivors = []
        for track in self.tracks:
            if track.time_since_update > cfg.max_age:
                continue
            if track.time_since_update > 0 and not track.confirmed and cfg.delete_tentative_on_miss:
                continue
            survivors.append(track)
        self.tracks = survivors

        # Start tracks from confident unmatched detections, except second boxes on tracked persons.
        duplicates = duplicate_detections(
            dets[:, :4],
            features,
            candidates=high[unmatched_high],
            matched_dets=np.asarray(matched_dets, dtype=np.int64),
            matched_features=[track.feature for track in matched_tracks],
            max_distance=cfg.duplicate_birth_distance,
            min_iou=cfg.duplicate_birth_iou,
        )
        for det_index in high[unmatched_high]:
            det = dets[det_index]
            if det[4] < cfg.new_track_score or det_index in duplicates:
                continue
            track = Track(track_id=self._next_id, kf=new_box_filter(det[:4]), box=det[:4].copy())
            self._next_id += 1
            if features is not None:
                track.feature = features[det_index].copy()
            track.confirmed = cfg.min_hits <= 1
            self.tracks.append(track)

        return self._report()

    def _apply_matches(
        self,
        tracks: list[Track],
        dets: np.ndarray,
        det_indices: list[int],
        features: np.ndarray | None,
        *,
        occluded: np.ndarray,
    ) -> None:
        """Correct matched tracks with their detections (one batched Kalman update); the appearance
        of a track follows its detection's feature unless that detection is `occluded` (bool [N])."""
        if not tracks:
            return
        corrected = update_boxes([track.kf for track in tracks], dets[det_indices, :4])
        use_detection = self.config.output_detection_box
        for track, det_index, box in zip(tracks, det_indices, corrected, strict=True):
            track.hits += 1
            track.time_since_update = 0
            track.box = dets[det_index, :4].copy() if use_detection else box
            if track.hits >= self.config.min_hits:
                track.confirmed = True
            if features is not None and not occluded[det_index]:
                new = features[det_index]
                if track.feature is None:
                    track.feature = new.copy()
                else:
                    momentum = self.config.embedding_momentum
                    mixed = momentum * track.feature + (1.0 - momentum) * new
                    track.feature = mixed / max(float(np.linalg.norm(mixed)), 1e-12)

    def _report(self) -> np.ndarray:
        early = self.config.report_early and self.frame_count <= self.config.min_hits
        coast = self.config.coast_frames
        rows = []
        for track in self.tracks:
            if track.time_since_update == 0 and (track.confirmed or early):
                rows.append([*track.box, float(track.track_id)])
            elif track.confirmed and 0 < track.time_since_update <= coast:
                # A missed detection (blur, occlusion) rarely means the person vanished: report the
                # motion model's prediction for a few frames instead of a gap.
                rows.append([*track.predicted, float(track.track_id)])
        if not rows:
            return np.empty((0, 5), dtype=np.float64)
        out = np.array(rows, dtype=np.float64)
        return out[np.argsort(out[:, 4], kind="stable")]
