"""scripts/first_look.py: one Markdown row per QC report, with the video end's part of the false charges."""

from __future__ import annotations


def _report(video_end: dict | None) -> dict:
    interval = {"estimate": 0.5, "lower": 0.25, "upper": 0.75}
    names = ("receipt_exact_match", "item_f1", "false_charges_per_100", "missed_items_per_100")
    extra = {
        "confidence_intervals": {"videos": 22, "metrics": dict.fromkeys(names, interval)},
        "review_flags": {
            "wrong_receipts": 2,
            "wrong_receipts_flagged": 2,
            "wrong_receipts_flagged_share": 1.0,
            "unflagged_exact": 150,
            "unflagged_receipts": 150,
            "unflagged_exact_match": 1.0,
        },
    }
    extra["confidence_intervals"]["metrics"]["wrong_receipts_flagged_share"] = interval
    extra["confidence_intervals"]["metrics"]["unflagged_exact_match"] = interval
    if video_end is not None:
        extra["video_end"] = video_end
    metrics = {
        "receipts_judged": 170,
        "shoppers": 169,
        "item_precision": 0.99,
        "item_recall": 0.98,
        "review_rate": 0.12,
    }
    return {"metrics": metrics, "extra": extra}


def test_a_row_says_how_much_of_the_false_charges_the_video_end_is(load_script):
    first_look = load_script("first_look")
    end = {"wrong_receipts": 2, "issued_as_carried": 1, "false_charges_per_100": 1.1834}
    row = first_look.row("seed", _report(end))
    assert row.endswith("| 1.18 (1 of 2 as carried) |")
    assert row.count("|") == first_look.HEADER.splitlines()[0].count("|")
    # reports written before the figure existed say so instead of failing
    assert first_look.row("seed", _report(None)).endswith("| n/a |")
