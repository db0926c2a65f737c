"""Score system runs against ground truth and aggregate them into the report contract's metrics.

Per video: shoppers are matched to ground truth by their trajectories, then receipts, items and
events are compared (`walkout.metrics`). Over all videos: receipt exact-match rate, item precision /
recall / F1, false charges and missed items per 100 shoppers, event F1 within +/- 1 s, review rate
and frames per second; per-SKU item metrics as classes; per-video scores for paired statistics.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from walkout.errors import QCError
from walkout.groundtruth import VideoGroundTruth
from walkout.metrics import (
    EventCounts,
    ItemCounts,
    ReceiptComparison,
    compare_receipts,
    match_events,
    match_shoppers,
    relabel_events,
    relabel_receipts,
)
from walkout.results import VideoResult


@dataclass
class WrongReceipt:
    """One receipt that differs from the truth, with the frames where it went wrong."""

    shopper: str  # ground-truth shopper id, or unmatched:<engine id>
    expected: dict[str, int]
    predicted: dict[str, int]
    frames: list[int]  # frames of the events behind the difference (ground truth and predicted)
    kind: str  # false_charge | missed_item | false_charge_and_missed_item
    skus: list[str]


@dataclass
class VideoScore:
    """How one video went (picklable: it crosses process boundaries in parallel QC)."""

    video: str
    comparison: ReceiptComparison
    events: EventCounts
    receipts_issued: int
    receipts_flagged: int
    frames: int
    seconds: float
    stage_seconds: dict[str, float] = field(default_factory=dict)
    wrong: list[WrongReceipt] = field(default_factory=list)

    def sample(self) -> dict:
        """The report's per_sample entry: score = receipt exact-match rate, classes = per-SKU item F1."""
        return {
            "id": self.video,
            "score": float(self.comparison.exact_match_rate),
            "classes": {sku: float(counts.f1) for sku, counts in sorted(self.comparison.per_sku.items())},
        }


def _wrong_receipt(
    shopper: str,
    expected: dict[str, int],
    predicted: dict[str, int],
    gt_events: list[dict],
    events: list[dict],
) -> WrongReceipt:
    skus = sorted(
        sku for sku in set(expected) | set(predicted) if expected.get(sku, 0) != predicted.get(sku, 0)
    )
    over = any(predicted.get(sku, 0) > expected.get(sku, 0) for sku in skus)
    under = any(predicted.get(sku, 0) < expected.get(sku, 0) for sku in skus)
    kind = "false_charge_and_missed_item" if over and under else "false_charge" if over else "missed_item"
    frames = sorted(
        {
            int(e["frame"])
            for e in [*gt_events, *events]
            if str(e["shopper_id"]) == shopper and (e["sku"] in skus or not skus)
        }
    )
    return WrongReceipt(
        shopper=shopper, expected=expected, predicted=predicted, frames=frames, kind=kind, skus=skus
    )


def score_video(result: VideoResult, truth: VideoGroundTruth) -> VideoScore:
    """Compare one run with its video's ground truth (events within +/- 1 s = fps frames)."""
    shopper_map = match_shoppers(truth.track_boxes, result.trajectories)
    predicted = relabel_receipts(result.receipts, shopper_map)
    events = relabel_events(result.events, shopper_map)
    comparison = compare_receipts(truth.receipts, predicted)
    event_counts = match_events(
        truth.events,
        [e for e in events if e["type"] in ("pick", "put_back")],
        tolerance_frames=round(truth.fps),
    )
    wrong = [
        _wrong_receipt(
            shopper, truth.receipts.get(shopper, {}), predicted.get(shopper, {}), truth.events, events
        )
        for shopper in comparison.wrong_shoppers
    ]
    return VideoScore(
        video=result.video,
        comparison=comparison,
        events=event_counts,
        receipts_issued=len(result.receipts),
        receipts_flagged=sum(1 for reasons in result.review.values() if reasons),
        frames=result.frames,
        seconds=result.seconds,
        stage_seconds=dict(result.stage_seconds),
        wrong=wrong,
    )


def summarize(scores: list[VideoScore]) -> tuple[dict[str, float], dict[str, dict[str, float]]]:
    """(overall metrics, per-SKU metrics) over all videos.

    Rates per 100 shoppers use the number of ground-truth shoppers who left; review_rate is the
    fraction of issued receipts flagged for human review; frames_per_s is total frames over the total
    wall-clock seconds spent processing them (per process, so it is the speed of one pipeline).
    Raises QCError when no receipt at all was judged (the metrics would be 0/0).
    """
    items = ItemCounts()
    events = EventCounts()
    per_sku: dict[str, ItemCounts] = {}
    shoppers = receipts = exact = issued = flagged = frames = 0
    seconds = 0.0
    for score in scores:
        items.add(score.comparison.items)
        events.add(score.events)
        for sku, counts in score.comparison.per_sku.items():
            per_sku.setdefault(sku, ItemCounts()).add(counts)
        shoppers += score.comparison.shoppers
        receipts += score.comparison.receipts
        exact += score.comparison.exact_receipts
        issued += score.receipts_issued
        flagged += score.receipts_flagged
        frames += score.frames
        seconds += score.seconds
    if receipts == 0:
        # Every rate below would be 0/0: reporting 1.0 ("perfect") for a split on which nothing could
        # be judged would let any model pass the gate.
        raise QCError(
            f"no receipt to judge over {len(scores)} video(s): no ground-truth shopper left the store "
            "and no predicted receipt charged anything, so receipt accuracy, item and per-100-shopper "
            "metrics are undefined; use videos in which shoppers walk out"
        )
    per_hundred = 100.0 / shoppers if shoppers else 0.0
    metrics = {
        "receipt_exact_match": exact / receipts,
        "item_precision": items.precision,
        "item_recall": items.recall,
        "item_f1": items.f1,
        "false_charges_per_100": items.false_positives * per_hundred,
        "missed_items_per_100": items.false_negatives * per_hundred,
        "event_f1": events.f1,
        "review_rate": flagged / issued if issued else 0.0,
        "frames_per_s": frames / seconds if seconds > 0 else 0.0,
        "videos": float(len(scores)),
        "shoppers": float(shoppers),
        "receipts_judged": float(receipts),
        "items_true": float(items.true_positives + items.false_negatives),
    }
    per_class = {
        sku: {
            "precision": counts.precision,
            "recall": counts.recall,
            "f1": counts.f1,
            "support": float(counts.true_positives + counts.false_negatives),
        }
        for sku, counts in sorted(per_sku.items())
    }
    return metrics, per_class
