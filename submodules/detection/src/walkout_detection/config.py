"""Typed configuration of the detector, its training and its evaluation.

`load_config` accepts a YAML path, a dict or nothing (defaults) and validates everything at load time:
unknown keys are errors that suggest the closest valid key, out-of-range values name the key.
"""

from __future__ import annotations

import dataclasses
import functools
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from walkout_ci import config_checks
from walkout_detection.errors import ConfigError


@dataclass(frozen=True)
class ModelConfig:
    """Shape of the CenterNet-style network.

    width: channels of the stride-4 feature map; the stride-8 and stride-16 stages use 2x and 4x.
    head_channels: hidden channels of the prediction heads.
    blocks_stride16: residual blocks at stride 16 (they give the receptive field persons need).
    """

    width: int = 32
    head_channels: int = 48
    blocks_stride16: int = 2

    def validate(self) -> None:
        _check_range("model.width", self.width, 8, 256)
        _check_range("model.head_channels", self.head_channels, 8, 512)
        _check_range("model.blocks_stride16", self.blocks_stride16, 0, 8)


SELECT_METRICS = ("AP50", "AP")


@dataclass(frozen=True)
class TrainConfig:
    """Training hyper-parameters (the defaults are the production recipe, bar its time limit).

    balanced_sampling: draw images with probability proportional to the inverse frequency of their
        rarest class (on by default); false gives the plain uniform shuffle, for comparison.
    held_sampling_share: share of the drawn images chosen instead by the products held in them: an
        image's weight is the inverse frequency of its rarest held class (frequency = images where a
        person holds that class; COCO annotations with `held_by`, as walkout-sim writes). Shelf stock
        of every SKU is in nearly every image, so class balance alone never favours a rare product
        in a hand, which is what the app must read. 0 (the default) = off.
    samples_per_epoch: images drawn per epoch (0 = the size of the training set).
    time_limit_s: wall-clock budget in seconds, validation included (0 = none): training stops when it
        is spent, and the learning-rate schedule anneals by then.
    device: "auto" (CUDA when available, else CPU), "cpu" or "cuda".
    amp: mixed precision, used only on CUDA.
    num_workers: DataLoader worker processes preparing batches (0 = in the training process); on a
        GPU the per-image target encoding is the bottleneck without them.
    init_from: "" (random initialisation) or a model reference to fine-tune: an experiment id or a
        model_ref.yaml (a bare checkpoint names no experiment, so its training data could not be
        recorded). The network shape and class names must match; the new experiment records
        `initialized_from` and inherits the source's training data for the gate's leakage check.
    learn_crowd_classes: comma-separated class names whose crowd annotations (COCO `iscrowd` 1: for
        walkout-sim, a person 5-25% in view, a product 10-50%) are learned as objects; "" (the
        default) learns none, and their regions then count as background. Why persons: a shopper
        walking out through the exit is still in the store, and still annotated, until under 5% of
        the body is in view; a detector taught that slivers are background loses them ~10 px early,
        and the app cannot tell a shopper still in the doorway when a video ends from one gone.
    select_metric: the validation metric that picks best.pt, "AP50" or "AP" (the other breaks ties).
        AP50 saturates near 1.0 on the simulator's validation images, where a tie at the third decimal
        can pick an early, under-trained epoch; AP (IoU 0.50:0.95) keeps separating them.
    """

    epochs: int = 30
    batch_size: int = 8
    learning_rate: float = 7e-3
    weight_decay: float = 1e-4
    warmup_iterations: int = 50
    balanced_sampling: bool = True
    held_sampling_share: float = 0.0
    samples_per_epoch: int = 0
    flip_probability: float = 0.5
    seed: int = 0
    device: str = "auto"
    amp: bool = True
    num_threads: int = 0
    num_workers: int = 0
    time_limit_s: float = 0.0
    max_val_images: int = 60
    size_loss_weight: float = 0.3
    offset_loss_weight: float = 1.0
    init_from: str = ""
    learn_crowd_classes: str = ""
    select_metric: str = "AP50"

    def crowd_class_names(self) -> tuple[str, ...]:
        """`learn_crowd_classes` as a tuple of class names (empty: none)."""
        if not self.learn_crowd_classes.strip():
            return ()
        return tuple(name.strip() for name in self.learn_crowd_classes.split(","))

    def validate(self) -> None:
        _check_range("train.epochs", self.epochs, 1, 100_000)
        _check_range("train.batch_size", self.batch_size, 1, 4096)
        _check_range("train.learning_rate", self.learning_rate, 1e-7, 1.0)
        _check_range("train.weight_decay", self.weight_decay, 0.0, 1.0)
        _check_range("train.warmup_iterations", self.warmup_iterations, 0, 1_000_000)
        _check_range("train.samples_per_epoch", self.samples_per_epoch, 0, 10_000_000)
        _check_range("train.held_sampling_share", self.held_sampling_share, 0.0, 1.0)
        _check_range("train.flip_probability", self.flip_probability, 0.0, 1.0)
        _check_range("train.num_threads", self.num_threads, 0, 1024)
        _check_range("train.num_workers", self.num_workers, 0, 64)
        _check_range("train.time_limit_s", self.time_limit_s, 0.0, 1e7)
        _check_range("train.max_val_images", self.max_val_images, 1, 10_000_000)
        _check_range("train.size_loss_weight", self.size_loss_weight, 0.0, 100.0)
        _check_range("train.offset_loss_weight", self.offset_loss_weight, 0.0, 100.0)
        if self.device not in ("auto", "cpu", "cuda"):
            raise ConfigError(f"train.device must be one of auto, cpu, cuda; got {self.device!r}")
        if self.select_metric not in SELECT_METRICS:
            raise ConfigError(
                f"train.select_metric must be one of {', '.join(SELECT_METRICS)}; got {self.select_metric!r}"
            )
        if any(not name for name in self.crowd_class_names()):
            raise ConfigError(
                f"train.learn_crowd_classes has an empty class name in {self.learn_crowd_classes!r}; "
                "give comma-separated class names, e.g. person"
            )


@dataclass(frozen=True)
class EvaluateConfig:
    """Decoding and evaluation settings.

    min_score: detections below it are dropped before COCO AP (keep it low: AP integrates over scores).
    score_threshold: operating point for per-image F1, per-class recall, failure cases and predict.
    match_iou: IoU at which a detection matches a ground-truth box for F1 / recall / failures.
    max_failure_images: debug images written per report (failure records are not capped).
    """

    max_detections: int = 100
    min_score: float = 0.01
    score_threshold: float = 0.3
    match_iou: float = 0.5
    max_failure_images: int = 40

    def validate(self) -> None:
        _check_range("evaluate.max_detections", self.max_detections, 1, 10_000)
        _check_range("evaluate.min_score", self.min_score, 0.0, 1.0)
        _check_range("evaluate.score_threshold", self.score_threshold, 0.0, 1.0)
        _check_range("evaluate.match_iou", self.match_iou, 0.05, 0.95)
        _check_range("evaluate.max_failure_images", self.max_failure_images, 0, 100_000)


@dataclass(frozen=True)
class DetectionConfig:
    """The whole configuration: one section per concern."""

    model: ModelConfig = field(default_factory=ModelConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    evaluate: EvaluateConfig = field(default_factory=EvaluateConfig)

    def to_dict(self) -> dict[str, dict[str, Any]]:
        """Plain nested dict (YAML/JSON/checkpoint friendly)."""
        return dataclasses.asdict(self)


_SECTIONS = {"model": ModelConfig, "train": TrainConfig, "evaluate": EvaluateConfig}


# The shared rules, raising this package's ConfigError.
_check_range = functools.partial(config_checks.check_range, error=ConfigError)
_build_section = functools.partial(config_checks.build_section, error=ConfigError)
_unknown_key_error = functools.partial(config_checks.unknown_key_error, error=ConfigError)


def load_config(source: str | Path | dict[str, Any] | None = None) -> DetectionConfig:
    """Load and validate a configuration.

    source: a YAML file path, a nested dict {"model": {...}, "train": {...}, "evaluate": {...}} or
    None for the defaults. Raises ConfigError naming the bad key or value.
    """
    if source is None:
        data: Any = {}
    elif isinstance(source, dict):
        data = source
    else:
        path = Path(source)
        if not path.is_file():
            raise ConfigError(f"config file {path} does not exist")
        try:
            data = yaml.safe_load(path.read_text()) or {}
        except yaml.YAMLError as error:
            raise ConfigError(f"config file {path} is not valid YAML: {error}") from error
    if not isinstance(data, dict):
        raise ConfigError(
            f"config must be a mapping of sections {sorted(_SECTIONS)}; got {type(data).__name__}"
        )
    for key in data:
        if key not in _SECTIONS:
            raise _unknown_key_error(key, list(_SECTIONS), "")
    return DetectionConfig(
        **{name: _build_section(name, cls, data.get(name)) for name, cls in _SECTIONS.items()}
    )


def apply_overrides(config: DetectionConfig, overrides: list[str]) -> DetectionConfig:
    """Return a new config with "section.key=value" overrides applied (values parsed as YAML scalars)."""
    data = config.to_dict()
    for item in overrides:
        if "=" not in item or "." not in item.split("=", 1)[0]:
            raise ConfigError(f"override {item!r} must look like section.key=value, e.g. train.epochs=5")
        dotted, raw = item.split("=", 1)
        section, key = dotted.split(".", 1)
        if section not in data:
            raise _unknown_key_error(section, list(data), "")
        try:
            data[section][key] = yaml.safe_load(raw)
        except yaml.YAMLError as error:
            raise ConfigError(f"override {item!r}: value {raw!r} is not a valid YAML scalar") from error
    return load_config(data)
