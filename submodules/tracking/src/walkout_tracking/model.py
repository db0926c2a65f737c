"""The appearance embedding network, its checkpoints, and the embedder the tracker calls.

EmbeddingNet: uint8-derived float crops [B, 3, H, W] (BGR scaled to [0, 1]) -> L2-normalised
embeddings [B, D]. A few conv stages (conv-BN-ReLU x2, then 2x2 max-pool), global average pooling and
a linear projection: small enough to run per frame on CPU.

Checkpoint file (torch.save of plain types and tensors only; loaded with weights_only=True):
    {"format_version": 1, "component": "tracking", "config": TrackingConfig.to_dict(),
     "class_names": ["person"], "state_dict": {...}, "metrics": {...}}
Building a model never loads weights; `load_checkpoint` does, and names the file on any problem.
"""

from __future__ import annotations

import os
import re
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from walkout_tracking.config import ModelConfig, TrackingConfig, load_config
from walkout_tracking.data import crop_patches
from walkout_tracking.errors import CheckpointError, ConfigError

CHECKPOINT_FORMAT_VERSION = 1
COMPONENT = "tracking"
CLASS_NAMES = ["person"]


class EmbeddingNet(nn.Module):
    """Person crop -> unit-length appearance vector. See the module docstring for shapes."""

    def __init__(self, *, config: ModelConfig) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        channels_in = 3
        for channels_out in config.channels:
            layers += [
                nn.Conv2d(channels_in, channels_out, 3, padding=1, bias=False),
                nn.BatchNorm2d(channels_out),
                nn.ReLU(inplace=True),
                nn.Conv2d(channels_out, channels_out, 3, padding=1, bias=False),
                nn.BatchNorm2d(channels_out),
                nn.ReLU(inplace=True),
                nn.MaxPool2d(2),
            ]
            channels_in = channels_out
        self.features = nn.Sequential(*layers)
        self.projection = nn.Linear(channels_in, config.embedding_dim)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        pooled = self.features(images - 0.5).mean(dim=(2, 3))
        return nn.functional.normalize(self.projection(pooled), dim=1)


def build_model(config: ModelConfig) -> EmbeddingNet:
    """A freshly initialised network (no weights are loaded here)."""
    return EmbeddingNet(config=config)


def images_to_tensor(images: np.ndarray) -> torch.Tensor:
    """uint8 BGR crops [N, H, W, 3] -> float tensor [N, 3, H, W] in [0, 1]."""
    return torch.from_numpy(np.ascontiguousarray(images)).permute(0, 3, 1, 2).float().div_(255.0)


def save_checkpoint(
    path: str | Path, model: nn.Module, config: TrackingConfig, metrics: dict[str, float]
) -> Path:
    """Write a checkpoint atomically (temp file in the same folder, then rename). Returns the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = {
        "format_version": CHECKPOINT_FORMAT_VERSION,
        "component": COMPONENT,
        "config": config.to_dict(),
        "class_names": list(CLASS_NAMES),
        "state_dict": {key: value.detach().cpu().clone() for key, value in model.state_dict().items()},
        "metrics": {key: float(value) for key, value in metrics.items()},
    }
    handle, temp_name = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    os.close(handle)
    try:
        torch.save(payload, temp_name)
        os.replace(temp_name, path)
    except BaseException:
        Path(temp_name).unlink(missing_ok=True)
        raise
    return path


_UNSUPPORTED_GLOBAL = re.compile(r"Unsupported global: GLOBAL ([\w.]+)")
_UNPICKLER_REASON = re.compile(r"WeightsUnpickler error:\s*(.+?)\s*(?:\n|$)")


def describe_load_error(error: Exception) -> str:
    """A one-line reason why torch.load(weights_only=True) failed, without torch's own advice.

    torch's message suggests loading with the restricted unpickler turned off, which would run
    arbitrary code from the file: never something to tell a user of a possibly untrusted checkpoint.
    """
    text = str(error)
    found = _UNSUPPORTED_GLOBAL.search(text)
    if found:
        return f"it holds a Python object of type {found.group(1)}"
    found = _UNPICKLER_REASON.search(text)
    if found and found.group(1).strip():
        reason = found.group(1).strip()
    else:
        reason = text.strip().splitlines()[0] if text.strip() else ""
    if not reason or "weights_only" in reason or "Weights only" in reason:
        return f"not a torch checkpoint or corrupt ({type(error).__name__})"
    return f"not a torch checkpoint or corrupt ({type(error).__name__}: {reason})"


def load_checkpoint(
    path: str | Path, *, device: str = "cpu"
) -> tuple[EmbeddingNet, TrackingConfig, dict[str, Any]]:
    """Load a tracking checkpoint: (model in eval mode on `device`, its config, the raw payload).

    Raises CheckpointError naming the file when it is missing, not a torch checkpoint, not plain data
    (it is always read with torch's restricted loader), for another component or format version, or
    does not fit the network it describes.
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint {path} does not exist")
    try:
        payload = torch.load(path, weights_only=True, map_location=device)
    except Exception as error:
        raise CheckpointError(
            f"checkpoint {path} cannot be loaded as a plain-data checkpoint (tensors, numbers, strings, "
            f"lists and dicts only): {describe_load_error(error)}; write checkpoints with "
            "walkout-tracking train (model.save_checkpoint)"
        ) from error
    if not isinstance(payload, dict):
        raise CheckpointError(f"checkpoint {path} holds a {type(payload).__name__}, expected a dict")
    if payload.get("component") != COMPONENT:
        raise CheckpointError(
            f"checkpoint {path} is for component {payload.get('component')!r}, expected {COMPONENT!r}"
        )
    if payload.get("format_version") != CHECKPOINT_FORMAT_VERSION:
        raise CheckpointError(
            f"checkpoint {path} has format_version {payload.get('format_version')!r}, "
            f"expected {CHECKPOINT_FORMAT_VERSION}"
        )
    try:
        config = load_config(payload.get("config") or {})
    except ConfigError as error:
        raise CheckpointError(f"checkpoint {path} has an invalid config: {error}") from error
    model = build_model(config.model)
    try:
        model.load_state_dict(payload["state_dict"])
    except (KeyError, RuntimeError) as error:
        raise CheckpointError(
            f"checkpoint {path} does not match the network its config describes ({config.model}): {error}"
        ) from error
    model.to(device).eval()
    return model, config, payload


class AppearanceEmbedder:
    """Implements the tracker's `Embedder` protocol with an EmbeddingNet."""

    def __init__(self, *, model: EmbeddingNet, config: ModelConfig, device: str = "cpu") -> None:
        self.model = model.to(device).eval()
        self.config = config
        self.device = device

    @classmethod
    def from_checkpoint(cls, path: str | Path, *, device: str = "cpu") -> AppearanceEmbedder:
        model, config, _ = load_checkpoint(path, device=device)
        return cls(model=model, config=config.model, device=device)

    def embed(self, frame: np.ndarray, boxes: np.ndarray) -> np.ndarray:
        """frame: uint8 BGR [H, W, 3]; boxes: float [N, 4] x1 y1 x2 y2 -> float32 [N, D] unit rows."""
        if len(boxes) == 0:
            return np.zeros((0, self.config.embedding_dim), dtype=np.float32)
        patches = crop_patches(frame, boxes, height=self.config.crop_height, width=self.config.crop_width)
        with torch.inference_mode():
            return self.model(images_to_tensor(patches).to(self.device)).cpu().numpy()
