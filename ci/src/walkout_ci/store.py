"""The local walkout store: where experiments, ClearML offline sessions and its config live.

Layout under `WALKOUT_HOME` (default `~/.walkout`; the Makefile sets `<repo>/.walkout`):

```
<home>/
  experiments/<experiment_id>/
    experiment.json          # the experiment record (schema in experiment.py)
    training_data.json       # content hashes of the training data (blind-leakage check)
    artifacts/<name>/<file>  # our own verified copy of every stored file (weights, ...)
  clearml/
    clearml.conf             # generated: bounded retries, no exit subprocess, cache under the store
    cache/offline/<id>.zip   # ClearML offline sessions (ClearML's own format)
```

Everything here is plain files, written atomically (temp file + rename), so a crash never leaves a
half-written record behind.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

HOME_ENV_VAR = "WALKOUT_HOME"
DEFAULT_HOME = "~/.walkout"

# Environment variable remembering the user's own ClearML config file once we point
# CLEARML_CONFIG_FILE at the generated one (so a second configure() does not include itself).
USER_CLEARML_CONFIG_ENV_VAR = "WALKOUT_CLEARML_USER_CONFIG"
FILE_MODE = 0o644
DIR_MODE = 0o755


def walkout_home(environ: dict[str, str] | None = None) -> Path:
    """Return the store root: `$WALKOUT_HOME`, else `~/.walkout` (not created here)."""
    env = os.environ if environ is None else environ
    return Path(env.get(HOME_ENV_VAR) or DEFAULT_HOME).expanduser().absolute()


@dataclass(frozen=True)
class Store:
    """Paths of one walkout store. Construct with `Store.open()` or `Store(root=...)`."""

    root: Path

    @classmethod
    def open(cls, root: str | Path | None = None) -> Store:
        """Open the store at `root` (default: `walkout_home()`), creating its folders."""
        store = cls(root=Path(root).expanduser().absolute() if root is not None else walkout_home())
        store.experiments_dir.mkdir(parents=True, exist_ok=True)
        store.clearml_cache_dir.mkdir(parents=True, exist_ok=True)
        return store

    @property
    def experiments_dir(self) -> Path:
        return self.root / "experiments"

    @property
    def clearml_dir(self) -> Path:
        return self.root / "clearml"

    @property
    def clearml_cache_dir(self) -> Path:
        return self.clearml_dir / "cache"

    @property
    def clearml_offline_dir(self) -> Path:
        """Where ClearML writes offline sessions (`<id>/` folders and `<id>.zip` archives)."""
        return self.clearml_cache_dir / "offline"

    @property
    def clearml_config_file(self) -> Path:
        return self.clearml_dir / "clearml.conf"

    def experiment_dir(self, experiment_id: str) -> Path:
        """Folder of one experiment's record; the id must be a plain name (no path separators)."""
        check_experiment_id(experiment_id)
        return self.experiments_dir / experiment_id

    def record_path(self, experiment_id: str) -> Path:
        return self.experiment_dir(experiment_id) / "experiment.json"

    def has_experiment(self, experiment_id: str) -> bool:
        return self.record_path(experiment_id).is_file()

    def experiment_ids(self) -> list[str]:
        """Ids of every experiment recorded in this store, sorted."""
        if not self.experiments_dir.is_dir():
            return []
        return sorted(p.parent.name for p in self.experiments_dir.glob("*/experiment.json"))


def check_experiment_id(experiment_id: str) -> str:
    """Return `experiment_id` if it is a safe folder name, else raise ValueError naming it."""
    if (
        not isinstance(experiment_id, str)
        or not experiment_id
        or experiment_id in (".", "..")
        or any(ch in experiment_id for ch in "/\\\0")
    ):
        raise ValueError(
            f"invalid experiment id {experiment_id!r}: expected a ClearML task id such as 'offline-1a2b'"
        )
    return experiment_id


def sha256_file(path: str | Path, chunk_size: int = 1 << 20) -> str:
    """Hex sha256 of a file's bytes."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(chunk_size):
            digest.update(chunk)
    return digest.hexdigest()


def atomic_write_bytes(path: str | Path, data: bytes) -> Path:
    """Write `data` to `path` through a temp file in the same folder + rename (never half-written)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        # mkstemp creates 0600; records and pins are ordinary shared files.
        os.chmod(tmp, FILE_MODE)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    return path


def atomic_write_text(path: str | Path, text: str) -> Path:
    """`atomic_write_bytes` for UTF-8 text."""
    return atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_json(path: str | Path, data: Any) -> Path:
    """Write `data` as indented, key-sorted JSON atomically."""
    return atomic_write_text(path, json.dumps(data, indent=2, sort_keys=True) + "\n")


def atomic_copy(source: str | Path, destination: str | Path) -> Path:
    """Copy a file to `destination` through a temp file + rename."""
    destination = Path(destination)
    destination.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{destination.name}.", suffix=".tmp", dir=destination.parent)
    os.close(fd)
    try:
        shutil.copyfile(source, tmp)
        os.chmod(tmp, FILE_MODE)
        os.replace(tmp, destination)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    return destination


def read_json(path: str | Path) -> Any:
    """Read a JSON file (errors propagate: callers turn them into their own error class)."""
    with open(path, encoding="utf-8") as handle:
        return json.load(handle)
