"""Experiment exports ("bundles") committed next to a pin, and pushing them to a ClearML server.

A fresh clone has no ClearML server and an empty store, yet its committed pins must resolve, so a
pinned experiment is exported into the repository that pins it:

```
<package>/experiments/<experiment_id>/
  experiment.json           # the store record (see walkout_ci.experiment)
  training_data.json        # training content hashes (blind-leakage check), when recorded
  artifacts/<name>/<file>   # weights etc., verified by sha256 against experiment.json
  clearml_session.zip       # ClearML offline session (params, scalars, debug images, console log)
                            # without the artifact files, which live once, in artifacts/
```

`push` uploads such an experiment (from the store or a bundle) to the configured ClearML server with
`Task.import_offline_session` (the server assigns a new id), records the new id in the store, and
re-pins every model_ref.yaml that pointed at the old id.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import tempfile
import zipfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path, PurePosixPath
from typing import Any

from walkout_ci import clearml_config
from walkout_ci.deadline import DeadlineExceeded, call_with_deadline
from walkout_ci.errors import ExperimentError, PinError
from walkout_ci.pins import (
    PIN_FILE_NAME,
    ExperimentLocation,
    locate_experiment,
    read_location,
    read_pin,
    verified_artifact,
    write_pin,
)
from walkout_ci.store import DIR_MODE, Store, atomic_write_json, check_experiment_id

LOGGER = logging.getLogger("walkout_ci.bundle")
SESSION_ZIP = "clearml_session.zip"
# Above this a bundle stops being "a few MB" in git; exporting still works, but says so.
LARGE_BUNDLE_BYTES = 20 * 1024 * 1024
# Folders never searched for pins to re-pin.
SKIPPED_DIRS = {".git", ".venv", ".walkout", "node_modules", "__pycache__", ".pytest_cache"}


def _artifact_members(names: Iterable[str], artifact_names: Iterable[str]) -> set[str]:
    """Zip members that are artifact files (`data/.../artifacts/<name>/<file>`) of the given names."""
    wanted = set(artifact_names)
    members = set()
    for name in names:
        parts = PurePosixPath(name).parts
        for index in range(len(parts) - 2):
            if parts[index] == "artifacts" and parts[index + 1] in wanted and parts[0] == "data":
                members.add(name)
    return members


def strip_session(source_zip: Path, destination_zip: Path, artifact_names: Iterable[str]) -> None:
    """Copy a ClearML offline session zip without the given artifacts' files (they are kept once)."""
    with zipfile.ZipFile(source_zip) as source:
        skip = _artifact_members(source.namelist(), artifact_names)
        with zipfile.ZipFile(destination_zip, "w", compression=zipfile.ZIP_DEFLATED) as target:
            for info in source.infolist():
                if info.filename not in skip:
                    target.writestr(info, source.read(info.filename))


def export_experiment(
    experiment_id: str,
    to_dir: str | Path,
    *,
    store: Store | None = None,
    search: Sequence[str | Path] = (),
    use_server: bool | None = None,
) -> Path:
    """Export an experiment to `<to_dir>/<experiment_id>/` atomically; returns that folder.

    The experiment comes from the store (or `search` exports); a server experiment missing from the
    store is downloaded first (its "weights" artifact). Every artifact is verified against its
    recorded sha256 before it is copied.
    """
    store = store or Store.open()
    if use_server is False or store.has_experiment(experiment_id):
        location = locate_experiment(experiment_id, search=search, store=store, use_server=False)
    else:
        location = locate_experiment(experiment_id, search=search, store=store, use_server=use_server)
    to_dir = Path(to_dir)
    to_dir.mkdir(parents=True, exist_ok=True)
    target = to_dir / experiment_id
    staging = Path(tempfile.mkdtemp(prefix=f".{experiment_id}.", dir=to_dir))
    try:
        record = json.loads(json.dumps(location.record))
        for name in record.get("artifacts", {}):
            path = verified_artifact(location, name, None)
            relative = Path(record["artifacts"][name]["path"])
            (staging / relative).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(path, staging / relative)
        training = location.directory / "training_data.json"
        if training.is_file():
            shutil.copyfile(training, staging / "training_data.json")
        session = location.directory / SESSION_ZIP
        if record.get("clearml_session") and session.is_file():
            strip_session(session, staging / SESSION_ZIP, record.get("artifacts", {}))
            record["clearml_session"] = SESSION_ZIP
        else:
            record["clearml_session"] = None
        atomic_write_json(staging / "experiment.json", record)
        os.chmod(staging, DIR_MODE)  # mkdtemp makes it private; an export is committed and shared
        if target.exists():
            shutil.rmtree(target)
        os.replace(staging, target)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    size = sum(p.stat().st_size for p in target.rglob("*") if p.is_file())
    if size > LARGE_BUNDLE_BYTES:
        LOGGER.warning("export %s is %.1f MB: large for a git repository", target, size / 1e6)
    return target


def import_bundle(bundle_dir: str | Path, *, store: Store | None = None) -> str:
    """Copy an exported experiment folder into the store (verified); returns its id."""
    bundle_dir = Path(bundle_dir)
    store = store or Store.open()
    experiment_id = bundle_dir.name
    location = read_location(bundle_dir, experiment_id, "bundle")
    if location is None:
        raise ExperimentError(f"{bundle_dir} is not an experiment export (no experiment.json)")
    for name in location.record.get("artifacts", {}):
        verified_artifact(location, name, None)
    target = store.experiment_dir(experiment_id)
    if target.exists():
        shutil.rmtree(target)
    shutil.copytree(bundle_dir, target)
    return experiment_id


def rebuild_session_folder(location: ExperimentLocation, folder: Path) -> Path:
    """Unpack an experiment's ClearML session into `folder` with its artifact files put back.

    ClearML's `import_offline_session` uploads artifact files from `data/<path relative to the
    original offline folder>`, which the export stripped; they are restored from artifacts/.
    """
    session = location.directory / SESSION_ZIP
    if not location.record.get("clearml_session") or not session.is_file():
        raise ExperimentError(
            f"experiment {location.experiment_id} ({location.source} {location.directory}) has no ClearML "
            "offline session to push (it was not an offline experiment)"
        )
    with zipfile.ZipFile(session) as archive:
        for member in archive.namelist():
            resolved = (folder / member).resolve()
            if folder.resolve() not in resolved.parents and resolved != folder.resolve():
                raise ExperimentError(f"{session}: member {member!r} escapes the session folder")
        archive.extractall(folder)
    task_json = folder / "task.json"
    try:
        task_data = json.loads(task_json.read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        raise ExperimentError(f"{session}: no readable task.json ({error})") from error
    offline_data = str(task_data.get("offline_folder", "")).rstrip("/\\") + "/data/"
    for artifact in task_data.get("execution", {}).get("artifacts", []):
        name = artifact.get("key")
        uri = str(artifact.get("uri", ""))
        if name not in location.record.get("artifacts", {}) or not uri.startswith(offline_data):
            continue
        relative = uri[len(offline_data) :]
        destination = (folder / "data" / relative).resolve()
        if (folder / "data").resolve() not in destination.parents:
            raise ExperimentError(f"{session}: artifact {name!r} uri {uri!r} escapes the session folder")
        if not destination.is_file():
            destination.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(verified_artifact(location, name, None), destination)
    return folder


@dataclass(frozen=True)
class PushResult:
    """What `push` did: the server's new id and the pin files rewritten to it."""

    old_id: str
    new_id: str
    repinned: list[Path]
    exports: list[Path] = field(default_factory=list)


def find_pins(roots: Iterable[str | Path]) -> list[Path]:
    """Every model_ref.yaml under `roots` (files are taken as is), skipping .git/.venv/.walkout."""
    found = []
    for root in roots:
        root = Path(root)
        if root.is_file():
            found.append(root)
            continue
        for dirpath, dirnames, filenames in os.walk(root):
            dirnames[:] = [d for d in dirnames if d not in SKIPPED_DIRS]
            if PIN_FILE_NAME in filenames:
                found.append(Path(dirpath) / PIN_FILE_NAME)
    return sorted(found)


def repin(pin_paths: Iterable[str | Path], old_id: str, new_id: str) -> list[Path]:
    """Rewrite every pin pointing at `old_id` to `new_id` (atomically); returns those rewritten."""
    rewritten = []
    for path in pin_paths:
        pin = read_pin(path)
        if pin.experiment_id == old_id:
            write_pin(path, replace(pin, experiment_id=new_id))
            rewritten.append(Path(path))
    return rewritten


def push_experiment(
    experiment_id: str,
    *,
    store: Store | None = None,
    search: Sequence[str | Path] = (),
    pins: Iterable[str | Path] = (),
    timeout_s: float = 600.0,
) -> PushResult:
    """Import an offline/bundled experiment into the configured ClearML server and re-pin to the new id.

    pins: model_ref.yaml files and/or folders to search for them. Raises ExperimentError when no
    server is configured or reachable, or the import fails.
    """
    check_experiment_id(experiment_id)
    store = store or Store.open()
    server = clearml_config.configure(store)
    if server is None:
        raise ExperimentError(
            "no ClearML server is configured: set CLEARML_API_HOST (+ CLEARML_API_ACCESS_KEY/SECRET_KEY) "
            "or write ~/clearml.conf, then push again"
        )
    problem = clearml_config.probe_server(server)
    if problem is not None:
        raise ExperimentError(f"ClearML server {server.api_host} is unreachable: {problem}")
    location = locate_experiment(experiment_id, search=search, store=store, use_server=False)
    pin_files = find_pins(pins)
    with tempfile.TemporaryDirectory(prefix="walkout-push-") as tmp:
        folder = rebuild_session_folder(location, Path(tmp) / "session")
        new_id = _import_session(folder, server, timeout_s)
    record: dict[str, Any] = json.loads(json.dumps(location.record))
    record.update(
        id=new_id,
        mode="online",
        pushed_from=experiment_id,
        server={"api_host": server.api_host, "web_url": None},
        clearml_session=None,
    )
    target = store.experiment_dir(new_id)
    if target.exists():
        shutil.rmtree(target)
    shutil.copytree(location.directory, target, ignore=shutil.ignore_patterns(SESSION_ZIP, "experiment.json"))
    atomic_write_json(target / "experiment.json", record)
    try:
        repinned = repin(pin_files, experiment_id, new_id)
    except PinError as error:
        raise ExperimentError(
            f"pushed {experiment_id} as {new_id}, but re-pinning failed: {error}"
        ) from error
    # A re-pinned package must still resolve on a fresh clone without the server: its bundled export
    # moves to the new id (the old one is dropped: nothing in this tree points at it any more).
    exports = []
    for pin_path in repinned:
        experiments_dir = Path(pin_path).parent / "experiments"
        if (experiments_dir / experiment_id).is_dir():
            exports.append(export_experiment(new_id, experiments_dir, store=store))
            shutil.rmtree(experiments_dir / experiment_id)
    return PushResult(old_id=experiment_id, new_id=new_id, repinned=repinned, exports=exports)


def _import_session(folder: Path, server: clearml_config.ServerSettings, timeout_s: float) -> str:
    """`Task.import_offline_session` with a deadline (clearml retries connection errors forever)."""

    def run() -> Any:
        from clearml import Task

        Task.set_offline(False)
        return Task.import_offline_session(str(folder))

    try:
        new_id = call_with_deadline(run, timeout_s, "ClearML import_offline_session")
    except DeadlineExceeded as error:
        raise ExperimentError(
            f"{error} (server {server.api_host}); the server may hold a partial task: check it, "
            "then push again"
        ) from error
    except Exception as error:
        raise ExperimentError(
            f"ClearML import of the offline session into {server.api_host} failed: {type(error).__name__}: "
            f"{error}"
        ) from error
    if not new_id:
        raise ExperimentError(f"ClearML import into {server.api_host} returned no task id")
    return str(new_id)
