"""Typed configuration of the pose model, its training and its evaluation.

`load_config` accepts a YAML path, a dict or nothing (defaults) and validates everything at load time:
unknown keys are errors that suggest the closest valid key, out-of-range values name the key.
"""

from __future__ import annotations

import dataclasses
import functools
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from walkout_ci import config_checks
from walkout_pose.errors import ConfigError

KEYPOINT_NAMES = (
    "head",
    "left_shoulder",
    "right_shoulder",
    "left_elbow",
    "right_elbow",
    "left_wrist",
    "right_wrist",
)


@dataclass(frozen=True)
class ModelConfig:
    """Shape of the SimpleBaseline-style network and of the person crop it sees.

    input_height, input_width: crop size in pixels fed to the network. The ceiling camera sees
        shoppers from above (a body ellipse with arms reaching out), so the default crop is square.
    heatmap_stride: input pixels per heatmap pixel (2 or 4); heatmaps are input_size / stride.
    width: channels of the first stage; later stages double it (capped at 4x).
    deconv_channels: channels of the upsampling head.
    box_margin: the person box is enlarged by this factor (after padding it to the crop's aspect
        ratio) so that wrists held out past the box edge stay inside the crop.
    flip_test: at inference, average the heatmaps of the crop and of its mirror image (twice the
        network cost, steadier peaks).
    decode_blur: standard deviation (heatmap pixels) of the Gaussian smoothing applied to predicted
        heatmaps before sub-pixel decoding (0 = none).
    """

    input_height: int = 64
    input_width: int = 64
    heatmap_stride: int = 2
    width: int = 24
    deconv_channels: int = 32
    box_margin: float = 1.25
    flip_test: bool = True
    decode_blur: float = 1.0

    def validate(self) -> None:
        _check_range("model.input_height", self.input_height, 16, 512)
        _check_range("model.input_width", self.input_width, 16, 512)
        if self.heatmap_stride not in (2, 4):
            raise ConfigError(f"model.heatmap_stride must be 2 or 4; got {self.heatmap_stride!r}")
        for key, value in (
            ("model.input_height", self.input_height),
            ("model.input_width", self.input_width),
        ):
            if value % 16:
                raise ConfigError(
                    f"{key} must be a multiple of 16 (the backbone downsamples 16x); got {value}"
                )
        _check_range("model.width", self.width, 4, 256)
        _check_range("model.deconv_channels", self.deconv_channels, 4, 512)
        _check_range("model.box_margin", self.box_margin, 1.0, 3.0)
        _check_range("model.decode_blur", self.decode_blur, 0.0, 5.0)


@dataclass(frozen=True)
class TrainConfig:
    """Training hyper-parameters.

    heatmap_sigma: standard deviation of the target Gaussians, in heatmap pixels.
    scale_jitter: the crop size is multiplied by a factor drawn from [1 - j, 1 + j].
    rotation_degrees: crops are rotated by an angle drawn from [-r, r] (half of the time).
    shift_fraction: the crop centre moves by up to this fraction of the crop size (detector boxes are
        not centred exactly; training on jittered boxes makes the model robust to it).
    flip_probability: horizontal flips, with left/right keypoints swapped.
    max_persons_per_epoch: persons drawn per epoch (0 = every training person once).
    val_fraction: fraction of the training frames held out for validation when no --val-data is given
        (split by video, so that consecutive frames never land on both sides).
    max_val_persons: cap on validation persons (the per-epoch validation must stay cheap on CPU).
    time_limit_s: stop after the epoch that crosses this wall-clock budget (0 = no limit).
    cpu_time_limit_s: stop after the epoch in which the training process has used this much CPU time
        (0 = no limit). With num_threads 1 and one data worker, training occupies two cores and its
        wall time on two free cores is about the training process's CPU time; on a shared machine
        the wall clock overstates it, so this is the budget that stays comparable.
    device: "auto" (CUDA when available, else CPU), "cpu" or "cuda".
    amp: mixed precision, used only on CUDA.
    num_threads: torch intra-op threads (0 = leave torch's default).
    init_from: "" (random initialisation) or a model reference to fine-tune: an experiment id or a
        model_ref.yaml (not a bare checkpoint, which names no experiment). The model section must be
        the source's; the new experiment records `initialized_from` and inherits the source's
        training data for the gate's leakage check.
    """

    epochs: int = 20
    batch_size: int = 32
    learning_rate: float = 2e-3
    weight_decay: float = 1e-4
    warmup_iterations: int = 100
    heatmap_sigma: float = 1.5
    scale_jitter: float = 0.2
    rotation_degrees: float = 15.0
    shift_fraction: float = 0.08
    flip_probability: float = 0.5
    color_jitter: float = 0.2
    max_persons_per_epoch: int = 0
    val_fraction: float = 0.1
    max_val_persons: int = 600
    seed: int = 0
    device: str = "auto"
    amp: bool = True
    num_threads: int = 0
    num_workers: int = 0
    time_limit_s: float = 0.0
    cpu_time_limit_s: float = 0.0
    init_from: str = ""

    def validate(self) -> None:
        _check_range("train.epochs", self.epochs, 1, 100_000)
        _check_range("train.batch_size", self.batch_size, 1, 4096)
        _check_range("train.learning_rate", self.learning_rate, 1e-7, 1.0)
        _check_range("train.weight_decay", self.weight_decay, 0.0, 1.0)
        _check_range("train.warmup_iterations", self.warmup_iterations, 0, 1_000_000)
        _check_range("train.heatmap_sigma", self.heatmap_sigma, 0.3, 10.0)
        _check_range("train.scale_jitter", self.scale_jitter, 0.0, 0.9)
        _check_range("train.rotation_degrees", self.rotation_degrees, 0.0, 180.0)
        _check_range("train.shift_fraction", self.shift_fraction, 0.0, 0.5)
        _check_range("train.flip_probability", self.flip_probability, 0.0, 1.0)
        _check_range("train.color_jitter", self.color_jitter, 0.0, 1.0)
        _check_range("train.max_persons_per_epoch", self.max_persons_per_epoch, 0, 100_000_000)
        _check_range("train.val_fraction", self.val_fraction, 0.0, 0.9)
        _check_range("train.max_val_persons", self.max_val_persons, 1, 100_000_000)
        _check_range("train.num_threads", self.num_threads, 0, 1024)
        _check_range("train.num_workers", self.num_workers, 0, 64)
        _check_range("train.time_limit_s", self.time_limit_s, 0.0, 1e7)
        _check_range("train.cpu_time_limit_s", self.cpu_time_limit_s, 0.0, 1e7)
        if self.device not in ("auto", "cpu", "cuda"):
            raise ConfigError(f"train.device must be one of auto, cpu, cuda; got {self.device!r}")


@dataclass(frozen=True)
class EvaluateConfig:
    """Evaluation settings.

    sigmas: per-keypoint OKS constants, in KEYPOINT_NAMES order: the positional uncertainty of each
        keypoint's rendered evidence in the simulator (pixel sampling, motion blur, how the keypoint
        is drawn) divided by the median person scale sqrt(area); derivation in README "OKS sigmas".
        They are a property of the data, not of a model: evaluation never takes them from a
        checkpoint, so every model is scored on the same scale.
    batch_size: persons per forward pass.
    max_failure_images: debug images of the worst persons written per report.
    broken_oks: a person whose OKS is below this is listed as a failure.
    """

    sigmas: tuple[float, ...] = (0.036, 0.087, 0.087, 0.062, 0.062, 0.033, 0.033)
    batch_size: int = 32
    max_failure_images: int = 20
    broken_oks: float = 0.5

    def validate(self) -> None:
        if len(self.sigmas) != len(KEYPOINT_NAMES):
            raise ConfigError(
                f"evaluate.sigmas needs one value per keypoint ({len(KEYPOINT_NAMES)}: "
                f"{', '.join(KEYPOINT_NAMES)}); got {len(self.sigmas)}"
            )
        for index, sigma in enumerate(self.sigmas):
            _check_range(f"evaluate.sigmas[{index}] ({KEYPOINT_NAMES[index]})", sigma, 1e-4, 1.0)
        _check_range("evaluate.batch_size", self.batch_size, 1, 4096)
        _check_range("evaluate.max_failure_images", self.max_failure_images, 0, 100_000)
        _check_range("evaluate.broken_oks", self.broken_oks, 0.0, 1.0)


@dataclass(frozen=True)
class PoseConfig:
    """The whole configuration: one section per concern."""

    model: ModelConfig = field(default_factory=ModelConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    evaluate: EvaluateConfig = field(default_factory=EvaluateConfig)

    def to_dict(self) -> dict[str, dict[str, Any]]:
        """Plain nested dict (YAML/JSON/checkpoint friendly; tuples become lists)."""
        plain = dataclasses.asdict(self)
        plain["evaluate"]["sigmas"] = list(plain["evaluate"]["sigmas"])
        return plain


_SECTIONS = {"model": ModelConfig, "train": TrainConfig, "evaluate": EvaluateConfig}


# The shared rules, raising this package's ConfigError.
_check_range = functools.partial(config_checks.check_range, error=ConfigError)
_build_section = functools.partial(config_checks.build_section, error=ConfigError)
_unknown_key_error = functools.partial(config_checks.unknown_key_error, error=ConfigError)


def load_config(source: str | os.PathLike | dict | None = None) -> PoseConfig:
    """Build a validated PoseConfig from a YAML file path, a nested dict, or None (the defaults).

    Raises ConfigError naming the file and the bad key when anything is unknown, mistyped or out of
    range.
    """
    if source is None:
        values: Any = {}
    elif isinstance(source, dict):
        values = source
    else:
        path = Path(source)
        if not path.is_file():
            raise ConfigError(f"config file {path} does not exist; pass an existing YAML file")
        try:
            values = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        except yaml.YAMLError as error:
            raise ConfigError(f"config file {path} is not valid YAML: {error}") from error
    if not isinstance(values, dict):
        raise ConfigError(f"a config must be a mapping of sections; got {type(values).__name__}")
    for key in values:
        if key not in _SECTIONS:
            raise _unknown_key_error(str(key), list(_SECTIONS), "")
    try:
        return PoseConfig(
            **{name: _build_section(name, cls, values.get(name)) for name, cls in _SECTIONS.items()}
        )
    except ConfigError as error:
        if isinstance(source, str | os.PathLike):
            raise ConfigError(f"{source}: {error}") from error
        raise
