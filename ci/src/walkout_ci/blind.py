"""The sealed blind set: encryption at rest, temporary decryption, training refusal, leakage check.

Open-source ClearML has no access control, so the blind set is protected outside it: `seal` turns a
dataset folder into one encrypted file whose key exists only as a CI secret (environment variable
`WALKOUT_BLIND_KEY`, no default). Only the evaluation step decrypts it (`open_sealed`), into a private
temporary folder that is removed afterwards; reports carry metrics and debug images, never the key.

Archive format (version 1), AES-256-GCM over a tar stream in 1 MiB chunks:

```
b"WALKOUT-BLIND\x00\x01" | nonce prefix (8 bytes)
then per chunk: length of ciphertext (4 bytes, big endian) | ciphertext (+16-byte tag)
```

Chunk i uses nonce = prefix | i (4 bytes, big endian) and authenticates the header plus (i, last?)
as associated data, so chunks cannot be reordered, dropped or the archive truncated unnoticed.
The key is 32 random bytes, urlsafe-base64 encoded (`walkout-ci blind keygen`).
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import io
import logging
import os
import shutil
import stat
import struct
import tarfile
import tempfile
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any, BinaryIO

from walkout_ci.errors import BlindSetError, PinError
from walkout_ci.store import Store, read_json

KEY_ENV_VAR = "WALKOUT_BLIND_KEY"
MAGIC = b"WALKOUT-BLIND\x00\x01"
NONCE_PREFIX_BYTES = 8
CHUNK_BYTES = 1 << 20
TAG_BYTES = 16
MANIFEST_NAME = "manifest.json"


def generate_key() -> str:
    """A new random key, urlsafe-base64 text suitable for `WALKOUT_BLIND_KEY`."""
    return base64.urlsafe_b64encode(os.urandom(32)).decode("ascii")


def load_key(key: str | None = None, environ: dict[str, str] | None = None) -> bytes:
    """The 32-byte key from `key` or `$WALKOUT_BLIND_KEY`; BlindSetError when absent or malformed."""
    env = os.environ if environ is None else environ
    text = key if key is not None else env.get(KEY_ENV_VAR)
    if not text:
        raise BlindSetError(
            f"no blind-set key: set {KEY_ENV_VAR} (a CI secret; create one with `walkout-ci blind keygen`)"
        )
    try:
        raw = base64.urlsafe_b64decode(text.strip().encode("ascii"))
    except (binascii.Error, ValueError, UnicodeEncodeError) as error:
        raise BlindSetError(f"{KEY_ENV_VAR} is not urlsafe base64 ({error})") from None
    if len(raw) != 32:
        raise BlindSetError(f"{KEY_ENV_VAR} must decode to 32 bytes, got {len(raw)}")
    return raw


def _aad(index: int, last: bool) -> bytes:
    return MAGIC + struct.pack(">IB", index, 1 if last else 0)


def _encrypt_stream(source: BinaryIO, target: BinaryIO, key: bytes) -> None:
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    cipher = AESGCM(key)
    prefix = os.urandom(NONCE_PREFIX_BYTES)
    target.write(MAGIC + prefix)
    index = 0
    chunk = source.read(CHUNK_BYTES)
    while True:
        following = source.read(CHUNK_BYTES)
        last = not following
        encrypted = cipher.encrypt(prefix + struct.pack(">I", index), chunk, _aad(index, last))
        target.write(struct.pack(">I", len(encrypted)) + encrypted)
        if last:
            return
        chunk, index = following, index + 1


def _decrypt_stream(source: io.BufferedReader, target: BinaryIO, key: bytes, name: str) -> None:
    from cryptography.exceptions import InvalidTag
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    header = source.read(len(MAGIC) + NONCE_PREFIX_BYTES)
    if len(header) != len(MAGIC) + NONCE_PREFIX_BYTES or not header.startswith(MAGIC):
        raise BlindSetError(f"{name} is not a sealed walkout blind set (bad header)")
    prefix = header[len(MAGIC) :]
    cipher = AESGCM(key)
    index = 0
    while True:
        size_bytes = source.read(4)
        if len(size_bytes) != 4:
            raise BlindSetError(f"{name} is truncated (chunk {index} missing); re-seal the blind set")
        (size,) = struct.unpack(">I", size_bytes)
        encrypted = source.read(size)
        if len(encrypted) != size or size < TAG_BYTES:
            raise BlindSetError(f"{name} is truncated inside chunk {index}; re-seal the blind set")
        # peek() returns b"" only at end of file: this chunk must then be the authenticated last one.
        last = source.peek(1) == b""
        try:
            plain = cipher.decrypt(prefix + struct.pack(">I", index), encrypted, _aad(index, last))
        except InvalidTag:
            raise BlindSetError(
                f"cannot decrypt {name}: wrong {KEY_ENV_VAR} or a modified/truncated archive"
            ) from None
        target.write(plain)
        if last:
            return
        index += 1


def seal(data_dir: str | Path, archive: str | Path, *, key: str | None = None) -> Path:
    """Encrypt a dataset folder into `archive` (written atomically). Returns the archive path.

    The folder must hold a manifest.json (the simulator's); it is sealed with everything else.
    """
    data_dir = Path(data_dir)
    archive = Path(archive)
    raw_key = load_key(key)
    if not (data_dir / MANIFEST_NAME).is_file():
        raise BlindSetError(f"{data_dir} has no {MANIFEST_NAME}: only a simulator export can be sealed")
    if archive.absolute().is_relative_to(data_dir.absolute()):
        raise BlindSetError(f"the archive {archive} must be outside the folder being sealed ({data_dir})")
    for path in sorted(data_dir.rglob("*")):
        # open_sealed accepts only regular files and folders: refuse now, not at evaluation time.
        if path.is_symlink() or not (path.is_file() or path.is_dir()):
            raise BlindSetError(
                f"{path} is a symlink or special file: a sealed blind set holds only regular files"
            )
    archive.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="walkout-seal-") as scratch:
        plain = Path(scratch) / "blind.tar"
        with tarfile.open(plain, "w") as tar:
            tar.add(data_dir, arcname="blind")
        fd, tmp = tempfile.mkstemp(prefix=f".{archive.name}.", suffix=".tmp", dir=archive.parent)
        try:
            with os.fdopen(fd, "wb") as target, open(plain, "rb") as source:
                _encrypt_stream(source, target, raw_key)
            os.replace(tmp, archive)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise
    return archive


# Decrypted folders are `<temp dir>/walkout-blind-XXXX/` holding OWNER_FILE ("<pid> <start time>"), so
# the next run can recognise and remove the folder of a run that was killed (SIGKILL, OOM, power).
TEMP_PREFIX = "walkout-blind-"
OWNER_FILE = "owner.pid"
# A folder without an owner file is only removed when older than this: its creator may be between
# mkdtemp and writing the file right now.
UNOWNED_GRACE_S = 3600.0
LOGGER = logging.getLogger("walkout_ci.blind")


def _process_start_time(pid: int) -> str | None:
    """The process's start time in clock ticks (/proc/<pid>/stat field 22), None where unknown.

    Recorded next to the pid so that a recycled pid is not mistaken for the original owner.
    """
    try:
        text = Path(f"/proc/{pid}/stat").read_text(encoding="ascii", errors="replace")
    except OSError:
        return None
    fields = text.rpartition(")")[2].split()
    return fields[19] if len(fields) > 19 else None


def _owner_alive(owner: str) -> bool:
    """Whether the "<pid> <start time>" written by `_write_owner` names a live process."""
    parts = owner.split()
    try:
        pid = int(parts[0])
    except (IndexError, ValueError):
        return False
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # alive, another user's
    recorded = parts[1] if len(parts) > 1 else "-"
    current = _process_start_time(pid)
    return recorded == "-" or current is None or current == recorded


def _write_owner(folder: Path) -> None:
    pid = os.getpid()
    (folder / OWNER_FILE).write_text(f"{pid} {_process_start_time(pid) or '-'}\n", encoding="ascii")


def sweep_stale(temp_dir: str | Path | None = None, *, now: float | None = None) -> list[Path]:
    """Remove decrypted blind-set folders left in `temp_dir` by runs that no longer exist.

    A `walkout-blind-*` folder of the current user is removed when its owner.pid names a process
    that is gone (pid not alive, or alive with another start time: a recycled pid), or when it has no
    owner file and is older than UNOWNED_GRACE_S. Folders of live runs and of other users are left
    alone. Returns the folders removed; never raises (a sweep must not stop an evaluation).
    """
    base = Path(temp_dir) if temp_dir is not None else Path(tempfile.gettempdir())
    now = time.time() if now is None else now
    removed: list[Path] = []
    try:
        candidates = sorted(base.glob(f"{TEMP_PREFIX}*"))
    except OSError:
        return removed
    for folder in candidates:
        try:
            info = folder.lstat()
            if not stat.S_ISDIR(info.st_mode) or info.st_uid != os.getuid():
                continue
            try:
                owner = (folder / OWNER_FILE).read_text(encoding="ascii", errors="replace")
            except FileNotFoundError:
                if now - info.st_mtime < UNOWNED_GRACE_S:
                    continue
            else:
                if _owner_alive(owner):
                    continue
            shutil.rmtree(folder)
            removed.append(folder)
            LOGGER.warning("removed the decrypted blind set %s left by a run that was killed", folder)
        except OSError as error:
            LOGGER.warning("could not sweep %s: %s", folder, error)
    return removed


_MEMBER_KINDS = {
    tarfile.SYMTYPE: "a symlink",
    tarfile.LNKTYPE: "a hardlink",
    tarfile.CHRTYPE: "a character device",
    tarfile.BLKTYPE: "a block device",
    tarfile.FIFOTYPE: "a FIFO",
}


def check_members(members: Iterable[tarfile.TarInfo], name: str) -> None:
    """Refuse an archive whose members could write outside the extraction folder or are not plain.

    Allowed: regular files and folders named `blind` or `blind/...` with relative paths and no `..`.
    Raises BlindSetError naming the archive and the first bad member (before anything is extracted).
    """
    for member in members:
        path = member.name
        parts = PurePosixPath(path).parts
        if path.startswith(("/", "\\")) or (len(path) > 1 and path[1] == ":"):
            problem = "has an absolute path"
        elif ".." in parts or "\\" in path:
            problem = "has '..' or a backslash in its path"
        elif not parts or parts[0] != "blind":
            problem = "is outside the archive's blind/ folder"
        elif not (member.isreg() or member.isdir()):
            problem = f"is {_MEMBER_KINDS.get(member.type, f'of tar type {member.type!r}')}"
        else:
            continue
        raise BlindSetError(
            f"{name}: member {path!r} {problem}; a sealed blind set holds only regular files and folders "
            "under blind/ (re-seal it with `walkout-ci blind seal`)"
        )


@contextlib.contextmanager
def open_sealed(
    archive: str | Path, *, key: str | None = None, temp_dir: str | Path | None = None
) -> Iterator[Path]:
    """Decrypt a sealed blind set into a private temp folder; yields the dataset root; removes it after.

    The folder (`<temp_dir>/walkout-blind-*`, 0700, default temp dir) is removed on every exit, also
    on KeyboardInterrupt / `walkout_ci.signals.Interrupted`; folders left by killed runs are swept
    first (`sweep_stale`). BlindSetError without a key, with a wrong key, for a damaged archive, or
    for an archive with a member that is not a plain file or folder under blind/ (nothing extracted).
    """
    archive = Path(archive)
    raw_key = load_key(key)
    if not archive.is_file():
        raise BlindSetError(f"sealed blind set {archive} does not exist")
    sweep_stale(temp_dir)
    scratch = Path(tempfile.mkdtemp(prefix=TEMP_PREFIX, dir=temp_dir))
    try:
        os.chmod(scratch, 0o700)
        _write_owner(scratch)
        plain = scratch / "blind.tar"
        with open(archive, "rb") as source, open(plain, "wb") as target:
            _decrypt_stream(source, target, raw_key, str(archive))
        try:
            with tarfile.open(plain) as tar:
                members = tar.getmembers()
                check_members(members, str(archive))
                tar.extractall(scratch / "data", members=members, filter="data")
        except tarfile.TarError as error:
            raise BlindSetError(f"{archive} decrypted, but is not a readable tar archive: {error}") from None
        plain.unlink()
        root = scratch / "data" / "blind"
        if not (root / MANIFEST_NAME).is_file():
            raise BlindSetError(f"{archive} decrypted, but holds no blind/{MANIFEST_NAME}")
        yield root
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def is_sealed(path: str | Path) -> bool:
    """True when `path` is a file starting with the sealed-archive header."""
    path = Path(path)
    if not path.is_file():
        return False
    with open(path, "rb") as handle:
        return handle.read(len(MAGIC)) == MAGIC


def is_marked_blind(data_dir: str | Path) -> bool:
    """Whether `data_dir` is the blind set (a sealed archive, or a folder whose manifest says
    `"blind": true`, i.e. a decrypted copy); an unreadable manifest counts as blind (fail closed)."""
    try:
        refuse_blind(data_dir)
    except BlindSetError:
        return True
    return False


def refuse_blind(data_dir: str | Path) -> None:
    """For training entry points: BlindSetError if `data_dir` is the blind set (or a sealed archive).

    A folder whose manifest.json says `"blind": true` is refused; a folder without a manifest passes.
    """
    path = Path(data_dir)
    if is_sealed(path):
        raise BlindSetError(f"{path} is the sealed blind set: training must never read it")
    manifest = path / MANIFEST_NAME if path.is_dir() else path
    if manifest.name != MANIFEST_NAME or not manifest.is_file():
        return
    try:
        data = read_json(manifest)
    except (OSError, ValueError) as error:
        raise BlindSetError(f"cannot read {manifest} to check it is not the blind set: {error}") from error
    if isinstance(data, dict) and data.get("blind") is True:
        raise BlindSetError(
            f"{path} is the blind set (manifest 'blind': true): training on it would leak it into the "
            "model; train on the 'train' split"
        )


def manifest_content_hashes(manifest: str | Path | dict[str, Any]) -> set[str]:
    """`content_hashes` of a manifest given as dict, manifest.json path or dataset folder."""
    if not isinstance(manifest, dict):
        path = Path(manifest)
        path = path / MANIFEST_NAME if path.is_dir() else path
        try:
            manifest = read_json(path)
        except (OSError, ValueError) as error:
            raise BlindSetError(f"cannot read blind manifest {path}: {error}") from error
    hashes = manifest.get("content_hashes") if isinstance(manifest, dict) else None
    if not isinstance(hashes, list) or not all(isinstance(h, str) for h in hashes):
        raise BlindSetError("the blind manifest has no 'content_hashes' list: cannot check leakage")
    return set(hashes)


@dataclass(frozen=True)
class LeakageCheck:
    """A passed leakage check: how many hashes were compared (for the gate's report)."""

    experiment_id: str
    training_hashes: int
    blind_hashes: int


def training_hashes_of(
    experiment_id: str, *, search: Iterable[str | Path] = (), store: Store | None = None
) -> set[str] | None:
    """Training content hashes recorded with an experiment (store, exports, server); None if none."""
    from walkout_ci.experiment import training_content_hashes
    from walkout_ci.pins import locate_experiment

    location = locate_experiment(experiment_id, search=search, store=store, artifact="training_data")
    if (location.directory / "training_data.json").is_file():
        return training_content_hashes(location.directory)
    entry = (location.record.get("artifacts") or {}).get("training_data")
    if entry:
        return set(read_json(location.directory / entry["path"]).get("content_hashes", []))
    return None


def check_leakage(
    experiment_id: str,
    blind_manifest: str | Path | dict[str, Any],
    *,
    search: Iterable[str | Path] = (),
    store: Store | None = None,
) -> LeakageCheck:
    """Fail closed unless the experiment's recorded training data shares no frame with the blind set.

    BlindSetError when they overlap, when the experiment recorded no training data (nothing to
    check: call `exp.set_training_data(manifest)` in training), or when either side is unreadable.
    """
    blind = manifest_content_hashes(blind_manifest)
    try:
        training = training_hashes_of(experiment_id, search=search, store=store)
    except PinError as error:
        raise BlindSetError(
            f"cannot check blind-set leakage of experiment {experiment_id}: {error}"
        ) from error
    if training is None:
        raise BlindSetError(
            f"experiment {experiment_id} recorded no training data, so blind-set leakage cannot be ruled "
            "out; its training must call exp.set_training_data(<train manifest>)"
        )
    overlap = sorted(training & blind)
    if overlap:
        raise BlindSetError(
            f"blind-set leakage: {len(overlap)} frame(s) of experiment {experiment_id}'s training data are "
            f"in the blind set (content hashes {', '.join(h[:12] for h in overlap[:5])}"
            f"{', ...' if len(overlap) > 5 else ''}); retrain without them"
        )
    return LeakageCheck(experiment_id=experiment_id, training_hashes=len(training), blind_hashes=len(blind))
