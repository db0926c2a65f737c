"""Shared, session-scoped exports (rendering is the slow part, so each is made once per test run)."""

from __future__ import annotations

import pytest

import walkout_sim
from walkout_sim.config import GeneratorConfig, OutputConfig

# Uncompressed PNGs: the formats are the same, the tests just spend less time in zlib.
FAST_PNG = GeneratorConfig(output=OutputConfig(png_compression=0))


@pytest.fixture(scope="session")
def train_split(tmp_path_factory):
    """A small train split: 2 videos x 40 frames, seed 0."""
    out = tmp_path_factory.mktemp("sim") / "train"
    summaries = walkout_sim.generate_split(out, split="train", videos=2, frames=40, seed=0, config=FAST_PNG)
    return out, summaries


@pytest.fixture(scope="session")
def val_split(tmp_path_factory):
    """A small val split with the same seed number as train_split (the streams must still differ)."""
    out = tmp_path_factory.mktemp("sim") / "val"
    walkout_sim.generate_split(out, split="val", videos=2, frames=40, seed=0, config=FAST_PNG)
    return out


@pytest.fixture(scope="session")
def shipped_renders(tmp_path_factory):
    """Every shipped scenario rendered once (few COCO images): {name: (export root, VideoSummary)}."""
    from walkout_sim.scenario import shipped_scenarios

    config = GeneratorConfig(output=OutputConfig(image_stride=50, png_compression=0))
    root = tmp_path_factory.mktemp("scenarios")
    return {
        name: (root / name, walkout_sim.render_scenario(name, root / name, config=config))
        for name in shipped_scenarios()
    }


@pytest.fixture(scope="session")
def crowd_scenario(shipped_renders):
    """The crowd_of_six scenario (6 shoppers, picks and put-backs): (export root, VideoSummary)."""
    return shipped_renders["crowd_of_six"]
