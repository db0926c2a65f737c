"""The pinned models through the app's real loading path: shipped scenarios and a small random split.

Everything else in app/tests feeds the engine ground truth (`--oracle`) or stand-in components; these
tests run the three models pinned in the repository's `model_refs.yaml` exactly as a store would:
`walkout qc --refs model_refs.yaml` (gate-inputs, gate-predict in spawn workers calling
`walkout.pipeline.load_system`, which verifies the lock file against the pins and the weights' sha256,
then gate-score) and `walkout run VIDEO --refs model_refs.yaml` in this process. The engine runs with
the thresholds meant for model outputs (`MODEL_ENGINE_CONFIG`), which no other test uses.

Scenario outcomes were measured with the pinned models on 2026-12-04 (all seventeen shipped scenarios,
`System.run_video` + the QC scorer): fifteen gave every receipt exactly, `two_at_one_shelf` and
`group_exit` missed one item each. Since 2026-12-05 (issue 15's eighth round: a pick first read after
the shopper's next reach is booked at the earlier reach) `two_at_one_shelf` is exact too. Every
shipped scenario is listed below in exactly one group and all of them run (the suite has the time:
about 8.5 minutes on 2 quiet cores without the second group); WALKOUT_TEST_FEW_SCENARIOS=1 leaves
the second group out for a quick local run.
"""

from __future__ import annotations

import json
import os
from dataclasses import replace
from pathlib import Path

import pytest

from walkout.cli import main
from walkout.groundtruth import load_video_ground_truth
from walkout.refs import COMPONENTS, load_refs

REPO = Path(__file__).resolve().parents[2]
REFS = REPO / "model_refs.yaml"

# Receipts equal the ground truth (after the scorer matches shoppers by trajectory): run by `walkout qc`.
EXACT_SCENARIOS = (
    "crowd_of_six",
    "confusable_pair",
    "crossing_carriers",
    "pick_then_put_back",
    "two_at_one_shelf",
)
# Receipts equal the ground truth: run by `walkout run --refs` (one shopper, so receipts compare as a list).
RUN_SCENARIO = "occluded_under_sign"
# Exact too when measured (about 3,000 frames: ~60 s with 2 workers on 2 quiet cores; left out with
# WALKOUT_TEST_FEW_SCENARIOS=1).
EXACT_SCENARIOS_OPT_IN = (
    "single_pick",
    "put_back_other_slot",
    "rare_sku",
    "both_hands_full",
    "misshelved_between_picks",
    "misshelved_lookalike",
    "misshelved_then_picked",
    "rare_under_sign",
    "return_other_shelf",
    "two_of_one_sku",
)
# Tracked exceptions: what the pinned models get wrong, exactly ({ground-truth shopper: (expected,
# predicted)}), and why. The test fails when the outcome changes either way: a fix moves the scenario
# to EXACT_SCENARIOS, a new error must be understood first.
KNOWN_WRONG = {
    # Four shoppers leave together; shopper 3's cereal is never charged (a missed item).
    "group_exit": {"3": ({"cereal": 1}, {})},
}
# Where `walkout replay` traces each tracked exception (measured 2026-12-04): the receipt becomes
# right with ground-truth product boxes and stays wrong with ground-truth identities, wrists or whole
# persons, so the detector's reading of the held item is the cause. (two_at_one_shelf was traced the
# same way: the taken apple was read only after the shopper's next reach, into another slot.)
KNOWN_WRONG_STAGE = {"group_exit": "detection: products"}

# The small fixed random split for the receipt floor (default generator config, like the README's val
# and blind splits): seed chosen only for having several shoppers (7 receipts, 24 events), before any
# model ran on it.
FLOOR_SEED = 1400
FLOOR_VIDEOS = 2
FLOOR_FRAMES = 300
# README ("Measured"): receipt exact-match 1.000 on blind, 0.938 .. 1.000 on the validation seeds.
# Measured here (2026-12-04): 1.000 (7 of 7 receipts exact). Floor 0.80: one wrong receipt of the 7
# (0.857) passes, two (0.714) fail; README's lowest validation figure minus 0.14.
RECEIPT_EXACT_MATCH_FLOOR = 0.80


def _all_scenarios() -> bool:
    return os.environ.get("WALKOUT_TEST_FEW_SCENARIOS") != "1"


def _qc_scenarios() -> tuple[str, ...]:
    extra = EXACT_SCENARIOS_OPT_IN if _all_scenarios() else ()
    return (*EXACT_SCENARIOS, *extra, *KNOWN_WRONG)


@pytest.fixture(scope="module")
def real_qc(rendered_scenarios, tmp_path_factory) -> dict:
    """`walkout qc --refs model_refs.yaml --jobs 2` over the chosen scenarios plus the random split.

    One run for all (the workers load the models per video anyway); returns the report as a dict.
    """
    from walkout_sim.config import GeneratorConfig, OutputConfig
    from walkout_sim.generate import generate_split

    root = tmp_path_factory.mktemp("real_models")
    random_split = root / "random"
    generate_split(
        random_split,
        split="val",
        videos=FLOOR_VIDEOS,
        frames=FLOOR_FRAMES,
        seed=FLOOR_SEED,
        config=GeneratorConfig(output=OutputConfig(image_stride=1000)),
    )
    videos = root / "split" / "videos"
    videos.mkdir(parents=True)
    for name in _qc_scenarios():
        (videos / name).symlink_to(rendered_scenarios[name] / "videos" / name, target_is_directory=True)
    for video in sorted((random_split / "videos").iterdir()):
        (videos / video.name).symlink_to(video, target_is_directory=True)
    report_dir = root / "report"
    argv = ["qc", "--videos", str(root / "split"), "--refs", str(REFS), "--report-dir", str(report_dir)]
    argv += ["--save-observations", str(root / "observations")]
    assert main([*argv, "--jobs", "2", "--device", "cpu"]) == 0
    report = json.loads((report_dir / "report.json").read_text())
    report["_random_videos"] = sorted(p.name for p in (random_split / "videos").iterdir())
    report["_split"] = root / "split"
    report["_observations"] = root / "observations"
    return report


def _wrong_receipts(report: dict, video: str) -> dict[str, tuple[dict, dict]]:
    """{ground-truth shopper: (expected receipt, predicted receipt)} of one video's failures."""
    return {
        failure["expected"]["shopper"]: (failure["expected"]["receipt"], failure["predicted"]["receipt"])
        for failure in report["failures"]
        if failure["sample_id"] == video
    }


def test_every_shipped_scenario_is_in_exactly_one_group():
    from walkout_sim.scenario import shipped_scenarios

    groups = [*EXACT_SCENARIOS, RUN_SCENARIO, *EXACT_SCENARIOS_OPT_IN, *KNOWN_WRONG]
    assert len(groups) == len(set(groups))
    assert set(groups) == set(shipped_scenarios())


def test_qc_report_names_the_pinned_models(real_qc):
    refs = load_refs(REFS)
    assert real_qc["extra"]["mode"] == "models"
    assert real_qc["model"]["weights_sha256"] == refs.combined_sha256()
    for name in COMPONENTS:
        component = real_qc["extra"]["components"][name]
        assert component["weights_sha256"] == refs.components[name].weights_sha256
        assert component["experiment_id"] == refs.components[name].experiment_id


@pytest.mark.parametrize("name", [*EXACT_SCENARIOS, *EXACT_SCENARIOS_OPT_IN])
def test_pinned_models_give_every_receipt_exactly(real_qc, rendered_scenarios, name):
    if name in EXACT_SCENARIOS_OPT_IN and not _all_scenarios():
        pytest.skip("left out on purpose: WALKOUT_TEST_FEW_SCENARIOS=1")
    video = real_qc["extra"]["per_video"][name]
    # the scorer's truth: receipts.json plus receipts rebuilt for shoppers who left out of view
    truth = load_video_ground_truth(rendered_scenarios[name] / "videos" / name).receipts
    assert _wrong_receipts(real_qc, name) == {}
    assert video["shoppers"] == len(truth) and video["receipt_exact_match"] == 1.0


@pytest.mark.parametrize("name", sorted(KNOWN_WRONG))
def test_known_wrong_scenario_is_wrong_exactly_as_tracked(real_qc, name):
    assert _wrong_receipts(real_qc, name) == KNOWN_WRONG[name], (
        f"{name} changed: if every receipt is now right, move it to EXACT_SCENARIOS; "
        "a different error needs a look at the report's contact sheet first"
    )


def test_replay_reproduces_the_qc_run_and_traces_each_tracked_exception(real_qc):
    """`walkout replay` on what `qc --save-observations` recorded: the engine re-run on the recorded
    model outputs gives the QC run's receipts, events and review reasons exactly, and charges each
    tracked exception to the stage measured above."""
    from walkout.replay import run_replay

    outcome = run_replay(real_qc["_observations"], real_qc["_split"], jobs=2, progress=False)
    assert outcome.errors == {} and outcome.reproduces_qc is True
    stages = {(a.video, a.receipt.shopper): a.stage for a in outcome.attributions if a.video in KNOWN_WRONG}
    assert stages == {
        (video, shopper): KNOWN_WRONG_STAGE[video] for video in KNOWN_WRONG for shopper in KNOWN_WRONG[video]
    }
    assert outcome.metrics["oracle"]["receipt_exact_match"] == 1.0
    # the figures scripts/first_look.py reads for a pooled row are the QC report's own
    assert outcome.review_flags["models"] == real_qc["extra"]["review_flags"]
    assert outcome.video_end["models"] == real_qc["extra"]["video_end"]
    assert outcome.intervals["models"] == real_qc["extra"]["confidence_intervals"]


def test_the_pinned_tracker_re_run_on_recorded_detections_reproduces_the_run(real_qc):
    """`replay --retrack model_refs.yaml` with the pinned settings re-tracks exactly what was recorded
    (so a changed setting's effect is the setting's alone)."""
    from walkout.pipeline import MODEL_ENGINE_CONFIG, verify_refs
    from walkout.recording import recording_path
    from walkout.replay import ReplayTask, replay_video

    name = "two_at_one_shelf"
    task = ReplayTask(
        recording=recording_path(real_qc["_observations"], name),
        truth_dir=real_qc["_split"] / "videos" / name,
        variants=("models", "retracked"),
        engine_config=MODEL_ENGINE_CONFIG,
        tracking_weights=verify_refs(REFS)["tracking"],
    )
    outcome = replay_video(task)
    assert outcome.error is None
    models, retracked = (outcome.results[v].to_dict() for v in ("models", "retracked"))
    for key in ("events", "receipts", "review", "trajectories"):
        assert retracked[key] == models[key], key
    assert outcome.retrack_stats["boxes"] == outcome.retrack_stats["keypoints_reused"] > 0
    # ... shopper for shopper, frame for frame: so the engine's `models` run stands for it
    assert outcome.retrack_stats["videos_as_recorded"] == 1

    # A setting that changes the tracks re-runs the engine on them: reporting the detections' boxes
    # instead of the Kalman estimates moves the shoppers' trajectories.
    changed = replay_video(replace(task, tracker_overrides=(("output_detection_box", True),)))
    assert changed.error is None and "videos_as_recorded" not in changed.retrack_stats
    assert changed.results["retracked"].to_dict()["trajectories"] != models["trajectories"]


def test_receipt_exact_match_floor_on_a_small_random_split(real_qc):
    per_video = real_qc["extra"]["per_video"]
    random_videos = real_qc["_random_videos"]
    shoppers = sum(per_video[v]["shoppers"] for v in random_videos)
    exact = sum(per_video[v]["receipt_exact_match"] * per_video[v]["shoppers"] for v in random_videos)
    assert shoppers >= 5, "the floor split lost its shoppers: the generator changed, re-measure"
    assert exact / shoppers >= RECEIPT_EXACT_MATCH_FLOOR, {v: per_video[v] for v in random_videos}


@pytest.fixture
def one_torch_thread():
    """`walkout run` keeps torch's default thread count; on a shared 2-core machine two busy-waiting
    threads next to other jobs ran this video 50x slower than one thread."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def test_walkout_run_with_the_lock_file_gives_the_receipt(rendered_scenarios, tmp_path, one_torch_thread):
    """`walkout run VIDEO --refs model_refs.yaml` loads the models in this process (load_system)."""
    video = rendered_scenarios[RUN_SCENARIO] / "videos" / RUN_SCENARIO
    out = tmp_path / "receipts.json"
    assert main(["run", str(video), "--refs", str(REFS), "--out", str(out), "--device", "cpu"]) == 0
    result = json.loads(out.read_text())
    truth = load_video_ground_truth(video).receipts
    # one shopper: engine ids need no matching
    assert sorted(map(json.dumps, result["receipts"].values())) == sorted(map(json.dumps, truth.values()))
    assert len(truth) == 1 and result["frames"] > 0
