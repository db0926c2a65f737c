"""QC statistics (issue 15): video-level bootstrap intervals and whether review flags earn their keep."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from walkout.errors import QCError
from walkout.evaluate import (
    COUNT_NAMES,
    confidence_intervals,
    paired_differences,
    review_flag_figures,
    score_video,
    split_labels,
    summarize,
)
from walkout.groundtruth import VideoGroundTruth
from walkout.layout import Slot, StoreLayout
from walkout.qc import printed_figures
from walkout.results import VideoResult


def test_intervals_are_ratios_of_resampled_video_totals(video_score):
    # Videos of unequal size: the ratio of sums (0.8) differs from the mean of rates (0.6), so an
    # implementation averaging per-video rates would fail here.
    scores = [
        video_score("a", judged=2, exact=0, false_charges=2),
        video_score("b", judged=8, exact=8),
        video_score("c", judged=5, exact=4, missed=1),
        video_score("d", judged=5, exact=4, false_charges=1),
    ]
    result = confidence_intervals(scores, resamples=500, seed=3)
    exact_match = result["metrics"]["receipt_exact_match"]
    assert exact_match["estimate"] == pytest.approx(16 / 20)
    assert summarize(scores)[0]["receipt_exact_match"] == pytest.approx(exact_match["estimate"])
    # Independent re-implementation with the same generator: draw videos, add counts, divide.
    judged = np.array([2, 8, 5, 5.0])
    exact = np.array([0, 8, 4, 4.0])
    false_charges = np.array([2, 0, 0, 1.0])
    draws = np.random.default_rng(3).integers(0, 4, size=(500, 4))
    rates = exact[draws].sum(axis=1) / judged[draws].sum(axis=1)
    charges = 100 * false_charges[draws].sum(axis=1) / judged[draws].sum(axis=1)
    assert (exact_match["lower"], exact_match["upper"]) == pytest.approx(
        tuple(np.quantile(rates, [0.025, 0.975]))
    )
    charges_entry = result["metrics"]["false_charges_per_100"]
    assert charges_entry["estimate"] == pytest.approx(15.0)
    assert (charges_entry["lower"], charges_entry["upper"]) == pytest.approx(
        tuple(np.quantile(charges, [0.025, 0.975]))
    )
    assert result["videos"] == 4 and result["resamples"] == 500 and result["seed"] == 3
    assert confidence_intervals(scores, resamples=500, seed=3) == result  # seeded: reproducible


def test_errors_clustered_in_one_video_widen_the_interval_beyond_the_shopper_level_one(video_score):
    # 10 videos x 10 shoppers, all 10 wrong receipts in one video (one bad camera day).
    scores = [video_score(f"v{i}", judged=10, exact=0 if i == 0 else 10) for i in range(10)]
    entry = confidence_intervals(scores)["metrics"]["receipt_exact_match"]
    assert entry["estimate"] == pytest.approx(0.9)
    shopper_level_half_width = 1.96 * np.sqrt(0.9 * 0.1 / 100)  # as if 100 independent shoppers
    assert entry["upper"] - entry["lower"] > 3 * shopper_level_half_width
    assert entry["upper"] == pytest.approx(1.0)  # resamples without the bad video are perfect


def test_a_perfect_split_has_a_degenerate_interval_and_undefined_flag_share(video_score):
    scores = [video_score("a", judged=3, exact=3), video_score("b", judged=4, exact=4)]
    metrics = confidence_intervals(scores)["metrics"]
    assert metrics["receipt_exact_match"] == {"estimate": 1.0, "lower": 1.0, "upper": 1.0}
    assert metrics["false_charges_per_100"] == {"estimate": 0.0, "lower": 0.0, "upper": 0.0}
    assert metrics["wrong_receipts_flagged_share"] is None  # no wrong receipt: 0/0, never 1.0
    figures = review_flag_figures(scores)
    assert figures["wrong_receipts"] == 0 and figures["wrong_receipts_flagged_share"] is None
    assert figures["unflagged_exact_match"] == 1.0


def test_paired_differences_draw_the_same_videos_for_both_runs(video_score):
    # Videos differ a lot in difficulty; the candidate fixes one receipt in each of the two hard ones.
    before = [
        video_score("a", judged=10, exact=4),
        video_score("b", judged=10, exact=10),
        video_score("c", judged=10, exact=6),
    ]
    after = [
        video_score("a", judged=10, exact=5),
        video_score("b", judged=10, exact=10),
        video_score("c", judged=10, exact=7),
    ]
    result = paired_differences(before, after, resamples=500, seed=1)
    change = result["metrics"]["receipt_exact_match"]
    assert change["estimate"] == pytest.approx(2 / 30)
    # Independent re-implementation: one draw of videos, both runs' totals from it.
    judged, exact_before, exact_after = np.full(3, 10.0), np.array([4, 10, 6.0]), np.array([5, 10, 7.0])
    draws = np.random.default_rng(1).integers(0, 3, size=(500, 3))
    diffs = (exact_after[draws].sum(axis=1) - exact_before[draws].sum(axis=1)) / judged[draws].sum(axis=1)
    assert (change["lower"], change["upper"]) == pytest.approx(tuple(np.quantile(diffs, [0.025, 0.975])))
    # Paired, the between-video spread cancels: the interval is far narrower than the runs' own.
    own = confidence_intervals(after, resamples=500, seed=1)["metrics"]["receipt_exact_match"]
    assert change["upper"] - change["lower"] < (own["upper"] - own["lower"]) / 3
    assert paired_differences(before, before)["metrics"]["receipt_exact_match"] == {
        "estimate": 0.0,
        "lower": 0.0,
        "upper": 0.0,
    }
    with pytest.raises(QCError, match="same videos in both runs, got 3 and 2"):
        paired_differences(before, after[:2])


def test_no_video_is_an_error():
    with pytest.raises(QCError, match="no video"):
        confidence_intervals([])


LAYOUT = StoreLayout(
    slots=(Slot(shelf="A", name="A1", sku="apple", box=(40.0, 20.0, 70.0, 40.0)),),
    entrance=(0.0, 200.0, 40.0, 240.0),
    exit=(280.0, 200.0, 320.0, 240.0),
)


def _box(x: float) -> dict[int, list[float]]:
    return {frame: [x, 50.0, x + 30.0, 150.0] for frame in range(1, 6)}


def test_score_video_counts_which_wrong_receipts_were_flagged():
    truth = VideoGroundTruth(
        name="v",
        directory=Path("."),
        frames=(),
        events=[],
        receipts={"1": {"apple": 1}, "2": {"bread": 1}, "3": {}},
        track_boxes={1: _box(10), 2: _box(100), 3: _box(200)},
        layout=LAYOUT,
        fps=10.0,
        frame_count=5,
    )
    result = VideoResult(
        video="v",
        events=[],
        receipts={
            "10": {"apple": 1},  # exact, flagged
            "20": {"bread": 2},  # wrong, flagged
            "30": {"cheese": 1},  # wrong (false charge), not flagged: nobody will look at it
            "40": {"apple": 1},  # phantom shopper charged: wrong, flagged
        },
        review={"10": ["reach unclear"], "20": ["relink"], "30": [], "40": ["new track"]},
        trajectories={10: _box(10), 20: _box(100), 30: _box(200), 40: {}},
        frames=5,
        seconds=1.0,
    )
    score = score_video(result, truth)
    counts = score.counts()
    assert set(counts) == set(COUNT_NAMES)
    assert counts["receipts_judged"] == 4 and counts["receipts_exact"] == 1
    assert counts["receipts_flagged"] == 3 and counts["wrong_flagged"] == 2
    assert {wrong.shopper: wrong.review for wrong in score.wrong} == {
        "2": ["relink"],
        "3": [],
        "unmatched:40": ["new track"],
    }
    figures = review_flag_figures([score])
    assert figures["wrong_receipts"] == 3
    assert figures["wrong_receipts_flagged_share"] == pytest.approx(2 / 3)
    assert figures["unflagged_receipts"] == 1 and figures["unflagged_exact_match"] == 0.0
    assert figures["flagged_share"] == pytest.approx(3 / 4)
    # Of the false-charged items (bread, cheese, the phantom's apple) only the cheese reaches a customer
    # when every flagged receipt is reviewed; shoppers who left: 3.
    assert counts["false_charges"] == 3 and counts["unflagged_false_charges"] == 1
    assert figures["unflagged_false_charges"] == 1
    assert figures["unflagged_false_charges_per_100"] == pytest.approx(100 / 3)
    unflagged_charges = confidence_intervals([score])["metrics"]["unflagged_false_charges_per_100"]
    assert unflagged_charges["estimate"] == pytest.approx(100 / 3)
    share = confidence_intervals([score])["metrics"]["wrong_receipts_flagged_share"]
    assert share == {
        "estimate": pytest.approx(2 / 3),
        "lower": pytest.approx(2 / 3),
        "upper": pytest.approx(2 / 3),
    }


def test_printed_figures_add_interval_bounds_and_review_figures():
    report = {
        "metrics": {"receipt_exact_match": 0.9},
        "extra": {
            "confidence_intervals": {
                "confidence": 0.95,
                "metrics": {
                    "receipt_exact_match": {"estimate": 0.9, "lower": 0.8, "upper": 0.97},
                    "wrong_receipts_flagged_share": None,
                },
            },
            "review_flags": {"wrong_receipts_flagged_share": None, "unflagged_exact_match": 0.95},
            "video_end": {"wrong_receipts": 1, "false_charges_per_100": None},
        },
    }
    assert printed_figures(report) == {
        "receipt_exact_match": 0.9,
        "receipt_exact_match_ci95_lower": 0.8,
        "receipt_exact_match_ci95_upper": 0.97,
        "review_unflagged_exact_match": 0.95,
        "video_end_wrong_receipts": 1.0,
    }


def test_rejected_reaches_the_engine_emits_are_valid_predictions_and_never_scored(tmp_path):
    # The engine emits rejected_pick / rejected_put_back (review evidence); the strict reader used to
    # refuse them, so `walkout qc` with models ended in exit 2 on fresh splits (val seeds 90, 91).
    from walkout.predictions import VideoExpectation, read_predictions, write_predictions

    events = [
        {"type": kind, "frame": 3, "shopper_id": 10, "sku": "apple", "shelf": "A", "slot": "A1",
         "confidence": 0.3, "review": "slot did not change"}
        for kind in ("rejected_pick", "rejected_put_back")
    ]  # fmt: skip
    result = VideoResult(
        video="v",
        events=events,
        receipts={"10": {}},
        review={"10": []},
        trajectories={10: _box(10)},
        frames=5,
        seconds=1.0,
    )
    write_predictions(tmp_path, [result], mode="models", jobs=1, wall_seconds=1.0)
    expected = {"v": VideoExpectation(frames=5, skus=frozenset({"apple"}), slots=frozenset({("A", "A1")}))}
    checked = read_predictions(tmp_path, expected)
    assert [e["type"] for e in checked.results["v"].events] == ["rejected_pick", "rejected_put_back"]
    truth = VideoGroundTruth(
        name="v",
        directory=Path("."),
        frames=(),
        events=[],
        receipts={"1": {}},
        track_boxes={1: _box(10)},
        layout=LAYOUT,
        fps=10.0,
        frame_count=5,
    )
    score = score_video(checked.results["v"], truth)
    assert score.events.predicted == 0 and score.comparison.exact_receipts == 1


def test_split_labels_name_pooled_splits_by_as_little_of_their_paths_as_tells_them_apart():
    assert split_labels(["/home/ana/out/2090/val", "/home/ana/out/2091/val"]) == ["2090/val", "2091/val"]
    assert split_labels(["out/val2050", "out/val2051"]) == ["val2050", "val2051"]
    assert split_labels(["a/x/val", "b/x/val", "c/y/val"]) == ["a/x/val", "b/x/val", "c/y/val"]
    # The same split twice stays two splits: numbered, never merged.
    assert split_labels(["out/val", "out/val"]) == ["val", "val (2)"]
    assert split_labels([""]) == ["split"]
