"""Generator config presets and defaults."""

from __future__ import annotations

import pytest

from walkout_sim.config import GeneratorConfig, load_config, shipped_configs
from walkout_sim.errors import ConfigError


def test_presets_load_and_differ_from_the_default():
    assert {"hard", "clean"} <= set(shipped_configs())
    default = GeneratorConfig()
    hard, clean = load_config("hard"), load_config("clean")
    assert hard.camera.noise_sigma > default.camera.noise_sigma > clean.camera.noise_sigma == 0
    assert hard.shoppers.initial[1] == 6 and clean.shoppers == default.shoppers


def test_unknown_preset_lists_the_presets():
    with pytest.raises(ConfigError, match=r"presets: \['busy', 'clean', 'hard'"):
        load_config("nonesuch")


def test_relative_layout_path_is_relative_to_the_config_file(tmp_path):
    (tmp_path / "gen.yaml").write_text("layout: stores/mine.yaml\n")
    config = load_config(tmp_path / "gen.yaml")
    assert config.layout == str(tmp_path / "stores" / "mine.yaml")
