"""One evaluation ("test experiment"): trusted prepare, untrusted predict, trusted score.

    data --prepare (trusted)--> inputs --predict (executor, sandboxed)--> predictions
    predictions + data --score (trusted)--> report.json

The trusted stages run the *scorer's* code: a worktree of the target branch's commit (the merge-base
in the gate), never the evaluated commit's. The model code of the evaluated commit only predicts:
it sees the prepared inputs and the model file, writes predictions, and cannot read the ground truth,
because a sealed dataset is decrypted for prepare, deleted while prediction runs and decrypted again
for scoring. The scorer gets a trusted copy of the predictions (regular files only, size-capped), and
the report's provenance (weights sha256, model ref, experiment, commit) is filled in by us through
the score command's placeholders and checked afterwards.

Any failure is an EvaluationError or ReportError (the gate's ERROR); nothing half-written is left.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from walkout_ci import gitrepo, sandbox
from walkout_ci.blind import is_marked_blind
from walkout_ci.errors import EvaluationError, ReportError
from walkout_ci.executors import EvaluationRun, PredictionRequest, PredictionRun
from walkout_ci.gate_config import EvaluateConfig
from walkout_ci.process import fill_command, log_tail, machine_paths, run_logged, shown_command
from walkout_ci.report import read_report

Predictor = Callable[[PredictionRequest], PredictionRun]
# Predictions bigger than this are refused before the scorer reads them (a model's output for our
# splits is a few MB; a flood is an attack or a bug).
MAX_PREDICTIONS_BYTES = 512 * 1024 * 1024
PREPARE_LOG = "prepare.log"
SCORE_LOG = "score.log"


@dataclass(frozen=True)
class Scorer:
    """The trusted side: the commit whose prepare/score code and gate.yaml evaluate section are used."""

    commit: str
    evaluate: EvaluateConfig


@dataclass(frozen=True)
class Candidate:
    """What is evaluated: the model and the commit whose model code predicts.

    model_path: a verified local model file, or None with model_in_worktree (gate.yaml model.kind
    file: that repository-relative file inside the worktree of `commit`); with both, the file is
    put in the worktree at model_in_worktree (a candidate lock file given on the command line).
    weights_sha256: the model's identity (written into the report by us, checked after scoring).
    """

    label: str
    commit: str
    model_ref: str
    weights_sha256: str
    model_path: Path | None = None
    model_in_worktree: str | None = None
    experiment_id: str | None = None
    # Verified experiment exports a lock file's models resolve from: (repository-relative component
    # folder, export folder), placed at <folder>/experiments/<id> in the prediction's worktree.
    exports: tuple[tuple[str, Path], ...] = ()


@dataclass
class EvaluationContext:
    """Where and how: the repository, the component, the data, and the executor that predicts."""

    repo_root: Path
    component_dir: str
    component: str
    data: Path  # a dataset folder or a sealed archive (opened per trusted stage)
    dataset_hash: str
    predictor: Predictor
    track: bool = True
    hidden: tuple[Path, ...] = ()
    trees: WorktreePool | None = None
    opener: Callable[[Path], contextlib.AbstractContextManager] | None = None


class WorktreePool:
    """Clean worktrees of trusted commits, made once per run and removed by `close()`."""

    def __init__(self, repo_root: Path) -> None:
        self.repo_root = repo_root
        self.scratch: Path | None = None
        self.trees: dict[str, Path] = {}

    def get(self, commit: str) -> Path:
        if commit not in self.trees:
            if self.scratch is None:
                self.scratch = Path(tempfile.mkdtemp(prefix="walkout-ci-trees-"))
            destination = self.scratch / commit[:12]
            gitrepo.add_worktree(self.repo_root, commit, destination)
            self.trees[commit] = destination
        return self.trees[commit]

    def close(self) -> None:
        for tree in self.trees.values():
            gitrepo.remove_worktree(self.repo_root, tree)
        if self.scratch is not None:
            shutil.rmtree(self.scratch, ignore_errors=True)
        self.trees.clear()
        self.scratch = None


@contextlib.contextmanager
def worktree_pool(repo_root: Path) -> Iterator[WorktreePool]:
    pool = WorktreePool(repo_root)
    try:
        yield pool
    finally:
        pool.close()


def evaluate(
    context: EvaluationContext, scorer: Scorer, candidate: Candidate, report_dir: Path
) -> EvaluationRun:
    """Prepare, predict, score one candidate; the validated report ends up in `report_dir`."""
    report_dir = Path(report_dir)
    if report_dir.exists() and any(report_dir.iterdir()):
        raise EvaluationError(f"report folder {report_dir} is not empty; choose a new --report-dir")
    report_dir.parent.mkdir(parents=True, exist_ok=True)
    own_pool = context.trees is None
    trees = context.trees or WorktreePool(context.repo_root)
    opener = context.opener or _default_opener
    scratch = Path(tempfile.mkdtemp(prefix="walkout-ci-eval-"))
    staging = Path(tempfile.mkdtemp(prefix=f".{report_dir.name}.", suffix=".tmp", dir=report_dir.parent))
    staging.chmod(0o755)  # the report folder it becomes is for CI and teammates to read
    experiment = _start_experiment(context, scorer, candidate) if context.track else None
    started = time.monotonic()
    try:
        scorer_root = trees.get(scorer.commit) / context.component_dir
        workdir = scorer_root / scorer.evaluate.workdir
        if not workdir.is_dir():
            raise EvaluationError(
                f"{context.component_dir or '.'}/{scorer.evaluate.workdir} does not exist at commit "
                f"{scorer.commit[:12]}: the scorer has nowhere to run"
            )
        environment = _trusted_environment(scorer_root, scratch)
        hide = {**machine_paths(scratch, "<scratch>"), os.fspath(scorer_root): "<scorer>"}
        inputs = scratch / "inputs"
        inputs.mkdir()
        with opener(context.data) as (data_dir, sealed):
            # A decrypted copy of the blind set passed as a folder is as secret as the archive.
            blind_data = sealed or is_marked_blind(data_dir)
            run_logged(
                fill_command(scorer.evaluate.prepare, {"data": data_dir, "inputs": inputs}),
                cwd=workdir,
                env=environment,
                timeout_s=scorer.evaluate.timeout_s,
                log_path=scratch / PREPARE_LOG,
                what=f"preparing the inputs (code of {scorer.commit[:12]})",
                shown=shown_command(scorer.evaluate.prepare),
                hide=hide,
            )
        # The decrypted data is gone now: the untrusted stage runs with nothing to peek at.
        prediction = context.predictor(
            PredictionRequest(
                repo_root=context.repo_root,
                component_dir=context.component_dir,
                component=context.component,
                commit=candidate.commit,
                command=scorer.evaluate.predict,
                workdir=scorer.evaluate.workdir,
                timeout_s=scorer.evaluate.timeout_s,
                model_ref=candidate.model_ref,
                weights_sha256=candidate.weights_sha256,
                inputs_dir=inputs,
                predictions_dir=scratch / "untrusted",
                model_path=candidate.model_path,
                model_in_worktree=candidate.model_in_worktree,
                exports=candidate.exports,
                label=candidate.label,
                require_isolation=blind_data,
                hidden=context.hidden,
            )
        )
        predictions = scratch / "predictions"
        copy_predictions(prediction.predictions_dir, predictions)
        with opener(context.data) as (data_dir, _sealed):
            values = {
                "data": data_dir,
                "predictions": predictions,
                "report_dir": staging,
                "model_ref": candidate.model_ref,
                "weights_sha256": candidate.weights_sha256,
                "experiment_id": candidate.experiment_id,
                "commit": candidate.commit,
            }
            run_logged(
                fill_command(scorer.evaluate.score, values),
                cwd=workdir,
                env=environment,
                timeout_s=scorer.evaluate.timeout_s,
                log_path=scratch / SCORE_LOG,
                what=f"scoring the {candidate.label} (code of {scorer.commit[:12]})",
                shown=shown_command(scorer.evaluate.score),
                hide=hide,
            )
        report = checked_report(staging, context, candidate, scratch / SCORE_LOG)
        logs = staging / "logs"
        logs.mkdir(exist_ok=True)
        for name, source in (
            (PREPARE_LOG, scratch / PREPARE_LOG),
            ("predict.log", prediction.predictions_dir / "predict.log"),
            (SCORE_LOG, scratch / SCORE_LOG),
        ):
            if source.is_file():
                (logs / name).write_text(sandbox.redact(source.read_text(errors="replace")))
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
            commit=candidate.commit,
            duration_s=duration,
            experiment_id=experiment.id if experiment is not None else prediction.task_id,
            experiment_link=experiment.location if experiment is not None else prediction.task_link,
            executor=prediction.executor,
            notes=list(prediction.notes),
        )
    except BaseException:
        if experiment is not None:
            experiment.close(status="failed")
        raise
    finally:
        if own_pool:
            trees.close()
        shutil.rmtree(scratch, ignore_errors=True)
        shutil.rmtree(staging, ignore_errors=True)


def copy_predictions(source: Path, destination: Path, *, max_bytes: int = MAX_PREDICTIONS_BYTES) -> None:
    """Copy what the untrusted stage wrote: regular files and folders only, at most `max_bytes`.

    A symlink (to the ground truth, say) or a device is refused, not followed: EvaluationError.
    """
    total = 0
    destination.mkdir(parents=True)
    if not source.is_dir():
        raise EvaluationError("the prediction stage wrote no output folder")
    for path in sorted(source.rglob("*")):
        relative = path.relative_to(source)
        if path.is_symlink() or not (path.is_file() or path.is_dir()):
            raise EvaluationError(
                f"the prediction output {relative.as_posix()!r} is not a regular file (symlinks and special "
                "files are refused)"
            )
        if path.is_dir():
            (destination / relative).mkdir(parents=True, exist_ok=True)
            continue
        total += path.stat().st_size
        if total > max_bytes:
            raise EvaluationError(
                f"the prediction output is larger than {max_bytes // (1 << 20)} MiB; refused"
            )
        shutil.copyfile(path, destination / relative, follow_symlinks=False)


def checked_report(report_dir: Path, context: EvaluationContext, candidate: Candidate, log: Path) -> dict:
    """The validated report, checked to describe exactly the evaluation that was asked for."""
    try:
        report = read_report(report_dir)
    except ReportError as error:
        raise ReportError(
            f"the scorer exited 0 but its report is unusable: {error}\n{log_tail(log)}"
        ) from error
    problems = []
    if report["component"] != context.component:
        problems.append(f"component is {report['component']!r}, expected {context.component!r}")
    if report["model"]["weights_sha256"] != candidate.weights_sha256:
        problems.append(
            f"model.weights_sha256 is {report['model']['weights_sha256'][:12]}..., expected "
            f"{candidate.weights_sha256[:12]}... (the score command must write {{weights_sha256}})"
        )
    if report["dataset"]["hash"] != context.dataset_hash:
        problems.append(
            f"dataset.hash is {report['dataset']['hash'][:12]}..., but the data evaluated has "
            f"{context.dataset_hash[:12]}... (the sha256 of its manifest.json)"
        )
    if problems:
        raise ReportError(
            "the scorer's report does not describe the requested evaluation: " + "; ".join(problems)
        )
    return report


def _trusted_environment(component_root: Path, scratch: Path) -> dict[str, str]:
    """Trusted stages need no secret either: the same allow-list, the scorer's code first."""
    source = component_root / "src"
    extra = {"PYTHONPATH": os.fspath(source) if source.is_dir() else "", "MPLCONFIGDIR": os.fspath(scratch)}
    for name in ("HOME", "TMPDIR", "WALKOUT_HOME"):
        if name in os.environ:
            extra[name] = os.environ[name]
    return sandbox.clean_environment(extra)


@contextlib.contextmanager
def _default_opener(data: Path) -> Iterator[tuple[Path, bool]]:
    from walkout_ci.gate_runner import opened_data

    with opened_data(data) as opened:
        yield opened


def _start_experiment(context: EvaluationContext, scorer: Scorer, candidate: Candidate):
    # Imported here: ClearML is heavy and only the tracked path needs it.
    from walkout_ci import experiment

    params = {
        "label": candidate.label,
        "component": context.component,
        "commit": candidate.commit,
        "scorer_commit": scorer.commit,
        "model_ref": candidate.model_ref,
        "weights_sha256": candidate.weights_sha256,
        "dataset_hash": context.dataset_hash,
        "predict": list(scorer.evaluate.predict),
    }
    return experiment.start(
        project=f"walkout/{context.component}",
        name=f"evaluate {candidate.label} {candidate.commit[:10]}",
        params=params,
        task_type="testing",
    )
