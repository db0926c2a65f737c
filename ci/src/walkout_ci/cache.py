"""Content-addressed cache of evaluation reports, safe for several gates on one CI machine at once.

An evaluation is a pure function of (weights, evaluation code, dataset, rules), so its report is
stored under the sha256 of those four hashes; re-running an unchanged gate finds every report here
and runs no evaluation. Layout under the cache root (default `$WALKOUT_HOME/ci-cache`):

    <root>/<key[:2]>/<key>/
        key.json         # the CacheKey fields, to see what an entry is and to check it on lookup
        run.json         # how the report was made: executor, commit, duration, test experiment id/link
        report.json      # the cached evaluation report folder (debug images and log included)
        ...
        files.json       # {"format": "walkout-ci-cache-files", "version": 1,
                         #  "files": {"<relpath>": "<sha256>"}}: every other file of the entry
        files.hmac       # only with a secret: hex HMAC-SHA256(secret, bytes of files.json)

Concurrency rules (several gate processes share one cache):
- An entry is never changed in place. `store` builds it in a temp folder inside the cache root and
  renames it into place; when the entry already exists and verifies, the first writer wins and the
  new copy is discarded (a reader may be copying the existing one). Writers of one key are serialised
  by a lock file (`<key>.lock`, fcntl.flock) so that only a broken entry is ever moved aside.
- Readers take a private copy (`lookup_copy`) and verify the copy: files.json must list exactly the
  files present with matching sha256 (no symlinks, nothing extra), key.json must equal the key and
  report.json must validate. Anything else is a miss; a broken entry is not deleted by a reader (a
  later `store` moves it aside and replaces it).
- With `secret` (bytes, e.g. from a CI secret), entries carry an HMAC of files.json and lookups
  require it: a process without the secret that can write to the cache folder cannot forge an entry
  the gate would accept (it can still delete entries, which only costs a re-evaluation). The CLI
  takes it from `$WALKOUT_CACHE_SECRET` (`secret_from_env`; store it as a CI secret, like the blind
  key); entries written without it are misses for a gate that has it.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import hmac
import json
import os
import shutil
import stat
import tempfile
import uuid
from collections.abc import Iterator, Mapping
from dataclasses import asdict, dataclass
from pathlib import Path

from walkout_ci.errors import ReportError
from walkout_ci.report import SCHEMA_VERSION, read_report
from walkout_ci.store import walkout_home

# Bump when the meaning of a cached entry changes, so old entries stop matching.
CACHE_FORMAT_VERSION = 2
KEY_FILENAME = "key.json"
RUN_FILENAME = "run.json"
FILES_FILENAME = "files.json"
HMAC_FILENAME = "files.hmac"
FILES_FORMAT = "walkout-ci-cache-files"
FILES_VERSION = 1
# Written last into a staging folder; never part of the digest (it is the digest).
_META_FILES = (FILES_FILENAME, HMAC_FILENAME)


@dataclass(frozen=True)
class CacheKey:
    """What an evaluation's result depends on (hex digests; see gate_runner for the code hash)."""

    component: str
    weights_sha256: str
    code_tree_hash: str
    dataset_hash: str
    rules_hash: str

    def digest(self) -> str:
        """The entry's address: sha256 of the canonical JSON of the fields and the format versions."""
        payload = {
            **asdict(self),
            "cache_format_version": CACHE_FORMAT_VERSION,
            "report_schema_version": SCHEMA_VERSION,
        }
        return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()


SECRET_ENV_VAR = "WALKOUT_CACHE_SECRET"


def secret_from_env(environ: Mapping[str, str] | None = None) -> bytes | None:
    """The cache HMAC secret: `$WALKOUT_CACHE_SECRET` (UTF-8 bytes), else one derived from the blind
    key `$WALKOUT_BLIND_KEY` (CI holds it, pull-request code never does); None when neither is set."""
    environ = os.environ if environ is None else environ
    value = environ.get(SECRET_ENV_VAR, "")
    if value:
        return value.encode("utf-8")
    blind_key = environ.get("WALKOUT_BLIND_KEY", "")
    if blind_key:
        return hmac.new(blind_key.encode(), b"walkout-ci evaluation cache", hashlib.sha256).digest()
    return None


class CacheEntryError(Exception):
    """An entry (or a private copy of one) failed verification; internal to the cache: a miss."""


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _walk_files(folder: Path) -> dict[str, Path]:
    """{posix relpath: path} of every regular file under `folder` (files.json/.hmac excluded).

    Raises CacheEntryError on a symlink or anything that is neither a file nor a folder, so an entry
    can never point outside itself.
    """
    found: dict[str, Path] = {}
    for current, dirs, files in os.walk(folder):
        for name in [*dirs, *files]:
            path = Path(current) / name
            mode = path.lstat().st_mode
            if stat.S_ISLNK(mode) or not (stat.S_ISDIR(mode) or stat.S_ISREG(mode)):
                raise CacheEntryError(f"{path} is a symlink or special file")
        for name in files:
            path = Path(current) / name
            relative = path.relative_to(folder).as_posix()
            if relative not in _META_FILES:
                found[relative] = path
    return found


def files_digest(folder: str | os.PathLike) -> dict[str, str]:
    """{relpath: sha256} of every file of an entry folder except files.json / files.hmac."""
    return {relative: _sha256(path) for relative, path in sorted(_walk_files(Path(folder)).items())}


def _sign(secret: bytes, files_json: bytes) -> str:
    return hmac.new(secret, files_json, hashlib.sha256).hexdigest()


def verify_entry(folder: str | os.PathLike, key: CacheKey, secret: bytes | None = None) -> dict:
    """Check an entry folder (or a private copy) and return its validated report.

    Checks: files.json lists exactly the files present with matching sha256 (no symlinks), its HMAC
    when `secret` is given, key.json equals `key`, report.json follows the report contract.
    Raises CacheEntryError naming what is wrong.
    """
    folder = Path(folder)
    try:
        raw = (folder / FILES_FILENAME).read_bytes()
        if secret is not None:
            recorded = (folder / HMAC_FILENAME).read_text(encoding="ascii").strip()
            if not hmac.compare_digest(recorded, _sign(secret, raw)):
                raise CacheEntryError(f"{folder / HMAC_FILENAME}: HMAC does not match files.json")
        listing = json.loads(raw)
        if (
            not isinstance(listing, dict)
            or listing.get("format") != FILES_FORMAT
            or listing.get("version") != FILES_VERSION
            or not isinstance(listing.get("files"), dict)
        ):
            raise CacheEntryError(f"{folder / FILES_FILENAME}: not a {FILES_FORMAT} v{FILES_VERSION} file")
        actual = files_digest(folder)
        if actual != listing["files"]:
            changed = sorted(set(actual) ^ set(listing["files"])) or sorted(
                name for name in actual if actual[name] != listing["files"][name]
            )
            raise CacheEntryError(f"{folder}: files differ from files.json ({', '.join(changed[:5])})")
        recorded_key = json.loads((folder / KEY_FILENAME).read_text(encoding="utf-8"))
        if recorded_key != asdict(key):
            raise CacheEntryError(f"{folder / KEY_FILENAME} does not describe the key looked up")
        return read_report(folder)
    except (OSError, ValueError, ReportError) as error:
        raise CacheEntryError(f"{folder}: {error}") from error


class EvaluationCache:
    """Reports keyed by CacheKey. `hits` / `misses` count lookups of this instance.

    secret: optional HMAC key; when set, `store` signs every entry and lookups accept only entries
    signed with it (see the module docstring). Give every gate of one cache the same secret.
    """

    def __init__(self, root: str | os.PathLike, *, secret: bytes | None = None) -> None:
        if secret is not None and (not isinstance(secret, bytes) or not secret):
            raise ValueError("EvaluationCache secret must be non-empty bytes or None")
        self.root = Path(root)
        self.secret = secret
        self.hits = 0
        self.misses = 0

    @classmethod
    def default(cls, *, secret: bytes | None = None) -> EvaluationCache:
        """The cache in the walkout store: `$WALKOUT_HOME/ci-cache`; secret default: `secret_from_env()`."""
        return cls(walkout_home() / "ci-cache", secret=secret if secret is not None else secret_from_env())

    def entry_dir(self, key: CacheKey) -> Path:
        digest = key.digest()
        return self.root / digest[:2] / digest

    def _verify(self, folder: Path, key: CacheKey) -> bool:
        try:
            verify_entry(folder, key, self.secret)
        except CacheEntryError:
            return False
        return True

    def lookup(self, key: CacheKey) -> Path | None:
        """The shared entry folder for `key` if it verifies, else None (a miss; nothing is deleted).

        Prefer `lookup_copy`: the shared folder is verified here, but a gate that reads it later reads
        whatever is there then. Kept for callers that only need to know whether an entry exists.
        """
        entry = self.entry_dir(key)
        if entry.is_dir() and self._verify(entry, key):
            self.hits += 1
            return entry
        self.misses += 1
        return None

    def lookup_copy(self, key: CacheKey, into: str | os.PathLike) -> Path | None:
        """Copy the entry for `key` into the folder `into` (must not exist), verify the copy there.

        Returns `into` on a hit, None on a miss (no entry, or a copy that does not verify; `into` is
        then removed). The caller owns `into` and reads only it, so a concurrent `store` or a
        tampering process cannot change what was verified.
        """
        into = Path(into)
        entry = self.entry_dir(key)
        if into.exists():
            raise FileExistsError(f"lookup_copy: {into} already exists; pass a new folder")
        if not entry.is_dir():
            self.misses += 1
            return None
        try:
            # symlinks=True copies a planted link as a link, which verification then refuses.
            shutil.copytree(entry, into, symlinks=True)
            verify_entry(into, key, self.secret)
        except (OSError, shutil.Error, CacheEntryError):
            shutil.rmtree(into, ignore_errors=True)
            self.misses += 1
            return None
        except BaseException:
            shutil.rmtree(into, ignore_errors=True)
            raise
        self.hits += 1
        return into

    @contextlib.contextmanager
    def _key_lock(self, entry: Path) -> Iterator[None]:
        """Serialise writers of one entry (readers never lock: they verify a private copy)."""
        lock_path = entry.parent / f"{entry.name}.lock"
        with open(lock_path, "a+b") as handle:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle.fileno(), fcntl.LOCK_UN)

    def store(self, key: CacheKey, report_dir: str | os.PathLike, details: dict | None = None) -> Path:
        """Copy a validated report folder into the cache under `key`; returns the entry folder.

        First writer wins: if a valid entry for `key` exists already (another gate stored it), it is
        kept and this copy is discarded. A broken entry is moved aside and replaced.
        details: JSON-able facts about the run that produced it (kept in run.json, see `run_info`).
        Raises ReportError when the report does not validate or holds a symlink / special file.
        """
        read_report(report_dir)
        entry = self.entry_dir(key)
        entry.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".{entry.name[:12]}.", suffix=".tmp", dir=entry.parent))
        staging.chmod(0o755)  # mkdtemp makes 0700; a team cache is read by other processes and users
        try:
            try:
                _walk_files(Path(report_dir))
            except CacheEntryError as error:
                raise ReportError(f"report folder {report_dir} cannot be cached: {error}") from None
            shutil.copytree(report_dir, staging, dirs_exist_ok=True)
            (staging / KEY_FILENAME).write_text(json.dumps(asdict(key), indent=2) + "\n", encoding="utf-8")
            (staging / RUN_FILENAME).write_text(json.dumps(details or {}, indent=2) + "\n", encoding="utf-8")
            listing = {"format": FILES_FORMAT, "version": FILES_VERSION, "files": files_digest(staging)}
            raw = (json.dumps(listing, indent=2, sort_keys=True) + "\n").encode("utf-8")
            (staging / FILES_FILENAME).write_bytes(raw)
            if self.secret is not None:
                (staging / HMAC_FILENAME).write_text(_sign(self.secret, raw) + "\n", encoding="ascii")
            with self._key_lock(entry):
                if entry.exists():
                    if self._verify(entry, key):
                        return entry  # another gate won; its entry may be being read: keep it
                    # Moved, not deleted in place: a reader copying it gets a failed copy (a miss),
                    # never a half-deleted folder that looks complete.
                    aside = entry.parent / f".{entry.name[:12]}.broken-{uuid.uuid4().hex}"
                    os.rename(entry, aside)
                    shutil.rmtree(aside, ignore_errors=True)
                os.rename(staging, entry)
        finally:
            shutil.rmtree(staging, ignore_errors=True)  # gone after the rename; ours otherwise
        return entry


def run_info(entry: str | os.PathLike) -> dict:
    """The run.json of a cache entry ({} when absent or unreadable: it is informational only)."""
    try:
        data = json.loads((Path(entry) / RUN_FILENAME).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}
