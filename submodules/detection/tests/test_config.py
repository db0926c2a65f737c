from __future__ import annotations

from pathlib import Path

import pytest

from walkout_detection.config import DetectionConfig, apply_overrides, load_config
from walkout_detection.errors import ConfigError


def test_defaults_round_trip_through_a_dict() -> None:
    config = load_config()
    assert config == DetectionConfig()
    assert load_config(config.to_dict()) == config


def test_yaml_file_is_loaded(tmp_path: Path) -> None:
    path = tmp_path / "config.yaml"
    path.write_text("train:\n  epochs: 7\n  learning_rate: 1\nmodel:\n  width: 16\n")
    config = load_config(path)
    assert config.train.epochs == 7
    assert config.train.learning_rate == 1.0
    assert config.model.width == 16


def test_unknown_key_suggests_the_closest_one() -> None:
    with pytest.raises(ConfigError, match=r"train\.'epoch'.*did you mean 'epochs'"):
        load_config({"train": {"epoch": 3}})
    with pytest.raises(ConfigError, match="did you mean 'train'"):
        load_config({"trian": {}})


def test_out_of_range_value_names_the_key() -> None:
    with pytest.raises(ConfigError, match=r"train\.batch_size must be between"):
        load_config({"train": {"batch_size": 0}})
    with pytest.raises(ConfigError, match=r"evaluate\.match_iou"):
        load_config({"evaluate": {"match_iou": 1.5}})


def test_wrong_type_names_the_key() -> None:
    with pytest.raises(ConfigError, match=r"train\.balanced_sampling must be true or false"):
        load_config({"train": {"balanced_sampling": "yes"}})
    with pytest.raises(ConfigError, match=r"model\.width must be of type int"):
        load_config({"model": {"width": 3.5}})


def test_device_must_be_known() -> None:
    with pytest.raises(ConfigError, match=r"train\.device"):
        load_config({"train": {"device": "tpu"}})


def test_overrides_are_validated() -> None:
    config = apply_overrides(load_config(), ["train.epochs=2", "train.balanced_sampling=false"])
    assert config.train.epochs == 2
    assert config.train.balanced_sampling is False
    with pytest.raises(ConfigError, match=r"section\.key=value"):
        apply_overrides(config, ["epochs=2"])
    with pytest.raises(ConfigError, match="did you mean 'epochs'"):
        apply_overrides(config, ["train.epochz=2"])


def test_missing_or_invalid_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        load_config(tmp_path / "nope.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("train: [1, 2\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(bad)


def test_the_fine_tuning_recipe_starts_from_the_pinned_model(pinned_experiment: Path) -> None:
    """configs/finetune.yaml names the pin and the pin's network: fine-tuning from it cannot exit 2."""
    from walkout_detection.checkpoint import load_checkpoint
    from walkout_detection.predict import PACKAGE_DIR, PIN_PATH, resolve_weights
    from walkout_detection.train import initial_weights

    config = load_config(PACKAGE_DIR / "configs" / "finetune.yaml")
    # The recipe runs from the app's root (submodules/detection/model_ref.yaml); in the package's own
    # repository that file is model_ref.yaml at its root.
    assert Path(config.train.init_from).name == PIN_PATH.name
    pinned = load_checkpoint(resolve_weights(PIN_PATH))
    assert config.model == pinned.config.model
    initial = initial_weights(str(PIN_PATH), config=config, class_names=pinned.class_names)
    assert initial.experiment_id == pinned.experiment_id


def test_checkpoint_selection_metric_and_crowd_classes_are_validated() -> None:
    assert load_config({"train": {"learn_crowd_classes": " person , cola"}}).train.crowd_class_names() == (
        "person",
        "cola",
    )
    assert load_config().train.crowd_class_names() == ()
    with pytest.raises(ConfigError, match=r"train.select_metric must be one of AP50, AP; got 'AP75'"):
        load_config({"train": {"select_metric": "AP75"}})
    with pytest.raises(ConfigError, match=r"train.learn_crowd_classes has an empty class name in 'person,'"):
        load_config({"train": {"learn_crowd_classes": "person,"}})
