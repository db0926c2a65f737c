"""Oracle mode: the engine fed the simulator's ground truth gets every shipped scenario exactly right."""

from __future__ import annotations

import pytest

from walkout.evaluate import score_video
from walkout.groundtruth import find_videos, load_video_ground_truth
from walkout.oracle import run_oracle


def test_every_shipped_scenario_is_rendered(rendered_scenarios):
    from walkout_sim.scenario import shipped_scenarios

    assert len(rendered_scenarios) == len(shipped_scenarios()) >= 8


@pytest.mark.parametrize(
    "name",
    [
        "both_hands_full",
        "confusable_pair",
        "crossing_carriers",
        "crowd_of_six",
        "group_exit",
        "misshelved_between_picks",
        "misshelved_lookalike",
        "misshelved_then_picked",
        "occluded_under_sign",
        "pick_then_put_back",
        "put_back_other_slot",
        "rare_sku",
        "rare_under_sign",
        "return_other_shelf",
        "single_pick",
        "two_at_one_shelf",
        "two_of_one_sku",
    ],
)
def test_oracle_receipts_and_events_are_exact_on_shipped_scenario(rendered_scenarios, name):
    if name not in rendered_scenarios:
        pytest.fail(f"scenario {name} is no longer shipped by walkout-sim: update this list")
    [video_dir] = find_videos(rendered_scenarios[name])
    truth = load_video_ground_truth(video_dir)
    assert truth.receipts, "every shipped scenario has shoppers who leave"
    result = run_oracle(video_dir, truth=truth)
    assert result.receipts == truth.receipts
    score = score_video(result, truth)
    assert score.comparison.exact_match_rate == 1.0
    assert score.events.matched == score.events.truth == score.events.predicted
    # events land on the very frame the product left or entered the slot, in the right slot
    predicted = sorted((e["frame"], e["type"], e["shopper_id"], e["sku"], e["slot"]) for e in result.events)
    expected = sorted((e["frame"], e["type"], e["shopper_id"], e["sku"], e["slot"]) for e in truth.events)
    assert predicted == expected
    # with perfect inputs no decision is uncertain (a scripted shopper starting mid-store may be flagged)
    assert not [e for e in result.events if e["review"]], result.events


def test_all_shipped_scenarios_are_covered(rendered_scenarios):
    covered = set(test_oracle_receipts_and_events_are_exact_on_shipped_scenario.pytestmark[0].args[1])
    assert set(rendered_scenarios) <= covered, "a new shipped scenario must be added to the oracle test"
