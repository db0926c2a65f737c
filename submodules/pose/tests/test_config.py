from __future__ import annotations

import pytest

from walkout_pose.config import KEYPOINT_NAMES, load_config
from walkout_pose.errors import ConfigError


def test_defaults_are_valid_and_round_trip_through_a_dict():
    config = load_config()
    assert load_config(config.to_dict()) == config
    assert len(config.evaluate.sigmas) == len(KEYPOINT_NAMES)


def test_yaml_file_overrides_defaults(tmp_path):
    path = tmp_path / "pose.yaml"
    path.write_text("train:\n  epochs: 3\nevaluate:\n  sigmas: [0.1, 0.1, 0.1, 0.1, 0.1, 0.1, 0.2]\n")
    config = load_config(path)
    assert config.train.epochs == 3
    assert config.evaluate.sigmas[-1] == 0.2


def test_unknown_key_suggests_the_closest_valid_key():
    with pytest.raises(ConfigError, match=r"train\.'epoch'.*did you mean 'epochs'"):
        load_config({"train": {"epoch": 3}})


def test_unknown_section_suggests_the_closest_section():
    with pytest.raises(ConfigError, match="did you mean 'model'"):
        load_config({"modle": {}})


def test_out_of_range_value_names_the_key():
    with pytest.raises(ConfigError, match=r"model\.box_margin must be between"):
        load_config({"model": {"box_margin": 0.5}})


def test_wrong_type_names_the_key():
    with pytest.raises(ConfigError, match=r"train\.batch_size must be of type int"):
        load_config({"train": {"batch_size": "32"}})


def test_sigmas_need_one_value_per_keypoint():
    with pytest.raises(ConfigError, match="one value per keypoint"):
        load_config({"evaluate": {"sigmas": [0.05, 0.05]}})


def test_input_size_must_fit_the_backbone():
    with pytest.raises(ConfigError, match="multiple of 16"):
        load_config({"model": {"input_height": 72}})


def test_missing_file_and_bad_yaml_name_the_file(tmp_path):
    with pytest.raises(ConfigError, match="does not exist"):
        load_config(tmp_path / "nope.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("train: [unclosed\n")
    with pytest.raises(ConfigError, match=r"bad\.yaml is not valid YAML"):
        load_config(bad)


def test_the_fine_tuning_recipe_starts_from_the_pinned_model(pinned_experiment):
    """configs/finetune.yaml names the pin and the pin's network: fine-tuning from it cannot exit 2."""
    import dataclasses
    from pathlib import Path

    from walkout_ci.pins import read_pin
    from walkout_pose.predict import PACKAGE_DIR
    from walkout_pose.train import initial_weights

    pin_path = PACKAGE_DIR / "model_ref.yaml"
    config = load_config(PACKAGE_DIR / "configs" / "finetune.yaml")
    # The recipe runs from the app's root (submodules/pose/model_ref.yaml); in the package's own
    # repository that file is model_ref.yaml at its root.
    assert Path(config.train.init_from).name == pin_path.name
    production = load_config(PACKAGE_DIR / "configs" / "production.yaml")
    assert config.model == production.model and config.evaluate == production.evaluate
    initial = initial_weights(
        dataclasses.replace(config, train=dataclasses.replace(config.train, init_from=str(pin_path)))
    )
    assert initial.experiment_dir.name == read_pin(pin_path).experiment_id
