"""Content-addressed cache of evaluation reports.

An evaluation is a pure function of (weights, evaluation code, dataset, rules), so its report is
stored under the sha256 of those four hashes; re-running an unchanged gate finds every report here
and runs no evaluation. Layout under the cache root (default `$WALKOUT_HOME/ci-cache`):

    <root>/<key[:2]>/<key>/
        key.json         # the CacheKey fields, to see what an entry is and to check it on lookup
        run.json         # how the report was made: executor, commit, duration, test experiment id/link
        report.json      # the cached evaluation report folder (debug images and log included)
        ...

Entries are written to a temporary folder and renamed into place, so a crash never leaves a
half-written entry; an entry whose report no longer validates is dropped and counted as a miss.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path

from walkout_ci.errors import ReportError
from walkout_ci.report import SCHEMA_VERSION, read_report
from walkout_ci.store import walkout_home

# Bump when the meaning of a cached entry changes, so old entries stop matching.
CACHE_FORMAT_VERSION = 1
KEY_FILENAME = "key.json"
RUN_FILENAME = "run.json"


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


class EvaluationCache:
    """Reports keyed by CacheKey. `hits` / `misses` count lookups of this instance."""

    def __init__(self, root: str | os.PathLike) -> None:
        self.root = Path(root)
        self.hits = 0
        self.misses = 0

    @classmethod
    def default(cls) -> EvaluationCache:
        """The cache in the walkout store: `$WALKOUT_HOME/ci-cache`."""
        return cls(walkout_home() / "ci-cache")

    def entry_dir(self, key: CacheKey) -> Path:
        digest = key.digest()
        return self.root / digest[:2] / digest

    def lookup(self, key: CacheKey) -> Path | None:
        """The cached report folder for `key`, or None (a broken entry is removed and is a miss)."""
        entry = self.entry_dir(key)
        if not (entry / KEY_FILENAME).is_file():
            self.misses += 1
            return None
        try:
            recorded = json.loads((entry / KEY_FILENAME).read_text(encoding="utf-8"))
            read_report(entry)
            valid = recorded == asdict(key)
        except (ReportError, OSError, ValueError):
            valid = False
        if not valid:
            # A corrupt entry must not be trusted; evaluating again is always safe.
            shutil.rmtree(entry, ignore_errors=True)
            self.misses += 1
            return None
        self.hits += 1
        return entry

    def store(self, key: CacheKey, report_dir: str | os.PathLike, details: dict | None = None) -> Path:
        """Copy a validated report folder into the cache under `key`; returns the entry folder.

        details: JSON-able facts about the run that produced it (kept in run.json, see `run_info`).
        """
        read_report(report_dir)
        entry = self.entry_dir(key)
        entry.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".{entry.name[:12]}.", suffix=".tmp", dir=entry.parent))
        staging.chmod(0o755)  # mkdtemp makes 0700; a team cache is read by other processes and users
        try:
            shutil.copytree(report_dir, staging, dirs_exist_ok=True)
            (staging / KEY_FILENAME).write_text(json.dumps(asdict(key), indent=2) + "\n", encoding="utf-8")
            (staging / RUN_FILENAME).write_text(json.dumps(details or {}, indent=2) + "\n", encoding="utf-8")
            if entry.exists():
                shutil.rmtree(entry)
            os.replace(staging, entry)
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
        return entry


def run_info(entry: str | os.PathLike) -> dict:
    """The run.json of a cache entry ({} when absent or unreadable: it is informational only)."""
    try:
        data = json.loads((Path(entry) / RUN_FILENAME).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}
