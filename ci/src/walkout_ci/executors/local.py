"""Executor `local`: run a component's evaluation for a commit in a clean git worktree, on this machine.

Steps (each failure is an EvaluationError or ReportError, i.e. the gate's ERROR, never a pass):
1. `git worktree add --detach` the requested commit into a temporary folder, so uncommitted edits of
   the developer's checkout never leak into the evaluation.
2. Start a test experiment (walkout_ci.experiment, ClearML online or offline) recording the commit,
   the model and the dataset.
3. Run the gate.yaml command in `<worktree>/<component>/<workdir>` with the placeholders filled in,
   `<worktree>/<component>/src` first on PYTHONPATH (the worktree's code, not the installed one),
   stdout+stderr to `evaluate.log`, in its own process group killed whole on timeout.
4. Read and validate the report the command wrote to a staging folder; check it is for this
   component, these weights (sha256) and this dataset (hash); then rename it to `report_dir`.
5. Log the report's metrics to the experiment, close it, remove the worktree.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from walkout_ci import gitrepo
from walkout_ci.errors import EvaluationError, ReportError
from walkout_ci.executors import EvaluationRequest, EvaluationRun
from walkout_ci.report import read_report

LOGGER = logging.getLogger("walkout_ci.executors.local")
LOG_FILENAME = "evaluate.log"
# Lines of the evaluation log quoted in an error message.
_LOG_TAIL_LINES = 25


def fill_command(command: tuple[str, ...], *, model: Path, data: Path, report_dir: Path) -> list[str]:
    """Replace {model} {data} {report_dir} {python} in every argument (absolute paths)."""
    values = {
        "model": os.fspath(model.absolute()),
        "data": os.fspath(data.absolute()),
        "report_dir": os.fspath(report_dir.absolute()),
        "python": sys.executable,
    }
    return [part.format(**values) for part in command]


def run_local_evaluation(request: EvaluationRequest) -> EvaluationRun:
    """Run one evaluation as described in the module docstring; returns the validated run."""
    report_dir = Path(request.report_dir)
    if report_dir.exists() and any(report_dir.iterdir()):
        raise EvaluationError(f"report folder {report_dir} is not empty; choose a new --report-dir")
    report_dir.parent.mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(prefix="walkout-ci-eval-"))
    staging = Path(tempfile.mkdtemp(prefix=f".{report_dir.name}.", suffix=".tmp", dir=report_dir.parent))
    # mkdtemp makes 0700; the report folder it becomes is for CI and teammates to read.
    staging.chmod(0o755)
    worktree = scratch / "worktree"
    experiment = _start_experiment(request) if request.track else None
    started = time.monotonic()
    try:
        gitrepo.add_worktree(request.repo_root, request.commit, worktree)
        component_root = worktree / request.component_dir
        workdir = component_root / request.evaluate.workdir
        if not workdir.is_dir():
            raise EvaluationError(
                f"{request.component_dir or '.'}/{request.evaluate.workdir} does not exist at commit "
                f"{request.commit[:12]}: the evaluation has nowhere to run"
            )
        model_path = request.model_path
        if request.model_in_worktree is not None:
            model_path = worktree / request.model_in_worktree
            if not model_path.is_file():
                raise EvaluationError(
                    f"{request.model_in_worktree} does not exist at commit {request.commit[:12]}: "
                    "no model to evaluate"
                )
        command = fill_command(
            request.evaluate.command, model=model_path, data=request.data_dir, report_dir=staging
        )
        environment = _environment(request, component_root, experiment)
        _run_command(command, workdir, environment, request.evaluate.timeout_s, staging / LOG_FILENAME)
        report = _checked_report(request, staging)
        if report_dir.exists():
            report_dir.rmdir()
        os.replace(staging, report_dir)
        duration = time.monotonic() - started
        if experiment is not None:
            experiment.log_metrics(report["metrics"])
            experiment.close(status="completed")
        return EvaluationRun(
            report_dir=report_dir,
            report=report,
            commit=request.commit,
            duration_s=duration,
            experiment_id=experiment.id if experiment is not None else None,
            experiment_link=experiment.location if experiment is not None else None,
            executor="local",
        )
    except BaseException:
        if experiment is not None:
            experiment.close(status="failed")
        raise
    finally:
        gitrepo.remove_worktree(request.repo_root, worktree)
        shutil.rmtree(scratch, ignore_errors=True)
        shutil.rmtree(staging, ignore_errors=True)


def _start_experiment(request: EvaluationRequest):
    # Imported here: ClearML is heavy and only the tracked path needs it.
    from walkout_ci import experiment

    params = {
        "label": request.label,
        "component": request.component,
        "commit": request.commit,
        "model_ref": request.model_ref,
        "weights_sha256": request.weights_sha256,
        "dataset_hash": request.dataset_hash,
        "command": list(request.evaluate.command),
    }
    return experiment.start(
        project=f"walkout/{request.component}",
        name=f"evaluate {request.label} {request.commit[:10]}",
        params=params,
        task_type="testing",
    )


def _environment(request: EvaluationRequest, component_root: Path, experiment) -> dict[str, str]:
    environment = dict(os.environ)
    source = component_root / "src"
    if source.is_dir():
        # The worktree's own code must win over the editable install of the developer's checkout.
        existing = environment.get("PYTHONPATH")
        environment["PYTHONPATH"] = os.pathsep.join([os.fspath(source), *([existing] if existing else [])])
    # Console scripts of the components live next to this interpreter (same venv), which is not on
    # PATH when walkout-ci is started as .venv/bin/walkout-ci without activating the venv.
    scripts = os.path.dirname(sys.executable)
    environment["PATH"] = os.pathsep.join(
        [scripts, *([environment["PATH"]] if environment.get("PATH") else [])]
    )
    environment["WALKOUT_EVAL_COMMIT"] = request.commit
    if experiment is not None:
        environment["WALKOUT_EVAL_EXPERIMENT_ID"] = experiment.id
    environment.update(request.extra_env)
    return environment


def _run_command(
    command: list[str], workdir: Path, environment: dict, timeout_s: float, log_path: Path
) -> None:
    """Run the evaluation; EvaluationError on a crash, a non-zero exit or a timeout."""
    LOGGER.info("evaluating: %s (in %s)", " ".join(command), workdir)
    with open(log_path, "wb") as log:
        try:
            process = subprocess.Popen(
                command,
                cwd=workdir,
                env=environment,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        except OSError as error:
            raise EvaluationError(f"cannot start the evaluation command {command[0]!r}: {error}") from error
        try:
            returncode = process.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            _kill_group(process)
            raise EvaluationError(
                f"the evaluation timed out after {timeout_s:g} s (evaluate.timeout_s in gate.yaml) and was "
                f"killed: {' '.join(command)}\n{_tail(log_path)}"
            ) from None
        except BaseException:
            _kill_group(process)
            raise
    if returncode != 0:
        raise EvaluationError(
            f"the evaluation command exited with status {returncode}: {' '.join(command)}\n"
            f"last lines of its output:\n{_tail(log_path)}"
        )


def _kill_group(process: subprocess.Popen) -> None:
    # The command may have started children (workers); they share its new session's process group.
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, signal.SIGKILL)
    with contextlib.suppress(subprocess.TimeoutExpired):
        process.wait(timeout=10)


def _tail(log_path: Path) -> str:
    try:
        lines = log_path.read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError:
        return "(no output captured)"
    return "\n".join("  | " + line for line in lines[-_LOG_TAIL_LINES:]) or "  | (no output)"


def _checked_report(request: EvaluationRequest, report_dir: Path) -> dict:
    """The validated report, checked to describe exactly the evaluation that was asked for."""
    try:
        report = read_report(report_dir)
    except ReportError as error:
        raise ReportError(
            f"the evaluation exited 0 but its report is unusable: {error}\n{_tail(report_dir / LOG_FILENAME)}"
        ) from error
    problems = []
    if report["component"] != request.component:
        problems.append(f"component is {report['component']!r}, expected {request.component!r}")
    if request.check_weights_sha256 and report["model"]["weights_sha256"] != request.weights_sha256:
        problems.append(
            f"model.weights_sha256 is {report['model']['weights_sha256'][:12]}..., but the weights given "
            f"({request.model_path}) have {request.weights_sha256[:12]}..."
        )
    if report["dataset"]["hash"] != request.dataset_hash:
        problems.append(
            f"dataset.hash is {report['dataset']['hash'][:12]}..., but the data given ({request.data_dir}) "
            f"has {request.dataset_hash[:12]}... (the sha256 of its manifest.json)"
        )
    if problems:
        raise ReportError(
            "the evaluation report does not describe the requested evaluation: " + "; ".join(problems)
        )
    return report
