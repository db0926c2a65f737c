"""Executors run the untrusted stage of an evaluation, *prediction*, and return its predictions.

An evaluation has three stages (gate.yaml `evaluate`, ARCHITECTURE.md section 4): prepare and score
are trusted and always run here from the target branch's code (walkout_ci.evaluation); predict runs
the evaluated commit's model code, possibly a pull request's, and is what an executor runs:
`local` (walkout_ci.executors.local) in a clean git worktree inside the sandbox (walkout_ci.sandbox)
on this machine; `clearml` (walkout_ci.executors.clearml) as a ClearML task for a clearml-agent.
Both take a `PredictionRequest` and return a `PredictionRun` whose predictions folder the trusted
scorer then reads (after walkout_ci.evaluation copied its regular files out).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path


@dataclass(frozen=True)
class PredictionRequest:
    """One prediction to run (the untrusted stage).

    repo_root: the git repository; component_dir: the component folder relative to it (POSIX);
    commit: full sha whose model code predicts; command: the target branch's gate.yaml
    `evaluate.predict` (placeholders unfilled); workdir: gate.yaml `evaluate.workdir`; model_path: a
    verified local model file (weights; None with model_in_worktree: gate.yaml `model.kind: file`, the
    repository-relative file inside the worktree of `commit`); inputs_dir: what the trusted prepare
    stage wrote (images/videos, no ground truth); predictions_dir: an empty folder for the output.
    require_isolation: refuse to run without the sandbox (sealed, blind data).
    """

    repo_root: Path
    component_dir: str
    component: str
    commit: str
    command: tuple[str, ...]
    workdir: str
    timeout_s: float
    model_ref: str
    weights_sha256: str
    inputs_dir: Path
    predictions_dir: Path
    model_path: Path | None = None
    model_in_worktree: str | None = None
    label: str = "candidate"
    require_isolation: bool = False
    # Verified experiment exports for a lock file's models: (component folder, export folder).
    exports: tuple[tuple[str, Path], ...] = ()
    # Folders the untrusted code must not even read (cache, WALKOUT_HOME, output folders).
    hidden: tuple[Path, ...] = ()


@dataclass
class PredictionRun:
    """A finished prediction: where its output is and how it ran (`notes` say what isolation it had)."""

    predictions_dir: Path
    commit: str
    duration_s: float
    executor: str = "local"
    task_id: str | None = None
    task_link: str | None = None
    notes: list[str] = field(default_factory=list)


@dataclass
class EvaluationRun:
    """A finished evaluation: its report (validated dict), where it is, and its test experiment."""

    report_dir: Path
    report: dict
    commit: str
    duration_s: float
    experiment_id: str | None = None
    experiment_link: str | None = None
    executor: str = "local"
    from_cache: bool = False
    notes: list[str] = field(default_factory=list)
