"""Every shipped scenario renders and its events match its script; random scripts follow the schema."""

from __future__ import annotations

import json
from collections import Counter

import numpy as np
import pytest

from walkout_sim.config import ShopperConfig
from walkout_sim.layout import load_layout
from walkout_sim.scenario import load_scenario, sample_scenario, shipped_scenarios
from walkout_sim.simulate import SimulationResult, simulate


def test_at_least_eight_scenarios_ship():
    names = shipped_scenarios()
    assert len(names) >= 8
    for required in (
        "two_at_one_shelf",
        "pick_then_put_back",
        "rare_sku",
        "crossing_carriers",
        "crowd_of_six",
    ):
        assert required in names


@pytest.mark.parametrize("name", shipped_scenarios())
def test_shipped_scenario_renders_and_matches_its_script(name, shipped_renders):
    root, summary = shipped_renders[name]
    video = root / "videos" / name
    events = json.loads((video / "events.json").read_text())
    assert events == summary.events
    got = [(e["type"], e["shopper_id"], e["sku"], e["slot"]) for e in events]
    for shopper in {e.shopper_id for e in summary.expected}:
        want = [e for e in summary.expected if e.shopper_id == shopper]
        mine = [g for g in got if g[1] == shopper]
        assert [(w.type, w.sku) for w in want] == [(g[0], g[2]) for g in mine], shopper
        assert all(w.slot in (None, g[3]) for w, g in zip(want, mine, strict=True)), shopper
    assert len(got) == len(summary.expected)
    receipts = json.loads((video / "receipts.json").read_text())
    scenario, _ = load_scenario(name, load_layout())
    assert set(receipts) == {str(s.id) for s in scenario.shoppers if s.leave}  # everyone left
    assert summary.frames == len(json.loads((video / "annotations.json").read_text())["images"])


def test_two_at_one_shelf_reaches_within_one_second(tmp_path):
    layout = load_layout()
    scenario, _ = load_scenario("two_at_one_shelf", layout)
    result = SimulationResult()
    for _ in simulate(scenario, layout, 10, np.random.default_rng(0), result=result):
        pass
    frames = [e["frame"] for e in result.events]
    shelves = {e["shelf"] for e in result.events}
    assert len(frames) == 2 and abs(frames[0] - frames[1]) <= 10 and shelves == {"A"}


def test_put_back_elsewhere_leaves_the_item_in_the_other_slot(shipped_renders):
    root, summary = shipped_renders["put_back_other_slot"]
    truth = json.loads((root / "videos" / "put_back_other_slot" / "annotations.json").read_text())
    last = max(image["id"] for image in truth["images"])
    on_slot = [a for a in truth["annotations"] if a["image_id"] == last and a.get("slot") == "B2-07"]
    assert [a["category_id"] for a in on_slot] == [2]  # a cola (category 2) now sits on a tea slot
    assert summary.receipts == {"1": {}}


def test_random_picks_follow_a_long_tailed_popularity():
    layout = load_layout()
    rng = np.random.default_rng(0)
    picks: Counter = Counter()
    config = ShopperConfig(put_back_probability=0.0)
    for index in range(150):
        scenario = sample_scenario(layout, config, 600, 10, rng, f"v{index}")
        for shopper in scenario.shoppers:
            picks.update(action.sku for action in shopper.actions if action.do == "pick")
    total = sum(picks.values())
    shares = sorted(picks[sku.id] / total for sku in layout.catalog)
    assert total > 1000
    assert all(share < 0.03 for share in shares[:3])
    assert shares[-1] > 0.3


def test_random_videos_have_one_to_six_shoppers_at_once(train_split):
    root, _ = train_split
    counts = Counter()
    for gt in (root / "videos").glob("*/gt/gt.txt"):
        per_frame = Counter(line.split(",")[0] for line in gt.read_text().splitlines())
        counts.update(per_frame.values())
    assert max(counts) <= 6 and min(counts) >= 1


def test_walking_under_the_sign_hides_keypoints_briefly(shipped_renders):
    root, _ = shipped_renders["occluded_under_sign"]
    truth = json.loads((root / "videos" / "occluded_under_sign" / "annotations.json").read_text())
    persons = [a for a in truth["annotations"] if a["category_id"] == 1]
    hidden_frames = {a["image_id"] for a in persons if 1 in a["keypoints"][2::3]}
    assert 1 <= len(hidden_frames) <= 30  # briefly: a few frames, not the whole video
    assert min(a["visibility"] for a in persons if a["image_id"] in hidden_frames) < 0.95


def test_random_scripts_are_valid_scenario_files(tmp_path):
    """Random videos are sampled into the shipped schema: dump one to YAML and load it back as a scenario."""
    import yaml

    from walkout_sim.schema import to_plain

    layout = load_layout()
    scenario = sample_scenario(layout, ShopperConfig(), 150, 10, np.random.default_rng(3), "random_video")
    path = tmp_path / "random_video.yaml"
    path.write_text(yaml.safe_dump(to_plain(scenario), sort_keys=False))
    loaded, expected = load_scenario(path, layout)
    assert loaded == scenario
    assert len(expected) == sum(a.do in ("pick", "put_back") for s in scenario.shoppers for a in s.actions)
