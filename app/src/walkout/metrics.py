"""System metrics: receipts, items and events of one or many videos, compared with ground truth.

Formats used throughout:
- receipts: ``{shopper_id (str): {sku (str): quantity (int > 0)}}`` for every shopper who left;
- events: ``[{"type": "pick"|"put_back", "frame": int, "shopper_id": int|str, "sku": str, ...}]``;
- track boxes: ``{track_id: {frame: [x1, y1, x2, y2]}}`` in pixels.

Predicted shopper ids are the tracker's, ground-truth ids the simulator's: `match_shoppers` maps one to
the other by how many frames their boxes overlap, one-to-one, so a fragmented or swapped track costs
receipts instead of being silently merged.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
from scipy.optimize import linear_sum_assignment

Receipts = Mapping[str, Mapping[str, int]]
TrackBoxes = Mapping[int, Mapping[int, Sequence[float]]]

UNMATCHED_PREFIX = "unmatched:"


def box_iou(box_a: Sequence[float], box_b: Sequence[float]) -> float:
    """IoU of two boxes given as x1 y1 x2 y2 in pixels (0.0 when either is empty)."""
    ix1, iy1 = max(box_a[0], box_b[0]), max(box_a[1], box_b[1])
    ix2, iy2 = min(box_a[2], box_b[2]), min(box_a[3], box_b[3])
    inter = max(0.0, ix2 - ix1) * max(0.0, iy2 - iy1)
    area_a = max(0.0, box_a[2] - box_a[0]) * max(0.0, box_a[3] - box_a[1])
    area_b = max(0.0, box_b[2] - box_b[0]) * max(0.0, box_b[3] - box_b[1])
    union = area_a + area_b - inter
    return float(inter / union) if union > 0 else 0.0


def match_shoppers(
    gt_tracks: TrackBoxes, predicted_tracks: TrackBoxes, *, iou_threshold: float = 0.3, min_frames: int = 3
) -> dict[int, int]:
    """One-to-one map predicted track id -> ground-truth track id.

    The score of a pair is the number of frames where both exist with IoU >= `iou_threshold`; the
    assignment maximises the total (Hungarian). Pairs with fewer than `min_frames` such frames stay
    unmatched (a predicted id that never really followed anyone is a phantom shopper).
    """
    gt_ids = sorted(gt_tracks)
    predicted_ids = sorted(predicted_tracks)
    if not gt_ids or not predicted_ids:
        return {}
    overlap = np.zeros((len(predicted_ids), len(gt_ids)), dtype=np.int64)
    for row, predicted_id in enumerate(predicted_ids):
        predicted_boxes = predicted_tracks[predicted_id]
        for col, gt_id in enumerate(gt_ids):
            gt_boxes = gt_tracks[gt_id]
            common = predicted_boxes.keys() & gt_boxes.keys()
            overlap[row, col] = sum(
                1 for frame in common if box_iou(predicted_boxes[frame], gt_boxes[frame]) >= iou_threshold
            )
    rows, cols = linear_sum_assignment(-overlap)
    return {
        predicted_ids[row]: gt_ids[col]
        for row, col in zip(rows, cols, strict=True)
        if overlap[row, col] >= min_frames
    }


def relabel_receipts(predicted: Receipts, shopper_map: Mapping[int, int]) -> dict[str, dict[str, int]]:
    """Predicted receipts keyed by ground-truth shopper id; unmatched ones keyed ``unmatched:<id>``."""
    relabelled: dict[str, dict[str, int]] = {}
    for shopper_id, items in predicted.items():
        gt_id = shopper_map.get(int(shopper_id))
        key = str(gt_id) if gt_id is not None else f"{UNMATCHED_PREFIX}{shopper_id}"
        relabelled[key] = {sku: int(qty) for sku, qty in items.items() if int(qty) > 0}
    return relabelled


def relabel_events(predicted: Sequence[Mapping], shopper_map: Mapping[int, int]) -> list[dict]:
    """Predicted events with `shopper_id` replaced by the matched ground-truth id (or ``unmatched:<id>``)."""
    relabelled = []
    for event in predicted:
        gt_id = shopper_map.get(int(event["shopper_id"]))
        shopper = str(gt_id) if gt_id is not None else f"{UNMATCHED_PREFIX}{event['shopper_id']}"
        relabelled.append({**event, "shopper_id": shopper})
    return relabelled


@dataclass
class ItemCounts:
    """Item-level true positives, false positives (false charges) and false negatives (missed items)."""

    true_positives: int = 0
    false_positives: int = 0
    false_negatives: int = 0

    def add(self, other: ItemCounts) -> None:
        """Accumulate another count in place."""
        self.true_positives += other.true_positives
        self.false_positives += other.false_positives
        self.false_negatives += other.false_negatives

    @property
    def precision(self) -> float:
        """TP / (TP + FP); 1.0 when nothing was charged (no false charge possible)."""
        charged = self.true_positives + self.false_positives
        return self.true_positives / charged if charged else 1.0

    @property
    def recall(self) -> float:
        """TP / (TP + FN); 1.0 when nothing was taken."""
        taken = self.true_positives + self.false_negatives
        return self.true_positives / taken if taken else 1.0

    @property
    def f1(self) -> float:
        """Harmonic mean of precision and recall (1.0 when there were no items at all)."""
        denominator = 2 * self.true_positives + self.false_positives + self.false_negatives
        return 2 * self.true_positives / denominator if denominator else 1.0


@dataclass
class ReceiptComparison:
    """How one video's predicted receipts (already relabelled to ground-truth ids) compare with truth."""

    shoppers: int = 0  # ground-truth shoppers who left
    receipts: int = 0  # receipts judged: ground-truth shoppers + phantom receipts that charge something
    exact_receipts: int = 0
    items: ItemCounts = field(default_factory=ItemCounts)
    per_sku: dict[str, ItemCounts] = field(default_factory=dict)
    wrong_shoppers: list[str] = field(default_factory=list)  # ids (gt or unmatched:<id>) of wrong receipts
    judged_shoppers: list[str] = field(default_factory=list)  # ids of every judged receipt, right or wrong

    @property
    def exact_match_rate(self) -> float:
        """Fraction of judged receipts that equal the truth exactly (1.0 for a video with none)."""
        return self.exact_receipts / self.receipts if self.receipts else 1.0


def compare_receipts(gt: Receipts, predicted: Receipts) -> ReceiptComparison:
    """Compare receipts shopper by shopper and item by item.

    `predicted` must already be keyed by ground-truth shopper id (`relabel_receipts`). A ground-truth
    shopper without a predicted receipt was charged nothing; a predicted receipt for nobody (unmatched
    id) is a phantom: all its items are false charges and it counts as a wrong receipt.
    """
    comparison = ReceiptComparison()
    for shopper_id in sorted(set(gt) | set(predicted)):
        truth = {sku: int(q) for sku, q in gt.get(shopper_id, {}).items() if int(q) > 0}
        guess = {sku: int(q) for sku, q in predicted.get(shopper_id, {}).items() if int(q) > 0}
        if shopper_id not in gt and not guess:
            continue  # an empty phantom receipt charges nobody anything
        if shopper_id in gt:
            comparison.shoppers += 1
        comparison.receipts += 1
        comparison.judged_shoppers.append(shopper_id)
        if truth == guess:
            comparison.exact_receipts += 1
        else:
            comparison.wrong_shoppers.append(shopper_id)
        for sku in set(truth) | set(guess):
            counts = ItemCounts(
                true_positives=min(truth.get(sku, 0), guess.get(sku, 0)),
                false_positives=max(0, guess.get(sku, 0) - truth.get(sku, 0)),
                false_negatives=max(0, truth.get(sku, 0) - guess.get(sku, 0)),
            )
            comparison.items.add(counts)
            comparison.per_sku.setdefault(sku, ItemCounts()).add(counts)
    return comparison


@dataclass
class EventCounts:
    """Matched, predicted and ground-truth event counts of a video."""

    matched: int = 0
    predicted: int = 0
    truth: int = 0

    def add(self, other: EventCounts) -> None:
        """Accumulate another count in place."""
        self.matched += other.matched
        self.predicted += other.predicted
        self.truth += other.truth

    @property
    def f1(self) -> float:
        """Event F1 (1.0 when there are no events on either side)."""
        denominator = self.predicted + self.truth
        return 2 * self.matched / denominator if denominator else 1.0


def match_events(
    gt: Sequence[Mapping], predicted: Sequence[Mapping], *, tolerance_frames: int
) -> EventCounts:
    """Count events that agree in type, SKU and shopper and lie within +/- `tolerance_frames`.

    Both lists must use the same shopper ids (`relabel_events`). One-to-one matching that maximises
    the number of matches and, among those, minimises the total frame offset (Hungarian).
    """
    counts = EventCounts(predicted=len(predicted), truth=len(gt))
    if not gt or not predicted:
        return counts
    big = 10**6
    cost = np.full((len(gt), len(predicted)), big, dtype=np.int64)
    for row, truth in enumerate(gt):
        for col, guess in enumerate(predicted):
            offset = abs(int(truth["frame"]) - int(guess["frame"]))
            same = (
                truth["type"] == guess["type"]
                and truth["sku"] == guess["sku"]
                and str(truth["shopper_id"]) == str(guess["shopper_id"])
            )
            if same and offset <= tolerance_frames:
                cost[row, col] = offset
    rows, cols = linear_sum_assignment(cost)
    counts.matched = int(sum(1 for row, col in zip(rows, cols, strict=True) if cost[row, col] < big))
    return counts
