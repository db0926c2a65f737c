"""The app's lock file `model_refs.yaml`: which model every component runs in the store.

Schema (schema_version 1)::

    schema_version: 1
    components:
      detection:                      # one entry per component: detection, pose, tracking
        path: submodules/detection    # the submodule directory (relative to the repository root)
        commit: <git sha> | null      # the component code the app was tested with (below)
        experiment_id: <id> | null    # ClearML experiment that produced the weights (= the submodule pin)
        weights_sha256: <64 hex> | null
        blind_metrics: {AP50: 0.97}   # the component's blind-set metrics at pin time

Every `path` stays inside the repository (the folder holding the lock file): relative, no `..`, and no
symbolic link on the way that leads out. Blind metrics are finite numbers. `write_refs` checks the
document with the same loader `load_refs` uses before it writes, so `walkout lock` never writes a
file it would then refuse to read.

A null experiment id or hash means "not pinned yet": the pipeline refuses to run with it. The
submodule's own pin (`<path>/model_ref.yaml`, written by `walkout-ci pin`) is the source of truth;
`check_against_pins` reports every disagreement with the pins (what the pipeline checks before it
runs), `check_lock` every disagreement of any field (`walkout lock --check`), and `refs_from_pins`
rebuilds the lock from the pins.

`commit` depends on the layout (`component_commit`):
- a real git submodule (HEAD's tree has a gitlink, mode 160000, at `path`): the submodule commit.
  `walkout lock` records the commit checked out in the submodule; `check_lock` requires it to equal
  HEAD's gitlink (`git ls-tree HEAD <path>`), so a code-only bump (new gitlink, same pin) fails the
  check until the lock is re-locked (`walkout bump` does both in one commit).
- an in-tree folder (this monorepo): the last superproject commit that touched the folder
  (`git log -1 -- <path>`); `check_lock` requires that, so a committed code change in the folder
  fails the check until `walkout lock` is re-run and committed.
- outside git: null (and `check_lock` reports a non-null commit it cannot check).
"""

from __future__ import annotations

import math
import os
import re
import subprocess
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath, PureWindowsPath
from typing import Any

import yaml

from walkout.config_util import check_keys
from walkout.errors import RefsError

SCHEMA_VERSION = 1
COMPONENTS = ("detection", "pose", "tracking")
PIN_FILENAME = "model_ref.yaml"
_SHA256 = re.compile(r"^[0-9a-f]{64}$")
_ENTRY_KEYS = ("path", "commit", "experiment_id", "weights_sha256", "blind_metrics")


@dataclass(frozen=True)
class ComponentRef:
    """One component's entry of the lock file."""

    name: str
    path: str
    commit: str | None = None
    experiment_id: str | None = None
    weights_sha256: str | None = None
    blind_metrics: dict[str, float] = field(default_factory=dict)

    @property
    def pinned(self) -> bool:
        """True when the entry names an experiment and a weights hash (the pipeline can run it)."""
        return bool(self.experiment_id) and bool(self.weights_sha256)

    def to_mapping(self) -> dict[str, Any]:
        """The YAML form of the entry (without its name)."""
        return {
            "path": self.path,
            "commit": self.commit,
            "experiment_id": self.experiment_id,
            "weights_sha256": self.weights_sha256,
            "blind_metrics": dict(self.blind_metrics),
        }


@dataclass(frozen=True)
class ModelRefs:
    """The whole lock file: `components[name]` for detection, pose and tracking."""

    components: dict[str, ComponentRef]
    source: Path | None = None

    def require_pinned(self) -> None:
        """Raise RefsError naming every component that is not pinned yet."""
        missing = [name for name in COMPONENTS if not self.components[name].pinned]
        if missing:
            where = self.source or "model_refs.yaml"
            raise RefsError(
                f"{where}: component(s) {', '.join(missing)} are not pinned (experiment_id / weights_sha256 "
                "are null); pin a model in the submodule (`walkout-ci pin`) and run `walkout lock`"
            )

    def combined_sha256(self) -> str:
        """A sha256 naming the whole model set: the hash of the three weights hashes, in order."""
        import hashlib

        digest = hashlib.sha256()
        for name in COMPONENTS:
            digest.update(f"{name}:{self.components[name].weights_sha256}\n".encode())
        return digest.hexdigest()


def parse_refs(
    data: Any, *, source: str | os.PathLike = "model_refs.yaml", root: str | os.PathLike | None = None
) -> ModelRefs:
    """Validate a decoded lock file; raise RefsError naming the bad field and what is allowed.

    Paths are always checked as written (relative, no `..`); with `root` (the repository folder) they
    are also resolved there, so a symbolic link leading out of the repository is refused too.
    """
    where = str(source)
    if not isinstance(data, Mapping):
        raise RefsError(f"{where}: expected a mapping with schema_version and components")
    check_keys(data, {"schema_version", "components"}, where=where, error=RefsError)
    if data.get("schema_version") != SCHEMA_VERSION:
        raise RefsError(
            f"{where}: schema_version must be {SCHEMA_VERSION}, got {data.get('schema_version')!r}"
        )
    components = data.get("components")
    if not isinstance(components, Mapping):
        raise RefsError(f"{where}: 'components' must map {', '.join(COMPONENTS)} to their entries")
    check_keys(components, set(COMPONENTS), where=f"{where}: components", error=RefsError)
    parsed = {}
    for name in COMPONENTS:
        if name not in components:
            raise RefsError(f"{where}: components.{name} is missing (every component needs an entry)")
        parsed[name] = _parse_entry(name, components[name], where=f"{where}: components.{name}")
        if root is not None:
            component_dir(root, name, parsed[name].path, source=where)
    return ModelRefs(components=parsed, source=Path(source))


def _parse_entry(name: str, entry: Any, *, where: str) -> ComponentRef:
    if not isinstance(entry, Mapping):
        raise RefsError(f"{where}: expected a mapping with keys {', '.join(_ENTRY_KEYS)}")
    check_keys(entry, set(_ENTRY_KEYS), where=where, error=RefsError)
    path = entry.get("path")
    if not isinstance(path, str) or not path:
        raise RefsError(f"{where}.path: expected the submodule directory, e.g. 'submodules/{name}'")
    _check_path_text(name, path, where=where)
    for key in ("commit", "experiment_id", "weights_sha256"):
        value = entry.get(key)
        if value is not None and (not isinstance(value, str) or not value):
            raise RefsError(f"{where}.{key}: expected a non-empty string or null, got {value!r}")
    digest = entry.get("weights_sha256")
    if digest is not None and not _SHA256.match(digest):
        raise RefsError(f"{where}.weights_sha256: expected 64 lowercase hex digits, got {digest!r}")
    metrics = entry.get("blind_metrics") or {}
    if not isinstance(metrics, Mapping) or not all(
        isinstance(v, int | float) and not isinstance(v, bool) for v in metrics.values()
    ):
        raise RefsError(
            f"{where}.blind_metrics: expected a mapping of metric name -> number, got {metrics!r}"
        )
    for key, value in metrics.items():
        if not math.isfinite(value):
            raise RefsError(
                f"{where}.blind_metrics.{key}: expected a finite number, got {value!r} "
                "(a NaN/inf blind metric is a failed evaluation; re-pin with a valid report)"
            )
    return ComponentRef(
        name=name,
        path=path,
        commit=entry.get("commit"),
        experiment_id=entry.get("experiment_id"),
        weights_sha256=digest,
        blind_metrics={str(k): float(v) for k, v in metrics.items()},
    )


def _check_path_text(name: str, path: str, *, where: str) -> None:
    """Refuse a component path that, as written, is absolute or climbs out with `..` (RefsError)."""
    posix = PurePosixPath(path.replace("\\", "/"))
    if posix.is_absolute() or PureWindowsPath(path).anchor:
        problem = "is absolute"
    elif path.startswith("~"):
        problem = "starts with '~' (home folders are not expanded)"
    elif "\0" in path:
        problem = "contains a NUL byte"
    elif ".." in posix.parts:
        problem = "climbs out with '..'"
    else:
        return
    raise RefsError(
        f"{where}.path: {path!r} {problem}; a component path must be a folder inside the repository, "
        f"relative to it, e.g. 'submodules/{name}'"
    )


def component_dir(
    root: str | os.PathLike, name: str, path: str, *, source: str | os.PathLike = "model_refs.yaml"
) -> Path:
    """The component folder `root / path`, checked to stay inside the repository folder `root`.

    Symbolic links are followed (the folder need not exist); a path that is absolute, climbs out with
    `..` or leads out through a link raises RefsError naming `components.<name>.path`.
    """
    where = f"{source}: components.{name}"
    _check_path_text(name, path, where=where)
    repository = Path(root).resolve()
    target = (repository / path).resolve()
    if not target.is_relative_to(repository):
        raise RefsError(
            f"{where}.path: {path!r} leads outside the repository {repository} (it resolves to {target} "
            "through a symbolic link); a component path must be a folder inside the repository"
        )
    return target


def _pin_path(root: Path, name: str, path: str, *, source: str | os.PathLike) -> Path:
    """`<component dir>/model_ref.yaml`, refused (RefsError) when a link takes it out of the repository."""
    pin_path = component_dir(root, name, path, source=source) / PIN_FILENAME
    repository = Path(root).resolve()
    if not pin_path.resolve().is_relative_to(repository):
        raise RefsError(
            f"{source}: components.{name}.path: {pin_path} is a symbolic link leading outside the "
            f"repository {repository}; the component's pin must be a file inside the repository"
        )
    return pin_path


def _parse_text(text: str, *, source: Path) -> ModelRefs:
    """The one loader of a lock file's text (read by `load_refs`, checked by `write_refs` before writing)."""
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as error:
        raise RefsError(f"{source} is not valid YAML: {error}") from error
    # Component paths are relative to the folder holding the lock file (= pipeline.repository_root).
    return parse_refs(data, source=source, root=source.resolve().parent)


def load_refs(path: str | os.PathLike) -> ModelRefs:
    """Read and validate `model_refs.yaml` (including that every component path stays in the repository)."""
    path = Path(path)
    if not path.is_file():
        raise RefsError(
            f"model refs file {path} does not exist; pass --refs model_refs.yaml (repository root)"
        )
    return _parse_text(path.read_text(encoding="utf-8"), source=path)


def dump_refs(refs: ModelRefs) -> str:
    """The YAML text of a lock file (with its explanatory header)."""
    header = (
        "# The app's lock file: which model every component runs in the store (written by `walkout lock`).\n"
        "# schema_version 1. Per component: path (submodule dir), commit (submodule commit tested with),\n"
        "# experiment_id (ClearML experiment of the weights, = the submodule's model_ref.yaml),\n"
        "# weights_sha256 (verified at load), blind_metrics (the component's blind metrics at pin time).\n"
        "# Null pins mean 'not pinned yet': the pipeline refuses to run with them.\n"
    )
    body = {
        "schema_version": SCHEMA_VERSION,
        "components": {name: refs.components[name].to_mapping() for name in COMPONENTS},
    }
    return header + yaml.safe_dump(body, sort_keys=False)


def write_refs(path: str | os.PathLike, refs: ModelRefs) -> Path:
    """Write the lock file atomically (temp file in the same folder, then rename).

    The text is first read back with the loader of `load_refs`; a document it would refuse raises
    RefsError ("refusing to write ...") and nothing is written.
    """
    path = Path(path)
    text = dump_refs(refs)
    try:
        _parse_text(text, source=path)
    except RefsError as error:
        raise RefsError(f"refusing to write {path}: the new lock file would be invalid: {error}") from error
    handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as stream:
            stream.write(text)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return path


def read_pin(pin_path: Path) -> dict[str, Any]:
    """A submodule pin as a plain mapping (experiment_id, weights_sha256, blind_metrics, ...)."""
    if not pin_path.is_file():
        raise RefsError(
            f"{pin_path} does not exist: the submodule has no pinned model yet (`walkout-ci pin`)"
        )
    try:
        data = yaml.safe_load(pin_path.read_text(encoding="utf-8"))
    except yaml.YAMLError as error:
        raise RefsError(f"{pin_path} is not valid YAML: {error}") from error
    if not isinstance(data, Mapping):
        raise RefsError(f"{pin_path}: expected a mapping (the walkout-ci pin schema)")
    return dict(data)


GITLINK_MODE = "160000"


def _git(repo: Path, *args: str) -> subprocess.CompletedProcess | None:
    """`git -C repo args...` (None when git cannot run: not installed, or it hangs)."""
    try:
        return subprocess.run(
            ["git", "-C", str(repo), *args], capture_output=True, text=True, check=False, timeout=60
        )
    except (OSError, subprocess.TimeoutExpired):
        return None


def gitlink_commit(repo_root: str | os.PathLike, path: str, revision: str = "HEAD") -> str | None:
    """The submodule commit `revision`'s tree pins at `path` (`git ls-tree`; mode 160000), or None when
    `path` is no gitlink there (an in-tree folder, not committed yet, or no git at all)."""
    result = _git(Path(repo_root), "ls-tree", revision, "--", path.rstrip("/"))
    if result is None or result.returncode != 0:
        return None
    for line in result.stdout.splitlines():
        meta, _, name = line.partition("\t")
        parts = meta.split()
        if len(parts) == 3 and parts[0] == GITLINK_MODE and name == path.rstrip("/"):
            return parts[2]
    return None


def checked_out_commit(repo_root: str | os.PathLike, path: str) -> str | None:
    """HEAD of the submodule checked out at `path` (None when it is not initialised)."""
    folder = Path(repo_root) / path
    # Without its own .git, `git -C folder` would answer for the superproject instead.
    if not (folder / ".git").exists():
        return None
    result = _git(folder, "rev-parse", "HEAD")
    commit = result.stdout.strip() if result is not None and result.returncode == 0 else ""
    return commit or None


def last_commit_touching(repo_root: str | os.PathLike, path: str) -> str | None:
    """The last commit that touched `path` (None outside git or before the first commit)."""
    result = _git(Path(repo_root), "log", "-1", "--format=%H", "--", path)
    commit = result.stdout.strip() if result is not None and result.returncode == 0 else ""
    return commit or None


def submodule_commit(repo_root: Path, path: str) -> str | None:
    """The `commit` `walkout lock` records for a component folder (module docstring): the commit
    checked out in a real submodule (HEAD's gitlink when it is not initialised), else the last
    superproject commit that touched the folder."""
    if gitlink_commit(repo_root, path) is not None:
        return checked_out_commit(repo_root, path) or gitlink_commit(repo_root, path)
    return last_commit_touching(repo_root, path)


def check_commits(refs: ModelRefs, repo_root: str | os.PathLike) -> list[str]:
    """Every disagreement between the lock's `commit` fields and git, as readable lines.

    A real submodule: the lock's commit must be HEAD's gitlink, and the submodule must be checked out
    at it (otherwise the pin read from its folder is not the committed one). An in-tree folder: the
    lock's commit must be the last commit that touched it. Never skipped: a commit that cannot be
    checked (no git) is reported too.
    """
    repo_root = Path(repo_root)
    problems = []
    for name in COMPONENTS:
        entry = refs.components[name]
        gitlink = gitlink_commit(repo_root, entry.path)
        if gitlink is not None:
            if entry.commit != gitlink:
                problems.append(
                    f"{name}: model_refs.yaml commit={entry.commit} but HEAD's gitlink {entry.path} is at "
                    f"{gitlink} (re-lock with `walkout bump {name} --to {gitlink}`, or run `walkout lock` "
                    "and commit model_refs.yaml with the gitlink)"
                )
            checked_out = checked_out_commit(repo_root, entry.path)
            if checked_out is None:
                problems.append(
                    f"{name}: the submodule {entry.path} is not checked out; run "
                    f"`git submodule update --init {entry.path}`"
                )
            elif checked_out != gitlink:
                problems.append(
                    f"{name}: the submodule {entry.path} is checked out at {checked_out} but HEAD's "
                    f"gitlink is {gitlink}; run `git submodule update {entry.path}` (or commit the gitlink)"
                )
            continue
        expected = last_commit_touching(repo_root, entry.path)
        if expected is None:
            if entry.commit is not None:
                problems.append(
                    f"{name}: model_refs.yaml commit={entry.commit} cannot be checked: {entry.path} is "
                    f"neither a submodule nor a folder committed in a git repository at {repo_root}"
                )
        elif entry.commit != expected:
            problems.append(
                f"{name}: model_refs.yaml commit={entry.commit} but the last commit that touched the in-tree "
                f"folder {entry.path} is {expected} (run `walkout lock` and commit model_refs.yaml)"
            )
    return problems


def check_lock(refs: ModelRefs, repo_root: str | os.PathLike) -> list[str]:
    """Every field of every entry against its source: the pins (experiment_id, weights_sha256,
    blind_metrics, component) and git (commit, `check_commits`); `walkout lock --check`."""
    problems = check_against_pins(refs, repo_root)
    problems += check_commits(refs, repo_root)
    source = refs.source or "model_refs.yaml"
    for name in COMPONENTS:
        entry = refs.components[name]
        pin_path = _pin_path(Path(repo_root), name, entry.path, source=source)
        if not pin_path.is_file():
            continue
        try:
            pin_metrics = read_pin(pin_path).get("blind_metrics") or {}
        except RefsError:
            continue  # already reported by check_against_pins
        if not isinstance(pin_metrics, Mapping) or dict(entry.blind_metrics) != {
            str(k): v for k, v in pin_metrics.items()
        }:
            problems.append(
                f"{name}: model_refs.yaml blind_metrics differ from {pin_path}'s (run `walkout lock`)"
            )
    return problems


def check_against_pins(refs: ModelRefs, repo_root: str | os.PathLike) -> list[str]:
    """Every disagreement between the lock file and the submodule pins, as readable lines.

    Checked per component: the pin file exists, names the same component, the same experiment id and
    the same weights sha256. An unpinned entry (null) must face a missing or unpinned submodule pin.
    """
    repo_root = Path(repo_root)
    problems = []
    source = refs.source or "model_refs.yaml"
    for name in COMPONENTS:
        entry = refs.components[name]
        # An escaping path is a broken lock file (RefsError, exit 2), never reported as "stale".
        pin_path = _pin_path(repo_root, name, entry.path, source=source)
        if not pin_path.is_file():
            if entry.pinned:
                problems.append(
                    f"{name}: model_refs.yaml pins {entry.experiment_id} but {pin_path} does not exist"
                )
            continue
        try:
            pin = read_pin(pin_path)
        except RefsError as error:
            problems.append(f"{name}: {error}")
            continue
        pin_component = pin.get("component")
        if pin_component is not None and pin_component != name:
            problems.append(f"{name}: {pin_path} is the pin of component {pin_component!r}")
        for key in ("experiment_id", "weights_sha256"):
            if pin.get(key) != getattr(entry, key):
                problems.append(
                    f"{name}: model_refs.yaml {key}={getattr(entry, key)!r} "
                    f"but {pin_path} says {pin.get(key)!r} (run `walkout lock` to re-lock from the pins)"
                )
    return problems


def refs_from_pins(repo_root: str | os.PathLike, previous: ModelRefs | None = None) -> ModelRefs:
    """A lock file built from the submodule pins (components without a pin stay unpinned)."""
    repo_root = Path(repo_root)
    components = {}
    source = (previous.source if previous else None) or "model_refs.yaml"
    for name in COMPONENTS:
        path = previous.components[name].path if previous else f"submodules/{name}"
        pin_path = _pin_path(repo_root, name, path, source=source)
        if not pin_path.is_file():
            components[name] = ComponentRef(name=name, path=path)
            continue
        pin = read_pin(pin_path)
        metrics = pin.get("blind_metrics") or {}
        if not isinstance(metrics, Mapping):
            raise RefsError(f"{pin_path}: blind_metrics: expected a mapping of metric name -> number")
        for key, value in metrics.items():
            if isinstance(value, float) and not math.isfinite(value):
                raise RefsError(
                    f"{pin_path}: blind_metrics.{key} is {value!r}; blind metrics must be finite numbers "
                    "(re-pin with `walkout-ci pin` from a valid blind report)"
                )
        components[name] = ComponentRef(
            name=name,
            path=path,
            commit=submodule_commit(repo_root, path),
            experiment_id=pin.get("experiment_id"),
            weights_sha256=pin.get("weights_sha256"),
            blind_metrics={str(k): float(v) for k, v in metrics.items() if isinstance(v, int | float)},
        )
    return ModelRefs(components=components, source=previous.source if previous else None)
