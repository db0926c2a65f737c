"""Same config + seed => byte-identical files; splits use disjoint seed streams; blind needs its secret."""

from __future__ import annotations

import hashlib
import json

import pytest

import walkout_sim
from walkout_sim.config import GeneratorConfig, OutputConfig
from walkout_sim.errors import BlindSeedError, SimError

FAST_PNG = GeneratorConfig(output=OutputConfig(png_compression=0))


def _tree_hashes(root) -> dict[str, str]:
    return {
        path.relative_to(root).as_posix(): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted(root.rglob("*"))
        if path.is_file()
    }


def test_two_runs_give_byte_identical_files(train_split, tmp_path):
    root, _ = train_split
    again = tmp_path / "train_again"
    walkout_sim.generate_split(again, split="train", videos=2, frames=40, seed=0, config=FAST_PNG)
    first, second = _tree_hashes(root), _tree_hashes(again)
    assert first == second
    assert "videos/train_0000/video.avi" in first and "manifest.json" in first


def test_manifest_hashes_every_file_and_every_frame(train_split):
    root, _ = train_split
    manifest = json.loads((root / "manifest.json").read_text())
    assert manifest["format_version"] == 1 and manifest["split"] == "train" and manifest["blind"] is False
    files = _tree_hashes(root)
    del files["manifest.json"]
    assert manifest["files"] == files
    assert len(manifest["content_hashes"]) == 80 == len(set(manifest["content_hashes"]))
    assert manifest["generator"]["seed"] == 0


def test_a_different_seed_gives_different_frames(train_split, tmp_path):
    other = tmp_path / "seed1"
    walkout_sim.generate_split(other, split="train", videos=1, frames=5, seed=1)
    first = set(json.loads((train_split[0] / "manifest.json").read_text())["content_hashes"])
    assert first.isdisjoint(json.loads((other / "manifest.json").read_text())["content_hashes"])


def test_splits_are_disjoint_even_with_the_same_seed_number(train_split, val_split, tmp_path, monkeypatch):
    monkeypatch.setenv("WALKOUT_BLIND_SEED", "a secret only CI knows")
    blind = tmp_path / "blind"
    walkout_sim.generate_split(blind, split="blind", videos=2, frames=40, seed=None, config=FAST_PNG)
    hashes = {
        name: set(json.loads((root / "manifest.json").read_text())["content_hashes"])
        for name, root in (("train", train_split[0]), ("val", val_split), ("blind", blind))
    }
    assert hashes["train"].isdisjoint(hashes["val"])
    assert hashes["train"].isdisjoint(hashes["blind"])
    assert hashes["val"].isdisjoint(hashes["blind"])
    # The videos themselves differ, not just the noise: different shoppers and events.
    train_events = (train_split[0] / "videos" / "train_0000" / "gt" / "gt.txt").read_text()
    val_events = (val_split / "videos" / "val_0000" / "gt" / "gt.txt").read_text()
    assert train_events != val_events


def test_blind_manifest_is_marked_and_keeps_the_secret(tmp_path, monkeypatch):
    monkeypatch.setenv("WALKOUT_BLIND_SEED", "s3cret-seed")
    walkout_sim.generate_split(tmp_path / "blind", split="blind", videos=1, frames=3, seed=None)
    text = (tmp_path / "blind" / "manifest.json").read_text()
    manifest = json.loads(text)
    assert manifest["blind"] is True and manifest["split"] == "blind"
    assert manifest["generator"]["seed"] is None
    assert "s3cret-seed" not in text


def test_blind_without_the_secret_is_refused(tmp_path, monkeypatch):
    monkeypatch.delenv("WALKOUT_BLIND_SEED", raising=False)
    with pytest.raises(BlindSeedError, match="WALKOUT_BLIND_SEED"):
        walkout_sim.generate_split(tmp_path / "blind", split="blind", videos=1, frames=3, seed=None)
    assert not (tmp_path / "blind").exists()


def test_blind_refuses_an_explicit_seed(tmp_path, monkeypatch):
    monkeypatch.setenv("WALKOUT_BLIND_SEED", "x")
    with pytest.raises(SimError, match="no --seed"):
        walkout_sim.generate_split(tmp_path / "blind", split="blind", videos=1, frames=3, seed=7)
