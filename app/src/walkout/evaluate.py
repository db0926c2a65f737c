"""Score system runs against ground truth and aggregate them into the report contract's metrics.

Per video: shoppers are matched to ground truth by their trajectories, then receipts, items and
events are compared (`walkout.metrics`). Over all videos: receipt exact-match rate, item precision /
recall / F1, false charges and missed items per 100 shoppers, event F1 within +/- 1 s, review rate
and frames per second; per-SKU item metrics as classes; per-video scores for paired statistics.

Honest statistics (issue 15): the shoppers of one video share its tracks, occlusions and crowding,
so they are not independent. `confidence_intervals` gives video-level (cluster) bootstrap intervals:
resample whole videos, add up their counts, recompute each ratio metric. `review_flag_figures` says
whether the review flags earn their keep: the share of wrong receipts that were flagged (a store sends
only flagged receipts to a person), the exact-match rate of the receipts nobody looks at, and the false
charges on those (per 100 shoppers: what reaches customers when every flagged receipt is reviewed). The
last is reported beside false_charges_per_100, never instead of it.

The video's end: a video that ends while a shopper walks out cuts the walk at an arbitrary pixel (the
simulator counts a shopper as gone once under 5% of the body is in view). A whole receipt issued one
frame early is then a false charge of everything they carry, one issued late a missed receipt. Those
stay in every metric (the video's end is part of the data), and `video_end_figures` says how much of
each metric they are, and how many of the early receipts charged exactly what the shopper carried.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

import numpy as np

from walkout.errors import QCError
from walkout.groundtruth import VideoGroundTruth, cart_from_events
from walkout.metrics import (
    UNMATCHED_PREFIX,
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
    review: list[str] = field(default_factory=list)  # the receipt's review reasons ([]: not flagged)
    # A whole receipt too many or too few of a shopper walking out as the video ended (`doorway_at_end`).
    at_video_end: bool = False


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
    judged_flagged: int = 0  # judged receipts that the system flagged for review
    wrong_flagged: int = 0  # wrong receipts among them
    unflagged_false_charges: int = 0  # items charged too many on wrong receipts nobody flagged
    # Wrong receipts at the video's end, their items, and early receipts equal to the cart (VIDEO_END_COUNTS).
    video_end: dict[str, int] = field(default_factory=dict)

    def counts(self) -> dict[str, int]:
        """The additive counts of this video that every summary ratio is built from (see COUNT_NAMES)."""
        comparison = self.comparison
        return {
            "shoppers": comparison.shoppers,
            "receipts_judged": comparison.receipts,
            "receipts_exact": comparison.exact_receipts,
            "receipts_flagged": self.judged_flagged,
            "wrong_flagged": self.wrong_flagged,
            "unflagged_false_charges": self.unflagged_false_charges,
            "items_true_positive": comparison.items.true_positives,
            "false_charges": comparison.items.false_positives,
            "missed_items": comparison.items.false_negatives,
        }

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


def relabel_review(review: Mapping[str, list[str]], shopper_map: Mapping[int, int]) -> dict[str, list[str]]:
    """Reasons of the flagged receipts keyed like `relabel_receipts` (gt id or unmatched:<engine id>).

    review: {engine shopper id: [reasons]} (an empty list: not flagged, left out here).
    """
    relabelled: dict[str, list[str]] = {}
    for shopper_id, reasons in review.items():
        if not reasons:
            continue
        gt_id = shopper_map.get(int(shopper_id))
        key = str(gt_id) if gt_id is not None else f"{UNMATCHED_PREFIX}{shopper_id}"
        relabelled[key] = list(reasons)
    return relabelled


# The evaluation's own definition of "walking out as the video ended" (not the engine's thresholds,
# which a system under test may change): boxed within this many pixels of the image border the exit
# opens to, in any of the video's last frames.
VIDEO_END_FRAMES = 5
VIDEO_END_BORDER_PX = 6.0
VIDEO_END_COUNTS = ("wrong_receipts", "false_charges", "missed_items", "issued_as_carried")


def doorway_at_end(
    truth: VideoGroundTruth, *, last_frames: int = VIDEO_END_FRAMES, border_px: float = VIDEO_END_BORDER_PX
) -> set[str]:
    """Ground-truth shoppers (ids as str) boxed at the exit's border in any of the last `last_frames` frames.

    The simulator counts a shopper as gone once under 5% of the body is in view, so a video that ends
    while one walks out cuts the walk at an arbitrary pixel: a receipt one or two frames early (a
    false charge) or late (a missed receipt) is a different error from a wrong item, and reports
    name it apart. border_px: how close to the image border counts as at it.
    """
    shoppers: set[str] = set()
    for frame in truth.frames[-last_frames:] if last_frames > 0 else []:
        for shopper in frame.shoppers:
            if truth.layout.at_exit_border(shopper.box, border_px=border_px):
                shoppers.add(str(shopper.track_id))
    return shoppers


def _video_end_counts(wrong: list[WrongReceipt], truth: VideoGroundTruth) -> dict[str, int]:
    """VIDEO_END_COUNTS over the wrong receipts marked `at_video_end`."""
    counts = dict.fromkeys(VIDEO_END_COUNTS, 0)
    for receipt in wrong:
        if not receipt.at_video_end:
            continue
        counts["wrong_receipts"] += 1
        false_charged, missed = _item_differences(receipt)
        counts["false_charges"] += false_charged
        counts["missed_items"] += missed
        if not receipt.expected and not receipt.shopper.startswith(UNMATCHED_PREFIX):
            carried = cart_from_events(truth.events, int(receipt.shopper))
            counts["issued_as_carried"] += int(receipt.predicted == carried)
    return counts


def score_video(result: VideoResult, truth: VideoGroundTruth) -> VideoScore:
    """Compare one run with its video's ground truth (events within +/- 1 s = fps frames)."""
    shopper_map = match_shoppers(truth.track_boxes, result.trajectories)
    predicted = relabel_receipts(result.receipts, shopper_map)
    flagged = relabel_review(result.review, shopper_map)
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
    walking_out = doorway_at_end(truth)
    for receipt in wrong:
        receipt.review = flagged.get(receipt.shopper, [])
        # Only a whole receipt too many or too few is the video end's doing; a wrong item on a receipt
        # that is rightly there is not, even when the shopper was leaving as the video ended.
        whole_receipt = not receipt.expected or not receipt.predicted
        receipt.at_video_end = whole_receipt and receipt.shopper in walking_out
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
        judged_flagged=sum(1 for shopper in comparison.judged_shoppers if shopper in flagged),
        wrong_flagged=sum(1 for shopper in comparison.wrong_shoppers if shopper in flagged),
        video_end=_video_end_counts(wrong, truth),
        unflagged_false_charges=sum(_item_differences(r)[0] for r in wrong if not r.review),
    )


def _item_differences(receipt: WrongReceipt) -> tuple[int, int]:
    """(items charged beyond what the shopper took, items taken but not charged), over its SKUs."""
    differences = [receipt.predicted.get(sku, 0) - receipt.expected.get(sku, 0) for sku in receipt.skus]
    return sum(d for d in differences if d > 0), sum(-d for d in differences if d < 0)


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


# Video-level (cluster) bootstrap of the summary ratios (issue 15). Seeded: a report is reproducible.
BOOTSTRAP_RESAMPLES = 2000
BOOTSTRAP_SEED = 0
BOOTSTRAP_CONFIDENCE = 0.95
COUNT_NAMES = (
    "shoppers",
    "receipts_judged",
    "receipts_exact",
    "receipts_flagged",
    "wrong_flagged",
    "unflagged_false_charges",
    "items_true_positive",
    "false_charges",
    "missed_items",
)

Totals = Mapping[str, np.ndarray]


def _unflagged_exact(t: Totals) -> np.ndarray:
    exact_flagged = t["receipts_flagged"] - t["wrong_flagged"]
    return (t["receipts_exact"] - exact_flagged) / (t["receipts_judged"] - t["receipts_flagged"])


# name -> the ratio as a function of count totals (scalars or arrays [resamples]); 0/0 gives NaN.
RATIO_METRICS: dict[str, Callable[[Totals], np.ndarray]] = {
    "receipt_exact_match": lambda t: t["receipts_exact"] / t["receipts_judged"],
    "item_f1": lambda t: (
        2 * t["items_true_positive"] / (2 * t["items_true_positive"] + t["false_charges"] + t["missed_items"])
    ),
    "false_charges_per_100": lambda t: 100.0 * t["false_charges"] / t["shoppers"],
    "missed_items_per_100": lambda t: 100.0 * t["missed_items"] / t["shoppers"],
    "wrong_receipts_flagged_share": lambda t: (
        t["wrong_flagged"] / (t["receipts_judged"] - t["receipts_exact"])
    ),
    "unflagged_exact_match": _unflagged_exact,
    "unflagged_false_charges_per_100": lambda t: 100.0 * t["unflagged_false_charges"] / t["shoppers"],
}


def count_table(scores: list[VideoScore]) -> np.ndarray:
    """Per-video counts as a float array [videos, len(COUNT_NAMES)] (columns in COUNT_NAMES order)."""
    return np.array(
        [[score.counts()[name] for name in COUNT_NAMES] for score in scores], dtype=np.float64
    ).reshape(len(scores), len(COUNT_NAMES))


def _interval(estimate: float, values: np.ndarray, confidence: float) -> dict | None:
    """{"estimate", "lower", "upper"} from a point estimate and its bootstrap values [B] (NaN: a
    resample whose denominator was 0, left out and counted as "undefined_resamples"); None when the
    estimate itself is undefined."""
    from walkout_ci import stats
    from walkout_ci.errors import GateError

    if not np.isfinite(estimate):
        return None
    try:
        lower, upper = stats.percentile_interval(values, confidence)
    except GateError:  # every resample undefined: cannot happen with a defined estimate, kept safe
        return None
    entry = {"estimate": estimate, "lower": lower, "upper": upper}
    undefined = int(np.count_nonzero(~np.isfinite(values)))
    if undefined:
        entry["undefined_resamples"] = undefined
    return entry


def confidence_intervals(
    scores: list[VideoScore],
    *,
    resamples: int = BOOTSTRAP_RESAMPLES,
    seed: int = BOOTSTRAP_SEED,
    confidence: float = BOOTSTRAP_CONFIDENCE,
) -> dict:
    """Video-level bootstrap intervals of the receipt and item ratios (report `extra.confidence_intervals`).

    Each resample draws as many videos as there are, with replacement, adds up their counts and
    recomputes every ratio in RATIO_METRICS from the totals (a ratio of sums, like the point estimate;
    never a mean of per-video rates). Returns {"method", "confidence", "resamples", "seed", "videos",
    "metrics": {name: {"estimate", "lower", "upper"} | None}}: None when the ratio itself is undefined
    (e.g. no wrong receipt, so no share of them flagged); "undefined_resamples" counts resamples
    whose denominator was 0 (left out of the percentiles).
    """
    from walkout_ci import stats

    table = count_table(scores)
    if table.shape[0] == 0:
        raise QCError("no video to compute confidence intervals from")
    totals = dict(zip(COUNT_NAMES, table.sum(axis=0), strict=True))
    resampled = stats.resample_cluster_totals(table, resamples=resamples, seed=seed)
    columns = {name: resampled[:, index] for index, name in enumerate(COUNT_NAMES)}
    intervals: dict[str, dict | None] = {}
    for name, ratio in RATIO_METRICS.items():
        with np.errstate(divide="ignore", invalid="ignore"):
            estimate = float(ratio(totals))
            values = np.asarray(ratio(columns), dtype=np.float64)
        intervals[name] = _interval(estimate, values, confidence)
    return {
        "method": "video-level (cluster) percentile bootstrap: videos resampled, ratios recomputed",
        "confidence": confidence,
        "resamples": resamples,
        "seed": seed,
        "videos": int(table.shape[0]),
        "metrics": intervals,
    }


PAIRED_METRICS = ("receipt_exact_match", "false_charges_per_100", "missed_items_per_100", "item_f1")


def paired_differences(
    baseline: list[VideoScore],
    candidate: list[VideoScore],
    *,
    resamples: int = BOOTSTRAP_RESAMPLES,
    seed: int = BOOTSTRAP_SEED,
    confidence: float = BOOTSTRAP_CONFIDENCE,
) -> dict:
    """Candidate minus baseline for the receipt ratios, with a paired video-level bootstrap interval.

    baseline, candidate: the two runs' scores of the same videos, in the same order. See
    `paired_count_differences` for the method and what is returned.
    """
    if len(baseline) != len(candidate) or not baseline:
        raise QCError(
            f"paired comparison needs the same videos in both runs, got {len(baseline)} and {len(candidate)}"
        )
    return paired_count_differences(
        count_table(baseline), count_table(candidate), resamples=resamples, seed=seed, confidence=confidence
    )


def paired_count_differences(
    before: np.ndarray,
    after: np.ndarray,
    *,
    resamples: int = BOOTSTRAP_RESAMPLES,
    seed: int = BOOTSTRAP_SEED,
    confidence: float = BOOTSTRAP_CONFIDENCE,
) -> dict:
    """Candidate minus baseline for the receipt ratios from two count tables of the same videos.

    before, after: float [videos, len(COUNT_NAMES)], row i of both is the same video (`count_table`,
    or a QC report's `extra.per_video[*].counts`). Each resample draws videos with replacement, the
    same draw for both runs (that is what makes it paired: the spread between videos cancels), adds
    up each run's counts and recomputes each ratio's difference. Returns {"method", "confidence",
    "resamples", "seed", "videos", "metrics": {name: {"estimate", "lower", "upper"} | None}} for
    PAIRED_METRICS (None when a ratio is undefined).
    """
    from walkout_ci import stats

    if (
        before.shape != after.shape
        or before.ndim != 2
        or before.shape[1] != len(COUNT_NAMES)
        or not len(before)
    ):
        raise QCError(
            f"paired comparison needs the same videos in both runs, got count tables of shapes "
            f"{before.shape} and {after.shape}"
        )
    width = before.shape[1]
    resampled = stats.resample_cluster_totals(np.hstack([before, after]), resamples=resamples, seed=seed)
    totals_before = dict(zip(COUNT_NAMES, before.sum(axis=0), strict=True))
    totals_after = dict(zip(COUNT_NAMES, after.sum(axis=0), strict=True))
    columns_before = {name: resampled[:, index] for index, name in enumerate(COUNT_NAMES)}
    columns_after = {name: resampled[:, width + index] for index, name in enumerate(COUNT_NAMES)}
    differences: dict[str, dict | None] = {}
    for name in PAIRED_METRICS:
        ratio = RATIO_METRICS[name]
        with np.errstate(divide="ignore", invalid="ignore"):
            estimate = float(ratio(totals_after) - ratio(totals_before))
            values = np.asarray(ratio(columns_after) - ratio(columns_before), dtype=np.float64)
        differences[name] = _interval(estimate, values, confidence)
    return {
        "method": "paired video-level (cluster) percentile bootstrap: the same videos drawn for both runs",
        "confidence": confidence,
        "resamples": resamples,
        "seed": seed,
        "videos": int(before.shape[0]),
        "metrics": differences,
    }


def video_end_figures(scores: list[VideoScore]) -> dict:
    """How much of the metrics is the video's end (see the module docstring): counts over all videos.

    wrong_receipts: whole receipts issued to, or withheld from, shoppers walking out as the video
    ended (`doorway_at_end`); false_charges / missed_items: their items (already in the metrics of the
    same names); issued_as_carried: those issued before the simulator counted the shopper gone that
    charged exactly the shopper's cart at the video's end; false_charges_per_100 / missed_items_per_100:
    their part of the metrics of those names (same denominator; None when no shopper left).
    """
    totals = dict.fromkeys(VIDEO_END_COUNTS, 0)
    shoppers = 0
    for score in scores:
        shoppers += score.comparison.shoppers
        for name in VIDEO_END_COUNTS:
            totals[name] += score.video_end.get(name, 0)
    figures: dict[str, float | int | None] = dict(totals)
    for name in ("false_charges", "missed_items"):
        figures[f"{name}_per_100"] = 100.0 * totals[name] / shoppers if shoppers else None
    return figures


def review_flag_figures(scores: list[VideoScore]) -> dict:
    """Do the review flags earn their keep? Counts and rates over all judged receipts.

    wrong_receipts_flagged_share: wrong receipts flagged / wrong receipts (None when none was wrong);
    unflagged_exact_match: exact unflagged receipts / unflagged receipts (None when all were flagged);
    unflagged_false_charges_per_100: items charged too many on unflagged receipts per 100 shoppers who
    left (the false charges that reach customers when every flagged receipt is reviewed; None when no
    shopper left); flagged_share: flagged / judged. A wrong receipt of a shopper the system issued no
    receipt to (it never saw them leave) counts as not flagged: nobody would look at it.
    """
    totals = count_table(scores).sum(axis=0)
    count = dict(zip(COUNT_NAMES, (int(value) for value in totals), strict=True))
    judged, flagged = count["receipts_judged"], count["receipts_flagged"]
    wrong = judged - count["receipts_exact"]
    unflagged = judged - flagged
    unflagged_exact = count["receipts_exact"] - (flagged - count["wrong_flagged"])
    return {
        "receipts_judged": judged,
        "receipts_flagged": flagged,
        "flagged_share": flagged / judged if judged else None,
        "wrong_receipts": wrong,
        "wrong_receipts_flagged": count["wrong_flagged"],
        "wrong_receipts_flagged_share": count["wrong_flagged"] / wrong if wrong else None,
        "unflagged_receipts": unflagged,
        "unflagged_exact": unflagged_exact,
        "unflagged_exact_match": unflagged_exact / unflagged if unflagged else None,
        "unflagged_false_charges": count["unflagged_false_charges"],
        "unflagged_false_charges_per_100": (
            100.0 * count["unflagged_false_charges"] / count["shoppers"] if count["shoppers"] else None
        ),
    }


def split_labels(paths: list[str]) -> list[str]:
    """Names people read for splits pooled in one report, in order: the fewest trailing path parts
    that tell every distinct split apart (`out/2090/val`, `out/2091/val` -> `2090/val`, `2091/val`),
    so a report names no more of a machine path than it needs; a split given twice is numbered
    (`val`, `val (2)`) so every video keeps a distinct name.

    paths: the splits' folders as given (strings; relative or absolute, POSIX separators).
    """
    parts = [
        tuple(p for p in str(path).replace("\\", "/").split("/") if p not in ("", ".")) or ("split",)
        for path in paths
    ]
    distinct = set(parts)
    depth = 1
    while len({p[-depth:] for p in distinct}) < len(distinct) and depth < max(len(p) for p in distinct):
        depth += 1
    labels: list[str] = []
    used: dict[str, int] = {}
    for p in parts:
        label = "/".join(p[-depth:])
        used[label] = used.get(label, 0) + 1
        labels.append(label if used[label] == 1 else f"{label} ({used[label]})")
    return labels
