"""Sealed archives: hostile tar members are refused before extraction; decrypted folders never linger."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import tarfile
import time
from pathlib import Path

import pytest

from walkout_ci import blind
from walkout_ci.errors import BlindSetError
from walkout_ci.signals import Interrupted

MANIFEST = json.dumps({"format_version": 1, "split": "blind", "blind": True, "files": {}}).encode()


@pytest.fixture
def key(monkeypatch: pytest.MonkeyPatch) -> str:
    value = blind.generate_key()
    monkeypatch.setenv(blind.KEY_ENV_VAR, value)
    return value


def add_file(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    tar.addfile(info, io.BytesIO(data))


def seal_tar(tmp_path: Path, key: str, extra: tarfile.TarInfo | None) -> Path:
    """An archive sealed like `blind.seal`, from a hand-made tar: blind/manifest.json + `extra`."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        dirinfo = tarfile.TarInfo("blind")
        dirinfo.type = tarfile.DIRTYPE
        tar.addfile(dirinfo)
        add_file(tar, "blind/manifest.json", MANIFEST)
        if extra is not None:
            if extra.isreg():
                tar.addfile(extra, io.BytesIO(b"x" * extra.size))
            else:
                tar.addfile(extra)
    buffer.seek(0)
    archive = tmp_path / "hostile.sealed"
    with open(archive, "wb") as target:
        blind._encrypt_stream(buffer, target, blind.load_key(key))
    return archive


def member(name: str, kind: bytes = tarfile.REGTYPE, linkname: str = "") -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.linkname = linkname
    info.size = 1 if kind == tarfile.REGTYPE else 0
    return info


HOSTILE = {
    "absolute": member("/tmp/walkout-pwned"),
    "dotdot": member("blind/../../walkout-pwned"),
    "outside": member("other/file.txt"),
    "symlink": member("blind/passwd", tarfile.SYMTYPE, "/etc/passwd"),
    "hardlink": member("blind/hard", tarfile.LNKTYPE, "blind/manifest.json"),
    "chardev": member("blind/null", tarfile.CHRTYPE),
    "blockdev": member("blind/disk", tarfile.BLKTYPE),
    "fifo": member("blind/pipe", tarfile.FIFOTYPE),
}


def leftovers(temp_dir: Path) -> list[Path]:
    return sorted(temp_dir.glob(f"{blind.TEMP_PREFIX}*"))


@pytest.mark.parametrize("kind", sorted(HOSTILE))
def test_hostile_members_are_refused_before_anything_is_extracted(
    tmp_path: Path, key: str, kind: str
) -> None:
    temp_dir = tmp_path / "tmp"
    temp_dir.mkdir()
    archive = seal_tar(tmp_path, key, HOSTILE[kind])
    with (
        pytest.raises(BlindSetError, match=f"member '{HOSTILE[kind].name}'"),
        blind.open_sealed(archive, temp_dir=temp_dir),
    ):
        pytest.fail("a hostile archive was opened")
    assert leftovers(temp_dir) == []  # nothing left on disk
    assert not (tmp_path / "walkout-pwned").exists()


def test_a_plain_hand_made_archive_opens(tmp_path: Path, key: str) -> None:
    temp_dir = tmp_path / "tmp"
    temp_dir.mkdir()
    with blind.open_sealed(seal_tar(tmp_path, key, member("blind/a.txt")), temp_dir=temp_dir) as root:
        assert (root / "a.txt").read_bytes() == b"x"
        assert (root.parent.parent / blind.OWNER_FILE).read_text().split()[0] == str(os.getpid())
    assert leftovers(temp_dir) == []


def test_seal_refuses_a_symlink_in_the_folder(tmp_path: Path, key: str) -> None:
    data = tmp_path / "data"
    data.mkdir()
    (data / "manifest.json").write_bytes(MANIFEST)
    (data / "passwd").symlink_to("/etc/passwd")
    with pytest.raises(BlindSetError, match="passwd"):
        blind.seal(data, tmp_path / "out.sealed")
    assert not (tmp_path / "out.sealed").exists()


@pytest.mark.parametrize(
    ("kind", "error"),
    [
        (KeyboardInterrupt, KeyboardInterrupt),
        (Interrupted, lambda: Interrupted(15)),
        (SystemExit, SystemExit),
    ],
)
def test_the_decrypted_folder_is_removed_on_base_exceptions(
    tmp_path: Path, key: str, monkeypatch: pytest.MonkeyPatch, kind, error
) -> None:
    temp_dir = tmp_path / "tmp"
    temp_dir.mkdir()
    archive = seal_tar(tmp_path, key, None)
    # Inside the body (the evaluation is interrupted) ...
    with pytest.raises(kind), blind.open_sealed(archive, temp_dir=temp_dir) as root:
        assert root.is_dir()
        raise error()
    assert leftovers(temp_dir) == []
    # ... and during decryption, half-way through writing the tar.
    original = blind._decrypt_stream

    def interrupted(source, target, raw_key, name):
        target.write(b"partial plaintext")
        raise error()

    monkeypatch.setattr(blind, "_decrypt_stream", interrupted)
    with pytest.raises(kind), blind.open_sealed(archive, temp_dir=temp_dir):
        pass
    assert leftovers(temp_dir) == []
    monkeypatch.setattr(blind, "_decrypt_stream", original)


def dead_pid() -> int:
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    return process.pid


def test_a_folder_left_by_a_killed_run_is_swept_by_the_next_open(tmp_path: Path, key: str) -> None:
    temp_dir = tmp_path / "tmp"
    temp_dir.mkdir()
    stale = temp_dir / f"{blind.TEMP_PREFIX}killed"
    (stale / "data" / "blind").mkdir(parents=True)
    (stale / "data" / "blind" / "manifest.json").write_bytes(MANIFEST)
    (stale / blind.OWNER_FILE).write_text(f"{dead_pid()} 123\n")
    recycled = temp_dir / f"{blind.TEMP_PREFIX}recycled"  # our pid, but another process start time
    recycled.mkdir()
    (recycled / blind.OWNER_FILE).write_text(f"{os.getpid()} 1\n")
    live = temp_dir / f"{blind.TEMP_PREFIX}live"  # another run evaluating right now: ours
    live.mkdir()
    blind._write_owner(live)
    fresh = temp_dir / f"{blind.TEMP_PREFIX}fresh"  # being created: no owner file yet, recent
    fresh.mkdir()
    old = temp_dir / f"{blind.TEMP_PREFIX}old"  # no owner file, long ago
    old.mkdir()
    os.utime(old, (time.time() - 2 * blind.UNOWNED_GRACE_S,) * 2)
    unrelated = temp_dir / "walkout-seal-other"
    unrelated.mkdir()
    with blind.open_sealed(seal_tar(tmp_path, key, None), temp_dir=temp_dir) as root:
        assert root.is_dir()
        assert not stale.exists() and not recycled.exists() and not old.exists()
        assert live.exists() and fresh.exists() and unrelated.exists()
    assert sorted(leftovers(temp_dir)) == sorted([fresh, live])


def test_sweep_stale_returns_what_it_removed_and_never_raises(tmp_path: Path) -> None:
    stale = tmp_path / f"{blind.TEMP_PREFIX}x"
    stale.mkdir()
    (stale / blind.OWNER_FILE).write_text("not-a-pid")
    assert blind.sweep_stale(tmp_path) == [stale]
    assert blind.sweep_stale(tmp_path / "missing") == []
