"""Executors run one component evaluation ("test experiment") and return its validated report.

`local` (walkout_ci.executors.local) runs it in a clean git worktree of the requested commit on this
machine; `clearml` (walkout_ci.executors.clearml) enqueues it for a clearml-agent. Both take an
`EvaluationRequest` and return an `EvaluationRun` whose report passed `report.read_report` and was
checked against the request (component, weights sha256, dataset hash).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from walkout_ci.gate_config import EvaluateConfig


@dataclass(frozen=True)
class EvaluationRequest:
    """One evaluation to run.

    repo_root: the git repository; component_dir: the component folder relative to it (POSIX);
    commit: full sha whose code evaluates; model_path: verified local weights file; model_ref: what
    was asked for (for the report headline); data_dir: the (decrypted) dataset folder; report_dir:
    where the report folder must end up (must not exist yet, or be empty). weights_sha256: sha256 of
    the model file (checked against the report's model.weights_sha256 when check_weights_sha256).
    """

    repo_root: Path
    component_dir: str
    component: str
    commit: str
    evaluate: EvaluateConfig
    model_path: Path
    model_ref: str
    weights_sha256: str
    data_dir: Path
    dataset_hash: str
    report_dir: Path
    track: bool = True
    label: str = "candidate"
    extra_env: dict[str, str] = field(default_factory=dict)
    # gate.yaml `model.kind: file`: {model} may be this repository-relative file inside the worktree of
    # `commit` (model_path is then ignored)...
    model_in_worktree: str | None = None
    # ... and the report's weights_sha256 is the component's own digest of the model (the app hashes
    # the weights its lock file names), so it is not compared with weights_sha256 (the file's sha256).
    check_weights_sha256: bool = True


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
