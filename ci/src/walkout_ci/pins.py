"""Model pins (`model_ref.yaml`) and resolving a model reference to a verified local weights file.

`model_ref.yaml`, schema_version 1 (documented in ci/README.md):

```yaml
schema_version: 1
component: detection                 # which component this model serves
experiment_id: offline-1a2b...       # the ClearML experiment that produced the weights
artifact: weights                    # the artifact name inside that experiment
weights_sha256: 3f5a...              # sha256 of the weights file; verified on every resolve
training_dataset: {id: data/train, hash: 9c1e...}   # what it was trained on (null when unknown)
blind_metrics: {AP50: 0.93}          # blind-set metrics at pin time (may be empty)
created_at: '2026-11-25T15:00:00+00:00'
```

A reference (`ref`) is an experiment id, a path to a model_ref.yaml, or a path to a checkpoint file.
`resolve_model_ref` looks for an experiment, in order, at the configured ClearML server, in the local
store, and in bundled exports (`<search dir>/<experiment_id>/`, see `walkout_ci.bundle`), and returns
a local file whose sha256 was checked. Unknown id, missing artifact or a hash mismatch is a PinError
naming the id and what was expected: never a silently different model.
"""

from __future__ import annotations

import dataclasses
import difflib
import hashlib
import logging
import math
import os
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from walkout_ci import clearml_config
from walkout_ci.errors import PinError
from walkout_ci.experiment import utc_now
from walkout_ci.store import (
    Store,
    atomic_copy,
    atomic_write_json,
    atomic_write_text,
    check_experiment_id,
    read_json,
    sha256_file,
)

PIN_SCHEMA_VERSION = 1
PIN_FILE_NAME = "model_ref.yaml"
OFFLINE_ID_PREFIXES = ("offline-", "local-")
LOGGER = logging.getLogger("walkout_ci.pins")


@dataclass(frozen=True)
class ModelPin:
    """A parsed model_ref.yaml (see the module docstring for the file format)."""

    component: str
    experiment_id: str
    weights_sha256: str
    artifact: str = "weights"
    training_dataset: dict[str, Any] | None = None
    blind_metrics: dict[str, float] = field(default_factory=dict)
    created_at: str | None = None
    schema_version: int = PIN_SCHEMA_VERSION

    def to_dict(self) -> dict[str, Any]:
        """The YAML mapping, keys in documentation order."""
        return {
            "schema_version": self.schema_version,
            "component": self.component,
            "experiment_id": self.experiment_id,
            "artifact": self.artifact,
            "weights_sha256": self.weights_sha256,
            "training_dataset": self.training_dataset,
            "blind_metrics": dict(self.blind_metrics),
            "created_at": self.created_at,
        }


_PIN_FIELDS = [f.name for f in dataclasses.fields(ModelPin)]
_REQUIRED_FIELDS = ("schema_version", "component", "experiment_id", "artifact", "weights_sha256")


def _is_sha256(value: Any) -> bool:
    return isinstance(value, str) and len(value) == 64 and all(c in "0123456789abcdef" for c in value)


def metric_value_problem(name: Any, value: Any) -> str | None:
    """Why `name: value` is not a valid blind metric (None when it is): a string name, a finite number."""
    if not isinstance(name, str) or not name:
        return f"metric name {name!r} must be a non-empty string"
    if isinstance(value, bool) or not isinstance(value, int | float):
        return f"metric {name!r} must be a number, got {value!r}"
    if not math.isfinite(value):
        return f"metric {name!r} must be finite, got {value!r} (NaN/inf is an evaluation bug, not a score)"
    return None


def pin_from_dict(data: Any, source: str = "<pin>") -> ModelPin:
    """Validate a mapping against the pin schema; PinError naming `source` and the bad key."""
    if not isinstance(data, dict):
        raise PinError(f"{source}: a model pin must be a YAML mapping, got {type(data).__name__}")
    for key in data:
        if key not in _PIN_FIELDS:
            close = difflib.get_close_matches(str(key), _PIN_FIELDS, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else f" (known keys: {', '.join(_PIN_FIELDS)})"
            raise PinError(f"{source}: unknown key {key!r}{hint}")
    for key in _REQUIRED_FIELDS:
        if data.get(key) in (None, ""):
            raise PinError(f"{source}: missing required key {key!r}")
    if data["schema_version"] != PIN_SCHEMA_VERSION:
        raise PinError(
            f"{source}: schema_version {data['schema_version']!r} is not supported (expected "
            f"{PIN_SCHEMA_VERSION}); upgrade walkout-ci or re-pin"
        )
    for key in ("component", "experiment_id", "artifact"):
        if not isinstance(data[key], str):
            raise PinError(f"{source}: {key!r} must be a string, got {data[key]!r}")
    try:
        check_experiment_id(data["experiment_id"])
    except ValueError as error:
        raise PinError(f"{source}: {error}") from error
    if not _is_sha256(data["weights_sha256"]):
        raise PinError(
            f"{source}: 'weights_sha256' must be 64 lowercase hex characters, got {data['weights_sha256']!r}"
        )
    dataset = data.get("training_dataset")
    if dataset is not None and (not isinstance(dataset, dict) or set(dataset) - {"id", "hash"}):
        raise PinError(f"{source}: 'training_dataset' must be null or a mapping with keys 'id' and 'hash'")
    if dataset is not None:
        for key in ("id", "hash"):
            if dataset.get(key) is not None and not isinstance(dataset.get(key), str):
                raise PinError(f"{source}: 'training_dataset.{key}' must be a string or null")
    metrics = data.get("blind_metrics") or {}
    if not isinstance(metrics, dict):
        raise PinError(f"{source}: 'blind_metrics' must map metric names to numbers, got {metrics!r}")
    for name, value in metrics.items():
        problem = metric_value_problem(name, value)
        if problem:
            raise PinError(f"{source}: 'blind_metrics': {problem}")
    created_at = data.get("created_at")
    return ModelPin(
        component=data["component"],
        experiment_id=data["experiment_id"],
        weights_sha256=data["weights_sha256"],
        artifact=data["artifact"],
        training_dataset=dict(dataset) if dataset is not None else None,
        blind_metrics={str(k): float(v) for k, v in metrics.items()},
        created_at=str(created_at) if created_at is not None else None,
        schema_version=data["schema_version"],
    )


def read_pin(path: str | Path) -> ModelPin:
    """Read and validate a model_ref.yaml; PinError naming the file on any problem."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as error:
        raise PinError(f"cannot read model pin {path}: {error}") from error
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as error:
        raise PinError(f"{path} is not valid YAML: {error}") from error
    return pin_from_dict(data, source=str(path))


PIN_HEADER = (
    "# Model pin written by `walkout-ci pin` (schema: ci/README.md). Resolve it with\n"
    "# `walkout-ci resolve <this file>`; the weights' sha256 is verified on every load.\n"
)


def write_pin(path: str | Path, pin: ModelPin) -> Path:
    """Write a pin atomically (temp file + rename). Returns the path.

    The exact text to be written is parsed back and validated by `pin_from_dict` (what `read_pin`
    does) first, so a pin that could not be read back is never written; PinError names the file.
    """
    text = PIN_HEADER + yaml.safe_dump(pin.to_dict(), sort_keys=False, default_flow_style=False)
    if pin_from_dict(yaml.safe_load(text), source=str(path)) != pin:
        raise PinError(f"{path}: the pin would not read back as written; nothing was written")
    return atomic_write_text(path, text)


# --- locating experiments ---------------------------------------------------------------------------


@dataclass(frozen=True)
class ExperimentLocation:
    """An experiment found on disk: `directory` holds experiment.json and artifacts/ (store or export)."""

    experiment_id: str
    directory: Path
    record: dict[str, Any]
    source: str  # "server", "store" or "bundle"


def read_location(directory: Path, experiment_id: str, source: str) -> ExperimentLocation | None:
    """The experiment in `directory` (store or export folder), None if there is none there."""
    record_path = directory / "experiment.json"
    if not record_path.is_file():
        return None
    try:
        record = read_json(record_path)
    except (OSError, ValueError) as error:
        raise PinError(f"experiment {experiment_id}: record {record_path} is unreadable: {error}") from error
    if not isinstance(record, dict) or record.get("id") != experiment_id:
        raise PinError(
            f"experiment {experiment_id}: {record_path} describes experiment {record.get('id')!r}, "
            f"expected {experiment_id!r}"
        )
    return ExperimentLocation(experiment_id, directory, record, source)


def locate_experiment(
    experiment_id: str,
    *,
    search: Iterable[str | Path] = (),
    store: Store | None = None,
    use_server: bool | None = None,
    artifact: str = "weights",
) -> ExperimentLocation:
    """Find an experiment: configured server, then local store, then bundled exports in `search`.

    use_server: None = when a server is configured and the id is not an offline id. PinError naming
    the id and every place looked at when it is nowhere.
    """
    try:
        check_experiment_id(experiment_id)
    except ValueError as error:
        raise PinError(str(error)) from error
    store = store or Store.open()
    looked: list[str] = []
    is_offline_id = experiment_id.startswith(OFFLINE_ID_PREFIXES)
    server = clearml_config.configured_server() if use_server is not False else None
    if server is not None and not is_offline_id:
        looked.append(f"server {server.api_host}")
        found = _download_from_server(experiment_id, artifact, store, server)
        if found is not None:
            return found
    looked.append(f"store {store.experiments_dir}")
    found = read_location(store.experiment_dir(experiment_id), experiment_id, "store")
    if found is not None:
        return found
    for directory in search:
        looked.append(f"exports {directory}")
        found = read_location(Path(directory) / experiment_id, experiment_id, "bundle")
        if found is not None:
            return found
    raise PinError(
        f"unknown experiment id {experiment_id!r}: not found in {'; '.join(looked)}. Check the id, or "
        f"export it next to the pin "
        f"(`walkout-ci experiment export {experiment_id} --to <package>/experiments`)"
    )


def _download_from_server(
    experiment_id: str, artifact: str, store: Store, server: clearml_config.ServerSettings
) -> ExperimentLocation | None:
    """Fetch an online experiment's artifact into the store; None when the server cannot say."""
    problem = clearml_config.probe_server(server)
    if problem is not None:
        LOGGER.warning("ClearML server %s unreachable (%s); looking locally", server.api_host, problem)
        return None
    clearml_config.configure(store)
    try:
        from clearml import Task

        Task.set_offline(False)
        task = Task.get_task(task_id=experiment_id)
    except Exception as error:
        LOGGER.warning("ClearML has no experiment %s (%s); looking locally", experiment_id, error)
        return None
    if task is None or getattr(task, "id", None) != experiment_id:
        return None
    artifacts = task.artifacts
    if artifact not in artifacts:
        raise PinError(
            f"experiment {experiment_id} on {server.api_host} has no artifact {artifact!r} "
            f"(it has: {', '.join(sorted(artifacts)) or 'none'})"
        )
    local = artifacts[artifact].get_local_copy(extract_archive=False, raise_on_error=True)
    if not local or not Path(local).is_file():
        raise PinError(
            f"experiment {experiment_id}: could not download artifact {artifact!r} from the server"
        )
    directory = store.experiment_dir(experiment_id)
    relative = Path("artifacts") / artifact / Path(local).name
    atomic_copy(local, directory / relative)
    record_path = directory / "experiment.json"
    record = read_json(record_path) if record_path.is_file() else None
    if record is None:
        record = {
            "schema_version": 1,
            "id": experiment_id,
            "project": task.get_project_name(),
            "name": task.name,
            "mode": "online",
            "status": str(task.get_status()),
            "params": {},
            "metrics": {},
            "artifacts": {},
            "training_data": [],
            "server": {"api_host": server.api_host, "web_url": None},
            "clearml_session": None,
        }
    record["artifacts"][artifact] = {
        "path": relative.as_posix(),
        "sha256": sha256_file(directory / relative),
        "size": (directory / relative).stat().st_size,
    }
    atomic_write_json(record_path, record)
    return ExperimentLocation(experiment_id, directory, record, "server")


def artifact_file(location: ExperimentLocation, artifact: str) -> tuple[Path, str]:
    """(local path, recorded sha256) of an artifact; PinError when missing or escaping its folder."""
    entry = (location.record.get("artifacts") or {}).get(artifact)
    if not isinstance(entry, dict) or "path" not in entry or "sha256" not in entry:
        known = ", ".join(sorted(location.record.get("artifacts") or {})) or "none"
        raise PinError(
            f"experiment {location.experiment_id} ({location.source} {location.directory}) has no artifact "
            f"{artifact!r} (it has: {known})"
        )
    base = location.directory.resolve()
    path = (location.directory / entry["path"]).resolve()
    if base not in path.parents:
        raise PinError(
            f"experiment {location.experiment_id}: artifact {artifact!r} path {entry['path']!r} "
            f"points outside {location.directory}"
        )
    if not path.is_file():
        raise PinError(
            f"experiment {location.experiment_id}: artifact {artifact!r} file {path} is missing "
            f"(expected sha256 {entry['sha256']})"
        )
    return path, entry["sha256"]


def verified_artifact(location: ExperimentLocation, artifact: str, expected_sha256: str | None) -> Path:
    """The artifact file after checking its bytes against the record and the pin (if given)."""
    path, recorded = artifact_file(location, artifact)
    actual = sha256_file(path)
    for label, expected in (("the pin", expected_sha256), ("the experiment record", recorded)):
        if expected is not None and actual != expected:
            raise PinError(
                f"experiment {location.experiment_id}: artifact {artifact!r} ({path}) has sha256 {actual}, "
                f"but {label} expects {expected}; the file was changed or the pin is wrong"
            )
    return path


# --- pinning and resolving --------------------------------------------------------------------------


def training_dataset_of(record: dict[str, Any]) -> dict[str, Any] | None:
    """{id, hash} of an experiment's training data: the one manifest, or a combined hash of several."""
    entries = record.get("training_data") or []
    if not entries:
        return None
    if len(entries) == 1:
        return {"id": dataset_name(entries[0]), "hash": entries[0].get("manifest_sha256")}
    combined = hashlib.sha256("\n".join(sorted(e.get("manifest_sha256", "") for e in entries)).encode())
    return {"id": ";".join(dataset_name(e) for e in entries), "hash": combined.hexdigest()}


def dataset_name(entry: dict[str, Any]) -> str:
    """A training-data entry's name: `name` (its folder's name), or for records written before names
    were recorded, the last folder of the old absolute `manifest` path (no machine path in a pin)."""
    if entry.get("name"):
        return str(entry["name"])
    manifest = str(entry.get("manifest") or "")
    return Path(manifest).parent.name if manifest else "unknown"


def pin_experiment(
    experiment_id: str,
    out: str | Path,
    *,
    component: str,
    artifact: str = "weights",
    blind_metrics: dict[str, float] | None = None,
    search: Iterable[str | Path] = (),
    store: Store | None = None,
    use_server: bool | None = None,
) -> ModelPin:
    """Write `out` (a model_ref.yaml) pinning `artifact` of `experiment_id`, after verifying it."""
    location = locate_experiment(
        experiment_id, search=search, store=store, use_server=use_server, artifact=artifact
    )
    _, recorded = artifact_file(location, artifact)
    verified_artifact(location, artifact, recorded)
    pin = ModelPin(
        component=component,
        experiment_id=experiment_id,
        artifact=artifact,
        weights_sha256=recorded,
        training_dataset=training_dataset_of(location.record),
        blind_metrics=dict(blind_metrics or {}),
        created_at=utc_now(),
    )
    write_pin(out, pin)
    return pin


@dataclass(frozen=True)
class LockedModel:
    """One model a lock file pins: component name, its folder (repository-relative), experiment, hash."""

    component: str
    path: str
    experiment_id: str
    weights_sha256: str


def lock_models(data: Any, source: str = "<lock>") -> list[LockedModel]:
    """The models a lock file pins (the app's model_refs.yaml, ARCHITECTURE.md: `components.<name>` with
    `path`, `experiment_id`, `weights_sha256`); entries whose experiment_id is null are not pinned yet
    and left out; a model file that is no lock (no `components`) pins nothing. PinError naming the file
    and field on anything malformed."""
    if not isinstance(data, dict) or "components" not in data:
        return []
    components = data["components"]
    if not isinstance(components, dict):
        raise PinError(f"{source}: expected a mapping 'components: {{<name>: {{path, experiment_id, ...}}}}'")
    models = []
    for name, entry in components.items():
        if not isinstance(entry, dict):
            raise PinError(f"{source}: components.{name}: expected a mapping, got {entry!r}")
        experiment_id = entry.get("experiment_id")
        if experiment_id is None:
            continue
        path, digest = entry.get("path"), entry.get("weights_sha256")
        if not isinstance(path, str) or not path or path.startswith("/") or ".." in Path(path).parts:
            raise PinError(f"{source}: components.{name}.path: expected a folder inside the repository")
        if not isinstance(experiment_id, str) or not _is_sha256(digest):
            raise PinError(
                f"{source}: components.{name}: experiment_id must be a string and weights_sha256 64 hex"
            )
        models.append(LockedModel(str(name), path, experiment_id, digest))
    return models


def resolve_pin(
    pin: ModelPin,
    *,
    search: Iterable[str | Path] = (),
    store: Store | None = None,
    use_server: bool | None = None,
) -> Path:
    """The verified local weights file of a pin."""
    location = locate_experiment(
        pin.experiment_id, search=search, store=store, use_server=use_server, artifact=pin.artifact
    )
    return verified_artifact(location, pin.artifact, pin.weights_sha256)


def experiment_id_of_ref(ref: str | Path) -> str | None:
    """The experiment behind a model reference: a model_ref.yaml's pinned id, the id itself, or None
    for a bare checkpoint file (which names no experiment)."""
    path = Path(os.fspath(ref)).expanduser()
    if path.is_file():
        return read_pin(path).experiment_id if path.suffix in (".yaml", ".yml") else None
    return os.fspath(ref)


def resolve_model_ref(
    ref: str | Path,
    search: Sequence[str | Path] = (),
    *,
    store: Store | None = None,
    use_server: bool | None = None,
    artifact: str = "weights",
) -> Path:
    """Turn a model reference into a verified local weights path.

    ref: a path to a model_ref.yaml (its sibling `experiments/` folder is searched too), a path to a
    checkpoint file (returned as is: there is nothing to verify it against), or an experiment id
    (its `artifact` is checked against the experiment record's sha256).
    search: folders holding bundled exports (`<dir>/<experiment_id>/`), searched after server and store.
    """
    text = os.fspath(ref)
    path = Path(text).expanduser()
    if path.is_file():
        if path.suffix in (".yaml", ".yml"):
            pin = read_pin(path)
            dirs = [*search, path.parent.absolute() / "experiments"]
            return resolve_pin(pin, search=dirs, store=store, use_server=use_server)
        return path.absolute()
    if path.suffix in (".yaml", ".yml", ".pt", ".pth", ".ckpt") or os.sep in text:
        raise PinError(f"model reference {text!r} looks like a file path, but there is no such file")
    location = locate_experiment(text, search=search, store=store, use_server=use_server, artifact=artifact)
    return verified_artifact(location, artifact, None)


@dataclass(frozen=True)
class FineTuneSource:
    """The model a training run starts from: its experiment, verified weights and record folder."""

    experiment_id: str
    weights: Path
    experiment_dir: Path


def fine_tune_source(ref: str | Path, search: Sequence[str | Path] = (), *, key: str) -> FineTuneSource:
    """Resolve what a package's `key` (e.g. "train.init_from") names for fine-tuning.

    ref: an experiment id or a model_ref.yaml. A bare checkpoint is refused (PinError naming `key`):
    it names no experiment, so the new experiment could not record, nor inherit for the gate's
    leakage check, what the weights were trained on.
    """
    text = os.fspath(ref)
    experiment_id = experiment_id_of_ref(text)
    if experiment_id is None:
        raise PinError(
            f"{key}={text!r} is a bare checkpoint, which names no experiment: pass an experiment id or "
            "a model_ref.yaml, so the new experiment records what its weights have seen"
        )
    dirs = list(search)
    path = Path(text).expanduser()
    if path.is_file():
        dirs.append(path.parent.absolute() / "experiments")
    weights = resolve_model_ref(text, search=search)
    location = locate_experiment(experiment_id, search=dirs)
    return FineTuneSource(experiment_id=experiment_id, weights=weights, experiment_dir=location.directory)


@dataclass(frozen=True)
class InitialWeights:
    """Weights a training run fine-tunes from (a package's `train.init_from`), and their experiment.

    ref: the reference as configured (experiment id or model_ref.yaml). state_dict: the network's
    weights, already checked against the run's network by the package.
    """

    ref: str
    state_dict: dict[str, Any]
    experiment_id: str
    experiment_dir: Path


def load_initial_weights(
    ref: str,
    *,
    search: Sequence[str | Path],
    key: str,
    load_state: Callable[[Path], dict[str, Any]],
    error: type[Exception],
) -> InitialWeights:
    """Resolve `ref` for fine-tuning (`fine_tune_source`) and load its weights with the package's
    `load_state(weights_path) -> state_dict`, which checks them against the run (network shape, class
    names) and raises the package's own error. A reference that cannot be used is raised as `error`
    (the package's ConfigError: exit 2 before any experiment starts), its message naming `key`.
    """
    from walkout_ci.errors import WalkoutCIError

    try:
        source = fine_tune_source(ref, search=search, key=key)
    except WalkoutCIError as problem:
        raise error(str(problem)) from problem
    return InitialWeights(
        ref=ref,
        state_dict=load_state(source.weights),
        experiment_id=source.experiment_id,
        experiment_dir=source.experiment_dir,
    )


def initial_weights_for(
    ref: str | None, loaded: InitialWeights | None, load: Callable[[str], InitialWeights]
) -> InitialWeights | None:
    """The weights `ref` names: None when empty, `loaded` when it came from the same reference, else
    `load(ref)`. A run resolves its reference before its experiment starts (a wrong one is a config
    error, not a failed run) and again with the parameters the tracker hands back, which a cloned
    experiment may have changed; this keeps the second call from loading the same weights twice."""
    if not ref:
        return None
    if loaded is not None and loaded.ref == ref:
        return loaded
    return load(ref)


def explain_lineage(
    ref: str | Path, search: Sequence[str | Path] = (), *, store: Store | None = None
) -> list[str]:
    """Lines describing where a model comes from: the pin (if `ref` is a model_ref.yaml), then its
    experiment's provenance (who, where, device, when, commit + dirty flag, dataset name + hash) and
    what it was cloned or fine-tuned from, following `cloned_from` and `initialized_from` through the
    records that can be found."""
    lines: list[str] = []
    path = Path(os.fspath(ref)).expanduser()
    dirs = list(search)
    if path.is_file() and path.suffix in (".yaml", ".yml"):
        pin = read_pin(path)
        experiment_id = pin.experiment_id
        dirs.append(path.parent.absolute() / "experiments")
        dataset = pin.training_dataset or {}
        lines += [
            f"pin {path}: {pin.component}, experiment {experiment_id}, "
            f"{pin.artifact} sha256 {pin.weights_sha256}",
            f"  training dataset (pinned): {dataset.get('id', 'unknown')} "
            f"sha256 {dataset.get('hash', 'unknown')}",
        ]
    else:
        experiment_id = os.fspath(ref)
    seen: set[str] = set()
    while experiment_id and experiment_id not in seen:
        seen.add(experiment_id)
        try:
            record = locate_experiment(experiment_id, search=dirs, store=store).record
        except PinError as error:
            lines.append(f"experiment {experiment_id}: not found ({error})")
            break
        origin = record.get("provenance") or {}
        code = record.get("code") or {}
        commit = origin.get("commit") or code.get("commit") or "unknown"
        dirty = origin.get("dirty", code.get("dirty"))
        state = {True: " + uncommitted changes", False: " (clean)"}.get(dirty, "")
        started = origin.get("started_at") or record.get("created_at")
        lines += [
            f"experiment {experiment_id}: {record.get('project')}/{record.get('name')} "
            f"({record.get('status')})",
            f"  trained by {origin.get('user', 'unknown')} on {origin.get('host', 'unknown')} "
            f"({origin.get('device', 'unknown device')}), started {started}",
            f"  code: commit {commit}{state}",
        ]
        for entry in record.get("training_data") or []:
            lines.append(
                f"  dataset: {dataset_name(entry)} (split {entry.get('split')}) "
                f"sha256 {entry.get('manifest_sha256')}"
            )
        experiment_id = record.get("cloned_from")
        if experiment_id:
            lines.append(f"  cloned from {experiment_id}")
        elif record.get("initialized_from"):
            experiment_id = record["initialized_from"]
            lines.append(f"  fine-tuned from the weights of {experiment_id}")
    return lines
