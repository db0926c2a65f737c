"""scripts/first_look.py: one Markdown row per QC report, with the video end's part of the false charges."""

from __future__ import annotations

import json

import pytest


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
    # reports written before the figures existed say so instead of failing
    assert first_look.row("seed", _report(None)).endswith("= 0.500 [0.250, 0.750] | n/a | n/a |")
    # the false charges nobody flagged, with their interval, before the video end's column
    report = _report(end)
    report["extra"]["confidence_intervals"]["metrics"]["unflagged_false_charges_per_100"] = {
        "estimate": 0.3,
        "lower": 0.0,
        "upper": 0.9,
    }
    assert first_look.row("seed", report).endswith("| 0.30 [0.00, 0.90] | 1.18 (1 of 2 as carried) |")


def _replay(*, with_figures: bool) -> dict:
    """A replay.json of two splits whose `models` variant carries a report's figures."""
    report = _report({"wrong_receipts": 1, "issued_as_carried": 1, "false_charges_per_100": 0.2958})
    replay = {
        "format": "walkout-replay",
        "dataset": {"splits": ["2260/val", "2261/val"], "hash": "h"},
        "metrics": {"models": report["metrics"], "oracle": report["metrics"]},
        "confidence_intervals": {"models": report["extra"]["confidence_intervals"]},
    }
    if with_figures:
        replay["review_flags"] = {"models": report["extra"]["review_flags"]}
        replay["video_end"] = {"models": report["extra"]["video_end"]}
    return replay


def test_a_replay_over_several_seeds_gives_the_pooled_row(load_script, tmp_path, capsys):
    first_look = load_script("first_look")
    label, pooled = first_look.pooled_report(_replay(with_figures=True))
    assert label == "**all 2 splits** (one replay)"
    row = first_look.row(label, pooled)
    assert row.startswith("| **all 2 splits** (one replay) | 22 | 170 (169 shoppers) | 0.500 [0.250, 0.750]")
    assert row.endswith("| 0.30 (1 of 1 as carried) |")
    # a replay written before it carried the review flags' figures is refused, naming the fix
    with pytest.raises(ValueError, match=r"no review_flags, video_end for variant 'models'.*replay again"):
        first_look.pooled_report(_replay(with_figures=False))
    no_intervals = {**_replay(with_figures=True), "confidence_intervals": {}}
    with pytest.raises(ValueError, match=r"no confidence_intervals for variant 'models'"):
        first_look.pooled_report(no_intervals)
    with pytest.raises(ValueError, match="no variant 'retracked': it ran models, oracle"):
        first_look.pooled_report(_replay(with_figures=True), variant="retracked")

    # the command line tells a replay folder from a report folder by its replay.json
    (tmp_path / "pool").mkdir()
    (tmp_path / "pool" / "replay.json").write_text(json.dumps(_replay(with_figures=True)))
    (tmp_path / "seed").mkdir()
    (tmp_path / "seed" / "report.json").write_text("{}")
    assert first_look.is_replay(tmp_path / "pool") and not first_look.is_replay(tmp_path / "seed")
    assert first_look.main([str(tmp_path / "pool")]) == 0
    assert capsys.readouterr().out.splitlines()[-1] == row
    (tmp_path / "pool" / "replay.json").write_text(json.dumps({"format": "walkout-qc"}))
    assert first_look.main([str(tmp_path / "pool")]) == 2
    assert "is not a `walkout replay` output" in capsys.readouterr().err
