from __future__ import annotations

from pathlib import Path

import pytest
import torch

from walkout_detection.checkpoint import load_checkpoint, load_error_reason, save_checkpoint
from walkout_detection.config import load_config
from walkout_detection.errors import CheckpointError
from walkout_detection.model import CenterNet

SMALL = {"model": {"width": 8, "head_channels": 8, "blocks_stride16": 0}}


def _saved(tmp_path: Path) -> tuple[Path, CenterNet]:
    config = load_config(SMALL)
    model = CenterNet.from_config(config.model, num_classes=2)
    path = save_checkpoint(
        tmp_path / "model.pt", model=model, config=config, class_names=["person", "cola"], experiment_id="abc"
    )
    return path, model


def test_round_trip_restores_weights_config_and_names(tmp_path: Path) -> None:
    path, model = _saved(tmp_path)
    loaded = load_checkpoint(path)
    assert loaded.class_names == ["person", "cola"]
    assert loaded.config == load_config(SMALL)
    assert loaded.experiment_id == "abc"
    assert not loaded.model.training
    for key, value in model.state_dict().items():
        assert torch.equal(loaded.model.state_dict()[key], value), key
    payload = torch.load(path, weights_only=True)
    assert payload["format_version"] == 1 and payload["component"] == "detection"
    assert not list(tmp_path.glob("*.tmp"))


def test_building_a_model_loads_no_weights() -> None:
    config = load_config(SMALL)
    first = CenterNet.from_config(config.model, num_classes=2)
    torch.manual_seed(123)
    second = CenterNet.from_config(config.model, num_classes=2)
    assert not torch.equal(first.stage2[0].weight, second.stage2[0].weight)


def test_missing_checkpoint(tmp_path: Path) -> None:
    with pytest.raises(CheckpointError, match=r"checkpoint .*missing.pt does not exist"):
        load_checkpoint(tmp_path / "missing.pt")


def test_corrupt_checkpoint_names_the_file(tmp_path: Path) -> None:
    path, _ = _saved(tmp_path)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match=rf"checkpoint {path} is corrupt"):
        load_checkpoint(path)
    path.write_bytes(b"not a checkpoint at all")
    with pytest.raises(CheckpointError, match="is corrupt"):
        load_checkpoint(path)


class _Payload:
    """Stands for arbitrary pickled code: weights_only=True must refuse it."""


def test_pickled_objects_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "evil.pt"
    torch.save({"format_version": 1, "component": "detection", "object": _Payload()}, path)
    with pytest.raises(CheckpointError, match="is corrupt or not a walkout-detection checkpoint") as caught:
        load_checkpoint(path)
    message = str(caught.value)
    assert "outside the safe allow-list" in message and "_Payload" in message
    # torch's own message advises turning the safety check off: it must never reach the user.
    assert "weights_only" not in message and "trusted source" not in message


def test_load_errors_never_pass_on_the_advice_to_disable_the_safe_loader(tmp_path: Path) -> None:
    garbage = tmp_path / "garbage.pt"
    garbage.write_bytes(b"not a checkpoint at all")
    with pytest.raises(CheckpointError) as caught:
        load_checkpoint(garbage)
    assert "weights_only" not in str(caught.value)
    advice = RuntimeError("Re-running `torch.load` with `weights_only` set to `False` will likely succeed")
    assert "weights_only" not in load_error_reason(advice)
    assert load_error_reason(RuntimeError("PytorchStreamReader failed\nmore")) == (
        "torch.load failed: PytorchStreamReader failed"
    )


def test_incompatible_checkpoints(tmp_path: Path) -> None:
    path, _ = _saved(tmp_path)
    payload = torch.load(path, weights_only=True)
    torch.save({**payload, "format_version": 7}, path)
    with pytest.raises(CheckpointError, match="format_version 7; this package reads 1"):
        load_checkpoint(path)
    torch.save({**payload, "component": "pose"}, path)
    with pytest.raises(CheckpointError, match="is for component 'pose', expected 'detection'"):
        load_checkpoint(path)
    torch.save({**payload, "class_names": ["a", "b", "c"]}, path)
    with pytest.raises(CheckpointError, match=r"weights do not fit the stored config \(3 classes\)"):
        load_checkpoint(path)
    torch.save({**payload, "config": {"model": {"widht": 8}}}, path)
    with pytest.raises(CheckpointError, match="did you mean 'width'"):
        load_checkpoint(path)
    torch.save([1, 2], path)
    with pytest.raises(CheckpointError, match="holds a list, expected a dict"):
        load_checkpoint(path)
