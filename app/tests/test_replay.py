"""`walkout replay`: recorded outputs re-run through the engine, each part swapped for ground truth.

The recordings here are built from a scenario's ground truth with one part broken on purpose, so the
stage each wrong receipt must be charged to is known: products hidden -> detection, wrists hidden ->
pose. (`test_real_models.py` replays what the pinned models really recorded.)
"""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from walkout.cli import main
from walkout.compare import read_run_counts
from walkout.evaluate import WrongReceipt, doorway_at_end, score_video, video_end_figures
from walkout.groundtruth import load_video_ground_truth
from walkout.observations import WRIST_INDICES
from walkout.oracle import run_oracle
from walkout.recording import ObservationRecorder, recording_path
from walkout.refs import load_refs
from walkout.replay import (
    ATTRIBUTION,
    ENGINE_STAGE,
    UNATTRIBUTED,
    ReplayError,
    attribute,
    match_boxes,
    outcome_json,
    render_markdown,
    run_replay,
    same_observations,
    stage_counts,
)
from walkout_ci.render import md_escape

SCENARIO = "single_pick"
REPO = Path(__file__).resolve().parents[2]


def _record_truth(video_dir, out_dir, *, products=lambda frame, p: p, shoppers=lambda frame, s: s):
    """Write a recording of `video_dir`'s ground truth as if the models had seen it, after the edits."""
    truth = load_video_ground_truth(video_dir)
    classes = ["person", *sorted(truth.skus)]
    recorder = ObservationRecorder(classes)
    for frame in truth.frames:
        kept = [p for p in frame.products if products(frame.frame, p)]
        people = [shoppers(frame.frame, s) for s in frame.shoppers]
        labels = ["person"] * len(people) + [p.sku for p in kept]
        boxes = np.array([s.box for s in people] + [p.box for p in kept], dtype=np.float64).reshape(-1, 4)
        scores = np.ones(len(labels))
        recorder.add(frame.frame, labels, boxes, scores, people)
    recorder.save(recording_path(out_dir, truth.name), video=truth.name, fps=truth.fps, meta={})
    return truth


@pytest.fixture
def split(rendered_scenarios):
    return rendered_scenarios[SCENARIO]


def _video(split):
    return split / "videos" / SCENARIO


def test_a_recording_of_the_truth_replays_as_the_oracle_in_every_variant(split, tmp_path):
    _record_truth(_video(split), tmp_path / "obs")
    outcome = run_replay(tmp_path / "obs", split, jobs=1, progress=False)
    assert outcome.errors == {}
    for variant, metrics in outcome.metrics.items():
        assert metrics["receipt_exact_match"] == 1.0, variant
    assert outcome.attributions == []


def test_hidden_held_products_are_charged_to_detection(split, tmp_path):
    truth = load_video_ground_truth(_video(split))
    picked = {e["sku"] for e in truth.events if e["type"] == "pick"}
    first_pick = min(e["frame"] for e in truth.events if e["type"] == "pick")
    # the picked SKU is never detected from the pick on: the hand seems to hold nothing
    _record_truth(
        _video(split),
        tmp_path / "obs",
        products=lambda frame, p: not (p.sku in picked and frame >= first_pick - 5),
    )
    outcome = run_replay(tmp_path / "obs", split, jobs=1, progress=False)
    assert outcome.metrics["models"]["receipt_exact_match"] < 1.0
    assert outcome.attributions and {a.stage for a in outcome.attributions} == {"detection: products"}
    assert all(a.receipt.kind == "missed_item" for a in outcome.attributions)
    assert outcome.metrics["true_products"]["receipt_exact_match"] == 1.0
    # the shopper walked out 20 frames before the video ends: not a doorway-at-the-end receipt
    assert not any(a.at_video_end for a in outcome.attributions)
    assert "(end)" not in render_markdown(outcome, title="t")
    as_json = outcome_json(outcome)
    assert {w["at_video_end"] for w in as_json["wrong_receipts"]} == {False}
    assert as_json["stages"]["detection: products"]["at_video_end"] == 0


def test_a_video_that_ends_while_a_shopper_walks_out_names_them(split):
    truth = load_video_ground_truth(_video(split))
    assert doorway_at_end(truth, last_frames=5, border_px=6.0) == set()
    at_border = [
        i
        for i, frame in enumerate(truth.frames)
        if any(truth.layout.at_exit_border(s.box, border_px=6.0) for s in frame.shoppers)
    ]
    (shopper,) = {str(s.track_id) for s in truth.frames[at_border[-1]].shoppers}
    # cut as the last pixels of the body leave, and 4 or 5 frames after they are gone
    for extra, expected in ((0, {shopper}), (4, {shopper}), (5, set())):
        cut = replace(truth, frames=truth.frames[: at_border[-1] + 1 + extra])
        assert doorway_at_end(cut, last_frames=5, border_px=6.0) == expected, extra
    assert doorway_at_end(truth, last_frames=0, border_px=6.0) == set()


def test_receipts_of_shoppers_in_the_doorway_at_the_end_are_counted_and_marked(split, tmp_path):
    truth = load_video_ground_truth(_video(split))
    picked = {e["sku"] for e in truth.events if e["type"] == "pick"}
    _record_truth(_video(split), tmp_path / "obs", products=lambda frame, p: p.sku not in picked)
    outcome = run_replay(tmp_path / "obs", split, jobs=1, progress=False)
    (wrong,) = outcome.attributions
    assert wrong.at_video_end is False  # the shopper walked out well before the end
    marked = attribute("v", {"models": {wrong.receipt.shopper: replace(wrong.receipt, at_video_end=True)}})
    assert marked[0].at_video_end is True
    assert stage_counts(marked)[UNATTRIBUTED]["at_video_end"] == 1
    report = render_markdown(replace(outcome, attributions=marked), title="t")
    assert "| missed item (end) |" in report
    assert "1 of 1 wrong receipts are whole receipts issued to, or withheld from, shoppers" in report


def _cut_as_the_shopper_walks_out(truth):
    """The truth of a video ended on the last frame its shopper is boxed at the exit's border, before
    the simulator counted them gone (no receipt yet)."""
    at_border = [
        i
        for i, frame in enumerate(truth.frames)
        if any(truth.layout.at_exit_border(s.box, border_px=6.0) for s in frame.shoppers)
    ]
    return replace(truth, frames=truth.frames[: at_border[-1] + 1], receipts={})


def test_a_receipt_issued_as_the_video_ends_is_scored_wrong_and_named_the_video_ends(split):
    truth = load_video_ground_truth(_video(split))
    result = run_oracle(_video(split), truth=truth)
    (shopper,) = result.receipts
    cut = _cut_as_the_shopper_walks_out(truth)
    score = score_video(result, cut)
    # still a wrong receipt and a false charge of all it holds: the metrics do not change ...
    (wrong,) = score.wrong
    assert wrong.expected == {} and wrong.predicted == result.receipts[shopper]
    assert score.comparison.items.false_positives == sum(result.receipts[shopper].values())
    # ... but it is named: issued as the shopper walked out, and exactly what they carried
    assert wrong.at_video_end is True
    charged = sum(result.receipts[shopper].values())
    assert score.video_end == {
        "wrong_receipts": 1,
        "false_charges": charged,
        "missed_items": 0,
        "issued_as_carried": 1,
    }
    figures = video_end_figures([score])
    assert figures["wrong_receipts"] == 1 and figures["false_charges"] == charged
    assert figures["false_charges_per_100"] is None  # nobody left: no per-100 figure
    with_one_who_left = replace(score, comparison=replace(score.comparison, shoppers=4))
    assert video_end_figures([with_one_who_left])["false_charges_per_100"] == 100.0 * charged / 4
    # a receipt charging something else than they carried is not "as carried"
    other = replace(result, receipts={shopper: {"nothing_they_held": 1}})
    assert score_video(other, cut).video_end["issued_as_carried"] == 0
    # the whole video: nothing is the video end's doing
    assert score_video(result, truth).video_end == dict.fromkeys(score.video_end, 0)


def test_a_wrong_item_on_a_receipt_rightly_issued_is_not_the_video_ends_doing(split):
    truth = load_video_ground_truth(_video(split))
    result = run_oracle(_video(split), truth=truth)
    (shopper,) = result.receipts
    cut = _cut_as_the_shopper_walks_out(truth)
    cut = replace(cut, receipts={shopper: dict(truth.receipts[shopper])})
    extra = replace(result, receipts={shopper: {**result.receipts[shopper], "one_more": 1}})
    (wrong,) = score_video(extra, cut).wrong
    assert wrong.at_video_end is False


def test_hidden_wrists_are_charged_to_pose(split, tmp_path):
    def no_wrists(frame, shopper):
        keypoints = np.array(shopper.keypoints, dtype=np.float64)
        keypoints[list(WRIST_INDICES.values()), 2] = 0.0
        return replace(shopper, keypoints=keypoints)

    _record_truth(_video(split), tmp_path / "obs", shoppers=no_wrists)
    outcome = run_replay(tmp_path / "obs", split, jobs=1, progress=False)
    assert outcome.metrics["models"]["receipt_exact_match"] < 1.0
    assert {a.stage for a in outcome.attributions} == {"pose: wrists"}
    assert all(
        "true_wrists" in a.fixed_by and "true_products" not in a.fixed_by for a in outcome.attributions
    )


def _wrong(shopper: str) -> WrongReceipt:
    return WrongReceipt(
        shopper=shopper, expected={"a": 1}, predicted={}, frames=[3], kind="missed_item", skus=["a"]
    )


def test_attribution_takes_the_first_stage_that_fixes_a_receipt_and_the_engine_last():
    both, products_only, nothing, pose = _wrong("1"), _wrong("2"), _wrong("3"), _wrong("4")
    wrong = {
        "models": {"1": both, "2": products_only, "3": nothing, "4": pose},
        "true_products": {"3": nothing, "4": pose},
        "true_identities": {"2": products_only, "3": nothing, "4": pose},
        "true_wrists": {"1": both, "2": products_only, "3": nothing},
        "oracle": {"3": nothing},
    }
    stages = {a.receipt.shopper: (a.stage, a.fixed_by) for a in attribute("v", wrong)}
    assert stages == {
        "1": ("detection: products", ["true_products", "true_identities", "oracle"]),
        "2": ("detection: products", ["true_products", "oracle"]),
        "3": (ENGINE_STAGE, []),
        "4": ("pose: wrists", ["true_wrists", "oracle"]),
    }
    assert [variant for variant, _ in ATTRIBUTION][:3] == ["true_products", "true_identities", "true_wrists"]


def test_boxes_match_one_to_one_by_overlap():
    a = [(0, 0, 10, 10), (20, 0, 30, 10), (100, 100, 110, 110)]
    b = [(21, 0, 31, 10), (1, 0, 11, 10), (50, 50, 60, 60)]
    assert match_boxes(a, b, 0.3) == {0: 1, 1: 0}
    assert match_boxes(a, [], 0.3) == {}


def test_the_cli_writes_both_reports_and_fails_closed(split, tmp_path, capsys):
    _record_truth(_video(split), tmp_path / "obs")
    argv = ["replay", "--observations", str(tmp_path / "obs"), "--videos", str(split)]
    assert main([*argv, "--report-dir", str(tmp_path / "r"), "--jobs", "1"]) == 0
    report = json.loads((tmp_path / "r" / "replay.json").read_text())
    assert report["metrics"]["oracle"]["receipt_exact_match"] == 1.0 and report["wrong_receipts"] == []
    text = (tmp_path / "r" / "replay.md").read_text()
    assert "| `true_products` |" in text and str(tmp_path) not in text
    assert "| (no wrong receipt) | 0 |" in text
    # an unknown variant, a split without recordings, or a foreign predictions file: exit 2, named
    assert main([*argv, "--report-dir", str(tmp_path / "r2"), "--variants", "models,ground"]) == 2
    assert "unknown variant(s) ground" in capsys.readouterr().err
    (tmp_path / "empty").mkdir()
    assert (
        main(
            [
                "replay",
                "--observations",
                str(tmp_path / "empty"),
                "--videos",
                str(split),
                "--report-dir",
                str(tmp_path / "r3"),
            ]
        )
        == 2
    )
    assert "no recording for 1 of 1 video(s)" in capsys.readouterr().err
    with pytest.raises(ReplayError, match="retracked needs --retrack"):
        run_replay(tmp_path / "obs", split, variants=["retracked"], jobs=1, progress=False)
    with pytest.raises(ReplayError, match="it needs --retrack LOCKFILE"):
        run_replay(tmp_path / "obs", split, tracker_overrides={"max_age": 60}, jobs=1, progress=False)
    refs = str(REPO / "model_refs.yaml")
    typo = ["--retrack", refs, "--tracker-set", "max_agee=60", "--report-dir", str(tmp_path / "r4")]
    assert main([*argv, *typo]) == 2
    assert "unknown config key 'tracker.max_agee': did you mean 'max_age'?" in capsys.readouterr().err
    assert (
        main([*argv, "--retrack", refs, "--tracker-set", "max_age", "--report-dir", str(tmp_path / "r5")])
        == 2
    )
    assert "expected KEY=VALUE" in capsys.readouterr().err
    retrack = ["--retrack", refs, "--tracker-set", "max_age=60", "--variants", "models", "--jobs", "1"]
    assert main([*argv, *retrack, "--report-dir", str(tmp_path / "r6")]) == 0
    retracked = json.loads((tmp_path / "r6" / "replay.json").read_text())
    assert retracked["tracker_overrides"] == {"max_age": 60} and "retracked" in retracked["metrics"]
    assert "ran the tracker with max" in (tmp_path / "r6" / "replay.md").read_text()
    # a recording of the truth: the tracker's ids are never the truth's, so every video changed
    videos = int(retracked["videos"])
    assert retracked["retracked_keypoints"].get("videos_as_recorded", 0) == 0
    report = (tmp_path / "r6" / "replay.md").read_text()
    assert f"0 of {videos} videos were re-tracked exactly as recorded" in report
    # the tracker that was re-run is named (not only the one that recorded), and `walkout compare`
    # labels the retracked run with it: two tracking candidates must not read as "same"
    pinned = load_refs(REPO / "model_refs.yaml").components["tracking"]
    assert retracked["retracked_with"] == {
        "experiment_id": pinned.experiment_id,
        "weights_sha256": pinned.weights_sha256,
    }
    assert (
        f"`retracked` re-ran tracking `{pinned.experiment_id}`" in (tmp_path / "r6" / "replay.md").read_text()
    )
    retracked["recorded_with"] = {"experiments": {"tracking": "offline-recorder"}}
    (tmp_path / "r6" / "replay.json").write_text(json.dumps(retracked))
    assert read_run_counts(f"{tmp_path / 'r6' / 'replay.json'}#retracked").components["tracking"] == (
        pinned.experiment_id
    )
    assert read_run_counts(tmp_path / "r6" / "replay.json").components["tracking"] == "offline-recorder"


def test_the_retracked_variants_own_wrong_receipts_are_listed(split, tmp_path):
    _record_truth(_video(split), tmp_path / "obs")
    argv = ["replay", "--observations", str(tmp_path / "obs"), "--videos", str(split), "--jobs", "1"]
    # a tracker that confirms no one: the shopper gets no receipt in `retracked` only
    never = ["--tracker-set", "min_hits=100000", "--tracker-set", "report_early=false"]
    argv += ["--retrack", str(REPO / "model_refs.yaml"), *never, "--variants", "models"]
    assert main([*argv, "--report-dir", str(tmp_path / "r")]) == 0
    report = json.loads((tmp_path / "r" / "replay.json").read_text())
    assert report["wrong_receipts"] == []  # `models` (the recording) is right
    [wrong] = report["retracked_wrong_receipts"]
    assert wrong["video"] == SCENARIO and wrong["kind"] == "missed_item" and wrong["predicted"] == {}
    text = (tmp_path / "r" / "replay.md").read_text()
    assert "## Each wrong receipt of `retracked`" in text
    assert f"| {md_escape(SCENARIO)} | {wrong['shopper']} | missed item |" in text


def test_a_replay_that_does_not_reproduce_the_recorded_run_exits_1(split, tmp_path, capsys):
    _record_truth(_video(split), tmp_path / "obs")
    predictions = {"videos": [{"video": SCENARIO, "receipts": {}, "review": {}, "events": []}]}
    (tmp_path / "obs" / "predictions.json").write_text(json.dumps(predictions))
    argv = ["replay", "--observations", str(tmp_path / "obs"), "--videos", str(split)]
    assert main([*argv, "--report-dir", str(tmp_path / "r"), "--jobs", "1", "--variants", "models"]) == 1
    assert "does NOT reproduce" in capsys.readouterr().out


def test_qc_refuses_to_record_the_oracle(split, tmp_path, capsys):
    argv = ["qc", "--videos", str(split), "--oracle", "--report-dir", str(tmp_path / "r")]
    assert main([*argv, "--save-observations", str(tmp_path / "obs")]) == 2
    assert "needs --refs, not --oracle" in capsys.readouterr().err


def test_several_splits_replay_together_with_per_split_counts_and_a_paired_comparison(
    split, tmp_path, capsys
):
    truth = load_video_ground_truth(_video(split))
    picked = {e["sku"] for e in truth.events if e["type"] == "pick"}
    first_pick = min(e["frame"] for e in truth.events if e["type"] == "pick")
    _record_truth(_video(split), tmp_path / "clean")
    _record_truth(
        _video(split),
        tmp_path / "blind_spot",
        products=lambda frame, p: not (p.sku in picked and frame >= first_pick - 5),
    )
    outcome = run_replay(
        [tmp_path / "clean", tmp_path / "blind_spot"],
        [split, split],
        variants=["true_products"],
        jobs=1,
        progress=False,
    )
    assert outcome.errors == {} and outcome.videos == 2
    # The same folder twice: numbered, so every video keeps a distinct name.
    name = split.resolve().name
    assert [s["name"] for s in outcome.splits] == [name, f"{name} (2)"]
    clean, blind_spot = (s["variants"] for s in outcome.splits)
    assert clean["models"]["wrong"] == 0 and blind_spot["models"]["wrong"] >= 1
    assert blind_spot["true_products"]["wrong"] == 0
    assert {a.video for a in outcome.attributions} == {f"{name} (2)/{SCENARIO}"}
    # every wrong receipt is counted under its own split's stages
    assert outcome.splits[0]["stages"] == {}
    assert sum(row["wrong"] for row in outcome.splits[1]["stages"].values()) == blind_spot["models"]["wrong"]
    assert outcome.splits[1]["stages"] == stage_counts(outcome.attributions)
    paired = outcome.paired["true_products"]
    assert paired["fixed"] == blind_spot["models"]["wrong"] and paired["videos"] == 2
    change = paired["metrics"]["receipt_exact_match"]
    judged = outcome.metrics["models"]["receipts_judged"]
    assert change["estimate"] == pytest.approx(blind_spot["models"]["wrong"] / judged)
    assert 0.0 <= change["lower"] <= change["estimate"] <= change["upper"]

    argv = ["replay", "--jobs", "1", "--variants", "true_products", "--report-dir", str(tmp_path / "r")]
    for folder in ("clean", "blind_spot"):
        argv += ["--observations", str(tmp_path / folder), "--videos", str(split)]
    assert main(argv) == 0
    text = (tmp_path / "r" / "replay.md").read_text()
    assert "## Per split" in text and f"| {md_escape(f'{name} (2)')} | 1 |" in text
    assert "Per split: wrong receipts (with a false charge), by stage." in text
    assert f"| {md_escape(name)} | 0 |" in text
    assert "## Each variant against the recorded run" in text and str(tmp_path) not in text
    written = json.loads((tmp_path / "r" / "replay.json").read_text())
    assert written["splits"][1]["name"] == f"{name} (2)"
    # the review flags' and the video end's figures of each variant, over both splits, as QC writes them
    flags = written["review_flags"]
    assert set(flags) == set(written["video_end"]) == {"models", "true_products"}
    assert flags["models"]["wrong_receipts"] == blind_spot["models"]["wrong"]
    assert flags["models"]["receipts_judged"] == clean["models"]["judged"] + blind_spot["models"]["judged"]
    assert flags["true_products"]["wrong_receipts"] == 0
    capsys.readouterr()

    # One --videos per --observations, and one predictions file cannot check two splits.
    with pytest.raises(ReplayError, match="got 2 --observations and 1 --videos"):
        run_replay([tmp_path / "clean", tmp_path / "blind_spot"], [split], jobs=1, progress=False)
    with pytest.raises(ReplayError, match="--predictions checks one split"):
        run_replay(
            [tmp_path / "clean", tmp_path / "blind_spot"],
            [split, split],
            predictions=tmp_path / "p.json",
            jobs=1,
            progress=False,
        )


def test_engine_thresholds_can_be_changed_for_every_variant(split, tmp_path, capsys):
    _record_truth(_video(split), tmp_path / "obs")
    argv = ["replay", "--observations", str(tmp_path / "obs"), "--videos", str(split), "--jobs", "1"]
    argv += ["--variants", "models"]
    # No product is ever close enough to a wrist to be in the hand: the pick is lost, and the report
    # says why.
    assert main([*argv, "--engine-set", "hand_radius_px=0.01", "--report-dir", str(tmp_path / "r")]) == 0
    report = json.loads((tmp_path / "r" / "replay.json").read_text())
    assert report["engine_overrides"] == {"hand_radius_px": 0.01}
    assert report["metrics"]["models"]["receipt_exact_match"] < 1.0
    assert report["reproduces_qc"] is None  # changed thresholds cannot reproduce the QC run
    assert "ran the engine with hand" in (tmp_path / "r" / "replay.md").read_text()
    capsys.readouterr()
    for setting, message in [
        ("min_product_scor=0.4", "unknown key 'min_product_scor'; did you mean 'min_product_score'?"),
        ("after_window=2.5", "after_window=2.5: expected a whole number"),
        ("hand_radius_px=wide", "hand_radius_px='wide': expected a number"),
        ("hand_radius_px=-1", "hand_radius_px=-1.0 is out of range"),
        ("review_end_of_video_exits=maybe", "review_end_of_video_exits='maybe' must be true or false"),
    ]:
        assert main([*argv, "--engine-set", setting, "--report-dir", str(tmp_path / "bad")]) == 2, setting
        assert message in capsys.readouterr().err, setting
    assert not (tmp_path / "bad").exists()


def test_compare_pairs_two_replays_of_the_same_recordings(split, tmp_path, capsys):
    _record_truth(_video(split), tmp_path / "obs")
    argv = ["replay", "--observations", str(tmp_path / "obs"), "--videos", str(split), "--jobs", "1"]
    argv += ["--variants", "models,true_products"]
    assert main([*argv, "--report-dir", str(tmp_path / "as_recorded")]) == 0
    assert main([*argv, "--engine-set", "hand_radius_px=0.01", "--report-dir", str(tmp_path / "blind")]) == 0
    report = json.loads((tmp_path / "blind" / "replay.json").read_text())
    assert set(report["per_video"]) == {"models", "true_products"}
    judged = report["per_video"]["models"][SCENARIO]["receipts_judged"]
    assert judged >= 1 and report["dataset"]["hash"]
    capsys.readouterr()

    compare = ["compare", "--baseline", str(tmp_path / "as_recorded" / "replay.json")]
    compare += ["--candidate", f"{tmp_path / 'blind' / 'replay.json'}#true_products"]
    assert main([*compare, "--report-dir", str(tmp_path / "c"), "--fail-if-worse"]) == 1
    result = json.loads((tmp_path / "c" / "compare.json").read_text())
    lost = report["per_video"]["models"][SCENARIO]["receipts_exact"] - judged
    assert result["paired"]["metrics"]["receipt_exact_match"]["estimate"] == pytest.approx(lost / judged)
    text = (tmp_path / "c" / "compare.md").read_text()
    assert "hand_radius_px=0.01" in text and str(tmp_path) not in text
    capsys.readouterr()
    # A variant the replay did not run is refused by name.
    missing = ["compare", "--baseline", str(tmp_path / "as_recorded"), "--report-dir", str(tmp_path / "x")]
    assert main([*missing, "--candidate", f"{tmp_path / 'blind' / 'replay.json'}#oracle"]) == 2
    assert "no variant 'oracle'" in capsys.readouterr().err


def test_same_observations_needs_every_frame_shopper_keypoint_and_product_equal():
    from walkout.observations import FrameObservation, ProductObservation, ShopperObservation

    def frame(number, track_id=1, box=(10.0, 10.0, 30.0, 60.0), wrist_x=20.0, sku="cola"):
        keypoints = np.zeros((7, 3))
        keypoints[WRIST_INDICES["left"]] = (wrist_x, 40.0, 0.9)
        return FrameObservation(
            frame=number,
            shoppers=(ShopperObservation(track_id=track_id, box=box, keypoints=keypoints),),
            products=(ProductObservation(sku=sku, box=(0.0, 0.0, 5.0, 5.0), score=0.9),),
        )

    run = [frame(1), frame(2)]
    assert same_observations(run, iter([frame(1), frame(2)]))
    assert not same_observations(run, [frame(1)])  # a frame short
    assert not same_observations(run, [frame(1), frame(2, track_id=2)])  # another id
    assert not same_observations(run, [frame(1), frame(2, box=(10.0, 10.0, 30.0, 61.0))])
    assert not same_observations(run, [frame(1), frame(2, wrist_x=21.0)])  # a wrist elsewhere
    assert not same_observations(run, [frame(1), frame(2, sku="milk")])
    assert not same_observations(run, [frame(1), replace(frame(2), shoppers=())])
