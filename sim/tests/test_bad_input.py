"""Bad layouts, scenarios and configs name the file, the field and what is allowed; nothing half-written."""

from __future__ import annotations

import signal
import subprocess
import sys
import time

import pytest
import yaml

import walkout_sim
from walkout_sim.cli import main
from walkout_sim.config import load_config
from walkout_sim.errors import ConfigError
from walkout_sim.export import CocoWriter
from walkout_sim.layout import default_layout_path, load_layout
from walkout_sim.scenario import load_scenario


def _write(path, data) -> str:
    path.write_text(yaml.safe_dump(data))
    return str(path)


def _layout_data() -> dict:
    return yaml.safe_load(default_layout_path().read_text())


def test_unknown_layout_key_suggests_the_right_one(tmp_path):
    data = _layout_data()
    data["catalog"][0]["colur"] = data["catalog"][0].pop("colour")
    path = _write(tmp_path / "store.yaml", data)
    with pytest.raises(ConfigError) as error:
        load_layout(path)
    message = str(error.value)
    assert path in message and "catalog[0].colur" in message and "did you mean 'colour'" in message


def test_slot_with_an_unknown_sku_lists_the_allowed_ones(tmp_path):
    data = _layout_data()
    data["slots"][3]["sku"] = "caviar"
    with pytest.raises(ConfigError, match=r"slots\[3\]\.sku: unknown SKU 'caviar'; allowed: \['cola'"):
        load_layout(_write(tmp_path / "store.yaml", data))


def test_bad_shape_names_the_allowed_values(tmp_path):
    data = _layout_data()
    data["catalog"][1]["shape"] = "star"
    with pytest.raises(ConfigError, match=r"catalog\[1\]\.shape: 'star' is not allowed; use one of \['rect'"):
        load_layout(_write(tmp_path / "store.yaml", data))


def test_scenario_with_unknown_slot_exits_2_naming_file_and_field(tmp_path, capsys):
    path = _write(
        tmp_path / "bad.yaml",
        {"name": "bad", "shoppers": [{"id": 1, "actions": [{"do": "pick", "slot": "Z-99"}]}]},
    )
    assert main(["scenario", path, "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert path in err and "shoppers[0].actions[0].slot" in err and "unknown slot 'Z-99'" in err
    assert not (tmp_path / "out").exists()


def test_scenario_that_picks_a_third_item_is_rejected(tmp_path):
    path = _write(
        tmp_path / "greedy.yaml",
        {
            "name": "greedy",
            "shoppers": [
                {
                    "id": 1,
                    "actions": [
                        {"do": "pick", "sku": "cola"},
                        {"do": "pick", "sku": "milk"},
                        {"do": "pick", "sku": "tea"},
                    ],
                }
            ],
        },
    )
    with pytest.raises(ConfigError, match=r"actions\[2\]\.do: shopper 1 already holds 2 items"):
        load_scenario(path, load_layout())


def test_scenario_bad_action_kind(tmp_path):
    path = _write(tmp_path / "x.yaml", {"name": "x", "shoppers": [{"id": 1, "actions": [{"do": "steal"}]}]})
    with pytest.raises(ConfigError, match=r"'steal' is not allowed; use one of \['pick', 'put_back'"):
        load_scenario(path, load_layout())


def test_unknown_shipped_scenario_lists_the_shipped_ones(tmp_path, capsys):
    assert main(["scenario", "no_such_scenario", "--out", str(tmp_path / "o")]) == 2
    assert "crowd_of_six" in capsys.readouterr().err


def test_config_range_error_names_the_key(tmp_path):
    path = _write(tmp_path / "gen.yaml", {"camera": {"noise_sigma": -1}})
    with pytest.raises(ConfigError, match=r"gen\.yaml: camera\.noise_sigma: must be 0\.\.40, got -1"):
        load_config(path)
    path = _write(tmp_path / "gen2.yaml", {"shopers": {}})
    with pytest.raises(ConfigError, match="did you mean 'shoppers'"):
        load_config(path)


def test_generate_with_a_bad_config_exits_2(tmp_path, capsys):
    path = _write(tmp_path / "gen.yaml", {"shoppers": {"max_concurrent": 9}})
    assert (
        main(["generate", "--split", "train", "--config", path, "--out", str(tmp_path / "o"), "--quiet"]) == 2
    )
    assert "shoppers.max_concurrent: must be 1..6" in capsys.readouterr().err


def test_a_failed_run_leaves_nothing_half_written(tmp_path, monkeypatch):
    original = CocoWriter.add
    calls = []

    def failing_add(self, *args, **kwargs):
        calls.append(1)
        if len(calls) == 5:
            raise KeyboardInterrupt  # as if the user pressed Ctrl-C mid-run
        return original(self, *args, **kwargs)

    monkeypatch.setattr(CocoWriter, "add", failing_add)
    with pytest.raises(KeyboardInterrupt):
        walkout_sim.generate_split(tmp_path / "train", split="train", videos=1, frames=10, seed=0)
    assert list(tmp_path.iterdir()) == []


def test_a_failed_forced_run_keeps_the_previous_output(tmp_path, monkeypatch):
    out = tmp_path / "train"
    walkout_sim.generate_split(out, split="train", videos=1, frames=2, seed=0)
    before = (out / "manifest.json").read_bytes()

    def broken(self, *args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(CocoWriter, "add", broken)
    with pytest.raises(OSError):
        walkout_sim.generate_split(out, split="train", videos=1, frames=2, seed=5, force=True)
    assert (out / "manifest.json").read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["train"]


def test_sigterm_during_generate_exits_143_and_leaves_nothing(tmp_path):
    out = tmp_path / "train"
    command = ["generate", "--split", "train", "--videos", "3", "--frames", "400", "--out", str(out)]
    process = subprocess.Popen(
        [sys.executable, "-m", "walkout_sim.cli", *command, "--quiet"], stderr=subprocess.PIPE
    )
    try:
        # Wait until the run demonstrably writes frames (a PNG in its temp folder): the handler is
        # installed and the temp folder exists, so the test checks the clean-up, not a lucky race.
        deadline = time.monotonic() + 120
        while not any(tmp_path.glob(".train.tmp-*/coco/images/*.png")):
            assert process.poll() is None, "generate ended before it was signalled"
            assert time.monotonic() < deadline, "generate wrote no frame within 120 s"
            time.sleep(0.02)
        process.send_signal(signal.SIGTERM)  # once: the handler alone must stop the run
        code = process.wait(timeout=120)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    err = process.stderr.read().decode()
    assert code == 128 + signal.SIGTERM, err
    assert list(tmp_path.iterdir()) == [], err  # neither the output nor a temp folder
    assert err.strip() == "walkout-sim generate: stopped by SIGTERM; the partial output was removed"


def test_slot_outside_its_shelf_is_rejected(tmp_path):
    data = _layout_data()
    data["slots"][0]["rect"] = [300, 200, 17, 22]
    with pytest.raises(ConfigError, match=r"slots\[0\]\.rect: must lie inside shelf W"):
        load_layout(_write(tmp_path / "store.yaml", data))


def test_generate_with_a_bad_layout_exits_2_naming_the_layout_file(tmp_path, capsys):
    data = _layout_data()
    data["entrance"]["side"] = "roof"
    layout = _write(tmp_path / "store.yaml", data)
    config = _write(tmp_path / "gen.yaml", {"layout": "store.yaml"})
    assert (
        main(["generate", "--split", "train", "--config", config, "--out", str(tmp_path / "o"), "--quiet"])
        == 2
    )
    err = capsys.readouterr().err
    assert layout in err and "entrance.side" in err and "'left', 'right', 'top', 'bottom'" in err
