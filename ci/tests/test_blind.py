"""The sealed blind set: seal/open round trip, key handling, temp cleanup, training refusal, leakage."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from walkout_ci import blind, cli
from walkout_ci.errors import BlindSetError
from walkout_ci.experiment import Experiment
from walkout_ci.store import Store


def make_dataset(root: Path, *, is_blind: bool, hashes: list[str], payload_bytes: int = 1000) -> Path:
    """A minimal simulator-style export: manifest.json + one frame file."""
    (root / "coco" / "images").mkdir(parents=True)
    (root / "coco" / "images" / "v_000001.png").write_bytes(os.urandom(payload_bytes))
    manifest = {
        "format_version": 1,
        "split": "blind" if is_blind else "train",
        "blind": is_blind,
        "files": {},
        "content_hashes": hashes,
    }
    (root / "manifest.json").write_text(json.dumps(manifest))
    return root


@pytest.fixture
def key(monkeypatch: pytest.MonkeyPatch) -> str:
    value = blind.generate_key()
    monkeypatch.setenv(blind.KEY_ENV_VAR, value)
    return value


def test_seal_and_open_round_trip_removes_the_temp_folder(tmp_path: Path, key: str) -> None:
    # Several chunks, so the chunk chaining (nonces, last-chunk flag) is exercised.
    data = make_dataset(tmp_path / "blind", is_blind=True, hashes=["b" * 64], payload_bytes=2_500_000)
    archive = blind.seal(data, tmp_path / "sealed" / "blind.sealed")
    raw = archive.read_bytes()
    assert raw.startswith(blind.MAGIC)
    assert b"content_hashes" not in raw  # encrypted, not merely packed
    with blind.open_sealed(archive) as root:
        opened = root
        assert json.loads((root / "manifest.json").read_text())["blind"] is True
        original = (data / "coco/images/v_000001.png").read_bytes()
        assert (root / "coco/images/v_000001.png").read_bytes() == original
        assert oct(root.parent.parent.stat().st_mode & 0o777) == "0o700"
    assert not opened.exists() and not opened.parent.parent.exists()


def test_temp_folder_is_removed_when_the_evaluation_crashes(tmp_path: Path, key: str) -> None:
    archive = blind.seal(make_dataset(tmp_path / "b", is_blind=True, hashes=[]), tmp_path / "a.sealed")
    with pytest.raises(RuntimeError), blind.open_sealed(archive) as root:
        opened = root
        raise RuntimeError("evaluation crashed")
    assert not opened.exists()


def test_without_or_with_a_wrong_key_it_is_an_error(
    tmp_path: Path, key: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    archive = blind.seal(make_dataset(tmp_path / "b", is_blind=True, hashes=[]), tmp_path / "a.sealed")
    monkeypatch.delenv(blind.KEY_ENV_VAR)
    with pytest.raises(BlindSetError, match="WALKOUT_BLIND_KEY"), blind.open_sealed(archive):
        pass
    with (
        pytest.raises(BlindSetError, match="wrong WALKOUT_BLIND_KEY"),
        blind.open_sealed(archive, key=blind.generate_key()),
    ):
        pass
    with pytest.raises(BlindSetError, match="32 bytes"):
        blind.load_key("c2hvcnQ=")
    assert BlindSetError.exit_code == 2  # the gate's ERROR


def test_tampered_or_truncated_archives_are_refused(tmp_path: Path, key: str) -> None:
    data = make_dataset(tmp_path / "b", is_blind=True, hashes=[], payload_bytes=1_500_000)
    archive = blind.seal(data, tmp_path / "a.sealed")
    raw = bytearray(archive.read_bytes())
    truncated = tmp_path / "truncated.sealed"
    # Cut right after the first complete chunk: every remaining chunk is valid, only the end is gone.
    first_chunk_end = len(blind.MAGIC) + blind.NONCE_PREFIX_BYTES + 4 + blind.CHUNK_BYTES + blind.TAG_BYTES
    truncated.write_bytes(bytes(raw[:first_chunk_end]))
    with pytest.raises(BlindSetError), blind.open_sealed(truncated):
        pass
    raw[-5] ^= 0xFF
    flipped = tmp_path / "flipped.sealed"
    flipped.write_bytes(bytes(raw))
    with (
        pytest.raises(BlindSetError, match="wrong WALKOUT_BLIND_KEY or a modified"),
        blind.open_sealed(flipped),
    ):
        pass


def test_training_refuses_the_blind_set(tmp_path: Path, key: str) -> None:
    blind_dir = make_dataset(tmp_path / "blind", is_blind=True, hashes=[])
    train_dir = make_dataset(tmp_path / "train", is_blind=False, hashes=[])
    with pytest.raises(BlindSetError, match="blind set"):
        blind.refuse_blind(blind_dir)
    with pytest.raises(BlindSetError, match="blind set"):
        blind.refuse_blind(blind_dir / "manifest.json")
    with pytest.raises(BlindSetError, match="sealed blind set"):
        blind.refuse_blind(blind.seal(blind_dir, tmp_path / "a.sealed"))
    blind.refuse_blind(train_dir)  # the train split is fine
    blind.refuse_blind(tmp_path / "no_manifest_here")


def record_training(store: Store, tmp_path: Path, experiment_id: str, hashes: list[str]) -> None:
    exp = Experiment(experiment_id=experiment_id, project="p", name="n", mode="local", params={}, store=store)
    if hashes is not None:
        exp.set_training_data(make_dataset(tmp_path / experiment_id, is_blind=False, hashes=hashes))
    exp.close()


def test_leakage_check_catches_a_planted_overlap(tmp_path: Path, key: str) -> None:
    store = Store.open(tmp_path / "store")
    blind_manifest = {"blind": True, "content_hashes": ["b1" * 32, "b2" * 32]}
    record_training(store, tmp_path, "local-clean", ["t1" * 32, "t2" * 32])
    record_training(store, tmp_path, "local-leaky", ["t1" * 32, "b2" * 32])
    result = blind.check_leakage("local-clean", blind_manifest, store=store)
    assert (result.training_hashes, result.blind_hashes) == (2, 2)
    with pytest.raises(BlindSetError, match=r"1 frame\(s\).*local-leaky.*b2b2b2b2b2b2"):
        blind.check_leakage("local-leaky", blind_manifest, store=store)


def test_leakage_check_fails_closed_without_recorded_training_data(tmp_path: Path) -> None:
    store = Store.open(tmp_path / "store")
    Experiment(
        experiment_id="local-none", project="p", name="n", mode="local", params={}, store=store
    ).close()
    with pytest.raises(BlindSetError, match="recorded no training data"):
        blind.check_leakage("local-none", {"content_hashes": []}, store=store)
    with pytest.raises(BlindSetError, match="local-unknown"):
        blind.check_leakage("local-unknown", {"content_hashes": []}, store=store)
    with pytest.raises(BlindSetError, match="content_hashes"):
        blind.check_leakage("local-none", {"blind": True}, store=store)


def test_cli_seal_and_check_leakage(tmp_path: Path, key: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WALKOUT_HOME", str(tmp_path / "store"))
    monkeypatch.delenv("CLEARML_API_HOST", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    store = Store.open(tmp_path / "store")
    data = make_dataset(tmp_path / "blind", is_blind=True, hashes=["b1" * 32])
    archive = tmp_path / "blind.sealed"
    assert cli.main(["blind", "seal", str(data), "--out", str(archive)]) == 0
    record_training(store, tmp_path, "local-ok", ["t1" * 32])
    record_training(store, tmp_path, "local-bad", ["b1" * 32])
    assert cli.main(["blind", "check-leakage", "local-ok", str(archive)]) == 0
    assert cli.main(["blind", "check-leakage", "local-bad", str(archive)]) == 2
    monkeypatch.delenv(blind.KEY_ENV_VAR)
    assert cli.main(["blind", "check-leakage", "local-ok", str(archive)]) == 2
    assert cli.main(["blind", "seal", str(data), "--out", str(tmp_path / "x.sealed")]) == 2
