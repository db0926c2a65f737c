import pytest

from walkout_tracking.config import TrackerConfig, TrackingConfig, load_config
from walkout_tracking.errors import ConfigError


def test_defaults_and_round_trip_through_a_dict():
    config = load_config(None)
    assert config == TrackingConfig()
    assert load_config(config.to_dict()) == config


def test_yaml_file_with_int_widened_to_float(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("tracker:\n  iou_threshold: 1\nmodel:\n  channels: [8, 16]\n")
    config = load_config(path)
    assert config.tracker.iou_threshold == 1.0 and config.model.channels == (8, 16)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"tracker": {"max_agee": 3}}, "did you mean 'max_age'"),
        ({"trackr": {}}, "did you mean 'tracker'"),
        ({"tracker": {"iou_threshold": 1.5}}, r"tracker.iou_threshold = 1.5 is out of range"),
        ({"tracker": {"min_hits": "3"}}, "tracker.min_hits must be an integer"),
        ({"tracker": {"low_score": 0.9, "high_score": 0.5}}, "low_score must be <= high_score"),
        ({"tracker": {"coast_frames": 10, "max_age": 5}}, "exceeds tracker.max_age"),
        ({"train": {"device": "tpu"}}, "train.device"),
        ({"train": {"negatives": "video"}}, "train.negatives = 'video' is not one of"),
        (
            {"train": {"box_jitter": 0.6}},
            r"train.box_jitter = 0.6 is out of range: it must be in \[0.0, 0.5\]",
        ),
        ({"model": {"channels": []}}, "model.channels is empty"),
        (
            {"tracker": {"duplicate_birth_distance": 2.5}},
            r"tracker.duplicate_birth_distance = 2.5 is out of range: it must be in \[0.0, 2.0\]",
        ),
        ({"tracker": {"duplicate_birth_iou": -0.1}}, r"tracker.duplicate_birth_iou = -0.1 is out of range"),
    ],
)
def test_bad_configs_name_the_key(data, message):
    with pytest.raises(ConfigError, match=message):
        load_config(data)


def test_file_errors_name_the_file(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("tracker:\n  max_agee: 3\n")
    with pytest.raises(ConfigError, match=str(path)):
        load_config(path)
    with pytest.raises(ConfigError, match="does not exist"):
        load_config(tmp_path / "missing.yaml")


def test_constructor_validates_too():
    with pytest.raises(ConfigError, match="max_age"):
        TrackerConfig(max_age=-1)
