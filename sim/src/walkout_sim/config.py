"""Typed generator configuration: camera degradations, random shopper behaviour, output options.

Loaded from YAML (``walkout-sim generate --config FILE``) with strict validation; every field has a
default, so an empty file (or no file) gives the default generator.
"""

from __future__ import annotations

import importlib.resources
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Literal

from walkout_sim.errors import ConfigError
from walkout_sim.schema import build, read_yaml, require


def _check_range(
    pair: tuple[float, float], low: float, high: float, source: str, path: str, name: str
) -> None:
    require(
        low <= pair[0] <= pair[1] <= high,
        source,
        path,
        name,
        f"must be [min, max] with {low} <= min <= max <= {high}, got {list(pair)}",
    )


@dataclass(frozen=True)
class CameraConfig:
    """The ceiling camera: frame rate and image degradations (the hard-case knobs).

    noise_sigma: std of Gaussian sensor noise in grey levels (0..255 scale).
    motion_blur: exposure as a fraction of the frame interval; blur length = speed * motion_blur pixels.
    brightness: per-video global gain drawn from [min, max].
    tint: per-video per-channel gain jitter (colour temperature), +- this fraction.
    gradient: strength of the per-video spatial illumination falloff (0 = flat).
    drift_amplitude: slow sinusoidal illumination drift over time, +- this fraction.
    drift_period_s: drift period drawn from [min, max] seconds.
    jpeg_quality: quality of the MJPG video.avi (the COCO PNGs are lossless).
    """

    fps: int = 10
    noise_sigma: float = 3.0
    motion_blur: float = 0.6
    brightness: tuple[float, float] = (0.82, 1.12)
    tint: float = 0.05
    gradient: float = 0.15
    drift_amplitude: float = 0.06
    drift_period_s: tuple[float, float] = (15.0, 60.0)
    jpeg_quality: int = 92

    def check(self, source: str, path: str) -> None:
        require(1 <= self.fps <= 60, source, path, "fps", f"must be 1..60, got {self.fps}")
        require(
            0 <= self.noise_sigma <= 40, source, path, "noise_sigma", f"must be 0..40, got {self.noise_sigma}"
        )
        require(
            0 <= self.motion_blur <= 3, source, path, "motion_blur", f"must be 0..3, got {self.motion_blur}"
        )
        _check_range(self.brightness, 0.2, 2.0, source, path, "brightness")
        require(0 <= self.tint <= 0.3, source, path, "tint", f"must be 0..0.3, got {self.tint}")
        require(0 <= self.gradient <= 0.6, source, path, "gradient", f"must be 0..0.6, got {self.gradient}")
        require(
            0 <= self.drift_amplitude <= 0.5,
            source,
            path,
            "drift_amplitude",
            f"must be 0..0.5, got {self.drift_amplitude}",
        )
        _check_range(self.drift_period_s, 1.0, 3600.0, source, path, "drift_period_s")
        require(
            10 <= self.jpeg_quality <= 100,
            source,
            path,
            "jpeg_quality",
            f"must be 10..100, got {self.jpeg_quality}",
        )


@dataclass(frozen=True)
class ShopperConfig:
    """How random videos are scripted (they are sampled into the same scenario schema as the shipped ones).

    max_concurrent: at most this many shoppers in view (a later arrival waits outside).
    initial: number of shoppers already inside at frame 1, drawn from [min, max].
    arrivals_per_minute: mean rate of new shoppers entering through the entrance.
    picks: number of picks per shopper, drawn from [min, max] (a shopper holds at most 2 items).
    put_back_probability: chance a picked item is put back later (inspect, then return).
    put_back_elsewhere_probability: chance such a put-back goes into a different slot.
    walk_speed: pixels per frame, drawn per shopper from [min, max].
    reach_s: duration of one reach (in + out), seconds.
    dwell_s: pause before each reach, drawn from [min, max] seconds.
    """

    max_concurrent: int = 6
    initial: tuple[int, int] = (1, 4)
    arrivals_per_minute: float = 14.0
    picks: tuple[int, int] = (1, 3)
    put_back_probability: float = 0.2
    put_back_elsewhere_probability: float = 0.35
    walk_speed: tuple[float, float] = (2.0, 3.2)
    reach_s: float = 1.2
    dwell_s: tuple[float, float] = (0.2, 1.5)

    def check(self, source: str, path: str) -> None:
        require(
            1 <= self.max_concurrent <= 6,
            source,
            path,
            "max_concurrent",
            f"must be 1..6, got {self.max_concurrent}",
        )
        require(
            0 <= self.initial[0] <= self.initial[1] <= self.max_concurrent,
            source,
            path,
            "initial",
            f"must be [min, max] within 0..max_concurrent, got {list(self.initial)}",
        )
        require(
            0 <= self.arrivals_per_minute <= 120,
            source,
            path,
            "arrivals_per_minute",
            f"must be 0..120, got {self.arrivals_per_minute}",
        )
        require(
            0 <= self.picks[0] <= self.picks[1] <= 6,
            source,
            path,
            "picks",
            f"must be [min, max] within 0..6, got {list(self.picks)}",
        )
        for name in ("put_back_probability", "put_back_elsewhere_probability"):
            value = getattr(self, name)
            require(0 <= value <= 1, source, path, name, f"must be a probability 0..1, got {value}")
        _check_range(self.walk_speed, 0.5, 8.0, source, path, "walk_speed")
        require(
            0.4 <= self.reach_s <= 5, source, path, "reach_s", f"must be 0.4..5 seconds, got {self.reach_s}"
        )
        _check_range(self.dwell_s, 0.0, 30.0, source, path, "dwell_s")


@dataclass(frozen=True)
class OutputConfig:
    """What gets written.

    image_stride: every n-th frame of each video goes to coco/images + the split's COCO files.
    png_compression: 0 = stored, fastest (~230 KB a frame); 1..9 = Huffman-coded (~160 KB, slower).
    PNGs are lossless either way.
    """

    image_stride: int = 1
    png_compression: int = 1
    video_codec: Literal["MJPG"] = "MJPG"

    def check(self, source: str, path: str) -> None:
        require(
            1 <= self.image_stride <= 1000,
            source,
            path,
            "image_stride",
            f"must be >= 1, got {self.image_stride}",
        )
        require(
            0 <= self.png_compression <= 9,
            source,
            path,
            "png_compression",
            f"must be 0..9, got {self.png_compression}",
        )


@dataclass(frozen=True)
class StoreConfig:
    """Per-video variation of the store in random splits (scenarios always use the layout as written).

    shuffle_planogram: re-merchandise each video (SKU runs move between slots of the same size; the
    video's layout.yaml records the planogram it was rendered with).
    """

    shuffle_planogram: bool = True


@dataclass(frozen=True)
class GeneratorConfig:
    """Everything that determines a rendered split besides the seed.

    layout: path of a layout YAML, or null for the default store.
    """

    camera: CameraConfig = field(default_factory=CameraConfig)
    shoppers: ShopperConfig = field(default_factory=ShopperConfig)
    output: OutputConfig = field(default_factory=OutputConfig)
    store: StoreConfig = field(default_factory=StoreConfig)
    layout: str | None = None


def shipped_configs() -> list[str]:
    """Names of the generator configs shipped as package data (e.g. "hard", "clean")."""
    return sorted(path.stem for path in _config_dir().glob("*.yaml"))


def _config_dir() -> Path:
    return Path(str(importlib.resources.files("walkout_sim") / "data" / "configs"))


def load_config(path: str | Path | None = None) -> GeneratorConfig:
    """Load a generator config YAML or a shipped preset by name (None: the defaults). Raises ConfigError."""
    if path is None:
        return GeneratorConfig()
    if not Path(path).exists() and (_config_dir() / f"{path}.yaml").exists():
        path = _config_dir() / f"{path}.yaml"
    elif not Path(path).exists():
        raise ConfigError(
            str(path), "", f"no such config file or shipped preset; presets: {shipped_configs()}"
        )
    config = build(GeneratorConfig, read_yaml(Path(path)), str(path))
    if config.layout is not None and not Path(config.layout).is_absolute():
        # A relative layout path is relative to the config file, so configs can travel with their layouts.
        config = replace(config, layout=str((Path(path).parent / config.layout).resolve()))
    return config
