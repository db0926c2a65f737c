from __future__ import annotations

import fractions

import pytest
import torch

from walkout_pose.config import KEYPOINT_NAMES, ModelConfig, load_config
from walkout_pose.errors import CheckpointError
from walkout_pose.model import build_model, load_checkpoint, read_checkpoint, save_checkpoint

SMALL = {"model": {"input_height": 32, "input_width": 32, "width": 8, "deconv_channels": 8}}


@pytest.mark.parametrize("stride", [2, 4])
def test_heatmaps_have_one_channel_per_keypoint_at_the_configured_stride(stride):
    model = build_model(
        ModelConfig(input_height=48, input_width=32, width=8, deconv_channels=8, heatmap_stride=stride)
    )
    heatmaps = model(torch.rand(2, 3, 48, 32))
    assert heatmaps.shape == (2, len(KEYPOINT_NAMES), 48 // stride, 32 // stride)
    assert model.heatmap_size == (48 // stride, 32 // stride)


def test_checkpoint_round_trip_restores_the_same_outputs(tmp_path):
    config = load_config(SMALL)
    model = build_model(config.model).eval()
    path = save_checkpoint(tmp_path / "model.pt", model, config=config, extra={"epoch": 3})
    loaded, loaded_config = load_checkpoint(path)
    crops = torch.rand(3, 3, 32, 32)
    with torch.inference_mode():
        torch.testing.assert_close(loaded(crops), model(crops))
    assert loaded_config == config
    assert read_checkpoint(path)["extra"] == {"epoch": 3}
    assert list(tmp_path.iterdir()) == [path]  # no temp file left behind


def test_missing_checkpoint_names_the_file(tmp_path):
    with pytest.raises(CheckpointError, match=r"nope\.pt does not exist"):
        load_checkpoint(tmp_path / "nope.pt")


def test_corrupt_checkpoint_is_a_clear_error(tmp_path):
    config = load_config(SMALL)
    path = save_checkpoint(tmp_path / "model.pt", build_model(config.model), config=config)
    path.write_bytes(path.read_bytes()[:200])
    with pytest.raises(CheckpointError, match=r"model\.pt is corrupt or not a torch checkpoint"):
        load_checkpoint(path)


def test_checkpoint_of_another_component_is_refused(tmp_path):
    path = tmp_path / "detector.pt"
    torch.save({"format_version": 1, "component": "detection", "config": {}, "state_dict": {}}, path)
    with pytest.raises(CheckpointError, match="is for component 'detection', expected 'pose'"):
        load_checkpoint(path)


def test_checkpoint_whose_weights_do_not_fit_its_config_is_refused(tmp_path):
    config = load_config(SMALL)
    path = save_checkpoint(tmp_path / "model.pt", build_model(config.model), config=config)
    payload = torch.load(path, weights_only=True)
    payload["config"]["model"]["width"] = 16
    torch.save(payload, path)
    with pytest.raises(CheckpointError, match="does not match the network its config describes"):
        load_checkpoint(path)


def test_loading_never_unpickles_arbitrary_objects(tmp_path):
    path = tmp_path / "evil.pt"
    # Any class outside torch's weights_only allow-list stands in for a malicious payload.
    torch.save({"component": "pose", "object": fractions.Fraction(1, 3)}, path)
    with pytest.raises(CheckpointError, match=r"holds a Python object \(fractions\.Fraction\)") as caught:
        load_checkpoint(path)
    assert_no_unsafe_advice(str(caught.value))


def assert_no_unsafe_advice(message: str) -> None:
    """torch's advice (turn weights-only loading off, allow-list the class) must never reach a user."""
    for advice in ("weights_only", "add_safe_globals", "safe_globals", "trusted source"):
        assert advice not in message, message


@pytest.mark.parametrize("content", [b"not a checkpoint", b"\x80\x02}q\x00.garbage"], ids=["text", "pickle"])
def test_unreadable_bytes_are_corrupt_without_torchs_advice(tmp_path, content):
    path = tmp_path / "junk.pt"
    path.write_bytes(content)
    with pytest.raises(CheckpointError, match=r"junk\.pt is corrupt or not a torch checkpoint") as caught:
        read_checkpoint(path)
    assert_no_unsafe_advice(str(caught.value))
