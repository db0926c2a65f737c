"""Saving and loading checkpoints: plain dicts of tensors and plain types, read with weights_only=True.

Format (format_version 1): {"format_version": 1, "component": "detection", "config": dict,
"class_names": [str], "state_dict": {name: tensor}, "experiment_id": str | None, "metrics": dict}.
"""

from __future__ import annotations

import os
import pickle
import re
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from walkout_detection.config import DetectionConfig, load_config
from walkout_detection.errors import CheckpointError, ConfigError
from walkout_detection.model import CenterNet

FORMAT_VERSION = 1
COMPONENT = "detection"


@dataclass
class Checkpoint:
    """A loaded checkpoint: its config, class names and a ready (eval-mode) network."""

    path: Path
    config: DetectionConfig
    class_names: list[str]
    model: CenterNet
    experiment_id: str | None
    metrics: dict[str, float]


def save_checkpoint(
    path: str | Path,
    *,
    model: CenterNet,
    config: DetectionConfig,
    class_names: list[str],
    experiment_id: str | None = None,
    metrics: dict[str, float] | None = None,
) -> Path:
    """Write a checkpoint atomically (temp file, then rename) and return its path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = {
        "format_version": FORMAT_VERSION,
        "component": COMPONENT,
        "config": config.to_dict(),
        "class_names": list(class_names),
        "state_dict": {key: value.detach().cpu() for key, value in model.state_dict().items()},
        "experiment_id": experiment_id,
        "metrics": {key: float(value) for key, value in (metrics or {}).items()},
    }
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(handle)
    try:
        torch.save(payload, temporary)
        os.replace(temporary, path)
    finally:
        if os.path.exists(temporary):
            os.unlink(temporary)
    return path


def load_error_reason(error: BaseException) -> str:
    """Why torch.load(weights_only=True) refused a file, in one line of our own words.

    torch's message advises retrying with the safety check off, which would run whatever code the file
    carries; that advice is never passed on. A refused class is named (it is outside the safe
    allow-list of tensors and plain types); other failures keep torch's first line unless it is the advice.
    """
    text = str(error)
    refused = re.search(r"Unsupported global: GLOBAL ([\w.]+)", text)
    if refused:
        return (
            f"it contains objects outside the safe allow-list (tensors, numbers, strings, lists, dicts): "
            f"{refused.group(1)}; a walkout-detection checkpoint holds none"
        )
    if isinstance(error, pickle.UnpicklingError):
        return "its content cannot be read as tensors and plain types (truncated, damaged or another format)"
    first_line = next((line.strip() for line in text.splitlines() if line.strip()), "")
    if not first_line or "weights_only" in first_line:
        return f"torch.load failed ({type(error).__name__})"
    return f"torch.load failed: {first_line}"


def load_checkpoint(path: str | Path, *, map_location: str | torch.device = "cpu") -> Checkpoint:
    """Load a checkpoint with torch.load(weights_only=True) and build its network.

    Raises CheckpointError naming the file when it is missing, not a checkpoint, of another
    component or format version, or its weights do not fit the stored config.
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint {path} does not exist")
    try:
        payload = torch.load(path, weights_only=True, map_location=map_location)
    except (
        RuntimeError,
        pickle.UnpicklingError,
        zipfile.BadZipFile,
        EOFError,
        ValueError,
        OSError,
    ) as error:
        raise CheckpointError(
            f"checkpoint {path} is corrupt or not a walkout-detection checkpoint: {load_error_reason(error)}"
        ) from error
    if not isinstance(payload, dict):
        raise CheckpointError(f"checkpoint {path} holds a {type(payload).__name__}, expected a dict")
    version = payload.get("format_version")
    if version != FORMAT_VERSION:
        raise CheckpointError(
            f"checkpoint {path} has format_version {version!r}; this package reads {FORMAT_VERSION}"
        )
    if payload.get("component") != COMPONENT:
        raise CheckpointError(
            f"checkpoint {path} is for component {payload.get('component')!r}, expected {COMPONENT!r}"
        )
    missing = [key for key in ("config", "class_names", "state_dict") if key not in payload]
    if missing:
        raise CheckpointError(f"checkpoint {path} lacks {missing}")
    try:
        config = load_config(payload["config"])
    except ConfigError as error:
        raise CheckpointError(f"checkpoint {path} has an invalid config: {error}") from error
    class_names = [str(name) for name in payload["class_names"]]
    model = CenterNet.from_config(config.model, num_classes=len(class_names))
    try:
        model.load_state_dict(payload["state_dict"])
    except (RuntimeError, TypeError) as error:
        raise CheckpointError(
            f"checkpoint {path}: weights do not fit the stored config ({len(class_names)} classes): {error}"
        ) from error
    model.to(map_location).eval()
    metrics: dict[str, Any] = payload.get("metrics") or {}
    return Checkpoint(
        path=path,
        config=config,
        class_names=class_names,
        model=model,
        experiment_id=payload.get("experiment_id"),
        metrics={key: float(value) for key, value in metrics.items()},
    )
