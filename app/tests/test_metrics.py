"""System metrics on hand-computed fixtures: receipts, items, events, shopper matching."""

from __future__ import annotations

import pytest

from walkout.errors import QCError
from walkout.evaluate import VideoScore, summarize
from walkout.metrics import (
    EventCounts,
    box_iou,
    compare_receipts,
    match_events,
    match_shoppers,
    relabel_events,
    relabel_receipts,
)


def test_box_iou_hand_computed():
    assert box_iou([0, 0, 10, 10], [5, 0, 15, 10]) == pytest.approx(50 / 150)
    assert box_iou([0, 0, 10, 10], [20, 20, 30, 30]) == 0.0
    assert box_iou([0, 0, 0, 0], [0, 0, 0, 0]) == 0.0


def test_receipt_comparison_counts_items_and_wrong_receipts():
    truth = {"1": {"cola": 2, "milk": 1}, "2": {"tea": 1}, "3": {}}
    predicted = {"1": {"cola": 1, "milk": 1, "soap": 1}, "2": {"tea": 1}, "unmatched:9": {"apple": 1}}
    result = compare_receipts(truth, predicted)
    assert result.shoppers == 3
    assert result.receipts == 4  # three shoppers + one phantom receipt that charges something
    assert result.exact_receipts == 2  # shopper 2, and shopper 3 who was charged nothing
    assert sorted(result.wrong_shoppers) == ["1", "unmatched:9"]
    assert (result.items.true_positives, result.items.false_positives, result.items.false_negatives) == (
        3,
        2,
        1,
    )
    assert result.items.precision == pytest.approx(3 / 5)
    assert result.items.recall == pytest.approx(3 / 4)
    assert result.items.f1 == pytest.approx(2 * 3 / (2 * 3 + 2 + 1))
    assert result.per_sku["cola"].false_negatives == 1
    assert result.per_sku["soap"].false_positives == 1


def test_empty_phantom_receipt_is_not_judged():
    result = compare_receipts({"1": {"cola": 1}}, {"1": {"cola": 1}, "unmatched:4": {}})
    assert (result.receipts, result.exact_receipts) == (1, 1)


def test_events_match_within_tolerance_one_to_one():
    truth = [
        {"type": "pick", "frame": 100, "shopper_id": 1, "sku": "cola"},
        {"type": "pick", "frame": 105, "shopper_id": 1, "sku": "cola"},
        {"type": "put_back", "frame": 200, "shopper_id": 2, "sku": "tea"},
    ]
    predicted = [
        {"type": "pick", "frame": 103, "shopper_id": "1", "sku": "cola"},  # matches one of the two picks
        {"type": "pick", "frame": 120, "shopper_id": "1", "sku": "cola"},  # 15 frames late: no match
        {"type": "pick", "frame": 200, "shopper_id": "2", "sku": "tea"},  # wrong type
    ]
    counts = match_events(truth, predicted, tolerance_frames=10)
    assert (counts.matched, counts.predicted, counts.truth) == (1, 3, 3)
    assert counts.f1 == pytest.approx(2 / 6)
    assert (
        match_events(truth, [*predicted[:1], {**predicted[1], "frame": 110}], tolerance_frames=10).matched
        == 2
    )


def test_shoppers_are_matched_one_to_one_by_overlapping_frames():
    gt = {1: {f: [10, 10, 30, 30] for f in range(1, 21)}, 2: {f: [100, 100, 120, 120] for f in range(1, 21)}}
    predicted = {
        7: {f: [11, 11, 31, 31] for f in range(1, 11)},  # follows shopper 1 for 10 frames
        8: {f: [12, 12, 32, 32] for f in range(11, 21)},  # then a second id for shopper 1
        9: {f: [101, 100, 121, 120] for f in range(1, 21)},  # follows shopper 2
        10: {f: [200, 200, 220, 220] for f in range(1, 21)},  # nobody
    }
    mapping = match_shoppers(gt, predicted)
    assert mapping[9] == 2
    assert len([p for p, g in mapping.items() if g == 1]) == 1  # one of 7 / 8, never both
    assert 10 not in mapping
    receipts = relabel_receipts({"7": {"cola": 1}, "8": {"tea": 1}, "9": {}}, {7: 1, 9: 2})
    assert receipts == {"1": {"cola": 1}, "unmatched:8": {"tea": 1}, "2": {}}
    events = relabel_events([{"type": "pick", "frame": 3, "shopper_id": 9, "sku": "x"}], {9: 2})
    assert events[0]["shopper_id"] == "2"


def test_summary_rates_per_hundred_shoppers_and_review_rate():
    first = compare_receipts(
        {"1": {"cola": 1}, "2": {"tea": 2}}, {"1": {"cola": 1, "soap": 1}, "2": {"tea": 2}}
    )
    second = compare_receipts({"5": {"milk": 1}, "6": {}}, {"5": {}, "6": {}})
    scores = [
        VideoScore(
            "a", first, EventCounts(2, 3, 2), receipts_issued=2, receipts_flagged=1, frames=100, seconds=2.0
        ),
        VideoScore(
            "b", second, EventCounts(0, 0, 1), receipts_issued=2, receipts_flagged=0, frames=100, seconds=2.0
        ),
    ]
    metrics, per_class = summarize(scores)
    assert metrics["shoppers"] == 4
    assert metrics["receipt_exact_match"] == pytest.approx(2 / 4)
    assert metrics["false_charges_per_100"] == pytest.approx(25.0)
    assert metrics["missed_items_per_100"] == pytest.approx(25.0)
    assert metrics["item_precision"] == pytest.approx(3 / 4)
    assert metrics["item_recall"] == pytest.approx(3 / 4)
    assert metrics["event_f1"] == pytest.approx(2 * 2 / (3 + 3))
    assert metrics["review_rate"] == pytest.approx(1 / 4)
    assert metrics["frames_per_s"] == pytest.approx(50.0)
    assert per_class["soap"]["precision"] == 0.0 and per_class["tea"]["f1"] == 1.0
    assert scores[0].sample() == {"id": "a", "score": 0.5, "classes": {"cola": 1.0, "soap": 0.0, "tea": 1.0}}


def test_metrics_over_zero_judged_receipts_are_an_error_not_perfect():
    # nobody left the store and nothing was charged: 0/0 must not read as receipt accuracy 1.0
    empty = VideoScore(
        video="v",
        comparison=compare_receipts({}, {"unmatched:7": {}}),
        events=EventCounts(),
        receipts_issued=0,
        receipts_flagged=0,
        frames=30,
        seconds=1.0,
    )
    assert empty.comparison.receipts == 0
    with pytest.raises(QCError, match="no receipt to judge over 1 video"):
        summarize([empty])
    with pytest.raises(QCError, match="no receipt to judge over 0 video"):
        summarize([])
