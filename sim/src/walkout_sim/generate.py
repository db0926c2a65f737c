"""The public API: render splits and scenarios into the export layout of ARCHITECTURE.md section 1.

Seeds: every split draws from its own stream, ``SeedSequence(seed, spawn_key=(split key, video, part))``,
so train/val/blind never share random numbers; the blind split's seed comes only from the
environment variable ``WALKOUT_BLIND_SEED`` and is never written to its manifest.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tqdm import tqdm

from walkout_sim import __version__
from walkout_sim.config import GeneratorConfig, load_config
from walkout_sim.errors import BlindSeedError, SimError
from walkout_sim.export import CocoWriter, VideoWriter, atomic_output_dir, frame_hash, write_manifest
from walkout_sim.layout import Layout, default_layout_path, layout_to_yaml, load_layout, shuffle_planogram
from walkout_sim.scenario import ExpectedEvent, Scenario, load_scenario, sample_scenario
from walkout_sim.schema import to_plain
from walkout_sim.signals import raise_if_interrupted
from walkout_sim.simulate import SimulationResult, simulate

SPLIT_KEYS = {"train": 1, "val": 2, "blind": 3, "scenario": 4}
BLIND_SEED_ENV = "WALKOUT_BLIND_SEED"
SCENARIO, SIMULATION, RENDERING, STORE = 0, 1, 2, 3


@dataclass
class VideoSummary:
    """What was rendered for one video."""

    name: str
    frames: int
    events: list[dict]
    receipts: dict[str, dict[str, int]]
    expected: list[ExpectedEvent] | None = None


def blind_seed_from_env() -> int:
    """The secret blind seed from WALKOUT_BLIND_SEED (any string, hashed to an int). Raises BlindSeedError."""
    secret = os.environ.get(BLIND_SEED_ENV)
    if not secret:
        raise BlindSeedError(
            f"the blind split needs a secret seed: set the environment variable {BLIND_SEED_ENV} "
            "(there is deliberately no default)"
        )
    return int.from_bytes(hashlib.sha256(secret.encode()).digest()[:8], "little")


def _rng(entropy: int, split: str, video: int, part: int) -> np.random.Generator:
    return np.random.default_rng(np.random.SeedSequence(entropy, spawn_key=(SPLIT_KEYS[split], video, part)))


def _layout_and_text(config: GeneratorConfig) -> tuple[Layout, str]:
    path = Path(config.layout) if config.layout is not None else default_layout_path()
    return load_layout(path), path.read_text()


def _render_video(
    scenario: Scenario,
    layout: Layout,
    layout_text: str,
    config: GeneratorConfig,
    root: Path,
    coco: CocoWriter,
    frames: int | None,
    sim_rng: np.random.Generator,
    render_rng: np.random.Generator,
    hashes: list[str],
    progress: tqdm | None,
) -> VideoSummary:
    # Imported here so that `import walkout_sim` stays light (cv2 loads on first render).
    from walkout_sim.render import Renderer

    camera = config.camera
    renderer = Renderer(layout, camera, render_rng)
    result = SimulationResult()
    writer = VideoWriter(
        root / "videos" / scenario.name, scenario.name, layout, camera.fps, camera.jpeg_quality
    )
    stride = config.output.image_stride
    for state in simulate(
        scenario,
        layout,
        camera.fps,
        sim_rng,
        frames=frames,
        reach_s=config.shoppers.reach_s,
        dwell_s=config.shoppers.dwell_s,
        max_concurrent=config.shoppers.max_concurrent,
        result=result,
    ):
        # A signal whose exception a finalizer swallowed still stops the run here (see signals.py).
        raise_if_interrupted()
        image, truth = renderer.render(state)
        hashes.append(frame_hash(image))
        writer.add(state.index, image, truth)
        if (state.index - 1) % stride == 0:
            coco.add(scenario.name, state.index, image, truth)
        if progress is not None:
            progress.update(1)
    writer.close(result.events, result.receipts, layout_text)
    return VideoSummary(scenario.name, result.frames, result.events, result.receipts)


def generate_split(
    out_dir: str | Path,
    split: str = "train",
    videos: int = 2,
    frames: int = 40,
    seed: int | None = 0,
    config: GeneratorConfig | str | Path | None = None,
    force: bool = False,
    progress: bool = False,
) -> list[VideoSummary]:
    """Render ``videos`` random videos of ``frames`` frames into ``out_dir`` (the export layout).

    split: "train", "val" or "blind". For "blind" the seed comes from WALKOUT_BLIND_SEED and
    ``seed`` must be None. Raises SimError subclasses on bad input; nothing is left half-written.
    """
    if split not in ("train", "val", "blind"):
        raise SimError(f"unknown split {split!r}; use train, val or blind")
    if videos < 1 or frames < 1:
        raise SimError(f"videos and frames must be >= 1, got videos={videos}, frames={frames}")
    if split == "blind":
        if seed is not None:
            raise SimError("the blind split takes no --seed: its seed comes only from WALKOUT_BLIND_SEED")
        entropy = blind_seed_from_env()
    else:
        if seed is None or seed < 0:
            raise SimError(f"split {split!r} needs a seed >= 0, got {seed!r}")
        entropy = seed
    if not isinstance(config, GeneratorConfig):
        config = load_config(config)
    layout, layout_text = _layout_and_text(config)
    summaries = []
    with (
        atomic_output_dir(Path(out_dir), force) as root,
        CocoWriter(root / "coco", layout, config.output.png_compression) as coco,
    ):
        (root / "layout.yaml").write_text(layout_text)
        hashes: list[str] = []
        bar = tqdm(total=videos * frames, desc=f"walkout-sim {split}", unit="frame", disable=not progress)
        for index in range(videos):
            name = f"{split}_{index:04d}"
            video_layout, video_layout_text = layout, layout_text
            if config.store.shuffle_planogram:
                video_layout = shuffle_planogram(layout, _rng(entropy, split, index, STORE))
                video_layout_text = layout_to_yaml(video_layout)
            scenario = sample_scenario(
                video_layout,
                config.shoppers,
                frames,
                config.camera.fps,
                _rng(entropy, split, index, SCENARIO),
                name,
            )
            summaries.append(
                _render_video(
                    scenario,
                    video_layout,
                    video_layout_text,
                    config,
                    root,
                    coco,
                    frames,
                    _rng(entropy, split, index, SIMULATION),
                    _rng(entropy, split, index, RENDERING),
                    hashes,
                    bar,
                )
            )
        bar.close()
        coco.close(split)
        generator = {
            "walkout_sim_version": __version__,
            "split": split,
            "videos": videos,
            "frames": frames,
            "seed": None if split == "blind" else seed,
            "seed_source": f"env:{BLIND_SEED_ENV}" if split == "blind" else "argument",
            "layout": layout.name,
            "config": to_plain(config)
            | {"layout": None if config.layout is None else Path(config.layout).name},
        }
        write_manifest(root, split, generator, hashes)
    return summaries


def render_scenario(
    name_or_path: str | Path,
    out_dir: str | Path,
    config: GeneratorConfig | str | Path | None = None,
    force: bool = False,
    progress: bool = False,
) -> VideoSummary:
    """Render one scenario (a shipped name such as "pick_then_put_back", or a YAML path) as a one-video split.

    The returned summary carries ``expected``: the events the script asks for, to compare with ``events``.
    """
    if not isinstance(config, GeneratorConfig):
        config = load_config(config)
    layout, layout_text = _layout_and_text(config)
    scenario, expected = load_scenario(name_or_path, layout)
    with (
        atomic_output_dir(Path(out_dir), force) as root,
        CocoWriter(root / "coco", layout, config.output.png_compression) as coco,
    ):
        (root / "layout.yaml").write_text(layout_text)
        hashes: list[str] = []
        bar = tqdm(
            total=scenario.frames, desc=f"walkout-sim {scenario.name}", unit="frame", disable=not progress
        )
        summary = _render_video(
            scenario,
            layout,
            layout_text,
            config,
            root,
            coco,
            scenario.frames,
            _rng(scenario.seed, "scenario", 0, SIMULATION),
            _rng(scenario.seed, "scenario", 0, RENDERING),
            hashes,
            bar,
        )
        bar.close()
        coco.close("scenario")
        generator = {
            "walkout_sim_version": __version__,
            "split": "scenario",
            "scenario": scenario.name,
            "seed": scenario.seed,
            "layout": layout.name,
            "config": to_plain(config)
            | {"layout": None if config.layout is None else Path(config.layout).name},
        }
        write_manifest(root, "scenario", generator, hashes)
    summary.expected = expected
    return summary
