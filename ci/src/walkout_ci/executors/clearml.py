"""Executor `clearml`: run the PREDICT stage of an evaluation as a ClearML task for clearml-agent.

Only the untrusted stage runs remotely (walkout_ci.executors: prepare and score are trusted and run
on the gate's machine). The agent never gets the blind key, the dataset or its ground truth.

1. Stage the inputs (what the trusted prepare stage wrote, no ground truth) where the agent can read
   them: with `inputs_root` (env WALKOUT_CLEARML_INPUTS_ROOT, storage the agents mount) they are
   copied to `<inputs_root>/<uuid>/` and removed after the task; without it the agent is assumed to
   share this file system and reads `request.inputs_dir` itself.
2. Create the task: `Task.create` for repository + commit + entry point `python -m
   walkout_ci.remote_eval` (or clone a template task, `template_task_id`, e.g. one with a docker image
   set up), the prediction described in its "General" parameters (see walkout_ci.remote_eval).
3. Enqueue it on `queue`; clearml-agent checks the commit out and runs it.
4. Wait, polling its status, at most `wait_timeout_s` (ClearML's own `wait_for_status` has no
   timeout); on timeout the task is stopped and the result is an EvaluationError (the gate's ERROR).
5. Download the artifact "predictions" (a zipped folder) into `request.predictions_dir`: regular
   files only (walkout_ci.evaluation.copy_predictions refuses symlinks and floods).

`launch_prediction` (1-3) and `finish_prediction` (4-5) are separate so that a caller can run N tasks
at once (QC shards); `run_clearml_prediction` is both, for one request.

The model must be resolvable on the agent: an experiment id (server or bundled export) or a
repository-relative model_ref.yaml at the commit (`remote_model`, default: derived from the
request), or for gate.yaml `model.kind: file` the repository-relative file itself. The agent checks
its sha256 against `request.weights_sha256` (fail closed).
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from walkout_ci import clearml_config
from walkout_ci.deadline import DeadlineExceeded, call_with_deadline
from walkout_ci.errors import EvaluationError
from walkout_ci.executors import PredictionRequest, PredictionRun
from walkout_ci.remote_eval import PREDICTIONS_ARTIFACT
from walkout_ci.store import Store

TERMINAL_STATUSES = ("completed", "failed", "stopped", "published", "closed")
# Longest a single ClearML API call may take before the server counts as gone (clearml itself would
# retry a connection error forever).
API_GRACE_S = 60.0
REMOTE_MODULE = "walkout_ci.remote_eval"
INPUTS_ROOT_ENV_VAR = "WALKOUT_CLEARML_INPUTS_ROOT"
_EXPERIMENT_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$")


@dataclass(frozen=True)
class ClearMLExecutorOptions:
    """How to launch on ClearML.

    queue: the clearml-agent queue; repo_url: the repository the agent clones (default: the `origin`
    remote of request.repo_root); template_task_id: clone this task instead of `Task.create`;
    inputs_root: shared storage for the prepared inputs (None: the agent reads request.inputs_dir);
    remote_model: the model reference the agent resolves (default: derived from the request);
    wait_timeout_s: longest wait for queueing + prediction (default: timeout_s + 600);
    poll_s: status polling interval; api_timeout_s: longest a single ClearML call may block (the
    server counts as gone after it).
    """

    queue: str = "default"
    repo_url: str | None = None
    template_task_id: str | None = None
    inputs_root: Path | None = None
    remote_model: str | None = None
    wait_timeout_s: float | None = None
    poll_s: float = 5.0
    api_timeout_s: float = API_GRACE_S

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None) -> ClearMLExecutorOptions:
        """Options from `WALKOUT_CLEARML_*` variables (what `walkout-ci gate --executor clearml` uses):

        QUEUE, REPO_URL, TEMPLATE_TASK, INPUTS_ROOT, REMOTE_MODEL, WAIT_TIMEOUT_S, POLL_S, API_TIMEOUT_S.
        """
        env = os.environ if environ is None else environ

        def number(name: str, default: float | None) -> float | None:
            raw = env.get(f"WALKOUT_CLEARML_{name}")
            if not raw:
                return default
            try:
                return float(raw)
            except ValueError:
                raise EvaluationError(f"WALKOUT_CLEARML_{name}={raw!r} is not a number of seconds") from None

        inputs_root = env.get(INPUTS_ROOT_ENV_VAR)
        return cls(
            queue=env.get("WALKOUT_CLEARML_QUEUE") or "default",
            repo_url=env.get("WALKOUT_CLEARML_REPO_URL") or None,
            template_task_id=env.get("WALKOUT_CLEARML_TEMPLATE_TASK") or None,
            inputs_root=Path(inputs_root) if inputs_root else None,
            remote_model=env.get("WALKOUT_CLEARML_REMOTE_MODEL") or None,
            wait_timeout_s=number("WAIT_TIMEOUT_S", None),
            poll_s=number("POLL_S", 5.0) or 5.0,
            api_timeout_s=number("API_TIMEOUT_S", API_GRACE_S) or API_GRACE_S,
        )


def remote_model(request: PredictionRequest, options: ClearMLExecutorOptions) -> tuple[str, str]:
    """(model_kind, model) the agent resolves: see walkout_ci.remote_eval.

    "file" for gate.yaml model.kind file (the repository-relative file); else `options.remote_model`,
    a model_ref.yaml inside the repository (made repository-relative), an experiment id named by the
    ref (a gate ref "path@commit (ID)" or a bare id), or the id of the bundled export / store record
    the verified weights came from. EvaluationError when none applies.
    """
    if request.model_in_worktree is not None:
        return "file", request.model_in_worktree
    if options.remote_model:
        return "pin", options.remote_model
    ref = request.model_ref
    path = Path(ref).expanduser()
    if path.is_file():
        with contextlib.suppress(ValueError):
            return "pin", path.resolve().relative_to(Path(request.repo_root).resolve()).as_posix()
    named = re.search(r"\(([^()\s]+)\)\s*$", ref)
    if named and _EXPERIMENT_ID.match(named.group(1)):
        return "pin", named.group(1)
    if not path.exists() and _EXPERIMENT_ID.match(ref) and not ref.endswith((".yaml", ".yml", ".pt")):
        return "pin", ref
    if request.model_path is not None:
        weights = Path(request.model_path)
        # <store or export>/<id>/artifacts/<name>/<file>: the experiment the weights belong to.
        if weights.parent.parent.name == "artifacts" and (weights.parents[2] / "experiment.json").is_file():
            return "pin", weights.parents[2].name
    raise EvaluationError(
        f"the clearml executor cannot tell the agent which model {ref!r} is: pass an experiment id or a "
        "model_ref.yaml inside the repository, or set WALKOUT_CLEARML_REMOTE_MODEL"
    )


def task_parameters(
    request: PredictionRequest, options: ClearMLExecutorOptions, inputs: str | os.PathLike
) -> dict[str, Any]:
    """The remote task's "General" parameters (walkout_ci.remote_eval reads them)."""
    kind, model = remote_model(request, options)
    return {
        "component": request.component,
        "component_dir": request.component_dir,
        "command": json.dumps(list(request.command)),
        "workdir": request.workdir,
        "timeout_s": float(request.timeout_s),
        "model_kind": kind,
        "model": model,
        "weights_sha256": request.weights_sha256,
        "inputs": os.fspath(inputs),
        "label": request.label,
        "require_isolation": bool(request.require_isolation),
    }


def _origin_url(repo_root: Path) -> str:
    from walkout_ci import gitrepo

    url = gitrepo.git(repo_root, "remote", "get-url", "origin", check=False)
    # Without a remote the agent must share the filesystem; a file:// URL (not a bare path, which
    # Task.create would treat as a local folder to inspect) is something git can clone from.
    return url or repo_root.absolute().as_uri()


def create_task(
    request: PredictionRequest, options: ClearMLExecutorOptions, inputs: str | os.PathLike
) -> Any:
    """Create (or clone) the remote prediction task with its parameters; returns the clearml Task."""
    from clearml import Task

    name = f"predict {request.label} {request.component} {request.commit[:10]}"
    if options.template_task_id:
        task = Task.clone(source_task=options.template_task_id, name=name)
    else:
        task = Task.create(
            project_name=f"walkout/{request.component}",
            task_name=name,
            task_type="testing",
            repo=options.repo_url or _origin_url(request.repo_root),
            commit=request.commit,
            module=REMOTE_MODULE,
            working_directory=".",
            add_task_init_call=False,
            detect_repository=False,
        )
    parameters = task_parameters(request, options, inputs)
    task.set_parameters({f"General/{key}": value for key, value in parameters.items()})
    return task


def poll_status(task: Any, api_timeout_s: float) -> str | None:
    """One status poll, bounded by `api_timeout_s`; None when ClearML could not tell (it returns None
    for a server that refuses connections, and would retry some failures forever)."""
    try:
        status = call_with_deadline(task.get_status, api_timeout_s, "ClearML get_status")
    except DeadlineExceeded:
        return None
    # clearml's get_status() gives str(None) == "None" when the server cannot be reached.
    text = str(status) if status is not None else ""
    return None if text in ("", "None", "unknown") else text


def wait_for_task(task: Any, *, timeout_s: float, poll_s: float, api_timeout_s: float = API_GRACE_S) -> str:
    """Poll until the task reaches a terminal status; EvaluationError (after stopping it) on timeout,
    or when the server gives no status for longer than `api_timeout_s`."""
    deadline = time.monotonic() + timeout_s
    status: str | None = None
    unknown_since: float | None = None
    while True:
        polled = poll_status(task, api_timeout_s)
        now = time.monotonic()
        if polled is None:
            unknown_since = unknown_since if unknown_since is not None else now
            if now - unknown_since > api_timeout_s:
                raise EvaluationError(
                    f"the ClearML server stopped answering while waiting for task {task.id} (no status for "
                    f"{now - unknown_since:.0f} s, last known {status!r}): the evaluation is an ERROR"
                )
        else:
            status, unknown_since = polled, None
            if status in TERMINAL_STATUSES:
                return status
        if now >= deadline:
            try:
                call_with_deadline(
                    lambda: task.mark_stopped(force=True, status_message="walkout-ci: evaluation timed out"),
                    api_timeout_s,
                    "ClearML mark_stopped",
                )
            except Exception as error:
                # The timeout is the error to report; failing to stop is secondary but worth saying.
                raise EvaluationError(
                    f"ClearML task {task.id} did not finish within {timeout_s:.0f} s (status {status!r}) "
                    f"and could not be stopped: {error}"
                ) from error
            raise EvaluationError(
                f"ClearML task {task.id} did not finish within {timeout_s:.0f} s (last status {status!r}); "
                "is a clearml-agent serving the queue? The task was stopped."
            )
        time.sleep(poll_s)


def fetch_predictions(task: Any, destination: Path) -> Path:
    """Download the task's "predictions" artifact (a zipped folder) into `destination` (must not exist):
    regular files only, size-capped (walkout_ci.evaluation.copy_predictions)."""
    from walkout_ci.evaluation import copy_predictions

    task.reload()
    artifacts = task.artifacts
    if PREDICTIONS_ARTIFACT not in artifacts:
        raise EvaluationError(
            f"ClearML task {task.id} completed without a {PREDICTIONS_ARTIFACT!r} artifact "
            f"(it has: {', '.join(sorted(artifacts)) or 'none'})"
        )
    try:
        local = artifacts[PREDICTIONS_ARTIFACT].get_local_copy(extract_archive=True, raise_on_error=True)
    except Exception as error:
        raise EvaluationError(
            f"ClearML task {task.id}: cannot download the {PREDICTIONS_ARTIFACT!r} artifact: {error}"
        ) from error
    if not local or not Path(local).is_dir():
        raise EvaluationError(
            f"ClearML task {task.id}: the {PREDICTIONS_ARTIFACT!r} artifact is not a folder"
        )
    copy_predictions(Path(local), destination)
    return destination


@dataclass
class LaunchedPrediction:
    """A prediction task on its way: the clearml Task, when it started, and the staged inputs copy."""

    request: PredictionRequest
    options: ClearMLExecutorOptions
    task: Any
    started: float
    staged_inputs: Path | None = None
    notes: list[str] = field(default_factory=list)

    def cleanup(self) -> None:
        """Remove the staged inputs copy (idempotent)."""
        if self.staged_inputs is not None:
            shutil.rmtree(self.staged_inputs, ignore_errors=True)
            self.staged_inputs = None


def stop_prediction(launched: LaunchedPrediction, message: str) -> str | None:
    """Stop a launched task that is still queued or running (a sibling shard failed, the caller was
    interrupted) and remove its staged inputs; returns why stopping failed, or None.

    Best effort by design: the caller is already on its way to an ERROR, which a task that could not
    be stopped does not change (the message says so).
    """
    options = launched.options
    try:
        status = poll_status(launched.task, options.api_timeout_s)
        if status not in TERMINAL_STATUSES:
            call_with_deadline(
                lambda: launched.task.mark_stopped(force=True, status_message=message),
                options.api_timeout_s,
                "ClearML mark_stopped",
            )
        return None
    except Exception as error:
        return f"ClearML task {launched.task.id} could not be stopped: {error}"
    finally:
        launched.cleanup()


def _connect(options: ClearMLExecutorOptions) -> str:
    """Configure ClearML for this process and check the server answers; returns its API host."""
    server = clearml_config.configure(Store.open())
    if server is None:
        raise EvaluationError(
            "the clearml executor needs a ClearML server: set CLEARML_API_HOST and credentials "
            "(or ~/clearml.conf), or use the local executor"
        )
    problem = clearml_config.probe_server(server)
    if problem is not None:
        raise EvaluationError(f"ClearML server {server.api_host} is unreachable: {problem}")
    return server.api_host


def stage_inputs(request: PredictionRequest, options: ClearMLExecutorOptions) -> tuple[Path, Path | None]:
    """(path the agent reads the inputs from, staged copy to remove afterwards or None)."""
    if options.inputs_root is None:
        return Path(request.inputs_dir).absolute(), None
    root = Path(options.inputs_root)
    if not root.is_dir():
        raise EvaluationError(
            f"{INPUTS_ROOT_ENV_VAR}={os.fspath(root)!r} is not a folder: it must be storage the agents mount"
        )
    staged = root / uuid.uuid4().hex
    try:
        shutil.copytree(request.inputs_dir, staged, symlinks=False)
    except OSError as error:
        shutil.rmtree(staged, ignore_errors=True)
        raise EvaluationError(f"cannot copy the prepared inputs to {staged}: {error}") from error
    return staged, staged


def launch_prediction(
    request: PredictionRequest, options: ClearMLExecutorOptions | None = None
) -> LaunchedPrediction:
    """Stage the inputs, create and enqueue one prediction task (steps 1-3); does not wait."""
    options = options or ClearMLExecutorOptions.from_env()
    api_host = _connect(options)
    inputs, staged = stage_inputs(request, options)
    started = time.monotonic()
    try:
        from clearml import Task

        Task.set_offline(False)

        def launch() -> Any:
            created = create_task(request, options, inputs)
            Task.enqueue(created, queue_name=options.queue)
            return created

        task = call_with_deadline(launch, options.api_timeout_s * 2, "ClearML Task.create + enqueue")
    except BaseException as error:
        if staged is not None:
            shutil.rmtree(staged, ignore_errors=True)
        if isinstance(error, EvaluationError) or not isinstance(error, Exception):
            raise
        raise EvaluationError(
            f"could not create/enqueue the ClearML prediction task on {api_host} "
            f"(queue {options.queue!r}): {type(error).__name__}: {error}"
        ) from error
    return LaunchedPrediction(
        request=request, options=options, task=task, started=started, staged_inputs=staged
    )


def finish_prediction(launched: LaunchedPrediction) -> PredictionRun:
    """Wait for a launched task and fetch its predictions (steps 4-5); cleans the staged inputs up."""
    request, options, task = launched.request, launched.options, launched.task
    try:
        timeout_s = options.wait_timeout_s or float(request.timeout_s) + 600.0
        status = wait_for_task(
            task, timeout_s=timeout_s, poll_s=options.poll_s, api_timeout_s=options.api_timeout_s
        )
        link = _web_page(task, options)
        if status != "completed":
            # The status is known to be bad; a missing reason only makes the message shorter.
            with contextlib.suppress(Exception):
                call_with_deadline(task.reload, options.api_timeout_s, "ClearML reload")
            reason = getattr(task.data, "status_reason", None) or getattr(task.data, "status_message", None)
            raise EvaluationError(
                f"ClearML prediction task {task.id} of the {request.label} ended with status {status!r}"
                f"{f' ({reason})' if reason else ''}; see {link}"
            )
        try:
            call_with_deadline(
                lambda: fetch_predictions(task, Path(request.predictions_dir)),
                timeout_s,
                "predictions download",
            )
        except DeadlineExceeded as error:
            raise EvaluationError(f"ClearML task {task.id}: {error}") from error
    finally:
        launched.cleanup()
    return PredictionRun(
        predictions_dir=Path(request.predictions_dir),
        commit=request.commit,
        duration_s=time.monotonic() - launched.started,
        executor="clearml",
        task_id=str(task.id),
        task_link=link,
        notes=[*launched.notes, *_agent_notes(Path(request.predictions_dir))],
    )


def _web_page(task: Any, options: ClearMLExecutorOptions) -> str | None:
    try:
        return call_with_deadline(task.get_output_log_web_page, options.api_timeout_s, "ClearML web page")
    except Exception:
        # A missing link only shortens messages; the verdict does not depend on it.
        return None


def _agent_notes(predictions_dir: Path) -> list[str]:
    """The isolation notes the agent wrote at the top of predict.log ("# ..." lines)."""
    log = predictions_dir / "predict.log"
    if not log.is_file():
        return []
    notes = []
    for line in log.read_text(errors="replace").splitlines():
        if not line.startswith("# "):
            break
        notes.append(line[2:])
    return notes


def run_clearml_prediction(
    request: PredictionRequest, options: ClearMLExecutorOptions | None = None
) -> PredictionRun:
    """Launch one prediction task on ClearML, wait for it and fetch its predictions; fail closed."""
    return finish_prediction(launch_prediction(request, options))
