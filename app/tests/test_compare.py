"""`walkout compare`: two QC runs of the same split(s), paired per video."""

from __future__ import annotations

import json

import numpy as np
import pytest

from walkout.cli import main
from walkout.compare import compare_runs, read_run_counts
from walkout.errors import QCError
from walkout.evaluate import paired_differences
from walkout.qc import ReportIdentity, VideoOutcome, build_report
from walkout_ci.report import write_report


def _report(folder, scores, *, detection="offline-aaa", split="out/somewhere/val2090", dataset_hash="h" * 64):
    """A real `walkout qc` report (build_report, validated by write_report) of these scored videos."""
    identity = ReportIdentity(
        model={"ref": "model_refs.yaml", "weights_sha256": "0" * 64},
        experiment_id=f"detection={detection},pose=offline-ppp,tracking=offline-ttt",
        code_commit=None,
        dataset={"id": split, "hash": dataset_hash},
        extra={"mode": "models"},
    )
    outcomes = [VideoOutcome(video=s.video, score=s) for s in scores]
    write_report(folder, build_report(outcomes, identity=identity, total_seconds=1.0, jobs=1))
    return folder


@pytest.fixture
def before_after(video_score):
    """Three videos; the candidate fixes three receipts and two false charges."""
    before = [
        video_score("v0", judged=10, exact=8, false_charges=1, missed=1),
        video_score("v1", judged=10, exact=10),
        video_score("v2", judged=10, exact=6, false_charges=3, missed=2),
    ]
    after = [
        video_score("v0", judged=10, exact=9, missed=1),
        video_score("v1", judged=10, exact=10),
        video_score("v2", judged=10, exact=8, false_charges=1, missed=1),
    ]
    return before, after


def _compare_cli(baseline, candidate, out, *extra: str) -> int:
    return main(
        [
            "compare",
            "--baseline",
            str(baseline),
            "--candidate",
            str(candidate),
            "--report-dir",
            str(out),
            *extra,
        ]
    )


def test_compare_pools_splits_and_matches_the_paired_bootstrap_of_the_scores(tmp_path, before_after):
    BEFORE, AFTER = before_after
    base_a = _report(tmp_path / "a_base", BEFORE)
    cand_a = _report(tmp_path / "a_cand", AFTER, detection="offline-bbb")
    base_b = _report(tmp_path / "b_base", BEFORE, split="x/val2091", dataset_hash="g" * 64)
    cand_b = _report(
        tmp_path / "b_cand", BEFORE, detection="offline-bbb", split="x/val2091", dataset_hash="g" * 64
    )
    result = compare_runs([base_a, base_b], [cand_a, cand_b], resamples=400, seed=3)
    # Pooled over six videos: the same figures as paired_differences over the scores themselves.
    expected = paired_differences(BEFORE + BEFORE, AFTER + BEFORE, resamples=400, seed=3)
    for name, interval in expected["metrics"].items():
        assert result.paired["metrics"][name] == pytest.approx(interval), name
    assert result.paired["metrics"]["receipt_exact_match"]["estimate"] == pytest.approx(3 / 60)
    first, second = result.splits
    assert (first.name, second.name) == ("val2090", "val2091")
    assert first.baseline["false_charges"] == 4 and first.candidate["false_charges"] == 1
    assert [row["video"] for row in first.changed] == ["v0", "v2"] and not second.changed
    assert first.changed[1] == {
        "video": "v2",
        "wrong": [4, 2],
        "false_charges": [3, 1],
        "missed_items": [2, 1],
    }
    assert result.baseline_components["detection"] == ["offline-aaa"]
    assert result.candidate_components["detection"] == ["offline-bbb"]


def test_a_clear_regression_is_shown_worse_and_fails_with_fail_if_worse(tmp_path, video_score):
    good = [video_score(f"v{i}", judged=10, exact=10) for i in range(12)]
    bad = [video_score(f"v{i}", judged=10, exact=8, false_charges=2) for i in range(12)]
    base, cand = _report(tmp_path / "base", good), _report(tmp_path / "cand", bad)
    out = tmp_path / "cmp"
    assert _compare_cli(base, cand, out) == 0
    assert _compare_cli(base, cand, out, "--fail-if-worse") == 1
    saved = json.loads((out / "compare.json").read_text())
    assert set(saved["candidate_worse_on"]) == {"receipt_exact_match", "false_charges_per_100", "item_f1"}
    assert saved["candidate_better_on"] == []
    text = (out / "compare.md").read_text()
    assert "**worse** on exact-match" in text
    assert str(tmp_path) not in text and "out/somewhere" not in text  # no machine paths for people
    # The same run against itself: nothing changed, nothing shown, and --fail-if-worse passes.
    assert _compare_cli(base, base, out, "--fail-if-worse") == 0
    assert "No difference shown" in (out / "compare.md").read_text()
    assert "None: every video's receipts are the same" in (out / "compare.md").read_text()
    assert np.isclose(
        json.loads((out / "compare.json").read_text())["paired"]["metrics"]["receipt_exact_match"][
            "estimate"
        ],
        0.0,
    )


def test_runs_of_different_videos_are_refused_naming_both(tmp_path, capsys, before_after):
    BEFORE, _ = before_after
    base = _report(tmp_path / "base", BEFORE)
    other_split = _report(tmp_path / "other", BEFORE, dataset_hash="f" * 64)
    fewer = _report(tmp_path / "fewer", BEFORE[:2])
    with pytest.raises(QCError, match="judged different videos \\(dataset hash hhhh"):
        compare_runs([base], [other_split])
    with pytest.raises(QCError, match="v2 in one only"):
        compare_runs([base], [fewer])
    with pytest.raises(QCError, match="one --candidate per --baseline"):
        compare_runs([base, base], [base])
    out = tmp_path / "cmp"
    assert _compare_cli(base, tmp_path / "nothing", out) == 2
    assert "no evaluation report" in capsys.readouterr().err
    assert not (out / "compare.md").exists()


def test_a_report_without_per_video_counts_is_refused(tmp_path, before_after):
    BEFORE, _ = before_after
    folder = _report(tmp_path / "base", BEFORE)
    data = json.loads((folder / "report.json").read_text())
    del data["extra"]["per_video"]["v1"]["counts"]["false_charges"]
    (folder / "report.json").write_text(json.dumps(data))
    with pytest.raises(QCError, match=r"per_video\.v1\.counts lacks false_charges"):
        read_run_counts(folder)
