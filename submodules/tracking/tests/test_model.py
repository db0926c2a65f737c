import numpy as np
import pytest
import torch

from walkout_tracking.config import ModelConfig, TrackingConfig, load_config
from walkout_tracking.errors import CheckpointError
from walkout_tracking.model import AppearanceEmbedder, build_model, load_checkpoint, save_checkpoint

SMALL = {"model": {"channels": [4, 8], "embedding_dim": 8, "crop_height": 16, "crop_width": 16}}


def test_embeddings_are_unit_vectors_of_the_configured_size():
    model = build_model(ModelConfig(channels=(4, 8), embedding_dim=8)).eval()
    out = model(torch.rand(3, 3, 32, 32))
    assert out.shape == (3, 8)
    torch.testing.assert_close(out.norm(dim=1), torch.ones(3))


def test_checkpoint_round_trip_and_embedder(tmp_path):
    config = load_config(SMALL)
    model = build_model(config.model)
    path = save_checkpoint(tmp_path / "m.pt", model, config, {"val_rank1": 0.5})
    loaded, loaded_config, payload = load_checkpoint(path)
    assert loaded_config == config and payload["class_names"] == ["person"]
    for key, value in model.state_dict().items():
        torch.testing.assert_close(loaded.state_dict()[key], value)
    embedder = AppearanceEmbedder(model=loaded, config=loaded_config.model)
    features = embedder.embed(np.zeros((60, 80, 3), np.uint8), np.array([[0, 0, 10, 20], [5, 5, 30, 40]]))
    assert features.shape == (2, 8)
    assert embedder.embed(np.zeros((60, 80, 3), np.uint8), np.empty((0, 4))).shape == (0, 8)


def test_bad_checkpoints_are_clear_errors(tmp_path):
    with pytest.raises(CheckpointError, match="does not exist"):
        load_checkpoint(tmp_path / "missing.pt")
    corrupt = tmp_path / "corrupt.pt"
    corrupt.write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError, match=r"corrupt\.pt"):
        load_checkpoint(corrupt)
    other = tmp_path / "other.pt"
    torch.save({"format_version": 1, "component": "detection", "state_dict": {}}, other)
    with pytest.raises(CheckpointError, match="expected 'tracking'"):
        load_checkpoint(other)
    config = load_config(SMALL)
    wrong = tmp_path / "wrong.pt"
    save_checkpoint(wrong, build_model(ModelConfig(channels=(4,), embedding_dim=8)), config, {})
    with pytest.raises(CheckpointError, match="does not match the network"):
        load_checkpoint(wrong)


def test_checkpoint_with_pickled_objects_is_refused(tmp_path):
    path = tmp_path / "pickled.pt"
    torch.save({"format_version": 1, "component": "tracking", "config": TrackingConfig()}, path)
    with pytest.raises(
        CheckpointError, match=r"plain-data checkpoint .*type walkout_tracking\.config\.TrackingConfig"
    ):
        load_checkpoint(path)


def test_load_errors_never_repeat_torchs_advice_to_drop_the_restricted_loader(tmp_path):
    """torch's message suggests `weights_only=False` (arbitrary code execution); ours must not."""
    pickled = tmp_path / "pickled.pt"
    torch.save({"format_version": 1, "component": "tracking", "config": TrackingConfig()}, pickled)
    corrupt = tmp_path / "corrupt.pt"
    corrupt.write_bytes(b"not a checkpoint")
    for path in (pickled, corrupt):
        with pytest.raises(CheckpointError) as error:
            load_checkpoint(path)
        message = str(error.value)
        assert path.name in message
        assert "weights_only" not in message and "False" not in message
