"""Executor `local`: run a commit's prediction stage in a clean git worktree, sandboxed, on this machine.

Steps (each failure is an EvaluationError, i.e. the gate's ERROR, never a pass):
1. `git worktree add --detach` the commit into a temporary folder (its submodules checked out too), so
   uncommitted edits of the developer's checkout never leak into the evaluation.
2. Copy the model file and the prepared inputs into the sandbox's read-only area: the untrusted code
   never learns where the store, the cache or the original data live.
3. Run gate.yaml's `evaluate.predict` (the target branch's command, the commit's code first on
   PYTHONPATH) inside walkout_ci.sandbox: allow-listed environment, no network, everything read-only
   but its output folder and a private temp folder, cache and WALKOUT_HOME hidden, a time limit.
   Without the sandbox (no unshare here) it runs with the allow-listed environment only, which the
   run's notes say; on sealed (blind) data that is refused instead.
4. Remove the worktree and the scratch folder whatever happened.
"""

from __future__ import annotations

import os
import shutil
import stat
import tempfile
import time
from pathlib import Path

from walkout_ci import gitrepo, sandbox
from walkout_ci.errors import EvaluationError
from walkout_ci.executors import PredictionRequest, PredictionRun
from walkout_ci.process import fill_command, machine_paths, run_logged, shown_command

LOG_FILENAME = "predict.log"
# A sweep removes scratch folders of runs killed before their `finally` (SIGKILL, power loss).
SCRATCH_PREFIX = "walkout-ci-predict-"


def run_local_prediction(request: PredictionRequest) -> PredictionRun:
    """Run one prediction as described in the module docstring; returns where the predictions are."""
    isolation = sandbox.probe()
    if not isolation.available and request.require_isolation:
        raise EvaluationError(
            "refusing to run the model code of a change on the sealed blind set without the sandbox: "
            f"{isolation.reason}"
        )
    sweep_stale_scratch()
    scratch = Path(tempfile.mkdtemp(prefix=SCRATCH_PREFIX))
    _write_owner_pid(scratch)
    # Readable by everyone: the sandbox reads the worktree, the model and the inputs (all read-only).
    scratch.chmod(0o755)
    worktree = scratch / "worktree"
    started = time.monotonic()
    try:
        gitrepo.add_worktree(request.repo_root, request.commit, worktree)
        component_root = worktree / request.component_dir
        workdir = component_root / request.workdir
        if not workdir.is_dir():
            raise EvaluationError(
                f"{request.component_dir or '.'}/{request.workdir} does not exist at commit "
                f"{request.commit[:12]}: the prediction has nowhere to run"
            )
        if request.model_in_worktree is None:
            # The model to predict with is {model}, nothing else: bundled exports of other models
            # (the baseline's, say) are not the model code's business.
            shutil.rmtree(component_root / "experiments", ignore_errors=True)
        model = _model_for_sandbox(request, worktree, scratch)
        inputs = scratch / "inputs"
        shutil.copytree(request.inputs_dir, inputs, symlinks=False)
        _read_only(inputs)
        output = scratch / "predictions"
        private = scratch / "private"  # HOME and TMPDIR of the untrusted code
        for folder in (output, private):
            folder.mkdir()
        command = fill_command(request.command, {"model": model, "inputs": inputs, "predictions": output})
        source = component_root / "src"
        environment = sandbox.clean_environment(
            {
                "HOME": os.fspath(private),
                "TMPDIR": os.fspath(private),
                "WALKOUT_HOME": os.fspath(private / "walkout-home"),
                "WALKOUT_EVAL_COMMIT": request.commit,
                "PYTHONPATH": os.fspath(source) if source.is_dir() else "",
                "MPLCONFIGDIR": os.fspath(private),
            }
        )
        notes = []
        if isolation.available:
            wrapped = sandbox.sandboxed(
                command, writable=[output, private], hidden=request.hidden, isolation=isolation
            )
        else:
            wrapped = command
            notes.append(
                f"the {request.label}'s prediction ran without the sandbox ({isolation.reason}): "
                "allow-listed environment only, network and file system not isolated"
            )
        run_logged(
            wrapped,
            cwd=workdir,
            env=environment,
            timeout_s=request.timeout_s,
            log_path=scratch / LOG_FILENAME,
            what=f"the {request.label}'s prediction (model code of {request.commit[:12]})",
            shown=shown_command(request.command),
            hide=machine_paths(scratch, "<sandbox>"),
        )
        request.predictions_dir.mkdir(parents=True, exist_ok=True)
        for entry in output.iterdir():
            os.replace(entry, request.predictions_dir / entry.name)
        shutil.copyfile(scratch / LOG_FILENAME, request.predictions_dir / LOG_FILENAME)
        return PredictionRun(
            predictions_dir=request.predictions_dir,
            commit=request.commit,
            duration_s=time.monotonic() - started,
            executor="local",
            notes=notes,
        )
    finally:
        gitrepo.remove_worktree(request.repo_root, worktree)
        _make_writable(scratch)
        shutil.rmtree(scratch, ignore_errors=True)


def _model_for_sandbox(request: PredictionRequest, worktree: Path, scratch: Path) -> Path:
    """The {model} file: a copy of the verified weights, or the lock file inside the worktree (with the
    verified exports of the models it pins placed where it resolves them: no store in the sandbox)."""
    for folder, export in request.exports:
        destination = worktree / folder / "experiments" / Path(export).name
        if not destination.exists():
            shutil.copytree(export, destination, symlinks=False)
    if request.model_in_worktree is not None:
        model = worktree / request.model_in_worktree
        if request.model_path is not None:
            shutil.copyfile(request.model_path, model)
        if not model.is_file():
            raise EvaluationError(
                f"{request.model_in_worktree} does not exist at commit {request.commit[:12]}: no model to "
                "evaluate"
            )
        return model
    if request.model_path is None or not Path(request.model_path).is_file():
        raise EvaluationError(f"the model file {request.model_ref!r} to predict with does not exist")
    folder = scratch / "model"
    folder.mkdir()
    copy = folder / Path(request.model_path).name
    shutil.copyfile(request.model_path, copy)
    _read_only(folder)
    return copy


def _read_only(folder: Path) -> None:
    """World-readable, nobody-writable (for a sandbox that is not root, on top of the read-only mount)."""
    for path in [folder, *folder.rglob("*")]:
        mode = 0o555 if path.is_dir() else 0o444
        path.chmod(mode)


def _write_owner_pid(scratch: Path) -> None:
    (scratch / "owner.pid").write_text(str(os.getpid()))


def sweep_stale_scratch(temp_root: Path | None = None) -> list[Path]:
    """Remove scratch folders of earlier runs whose process is gone; returns what was removed."""
    removed = []
    for folder in Path(temp_root or tempfile.gettempdir()).glob(SCRATCH_PREFIX + "*"):
        try:
            pid = int((folder / "owner.pid").read_text())
        except (OSError, ValueError):
            continue  # not ours, or still being created
        if _alive(pid):
            continue
        _make_writable(folder)
        shutil.rmtree(folder, ignore_errors=True)
        removed.append(folder)
    return removed


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _make_writable(folder: Path) -> None:
    for path in [folder, *folder.rglob("*")]:
        if path.is_dir() and not path.is_symlink():
            path.chmod(path.stat().st_mode | stat.S_IWUSR | stat.S_IXUSR)
