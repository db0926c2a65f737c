"""Typed configuration of the tracker, the appearance model and its training, validated at load.

`load_config(path | dict)` returns a `TrackingConfig`. Unknown keys are errors that suggest the
closest valid key; out-of-range values name the key and the allowed range. Every section is optional
and falls back to the defaults below.
"""

from __future__ import annotations

import dataclasses
import difflib
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from walkout_tracking.errors import ConfigError


def _check_range(section: str, name: str, value: float, low: float | None, high: float | None) -> None:
    if (low is not None and value < low) or (high is not None and value > high):
        bounds = f"[{'-inf' if low is None else low}, {'inf' if high is None else high}]"
        raise ConfigError(f"{section}.{name} = {value!r} is out of range: it must be in {bounds}")


@dataclass(frozen=True)
class TrackerConfig:
    """Association settings. Frames are the unit of time; scores and IoUs are in [0, 1]."""

    max_age: int = 30  # frames a track survives without a matched detection before it is deleted
    min_hits: int = 3  # matched frames before a track is confirmed (reported)
    iou_threshold: float = 0.3  # minimum IoU of a first-pass (high-score) match
    high_score: float = 0.7  # detections at or above this score go to the first pass
    low_score: float = 0.1  # detections below this score are ignored; in between: second pass
    new_track_score: float = 0.8  # only unmatched detections at or above this score start tracks
    second_pass_iou: float = 0.5  # minimum IoU of a second-pass (low-score) match (ByteTrack)
    use_appearance: bool = True  # use embeddings in the first pass when they are available
    appearance_weight: float = 0.5  # weight of the cosine distance in the fused cost
    max_appearance_distance: float = 0.6  # cosine-distance gate: pairs looking more different never match
    reid_appearance_distance: float = 0.15  # below this a lost track may match without overlap
    # ... but only a detection its person could have walked to since the track was last matched:
    # centres at most 1 + `reid_max_speed` x frames lost box heights apart. A lost track otherwise
    # re-identifies any look-alike anywhere in the view. 0: no limit.
    reid_max_speed: float = 0.0
    embedding_momentum: float = 0.9  # exponential moving average of a track's appearance feature
    output_detection_box: bool = False  # report the matched detection box (else the Kalman estimate)
    coast_frames: int = 2  # keep reporting a confirmed track's predicted box for this many missed frames
    report_early: bool = True  # report tracks during the first `min_hits` frames of a sequence (SORT)
    delete_tentative_on_miss: bool = True  # a not-yet-confirmed track dies at its first miss
    # A second box on a person who already has a track (the detector's NMS keeps an upper-body box
    # beside the whole body in a crowd) must not start a second track: it competes with the first
    # one and takes over its identity a few frames later. An unmatched detection that overlaps a
    # detection matched this frame by at least `duplicate_birth_iou` AND looks like that detection's
    # track (cosine distance <= `duplicate_birth_distance`) starts no track. 0 disables the check.
    duplicate_birth_distance: float = 0.0
    duplicate_birth_iou: float = 0.3
    # The first pass's assignment. 0: match as many track-detection pairs as the gates allow (SORT).
    # Above 0: maximise the total saving `cost_limit - cost` (ByteTrack's lapjv cost_limit), so a
    # track just seen keeps its close detection rather than two tracks trading boxes for one more,
    # poorer, match; a pair costing `cost_limit` or more is never matched. Costs are the fused
    # cost (appearance; below 0.63 for any pair the production gates let through) or 1 - IoU
    # (motion only). The low-score second pass (IoU alone) is not changed.
    cost_limit: float = 0.0
    # A crop of a person standing close to another shows parts of both: folding it into the track's
    # running appearance (`embedding_momentum`) pulls the looks of the two tracks together, and
    # when they part either track may take the other's box. A matched detection that overlaps
    # another detection of the frame by IoU >= `occluded_feature_iou` still corrects the track's
    # box but leaves its appearance as it was (Deep OC-SORT likewise lets a doubtful crop move the
    # running look less). 0 disables the check: every match updates the appearance.
    occluded_feature_iou: float = 0.0
    # Look-alike shoppers: two tracks whose looks are within this cosine distance of each other.
    # For such a track, detections within this distance of its best-looking one count as looking
    # the same in the first pass (`association.within_tolerance`): where the boxes are decides. A
    # track with no look-alike keeps every difference. 0: off.
    appearance_tolerance: float = 0.0

    def __post_init__(self) -> None:
        section = "tracker"
        _check_range(section, "max_age", self.max_age, 0, None)
        _check_range(section, "min_hits", self.min_hits, 0, None)
        _check_range(section, "coast_frames", self.coast_frames, 0, None)
        if self.coast_frames > self.max_age:
            raise ConfigError(
                f"tracker.coast_frames = {self.coast_frames} exceeds tracker.max_age = {self.max_age}: "
                "a track cannot be reported after it was deleted"
            )
        for name in (
            "iou_threshold",
            "high_score",
            "low_score",
            "new_track_score",
            "second_pass_iou",
            "appearance_weight",
            "embedding_momentum",
            "duplicate_birth_iou",
            "cost_limit",
            "occluded_feature_iou",
        ):
            _check_range(section, name, getattr(self, name), 0.0, 1.0)
        _check_range(section, "max_appearance_distance", self.max_appearance_distance, 0.0, 2.0)
        _check_range(section, "reid_appearance_distance", self.reid_appearance_distance, 0.0, 2.0)
        _check_range(section, "reid_max_speed", self.reid_max_speed, 0.0, None)
        _check_range(section, "duplicate_birth_distance", self.duplicate_birth_distance, 0.0, 2.0)
        _check_range(section, "appearance_tolerance", self.appearance_tolerance, 0.0, 2.0)
        if self.low_score > self.high_score:
            raise ConfigError(
                f"tracker.low_score = {self.low_score} is above tracker.high_score = {self.high_score}: "
                "low_score must be <= high_score"
            )


@dataclass(frozen=True)
class ModelConfig:
    """The appearance network: person crop [3, crop_height, crop_width] -> unit vector [embedding_dim]."""

    # Persons in the simulator's top-down view are ~20-35 px and rotate freely: square crops.
    crop_height: int = 32
    crop_width: int = 32
    embedding_dim: int = 64
    channels: tuple[int, ...] = (16, 32, 64)

    def __post_init__(self) -> None:
        _check_range("model", "crop_height", self.crop_height, 8, 512)
        _check_range("model", "crop_width", self.crop_width, 8, 512)
        _check_range("model", "embedding_dim", self.embedding_dim, 2, 4096)
        if not self.channels:
            raise ConfigError(
                "model.channels is empty: give at least one conv stage width, e.g. [16, 32, 64]"
            )
        for width in self.channels:
            _check_range("model", "channels[]", width, 1, 1024)


@dataclass(frozen=True)
class TrainConfig:
    """Metric-learning training of the appearance model (batch-hard triplet loss on identities)."""

    epochs: int = 10
    identities_per_batch: int = 8  # P in the P x K batch sampler
    crops_per_identity: int = 4  # K in the P x K batch sampler
    batches_per_epoch: int = 50
    learning_rate: float = 1e-3
    weight_decay: float = 5e-4
    margin: float = 0.3  # triplet margin on cosine distance
    max_crops_per_identity: int = 200  # per video identity; keeps crop extraction fast
    min_box_height: int = 12  # crops smaller than this (pixels) are skipped
    # Training crops cut from perturbed ground-truth boxes (data.jitter_boxes: centre shift and side
    # scale, as a fraction of the box), as the detector's boxes are placed in a crowd; 0 = exact boxes.
    # Validation crops always use the exact boxes.
    box_jitter: float = 0.0
    # Where the triplet loss finds each crop's hardest negative: "batch" (any other identity in the
    # batch) or "same_sequence" (batches are built from whole videos and negatives come from the
    # crop's own video). The simulator draws shoppers' looks from small palettes, so identities of
    # different videos often look alike; the tracker never has to tell those apart.
    negatives: str = "batch"
    validation_fraction: float = 0.2  # share of videos held out for validation
    seed: int = 0
    device: str = "cpu"  # "cpu", "cuda", or "auto" (CUDA + AMP when available)
    num_workers: int = 0

    def __post_init__(self) -> None:
        _check_range("train", "epochs", self.epochs, 1, None)
        _check_range("train", "identities_per_batch", self.identities_per_batch, 2, None)
        _check_range("train", "crops_per_identity", self.crops_per_identity, 2, None)
        _check_range("train", "batches_per_epoch", self.batches_per_epoch, 1, None)
        _check_range("train", "learning_rate", self.learning_rate, 0.0, 10.0)
        _check_range("train", "weight_decay", self.weight_decay, 0.0, 1.0)
        _check_range("train", "margin", self.margin, 0.0, 2.0)
        _check_range("train", "max_crops_per_identity", self.max_crops_per_identity, 2, None)
        _check_range("train", "min_box_height", self.min_box_height, 1, None)
        _check_range("train", "box_jitter", self.box_jitter, 0.0, 0.5)
        _check_range("train", "validation_fraction", self.validation_fraction, 0.0, 0.9)
        _check_range("train", "num_workers", self.num_workers, 0, 64)
        if self.negatives not in ("batch", "same_sequence"):
            raise ConfigError(f"train.negatives = {self.negatives!r} is not one of 'batch', 'same_sequence'")
        if self.device not in ("cpu", "cuda", "auto"):
            raise ConfigError(f"train.device = {self.device!r} is not one of 'cpu', 'cuda', 'auto'")


@dataclass(frozen=True)
class TrackingConfig:
    """The whole package configuration: tracker, appearance model, training."""

    tracker: TrackerConfig = field(default_factory=TrackerConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    train: TrainConfig = field(default_factory=TrainConfig)

    def to_dict(self) -> dict[str, Any]:
        """Plain-dict form (lists instead of tuples) for checkpoints, YAML and experiment parameters."""
        return _plain(dataclasses.asdict(self))


def _plain(value: Any) -> Any:
    if isinstance(value, dict):
        return {key: _plain(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(item) for item in value]
    return value


def _coerce(section: str, name: str, annotation: Any, value: Any) -> Any:
    """Check `value` against a field annotation (bool/int/float/str/tuple[int, ...]); ints widen to float."""
    origin = typing.get_origin(annotation)
    if origin is tuple:
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{section}.{name} must be a list, got {value!r}")
        (item_type, _ellipsis) = typing.get_args(annotation)
        return tuple(_coerce(section, f"{name}[]", item_type, item) for item in value)
    if origin in (typing.Union, types.UnionType):
        raise ConfigError(f"{section}.{name}: union fields are not supported")  # pragma: no cover
    if annotation is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{section}.{name} must be true or false, got {value!r}")
        return value
    if annotation is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{section}.{name} must be an integer, got {value!r}")
        return value
    if annotation is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{section}.{name} must be a number, got {value!r}")
        return float(value)
    if annotation is str:
        if not isinstance(value, str):
            raise ConfigError(f"{section}.{name} must be a string, got {value!r}")
        return value
    raise ConfigError(f"{section}.{name}: unsupported field type {annotation!r}")  # pragma: no cover


def _unknown_key_error(section: str, key: str, valid: list[str]) -> ConfigError:
    close = difflib.get_close_matches(key, valid, n=1)
    hint = f"did you mean {close[0]!r}?" if close else f"valid keys: {', '.join(sorted(valid))}"
    where = f"{section}.{key}" if section else key
    return ConfigError(f"unknown config key {where!r}: {hint}")


def _build_section(cls: type, section: str, data: Any) -> Any:
    if data is None:
        return cls()
    if not isinstance(data, dict):
        raise ConfigError(f"config section {section!r} must be a mapping, got {type(data).__name__}")
    hints = typing.get_type_hints(cls)
    names = [f.name for f in dataclasses.fields(cls)]
    kwargs = {}
    for key, value in data.items():
        if key not in names:
            raise _unknown_key_error(section, str(key), names)
        kwargs[key] = _coerce(section, key, hints[key], value)
    return cls(**kwargs)


def load_config(source: str | Path | dict[str, Any] | None = None) -> TrackingConfig:
    """Load and validate a config from a YAML file path, a dict, or None (all defaults).

    Shape: {"tracker": {...TrackerConfig...}, "model": {...ModelConfig...}, "train": {...TrainConfig...}}.
    Raises ConfigError naming the file and the bad key/value.
    """
    if source is None:
        return TrackingConfig()
    origin = "<dict>"
    if isinstance(source, (str, Path)):
        path = Path(source)
        origin = str(path)
        try:
            data = yaml.safe_load(path.read_text())
        except FileNotFoundError as error:
            raise ConfigError(f"config file {path} does not exist") from error
        except yaml.YAMLError as error:
            raise ConfigError(f"config file {path} is not valid YAML: {error}") from error
        data = data or {}
    else:
        data = source
    if not isinstance(data, dict):
        raise ConfigError(f"config {origin} must be a mapping with sections tracker/model/train")
    sections = {"tracker": TrackerConfig, "model": ModelConfig, "train": TrainConfig}
    built = {}
    try:
        for key, value in data.items():
            if key not in sections:
                raise _unknown_key_error("", str(key), list(sections))
            built[key] = _build_section(sections[key], key, value)
    except ConfigError as error:
        if origin == "<dict>":
            raise
        raise ConfigError(f"{origin}: {error}") from error
    return TrackingConfig(**built)
