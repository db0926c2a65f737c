"""`walkout-tracking retune`: the pinned appearance weights, bit for bit, under other tracker settings."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from walkout_tracking.cli import main
from walkout_tracking.errors import ConfigError
from walkout_tracking.predict import load_tracking_model
from walkout_tracking.retune import retune

PIN = Path(__file__).resolve().parents[1] / "model_ref.yaml"


def test_retune_keeps_the_weights_changes_the_settings_and_records_where_it_came_from(
    pinned_experiment, walkout_home, tmp_path, capsys
):
    from walkout_ci.experiment import load_record, training_content_hashes

    source = load_tracking_model(str(PIN))
    argv = ["retune", "--model", str(PIN), "--set", "tracker.max_appearance_distance=0.4"]
    assert main([*argv, "--set", "tracker.appearance_weight=0.7", "--out", str(tmp_path / "out")]) == 0
    result = json.loads((tmp_path / "out" / "retune_result.json").read_text())
    assert result["experiment_id"] in capsys.readouterr().out
    assert result["source_experiment_id"] == source.experiment_id
    retuned = load_tracking_model(result["experiment_id"])
    assert retuned.config.tracker.max_appearance_distance == 0.4
    assert retuned.config.tracker.appearance_weight == 0.7
    unchanged = {
        k: v
        for k, v in retuned.config.tracker.__dict__.items()
        if k not in ("max_appearance_distance", "appearance_weight")
    }
    assert unchanged == {k: source.config.tracker.__dict__[k] for k in unchanged}
    assert retuned.config.model == source.config.model and retuned.config.train == source.config.train
    new_state = torch.load(tmp_path / "out" / "best.pt", weights_only=True)["state_dict"]
    old_state = torch.load(source.weights_path, weights_only=True)["state_dict"]
    assert new_state.keys() == old_state.keys()
    assert all(torch.equal(new_state[k], old_state[k]) for k in old_state)
    record = load_record(result["experiment_id"])
    assert record["cloned_from"] == source.experiment_id
    store_dir = walkout_home / "experiments" / result["experiment_id"]
    assert training_content_hashes(store_dir) == training_content_hashes(pinned_experiment)
    assert len(training_content_hashes(store_dir)) > 0


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({}, "at least one --set"),
        ({"model.embedding_dim": 32}, "tracker settings only, not model.embedding_dim"),
        ({"tracker.max_appearance_distanse": 0.4}, "did you mean 'max_appearance_distance'"),
        ({"tracker.appearance_weight": 1.5}, "tracker.appearance_weight = 1.5 is out of range"),
        ({"tracker.max_age": 30}, "leaves the tracker settings"),
    ],
)
def test_retune_refuses_what_it_cannot_do(pinned_experiment, walkout_home, tmp_path, overrides, message):
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(".", r"\.")):
        retune(str(PIN), overrides, tmp_path / "out")
    assert not (tmp_path / "out" / "best.pt").exists()


def test_retune_of_a_bare_checkpoint_is_refused(pinned_experiment, walkout_home, tmp_path):
    weights = load_tracking_model(str(PIN)).weights_path
    with pytest.raises(ConfigError, match="a bare checkpoint names no experiment"):
        retune(str(weights), {"tracker.max_age": 40}, tmp_path / "out")
