"""Executor `clearml`: run a component evaluation as a ClearML task served by clearml-agent.

1. Create the task: `Task.create` for repository + commit + entry point `python -m
   walkout_ci.remote_eval` (or clone a template task, `template_task_id`, e.g. one with a docker
   image set up), with the evaluation described in its parameters (see walkout_ci.remote_eval).
2. Enqueue it on `queue`; clearml-agent checks the commit out and runs it.
3. Wait, polling its status, at most `wait_timeout_s` (ClearML's own `wait_for_status` has no
   timeout); on timeout the task is stopped and the result is an EvaluationError (the gate's ERROR).
4. Fetch the artifact "report", validate it (report contract + same component, weights and dataset
   as requested) and move it to `request.report_dir`.

The model and the data must be reachable from the agent: the model as an experiment id or a
model_ref.yaml path inside the repository (`remote_model`, default: `request.model_ref`), the data as
a path on storage the agent mounts (`remote_data`, default: `request.data_dir`) or a sealed archive.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from walkout_ci import clearml_config
from walkout_ci.deadline import DeadlineExceeded, call_with_deadline
from walkout_ci.errors import EvaluationError
from walkout_ci.executors import EvaluationRequest, EvaluationRun
from walkout_ci.remote_eval import REPORT_ARTIFACT
from walkout_ci.store import Store

TERMINAL_STATUSES = ("completed", "failed", "stopped", "published", "closed")
# Longest a single ClearML API call may take before the server counts as gone (clearml itself would
# retry a connection error forever).
API_GRACE_S = 60.0
REMOTE_MODULE = "walkout_ci.remote_eval"


@dataclass(frozen=True)
class ClearMLExecutorOptions:
    """How to launch on ClearML.

    queue: the clearml-agent queue; repo_url: the repository the agent clones (default: the `origin`
    remote of request.repo_root); template_task_id: clone this task instead of `Task.create`;
    wait_timeout_s: longest wait for queueing + evaluation (default: evaluate.timeout_s + 600);
    poll_s: status polling interval; api_timeout_s: longest a single ClearML call may block (the
    server counts as gone after it).
    """

    queue: str = "default"
    repo_url: str | None = None
    template_task_id: str | None = None
    remote_model: str | None = None
    remote_data: str | None = None
    wait_timeout_s: float | None = None
    poll_s: float = 5.0
    api_timeout_s: float = API_GRACE_S

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None) -> ClearMLExecutorOptions:
        """Options from `WALKOUT_CLEARML_*` variables (what `walkout-ci gate --executor clearml` uses):

        QUEUE, REPO_URL, TEMPLATE_TASK, REMOTE_MODEL, REMOTE_DATA, WAIT_TIMEOUT_S, POLL_S, API_TIMEOUT_S.
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

        return cls(
            queue=env.get("WALKOUT_CLEARML_QUEUE") or "default",
            repo_url=env.get("WALKOUT_CLEARML_REPO_URL") or None,
            template_task_id=env.get("WALKOUT_CLEARML_TEMPLATE_TASK") or None,
            remote_model=env.get("WALKOUT_CLEARML_REMOTE_MODEL") or None,
            remote_data=env.get("WALKOUT_CLEARML_REMOTE_DATA") or None,
            wait_timeout_s=number("WAIT_TIMEOUT_S", None),
            poll_s=number("POLL_S", 5.0) or 5.0,
            api_timeout_s=number("API_TIMEOUT_S", API_GRACE_S) or API_GRACE_S,
        )


def task_parameters(request: EvaluationRequest, options: ClearMLExecutorOptions) -> dict[str, Any]:
    """The remote task's "General" parameters (walkout_ci.remote_eval reads them)."""
    return {
        "component": request.component,
        "component_dir": request.component_dir,
        "command": json.dumps(list(request.evaluate.command)),
        "workdir": request.evaluate.workdir,
        "timeout_s": float(request.evaluate.timeout_s),
        "model": options.remote_model or request.model_ref,
        "weights_sha256": request.weights_sha256,
        "data": options.remote_data or os.fspath(request.data_dir),
        "dataset_hash": request.dataset_hash,
        "label": request.label,
    }


def _origin_url(repo_root: Path) -> str:
    from walkout_ci import gitrepo

    url = gitrepo.git(repo_root, "remote", "get-url", "origin", check=False)
    # Without a remote the agent must share the filesystem; a file:// URL (not a bare path, which
    # Task.create would treat as a local folder to inspect) is something git can clone from.
    return url or repo_root.absolute().as_uri()


def create_task(request: EvaluationRequest, options: ClearMLExecutorOptions) -> Any:
    """Create (or clone) the remote evaluation task with its parameters; returns the clearml Task."""
    from clearml import Task

    name = f"evaluate {request.label} {request.component} {request.commit[:10]}"
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
    parameters = task_parameters(request, options)
    task.set_parameters({f"General/{key}": value for key, value in parameters.items()})
    return task


def _status(task: Any, api_timeout_s: float) -> str | None:
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
        polled = _status(task, api_timeout_s)
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


def fetch_report_folder(task: Any, destination: Path) -> Path:
    """Download the task's "report" artifact (a zipped folder) into `destination`."""
    task.reload()
    artifacts = task.artifacts
    if REPORT_ARTIFACT not in artifacts:
        raise EvaluationError(
            f"ClearML task {task.id} completed without a {REPORT_ARTIFACT!r} artifact "
            f"(it has: {', '.join(sorted(artifacts)) or 'none'})"
        )
    try:
        local = artifacts[REPORT_ARTIFACT].get_local_copy(extract_archive=True, raise_on_error=True)
    except Exception as error:
        raise EvaluationError(
            f"ClearML task {task.id}: cannot download the {REPORT_ARTIFACT!r} artifact: {error}"
        ) from error
    if not local or not Path(local).is_dir():
        raise EvaluationError(f"ClearML task {task.id}: the {REPORT_ARTIFACT!r} artifact is not a folder")
    shutil.copytree(local, destination, dirs_exist_ok=True)
    return destination


def run_clearml_evaluation(
    request: EvaluationRequest, options: ClearMLExecutorOptions | None = None
) -> EvaluationRun:
    """Launch, wait for and fetch one evaluation on ClearML (module docstring); fail closed."""
    from walkout_ci.executors.local import _checked_report

    options = options or ClearMLExecutorOptions.from_env()
    report_dir = Path(request.report_dir)
    if report_dir.exists() and any(report_dir.iterdir()):
        raise EvaluationError(f"report folder {report_dir} is not empty; choose a new --report-dir")
    server = clearml_config.configure(Store.open())
    if server is None:
        raise EvaluationError(
            "the clearml executor needs a ClearML server: set CLEARML_API_HOST and credentials "
            "(or ~/clearml.conf), or use the local executor"
        )
    problem = clearml_config.probe_server(server)
    if problem is not None:
        raise EvaluationError(f"ClearML server {server.api_host} is unreachable: {problem}")
    started = time.monotonic()
    try:
        from clearml import Task

        Task.set_offline(False)

        def launch() -> Any:
            created = create_task(request, options)
            Task.enqueue(created, queue_name=options.queue)
            return created

        task = call_with_deadline(launch, options.api_timeout_s * 2, "ClearML Task.create + enqueue")
    except EvaluationError:
        raise
    except Exception as error:
        raise EvaluationError(
            f"could not create/enqueue the ClearML evaluation task on {server.api_host} "
            f"(queue {options.queue!r}): {type(error).__name__}: {error}"
        ) from error
    timeout_s = options.wait_timeout_s or float(request.evaluate.timeout_s) + 600.0
    status = wait_for_task(
        task, timeout_s=timeout_s, poll_s=options.poll_s, api_timeout_s=options.api_timeout_s
    )
    if status != "completed":
        # The status is known to be bad; a missing reason only makes the message shorter.
        with contextlib.suppress(Exception):
            call_with_deadline(task.reload, options.api_timeout_s, "ClearML reload")
        reason = getattr(task.data, "status_reason", None) or getattr(task.data, "status_message", None)
        raise EvaluationError(
            f"ClearML evaluation task {task.id} ended with status {status!r}"
            f"{f' ({reason})' if reason else ''}; see {task.get_output_log_web_page()}"
        )
    report_dir.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{report_dir.name}.", suffix=".tmp", dir=report_dir.parent))
    try:
        try:
            call_with_deadline(lambda: fetch_report_folder(task, staging), timeout_s, "report download")
        except DeadlineExceeded as error:
            raise EvaluationError(f"ClearML task {task.id}: {error}") from error
        report = _checked_report(request, staging)
        if report_dir.exists():
            report_dir.rmdir()
        os.replace(staging, report_dir)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return EvaluationRun(
        report_dir=report_dir,
        report=report,
        commit=request.commit,
        duration_s=time.monotonic() - started,
        experiment_id=task.id,
        experiment_link=task.get_output_log_web_page(),
        executor="clearml",
    )
