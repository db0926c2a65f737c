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
def crowd_scenario(tmp_path_factory):
    """The crowd_of_six scenario rendered in full (6 shoppers, picks and put-backs)."""
    out = tmp_path_factory.mktemp("sim") / "crowd"
    summary = walkout_sim.render_scenario(
        "crowd_of_six", out, config=GeneratorConfig(output=OutputConfig(png_compression=0, image_stride=10))
    )
    return out, summary
