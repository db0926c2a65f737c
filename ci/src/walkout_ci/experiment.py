"""Tracked experiments: ClearML online when a server is configured and reachable, offline otherwise.

Two lines in a training script:

```python
exp = experiment.start(project="walkout/detection", name="train", params=dict(cfg))
...
exp.upload_weights("model.pt"); exp.log_metrics({"AP50": 0.93}); exp.close()
```

`start` never raises and no logging call ever crashes or hangs training: tracker errors are caught,
logged once per kind of call, and training continues. Regardless of ClearML, every experiment is also
recorded in the local store (`walkout_ci.store`), which is what pins and exports are built on:

`<store>/experiments/<id>/experiment.json` (schema_version 1):

```
{"schema_version": 1, "id": "offline-1a2b...", "project": str, "name": str,
 "mode": "online" | "offline" | "local",      # local: ClearML itself failed, store-only record
 "status": "running" | "completed" | "failed",
 "created_at": ISO-8601 UTC, "closed_at": ISO-8601 UTC | null,
 "params": {...}, "metrics": {"AP50": 0.93},
 "artifacts": {"weights": {"path": "artifacts/weights/model.pt", "sha256": hex, "size": bytes}},
 "training_data": [{"name": dataset folder name, "manifest_sha256": hex, "split": str,
                    "content_hashes": int}],   # a name, not a path of this machine; the hash identifies
 "server": {"api_host": str, "web_url": str | null} | null,
 "clearml_session": "clearml_session.zip" | null,   # ClearML offline session (offline mode)
 "code": {"commit": sha | null, "dirty": bool | null, "argv": [...], "cwd": str},
 "provenance": {"user": str, "host": str, "device": "cpu" | GPU model, "started_at": ISO-8601 UTC,
                "commit": sha | null, "dirty": bool | null},
 "cloned_from": experiment id | null,          # `walkout-ci clone` (local rerun, or a server clone)
 "initialized_from": experiment id}             # only when training started from its weights (fine-tuning)
```

A training run started from one of our entry points is made agent-runnable on ClearML
(walkout_ci.agent_task: module entry point with its arguments, working directory, pinned
requirements incl. our packages; repository, commit and uncommitted diff as ClearML detected them).

Design decisions for clearml 2.1.12 (tests in ci/tests/test_experiment.py, test_clearml_executor.py):
- No config: ClearML would raise MissingConfigError; we go offline explicitly. A configured server
  is probed first (3 s) and `Task.init` gets a deadline: unreachable or sick servers mean offline.
- clearml retries connection errors forever inside every API call, so online calls run with a
  deadline (see `Experiment._safe`): a server dying mid-run cannot hang or crash training.
- ClearML framework auto-capture is disabled: `torch.save` would be hooked only when torch was
  imported before `Task.init`, and TensorBoard capture duplicates every scalar that Ignite's
  TensorboardLogger also reports. Weights are stored explicitly with `upload_weights`.
- `OutputModel.update_weights` fails offline, so weights are an artifact plus our own copy.
- Offline ClearML sessions are copied into the store at close (the process may have ClearML's cache
  somewhere else when its config was read before `start`).
- Running under a ClearML agent (a cloned task), `exp.params` carries the server's overrides; run
  locally, `WALKOUT_CI_PARAMS_OVERRIDE` (JSON of dotted keys) overrides params (`walkout-ci clone`).
"""

from __future__ import annotations

import atexit
import contextlib
import datetime as _dt
import getpass
import json
import logging
import os
import socket
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import numpy as np

from walkout_ci import clearml_config
from walkout_ci.deadline import DeadlineExceeded, call_with_deadline
from walkout_ci.errors import BlindSetError, ExperimentError
from walkout_ci.gitrepo import code_commit
from walkout_ci.store import (
    Store,
    atomic_copy,
    atomic_write_json,
    read_json,
    sha256_file,
)

RECORD_SCHEMA_VERSION = 1
PARAMS_OVERRIDE_ENV_VAR = "WALKOUT_CI_PARAMS_OVERRIDE"
# Set by `walkout-ci clone --local` for the rerun: the record's `cloned_from`.
CLONED_FROM_ENV_VAR = "WALKOUT_CI_CLONED_FROM"
LOGGER = logging.getLogger("walkout_ci.experiment")


def utc_now() -> str:
    """Current UTC time as ISO-8601 with seconds."""
    return _dt.datetime.now(_dt.UTC).replace(microsecond=0).isoformat()


def apply_overrides(params: dict[str, Any], overrides: dict[str, Any]) -> dict[str, Any]:
    """Return a copy of `params` with `overrides` applied; keys are dotted paths ("optim.lr").

    Intermediate dicts are created as needed; values replace whatever was there.
    """
    result = json.loads(json.dumps(params, default=str))
    for dotted, value in overrides.items():
        node = result
        parts = str(dotted).split(".")
        for part in parts[:-1]:
            if not isinstance(node.get(part), dict):
                node[part] = {}
            node = node[part]
        node[parts[-1]] = value
    return result


def _params_from_env(params: dict[str, Any], environ: dict[str, str]) -> dict[str, Any]:
    raw = environ.get(PARAMS_OVERRIDE_ENV_VAR)
    if not raw:
        return params
    try:
        overrides = json.loads(raw)
        if not isinstance(overrides, dict):
            raise ValueError("expected a JSON object of dotted keys")
    except ValueError as error:
        LOGGER.warning("ignoring %s=%r: %s", PARAMS_OVERRIDE_ENV_VAR, raw, error)
        return params
    return apply_overrides(params, overrides)


def device_name() -> str:
    """The GPU model training runs on ("NVIDIA H100 80GB HBM3"), else "cpu".

    Asks torch only when the process already imported it (every trainer has): importing torch here
    would slow every tracked evaluation down for nothing.
    """
    torch = sys.modules.get("torch")
    try:
        if torch is not None and torch.cuda.is_available():
            return str(torch.cuda.get_device_name(torch.cuda.current_device()))
    except Exception:
        # A broken CUDA setup is not a reason to fail the record; the run itself will say more.
        return "cpu"
    return "cpu"


def worktree_dirty(directory: Path) -> bool | None:
    """True when the git checkout holding `directory` has uncommitted changes; None outside git."""
    try:
        result = subprocess.run(
            ["git", "-C", os.fspath(directory), "status", "--porcelain", "--untracked-files=no"],
            capture_output=True,
            text=True,
            timeout=30,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    return bool(result.stdout.strip()) if result.returncode == 0 else None


def provenance(cwd: Path) -> dict[str, Any]:
    """Who trained, where, on which device, when and from which commit (see the record schema)."""
    try:
        user = getpass.getuser()
    except Exception:
        # No passwd entry (some containers): the record still says something.
        user = os.environ.get("USER") or "unknown"
    return {
        "user": user,
        "host": socket.gethostname(),
        "device": device_name(),
        "started_at": utc_now(),
        "commit": code_commit(cwd),
        "dirty": worktree_dirty(cwd),
    }


def to_rgb_image(image: np.ndarray) -> np.ndarray:
    """Convert an OpenCV-order image for ClearML: BGR uint8 [H, W, 3] -> RGB; gray [H, W] unchanged."""
    array = np.asarray(image)
    if array.dtype != np.uint8:
        raise ExperimentError(f"image must be uint8, got {array.dtype}")
    if array.ndim == 3 and array.shape[2] == 3:
        return np.ascontiguousarray(array[:, :, ::-1])
    if array.ndim == 2:
        return array
    raise ExperimentError(f"image must be [H, W, 3] BGR or [H, W] gray, got shape {array.shape}")


class Experiment:
    """One tracked run. Create with `start()`; every method is safe to call after a tracker failure."""

    def __init__(
        self,
        *,
        experiment_id: str,
        project: str,
        name: str,
        mode: str,
        params: dict[str, Any],
        store: Store,
        task: Any = None,
        server: clearml_config.ServerSettings | None = None,
        call_timeout_s: float = 30.0,
        transfer_timeout_s: float = 600.0,
    ) -> None:
        self.id = experiment_id
        self.project = project
        self.name = name
        self.mode = mode
        self.params = params
        self.store = store
        self._task = task
        self._server = server if mode == "online" else None
        self._call_timeout_s = call_timeout_s
        self._transfer_timeout_s = transfer_timeout_s
        self._lost: str | None = None
        self._warned: set[str] = set()
        self._closed = False
        self.dir = store.experiment_dir(experiment_id)
        online = self._server is not None
        web_url = self._safe("web_url", lambda: task.get_output_log_web_page()) if online else None
        cwd = Path.cwd()
        origin = provenance(cwd)
        self.record: dict[str, Any] = {
            "schema_version": RECORD_SCHEMA_VERSION,
            "id": experiment_id,
            "project": project,
            "name": name,
            "mode": mode,
            "status": "running",
            "created_at": utc_now(),
            "closed_at": None,
            "params": params,
            "metrics": {},
            "artifacts": {},
            "training_data": [],
            "server": {"api_host": server.api_host, "web_url": web_url} if online else None,
            "clearml_session": None,
            "code": {
                "commit": origin["commit"],
                "dirty": origin["dirty"],
                "argv": list(sys.argv),
                "cwd": str(cwd),
            },
            "provenance": origin,
            "cloned_from": os.environ.get(CLONED_FROM_ENV_VAR) or None,
        }
        self._write_record()

    # --- tracker plumbing -------------------------------------------------------------------------

    def _safe(self, kind: str, call: Any, *, transfer: bool = False) -> Any:
        """Run a tracker call; on any error log it once per `kind` and return None.

        Online, the call runs in a daemon thread with a deadline (`transfer`: uploads and close get
        the longer one, after a quick liveness probe of the server), because clearml 2.1.12 retries a
        connection error forever inside every API call: a server dying mid-run would otherwise hang
        training. A missed deadline or a failed probe "loses" the tracker: no further ClearML calls,
        ClearML's exit hook is disarmed (it would block the process exit the same way), and the
        store record says so.
        """
        if self._task is None or self._lost is not None:
            return None
        if self._server is None:
            return self._report_failure(kind, call)
        if transfer:
            problem = clearml_config.probe_server(self._server)
            if problem is not None:
                self._lose_tracker(kind, f"the server stopped answering ({problem})")
                return None
        timeout_s = self._transfer_timeout_s if transfer else self._call_timeout_s
        try:
            return call_with_deadline(lambda: self._report_failure(kind, call), timeout_s, f"ClearML {kind}")
        except DeadlineExceeded:
            self._lose_tracker(kind, f"no answer within {timeout_s:.0f} s")
            return None

    def _report_failure(self, kind: str, call: Any) -> Any:
        try:
            return call()
        except Exception as error:
            if kind not in self._warned:
                self._warned.add(kind)
                LOGGER.warning(
                    "experiment %s: ClearML %s failed (%s: %s); training continues, further %s errors "
                    "are not reported",
                    self.id,
                    kind,
                    type(error).__name__,
                    error,
                    kind,
                )
            return None

    def _lose_tracker(self, kind: str, reason: str) -> None:
        """Stop using ClearML for the rest of this run (see `_safe`)."""
        self._lost = f"{kind}: {reason}"
        LOGGER.warning(
            "experiment %s: ClearML %s: %s. Training continues without the tracker; the experiment is "
            "recorded in %s.",
            self.id,
            kind,
            reason,
            self.dir,
        )
        self.record["tracker_lost"] = {"at": utc_now(), "reason": self._lost}
        self._write_record()
        # ClearML's at-exit handlers (the task's and its metrics reporter's) would flush to the dead
        # server forever and the process would never exit: disarm both (private clearml 2.1.12 names).
        with contextlib.suppress(Exception):
            from clearml import Task

            Task._Task__register_at_exit(None)
        with contextlib.suppress(Exception):
            reporter = getattr(self._task, "_Task__reporter", None)
            if reporter is not None:
                atexit.unregister(reporter._handle_program_exit)

    def _logger(self) -> Any:
        return self._task.get_logger() if self._task is not None else None

    def _write_record(self) -> None:
        atomic_write_json(self.dir / "experiment.json", self.record)

    @property
    def web_url(self) -> str | None:
        """ClearML web page of the experiment (online), else None; see `location`."""
        server = self.record.get("server") or {}
        return server.get("web_url")

    @property
    def location(self) -> str:
        """Where a human finds this experiment: the ClearML web URL online, the store path offline."""
        return self.web_url or str(self.dir)

    # --- logging API ------------------------------------------------------------------------------

    def log_scalar(self, title: str, series: str, value: float, iteration: int) -> None:
        """Report one point of a scalar curve (e.g. title "loss", series "train")."""
        if self._task is None:
            return
        self._safe(
            "log_scalar",
            lambda: self._logger().report_scalar(title, series, value=float(value), iteration=int(iteration)),
        )

    def log_image(self, title: str, series: str, image: np.ndarray | str | Path, iteration: int) -> None:
        """Report a debug image: BGR uint8 [H, W, 3] (OpenCV order), gray [H, W], or an image path."""
        if self._task is None:
            return

        def report() -> None:
            # ClearML uploads image files as they are (PNG/JPEG); arrays are converted to RGB. A bad
            # debug image is reported like a tracker error: it must not stop training.
            if isinstance(image, str | Path):
                content = {"local_path": str(image)}
            else:
                content = {"image": to_rgb_image(image)}
            self._logger().report_image(title, series, iteration=int(iteration), **content)

        self._safe("log_image", report)

    def log_params(self, params: dict[str, Any]) -> None:
        """Add parameters after `start` (merged into the record; connected to ClearML)."""
        self.record["params"] = {**self.record["params"], **params}
        self._write_record()
        if self._task is not None:
            self._safe("log_params", lambda: self._task.connect(dict(params), name="General"))

    def log_metrics(self, metrics: dict[str, float]) -> None:
        """Record final single-value metrics (e.g. {"AP50": 0.93})."""
        clean = {str(key): float(value) for key, value in metrics.items()}
        self.record["metrics"].update(clean)
        self._write_record()
        if self._task is not None:
            for key, value in clean.items():
                self._safe(
                    "log_metrics", lambda key=key, value=value: self._logger().report_single_value(key, value)
                )

    def set_training_data(self, manifest_path: str | Path) -> None:
        """Record the training data (a simulator export's manifest.json or its folder).

        Stores the manifest's sha256 and the rendered frames' `content_hashes` so that the gate can
        check that no training frame is in the blind set. Raises BlindSetError for a blind manifest,
        ExperimentError for a missing/invalid manifest (user errors, not tracker errors).
        """
        path = Path(manifest_path)
        if path.is_dir():
            path = path / "manifest.json"
        try:
            manifest = read_json(path)
        except (OSError, ValueError) as error:
            raise ExperimentError(
                f"cannot read training manifest {path}: {error}; pass a simulator export folder or its "
                "manifest.json"
            ) from error
        if not isinstance(manifest, dict):
            raise ExperimentError(f"training manifest {path} is not a JSON object")
        if manifest.get("blind") is True:
            raise BlindSetError(f"{path} is the blind set (manifest 'blind': true): never train on it")
        hashes = manifest.get("content_hashes", [])
        if not isinstance(hashes, list) or not all(isinstance(h, str) for h in hashes):
            raise ExperimentError(f"{path}: 'content_hashes' must be a list of sha256 strings")
        known_file = self.dir / "training_data.json"
        known = set(read_json(known_file)["content_hashes"]) if known_file.is_file() else set()
        atomic_write_json(known_file, {"content_hashes": sorted(known | set(hashes))})
        entry = {
            "name": path.absolute().parent.name,
            "manifest_sha256": sha256_file(path),
            "split": manifest.get("split"),
            "content_hashes": len(hashes),
        }
        self.record["training_data"].append(entry)
        self._write_record()
        if self._task is not None:
            self._safe(
                "set_training_data",
                lambda: self._task.connect_configuration(
                    {"training_data": self.record["training_data"]}, name="walkout_training_data"
                ),
            )
            self._safe(
                "set_training_data",
                lambda: self._task.upload_artifact(
                    "training_data", artifact_object=str(known_file), wait_on_upload=True
                ),
                transfer=True,
            )

    def derive_from(self, source_dir: str | Path) -> None:
        """Record that this experiment's weights are another experiment's, unchanged (e.g. a tracker
        whose association settings were retuned): `cloned_from` names the source, and the source's
        training data (entries and content hashes) is this one's, so the gate's leakage check and
        the pin's training dataset see exactly what the weights were trained on."""
        self._inherit_training_data(source_dir, relation="cloned_from")

    def initialize_from(self, source_dir: str | Path) -> None:
        """Record that training started from another experiment's weights (fine-tuning):
        `initialized_from` names the source, and the source's training data is added to this one's,
        because the weights have seen it (the gate's leakage check must look at both)."""
        self._inherit_training_data(source_dir, relation="initialized_from")

    def _inherit_training_data(self, source_dir: str | Path, *, relation: str) -> None:
        """Add the training data of the experiment in `source_dir` to this one's and name it under
        `relation` ("cloned_from" or "initialized_from")."""
        source_dir = Path(source_dir)
        record = read_json(source_dir / "experiment.json")
        if not isinstance(record, dict) or not record.get("id"):
            raise ExperimentError(f"{source_dir}/experiment.json is not an experiment record")
        hashes = training_content_hashes(source_dir)
        known_file = self.dir / "training_data.json"
        known = set(read_json(known_file)["content_hashes"]) if known_file.is_file() else set()
        atomic_write_json(known_file, {"content_hashes": sorted(known | hashes)})
        self.record["training_data"] = [*self.record["training_data"], *record.get("training_data", [])]
        self.record[relation] = str(record["id"])
        self._write_record()
        if self._task is not None:
            self._safe(
                relation,
                lambda: self._task.connect_configuration(
                    {"training_data": self.record["training_data"], relation: record["id"]},
                    name="walkout_training_data",
                ),
            )

    def upload_weights(self, path: str | Path, name: str = "weights") -> str:
        """Store a weights file with the experiment; returns its sha256.

        The file is copied into the store first (so it exists even if ClearML fails), then uploaded
        as a ClearML artifact (to the files server online, into the offline session offline).
        """
        source = Path(path)
        if not source.is_file():
            raise ExperimentError(f"weights file {source} does not exist")
        if not name or any(ch in name for ch in "/\\"):
            raise ExperimentError(f"invalid artifact name {name!r}: use a plain name such as 'weights'")
        digest = sha256_file(source)
        relative = Path("artifacts") / name / source.name
        atomic_copy(source, self.dir / relative)
        self.record["artifacts"][name] = {
            "path": relative.as_posix(),
            "sha256": digest,
            "size": source.stat().st_size,
        }
        self._write_record()
        if self._task is not None:
            self._safe(
                "upload_weights",
                lambda: self._task.upload_artifact(
                    name,
                    artifact_object=str(self.dir / relative),
                    metadata={"sha256": digest},
                    wait_on_upload=True,
                ),
                transfer=True,
            )
        return digest

    def upload_folder(self, path: str | Path, name: str) -> bool:
        """Upload a folder as a ClearML artifact (zipped by ClearML); True when ClearML accepted it.

        Unlike weights, folders (e.g. an evaluation report with debug images) are not copied into the
        store; a caller that needs the upload (the remote evaluation) checks the return value.
        """
        folder = Path(path)
        if not folder.is_dir():
            raise ExperimentError(f"artifact folder {folder} does not exist")
        if self._task is None:
            return False
        done = self._safe(
            "upload_folder",
            lambda: self._task.upload_artifact(name, artifact_object=str(folder), wait_on_upload=True),
            transfer=True,
        )
        return bool(done)

    def close(self, status: str = "completed") -> None:
        """Finish the experiment (idempotent): flush ClearML, archive the offline session."""
        if self._closed:
            return
        self._closed = True
        offline_folder = None
        if self._task is not None:
            if self.mode == "offline":
                offline_folder = self._safe("close", lambda: self._task.get_offline_mode_folder())
            if status == "failed":
                self._safe("close", lambda: self._task.mark_failed(status_reason="training raised"))
            self._safe("close", lambda: self._task.close(), transfer=True)
        if offline_folder is not None:
            session_zip = Path(str(offline_folder) + ".zip")
            if session_zip.is_file():
                atomic_copy(session_zip, self.dir / "clearml_session.zip")
                self.record["clearml_session"] = "clearml_session.zip"
        self.record["status"] = status
        self.record["closed_at"] = utc_now()
        self._write_record()

    def __enter__(self) -> Experiment:
        return self

    def __exit__(self, exc_type: Any, exc: Any, traceback: Any) -> None:
        self.close(status="failed" if exc_type is not None else "completed")


def _task_init(project: str, name: str, task_type: str) -> Any:
    from clearml import Task

    return Task.init(
        project_name=project,
        task_name=name,
        task_type=task_type,
        reuse_last_task_id=False,
        # Framework capture off on purpose: see the module docstring.
        auto_connect_frameworks=False,
        auto_connect_arg_parser=False,
        auto_resource_monitoring=False,
    )


def _task_init_with_deadline(project: str, name: str, task_type: str, timeout_s: float) -> Any:
    """`Task.init` against a server, raising DeadlineExceeded after `timeout_s`.

    clearml 2.1.12 retries connection errors and 5xx answers forever inside API calls, so a server
    that answers the liveness probe but not the API would otherwise block here for good.
    """
    return call_with_deadline(lambda: _task_init(project, name, task_type), timeout_s, "Task.init")


def start(
    project: str,
    name: str,
    params: dict[str, Any] | None = None,
    *,
    store: Store | None = None,
    offline: bool | None = None,
    task_type: str = "training",
    probe_timeout_s: float = 3.0,
    init_timeout_s: float = 60.0,
) -> Experiment:
    """Start a tracked experiment; never raises because of the tracker.

    project: ClearML project ("walkout/detection"); name: run name; params: JSON-able config dict.
    offline: None = online iff a ClearML server is configured and answers, True = force offline.
    Modes: "online" (ClearML server), "offline" (ClearML offline session in the store), "local"
    (ClearML failed entirely: store record only, id "local-<hex>").
    """
    store = store or Store.open()
    environ = os.environ
    params = _params_from_env(dict(params or {}), environ)
    server = None
    try:
        server = clearml_config.configure(store)
    except Exception as error:
        LOGGER.warning("could not configure ClearML (%s: %s); running offline", type(error).__name__, error)
    if offline:
        server = None
    if server is not None:
        problem = clearml_config.probe_server(server, timeout_s=probe_timeout_s)
        if problem is not None:
            LOGGER.warning(
                "ClearML server %s is unreachable (%s); this experiment runs offline in %s. "
                "Upload it later with `walkout-ci experiment push ID`.",
                server.api_host,
                problem,
                store.root,
            )
            server = None
    task = None
    mode = "local"
    try:
        from clearml import Task

        Task.set_offline(server is None)
        if server is None:
            task = _task_init(project, name, task_type)
        else:
            task = _task_init_with_deadline(project, name, task_type, init_timeout_s)
        mode = "online" if server is not None else "offline"
    except Exception as error:
        if server is not None:
            LOGGER.warning(
                "ClearML Task.init against %s failed (%s: %s); falling back to offline",
                server.api_host,
                type(error).__name__,
                error,
            )
            server = None
            try:
                from clearml import Task

                Task.set_offline(True)
                task = _task_init(project, name, task_type)
                mode = "offline"
            except Exception as offline_error:
                error = offline_error
        if task is None:
            LOGGER.warning(
                "ClearML is unavailable (%s: %s); recording the experiment in the store only",
                type(error).__name__,
                error,
            )
    experiment_id = str(task.id) if task is not None else f"local-{uuid.uuid4().hex}"
    exp = Experiment(
        experiment_id=experiment_id,
        project=project,
        name=name,
        mode=mode,
        params=params,
        store=store,
        task=task,
        server=server,
    )
    if task is not None:
        _agent_setup(exp, task)
    if task is not None and params:
        # Under clearml-agent, connect() returns the server's (cloned, overridden) values.
        connected = exp._safe("connect", lambda: task.connect(params, name="General"))
        if isinstance(connected, dict):
            exp.params = dict(connected)
            exp.record["params"] = exp.params
            exp._write_record()
    return exp


def _agent_setup(exp: Experiment, task: Any) -> None:
    """Locally: make the task agent-runnable. Under clearml-agent: record the task it was cloned from."""
    from clearml import Task

    if Task.running_locally():
        from walkout_ci import agent_task

        exp._safe("agent_task", lambda: agent_task.make_runnable(task, sys.argv), transfer=True)
        return
    parent = exp._safe("parent", lambda: getattr(task.data, "parent", None))
    if parent and not exp.record.get("cloned_from"):
        exp.record["cloned_from"] = str(parent)
        exp._write_record()


def load_record(experiment_id: str, store: Store | None = None) -> dict[str, Any]:
    """The store record of an experiment; ExperimentError naming the id when it is not there."""
    store = store or Store.open()
    path = store.record_path(experiment_id)
    if not path.is_file():
        raise ExperimentError(
            f"experiment {experiment_id!r} is not in the local store {store.experiments_dir}; "
            "check the id, or import its export"
        )
    try:
        return read_json(path)
    except (OSError, ValueError) as error:
        raise ExperimentError(f"experiment record {path} is unreadable: {error}") from error


def training_content_hashes(experiment_dir: str | Path) -> set[str]:
    """Content hashes of the training data recorded in an experiment folder (store or export)."""
    path = Path(experiment_dir) / "training_data.json"
    if not path.is_file():
        return set()
    return set(read_json(path).get("content_hashes", []))
