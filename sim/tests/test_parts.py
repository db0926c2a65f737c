"""`walkout-sim parts`: training parts rendered by parallel `generate` processes."""

from __future__ import annotations

import json
import sys
import time

import pytest

from walkout_sim import parts as parts_module
from walkout_sim.cli import main
from walkout_sim.errors import SimError
from walkout_sim.parts import Part, generate_parts, parse_part, parse_parts


def test_parts_are_preset_colon_seed_and_bad_ones_are_named():
    assert parse_part("busy:31") == Part("busy", 31)
    assert parse_part("default:0") == Part("default", 0)
    with pytest.raises(SimError, match=r"'busy' is not PRESET:SEED .*default, busy, clean, hard"):
        parse_part("busy")
    with pytest.raises(SimError, match="'busy:-1' is not PRESET:SEED"):
        parse_part("busy:-1")
    with pytest.raises(SimError, match="unknown preset 'bussy'"):
        parse_part("bussy:3")
    with pytest.raises(SimError, match="part busy:3 is given twice"):
        parse_parts(["busy:3", "hard:3", "busy:3"])


def test_parallel_parts_equal_what_generate_writes_for_the_same_seed(tmp_path, capsys):
    argv = ["parts", "busy:5", "default:6", "--out", str(tmp_path / "parts"), "--videos", "1"]
    assert main([*argv, "--frames", "4", "--image-stride", "2", "--jobs", "2"]) == 0
    printed = capsys.readouterr().out
    assert "part-busy-5 (busy, seed 5)" in printed and "part-default-6 (default, seed 6)" in printed
    one = ["--split", "train", "--videos", "1", "--frames", "4", "--image-stride", "2", "--quiet"]
    assert main(["generate", *one, "--config", "busy", "--seed", "5", "--out", str(tmp_path / "direct")]) == 0
    manifest = json.loads((tmp_path / "parts" / "part-busy-5" / "manifest.json").read_text())
    direct = json.loads((tmp_path / "direct" / "manifest.json").read_text())
    assert manifest["content_hashes"] == direct["content_hashes"] and manifest["split"] == "train"
    default = json.loads((tmp_path / "parts" / "part-default-6" / "manifest.json").read_text())
    assert default["content_hashes"] != manifest["content_hashes"]
    # Existing part folders are kept unless --force: exit 2 before anything runs.
    assert main(argv) == 2
    assert "part-default-6 already exist(s); pass --force" in capsys.readouterr().err
    assert main([*argv, "--frames", "4", "--force"]) == 0


def test_a_failed_part_stops_the_others_and_is_named(tmp_path, monkeypatch):
    def fake_command(part, out, **_):
        if part.seed == 1:
            return [sys.executable, "-c", "import sys; sys.stderr.write('disk full'); sys.exit(3)"]
        return [sys.executable, "-c", "import time; time.sleep(60)"]

    monkeypatch.setattr(parts_module, "_command", fake_command)
    start = time.perf_counter()
    with pytest.raises(SimError, match=r"part busy:1 failed \(exit 3\):\ndisk full"):
        generate_parts([Part("busy", 2), Part("busy", 1)], tmp_path, jobs=2)
    assert time.perf_counter() - start < 30  # the sleeping part was terminated, not waited for


def test_bad_counts_are_refused(tmp_path):
    with pytest.raises(SimError, match="--jobs must be >= 1, got 0"):
        generate_parts([Part("busy", 1)], tmp_path, jobs=0)
    with pytest.raises(SimError, match="--frames must be >= 1, got 0"):
        generate_parts([Part("busy", 1)], tmp_path, frames=0)
