"""The top-down heatmap network (SimpleBaseline-style) and its checkpoint format.

The network sees one person crop (BGR, float in [0, 1], [B, 3, input_height, input_width]) and
returns one heatmap per keypoint ([B, K, input_height / stride, input_width / stride]). A small
residual backbone downsamples 16x; an upsampling head with lateral skips (as in a feature pyramid)
brings it back to the heatmap stride, because keypoints must be located to a pixel or two.

Checkpoints are plain dicts saved with torch.save and read with `torch.load(weights_only=True)`:
`{"format_version": 1, "component": "pose", "config": dict, "keypoint_names": [...],
"state_dict": {...}, "extra": {...}}`. Building a model never loads weights implicitly.
"""

from __future__ import annotations

import hashlib
import math
import os
import pickle
import re
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.nn import functional

from walkout_pose.config import KEYPOINT_NAMES, ModelConfig, PoseConfig, load_config
from walkout_pose.errors import CheckpointError, ConfigError

FORMAT_VERSION = 1
COMPONENT = "pose"


def _conv_bn_relu(in_channels: int, out_channels: int, *, stride: int = 1) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(in_channels, out_channels, 3, stride=stride, padding=1, bias=False),
        nn.BatchNorm2d(out_channels),
        nn.ReLU(inplace=True),
    )


class ResidualBlock(nn.Module):
    """Two 3x3 convolutions with a shortcut (1x1 projection when the shape changes)."""

    def __init__(self, in_channels: int, out_channels: int, *, stride: int = 1) -> None:
        super().__init__()
        self.conv1 = _conv_bn_relu(in_channels, out_channels, stride=stride)
        self.conv2 = nn.Sequential(
            nn.Conv2d(out_channels, out_channels, 3, padding=1, bias=False), nn.BatchNorm2d(out_channels)
        )
        self.shortcut: nn.Module = nn.Identity()
        if stride != 1 or in_channels != out_channels:
            self.shortcut = nn.Sequential(
                nn.Conv2d(in_channels, out_channels, 1, stride=stride, bias=False),
                nn.BatchNorm2d(out_channels),
            )

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return functional.relu(self.conv2(self.conv1(features)) + self.shortcut(features))


class PoseNet(nn.Module):
    """Person crop -> one heatmap per keypoint.

    forward(crops: float [B, 3, H, W] BGR in [0, 1]) -> heatmaps float [B, K, H / stride, W / stride].
    `config` (ModelConfig) and `keypoint_names` travel with the module so that predict/evaluate know
    the crop geometry and the output order.
    """

    def __init__(self, *, config: ModelConfig, keypoint_names: Sequence[str] = KEYPOINT_NAMES) -> None:
        super().__init__()
        config.validate()
        self.config = config
        self.keypoint_names = tuple(keypoint_names)
        width = config.width
        channels = [width, 2 * width, 4 * width, 4 * width]  # strides 2, 4, 8, 16
        self.stem = _conv_bn_relu(3, channels[0], stride=2)
        self.stages = nn.ModuleList(
            [
                ResidualBlock(channels[0], channels[1], stride=2),
                ResidualBlock(channels[1], channels[2], stride=2),
                nn.Sequential(
                    ResidualBlock(channels[2], channels[3], stride=2), ResidualBlock(channels[3], channels[3])
                ),
            ]
        )
        # One upsampling step per factor of 2 between stride 16 and the heatmap stride; each step adds
        # a 1x1 lateral projection of the backbone feature map of the same stride.
        steps = int(math.log2(16 // config.heatmap_stride))
        feature_channels = {2: channels[0], 4: channels[1], 8: channels[2]}
        head = config.deconv_channels
        self.top = nn.Conv2d(channels[3], head, 1)
        self.laterals = nn.ModuleList()
        self.smooth = nn.ModuleList()
        stride = 16
        out_channels = head
        for _ in range(steps):
            stride //= 2
            # Halve the head at stride 2: a full-width 3x3 conv there costs as much as the backbone.
            out_channels = head if stride > 2 else max(head // 2, 8)
            in_channels = self.smooth[-1][0].out_channels if len(self.smooth) else head
            self.laterals.append(nn.Conv2d(feature_channels[stride], in_channels, 1))
            self.smooth.append(_conv_bn_relu(in_channels, out_channels))
        self.final = nn.Conv2d(out_channels, len(self.keypoint_names), 1)
        self.register_buffer("pixel_mean", torch.tensor([0.5, 0.5, 0.5]).view(1, 3, 1, 1), persistent=False)

    @property
    def heatmap_size(self) -> tuple[int, int]:
        """(height, width) of the output heatmaps."""
        stride = self.config.heatmap_stride
        return self.config.input_height // stride, self.config.input_width // stride

    def forward(self, crops: torch.Tensor) -> torch.Tensor:
        features = self.stem((crops - self.pixel_mean) * 4.0)
        by_stride = {2: features}
        stride = 2
        for stage in self.stages:
            features = stage(features)
            stride *= 2
            by_stride[stride] = features
        top = self.top(features)
        stride = 16
        for lateral, smooth in zip(self.laterals, self.smooth, strict=True):
            stride //= 2
            top = functional.interpolate(top, scale_factor=2.0, mode="nearest") + lateral(by_stride[stride])
            top = smooth(top)
        return self.final(top)


def build_model(config: ModelConfig, *, keypoint_names: Sequence[str] = KEYPOINT_NAMES) -> PoseNet:
    """A freshly initialised PoseNet (random weights; nothing is loaded)."""
    return PoseNet(config=config, keypoint_names=keypoint_names)


def file_sha256(path: str | os.PathLike) -> str:
    """Hex sha256 of a file's bytes."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def save_checkpoint(
    path: str | os.PathLike, model: PoseNet, *, config: PoseConfig, extra: dict[str, Any] | None = None
) -> Path:
    """Write a checkpoint atomically (temp file in the same folder, then rename); return its path.

    extra: plain JSON-like values only (epoch, validation metrics...), so weights_only loading works.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = {
        "format_version": FORMAT_VERSION,
        "component": COMPONENT,
        "config": config.to_dict(),
        "keypoint_names": list(model.keypoint_names),
        "state_dict": {name: tensor.detach().cpu() for name, tensor in model.state_dict().items()},
        "extra": dict(extra or {}),
    }
    handle, temp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(handle)
    try:
        torch.save(payload, temp_name)
        os.replace(temp_name, path)
    except BaseException:
        Path(temp_name).unlink(missing_ok=True)
        raise
    return path


def describe_load_failure(path: str | os.PathLike, error: BaseException) -> str:
    """A CheckpointError message for a `torch.load(weights_only=True)` failure.

    torch's own message advises re-running with weights-only loading switched off or allow-listing the
    offending class: both execute code from the file, so neither is quoted. What is kept is the one
    fact that helps: the class that is not plain weights, or that the bytes are no checkpoint at all.
    """
    text = str(error)
    unsupported = re.search(r"Unsupported global: GLOBAL ([\w.]+)", text)
    if unsupported:
        return (
            f"checkpoint {path} holds a Python object ({unsupported.group(1)}), not only tensors and plain "
            "values; walkout-pose reads weights-only checkpoints as written by `walkout-pose train`: "
            "re-export the model with walkout_pose.model.save_checkpoint or retrain"
        )
    if isinstance(error, pickle.UnpicklingError) or "weights_only" in text:
        reason = "unreadable pickle data"
    else:
        first_line = text.strip().splitlines()[0] if text.strip() else ""
        reason = f"{type(error).__name__}: {first_line}" if first_line else type(error).__name__
    return f"checkpoint {path} is corrupt or not a torch checkpoint ({reason}); re-export it or retrain"


def read_checkpoint(path: str | os.PathLike) -> dict[str, Any]:
    """Load and check a checkpoint dict (format, component, keys) without building the model.

    Raises CheckpointError naming the file and what was expected when it is missing, corrupt or of
    another component / format version.
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(
            f"checkpoint {path} does not exist; pass a .pt file written by walkout-pose train"
        )
    try:
        payload = torch.load(path, weights_only=True, map_location="cpu")
    except Exception as error:  # torch raises many types for a damaged file (pickle, zip, runtime)
        raise CheckpointError(describe_load_failure(path, error)) from error
    if not isinstance(payload, dict):
        raise CheckpointError(f"checkpoint {path} holds a {type(payload).__name__}, expected a dict")
    if payload.get("component") != COMPONENT:
        raise CheckpointError(
            f"checkpoint {path} is for component {payload.get('component')!r}, expected {COMPONENT!r}"
        )
    if payload.get("format_version") != FORMAT_VERSION:
        raise CheckpointError(
            f"checkpoint {path} has format_version {payload.get('format_version')!r}; this walkout-pose "
            f"reads format_version {FORMAT_VERSION}"
        )
    for key in ("config", "keypoint_names", "state_dict"):
        if key not in payload:
            raise CheckpointError(
                f"checkpoint {path} lacks the {key!r} entry; it was not written by walkout-pose"
            )
    return payload


def load_checkpoint(
    path: str | os.PathLike, *, device: str | torch.device = "cpu"
) -> tuple[PoseNet, PoseConfig]:
    """Build the model a checkpoint describes and load its weights; returns (model in eval mode, config)."""
    payload = read_checkpoint(path)
    try:
        config = load_config(payload["config"])
    except ConfigError as error:
        raise CheckpointError(f"checkpoint {path} carries an invalid config: {error}") from error
    names = payload["keypoint_names"]
    if list(names) != list(KEYPOINT_NAMES):
        raise CheckpointError(
            f"checkpoint {path} predicts keypoints {names}; walkout-pose expects {list(KEYPOINT_NAMES)}"
        )
    model = build_model(config.model, keypoint_names=names)
    try:
        model.load_state_dict(payload["state_dict"])
    except RuntimeError as error:
        raise CheckpointError(
            f"checkpoint {path} does not match the network its config describes: {error}"
        ) from error
    # Channels-last: the memory layout oneDNN convolutions prefer on CPU (about 1.3x here).
    model.to(device, memory_format=torch.channels_last).eval()
    return model, config
