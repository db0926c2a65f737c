"""Executor `local` on a fake component in a temporary git repository."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
from pathlib import Path

import pytest

from walkout_ci import gitrepo
from walkout_ci.errors import EvaluationError, ReportError
from walkout_ci.evaluation import Candidate, EvaluationContext, Scorer, evaluate
from walkout_ci.executors.local import SCRATCH_PREFIX, run_local_prediction, sweep_stale_scratch
from walkout_ci.gate_config import load_gate_config, parse_gate_config
from walkout_ci.process import fill_command
from walkout_ci.report import dataset_hash
from walkout_ci.testing import fake_weights, make_fake_component_repo, make_fake_dataset

SCORES = {"person": [0.9, 0.8, 0.7, 0.6], "sku": [1.0, 0.4, 0.9, 0.8]}


@pytest.fixture
def setup(tmp_path, monkeypatch):
    monkeypatch.setenv("WALKOUT_HOME", str(tmp_path / "home"))
    component = make_fake_component_repo(tmp_path / "repo", SCORES)
    data_hash = make_fake_dataset(tmp_path / "data")
    return component, tmp_path / "data", data_hash


def run_evaluation(component: Path, data: Path, data_hash: str, weights: bytes, tmp_path: Path, **changes):
    """Evaluate `weights` at HEAD with HEAD's own scorer (what `walkout-ci evaluate` does)."""
    model = tmp_path / f"model-{hashlib.sha256(weights).hexdigest()[:8]}.json"
    model.write_bytes(weights)
    root = component.parent
    config = changes.pop("config", None) or load_gate_config(component)
    commit = gitrepo.resolve_commit(root, "HEAD")
    context = EvaluationContext(
        repo_root=root,
        component_dir=changes.pop("component_dir", "comp"),
        component="fake",
        data=data,
        dataset_hash=changes.pop("dataset_hash", data_hash),
        predictor=changes.pop("predictor", run_local_prediction),
        track=changes.pop("track", False),
    )
    candidate = Candidate(
        label="candidate",
        commit=commit,
        model_ref=str(model),
        weights_sha256=hashlib.sha256(weights).hexdigest(),
        model_path=model,
    )
    report_dir = changes.pop("report_dir", tmp_path / "out" / "report")
    assert not changes, changes
    return evaluate(context, Scorer(commit=commit, evaluate=config.evaluate), candidate, report_dir)


def worktrees(root: Path) -> list[str]:
    listing = gitrepo.git(root, "worktree", "list", "--porcelain")
    return [line for line in listing.splitlines() if line.startswith("worktree ")]


def test_runs_the_committed_code_in_a_clean_worktree(setup, tmp_path):
    component, data, data_hash = setup
    # An uncommitted edit that would crash the evaluation must not be what runs.
    (component / "component.py").write_text("raise SystemExit(3)\n")
    run = run_evaluation(component, data, data_hash, fake_weights(SCORES), tmp_path)
    assert run.report["metrics"]["AP50"] == pytest.approx(sum(sum(v) for v in SCORES.values()) / 8)
    assert run.report["code_commit"] == run.commit  # the scorer was given the predicting commit
    assert (run.report_dir / "report.json").is_file()
    assert sorted(p.name for p in (run.report_dir / "logs").iterdir()) == [
        "predict.log",
        "prepare.log",
        "score.log",
    ]
    assert run.report_dir == tmp_path / "out" / "report"
    assert len(worktrees(component.parent)) == 1  # the temporary worktrees are gone
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["report"]  # no staging left


@pytest.mark.parametrize(
    ("behaviour", "error", "message"),
    [
        ({"exit_code": 3}, EvaluationError, "prediction (model code of"),
        ({"invalid": True}, EvaluationError, "invalid predictions"),
        ({"sleep_s": 30}, EvaluationError, "timed out after 1 s"),
    ],
)
def test_a_crash_timeout_or_invalid_predictions_are_errors(setup, tmp_path, behaviour, error, message):
    component, data, data_hash = setup
    config = parse_gate_config((component / "gate.yaml").read_text().replace("timeout_s: 60", "timeout_s: 1"))
    weights = fake_weights(SCORES, **behaviour)
    with pytest.raises(error) as caught:
        run_evaluation(component, data, data_hash, weights, tmp_path, config=config)
    assert message in str(caught.value)
    assert not (tmp_path / "out" / "report").exists()
    assert len(worktrees(component.parent)) == 1
    if behaviour.get("exit_code"):
        assert "crashed on purpose" in str(caught.value)  # the log tail is quoted


def test_a_report_for_other_data_is_rejected(setup, tmp_path):
    component, data, _data_hash = setup
    with pytest.raises(ReportError, match=r"dataset\.hash is"):
        run_evaluation(component, data, "e" * 64, fake_weights(SCORES), tmp_path)


def test_a_non_empty_report_dir_is_refused(setup, tmp_path):
    component, data, data_hash = setup
    (tmp_path / "out" / "report").mkdir(parents=True)
    (tmp_path / "out" / "report" / "old.txt").write_text("x")
    with pytest.raises(EvaluationError, match="is not empty"):
        run_evaluation(component, data, data_hash, fake_weights(SCORES), tmp_path)


def test_a_missing_workdir_at_the_commit_is_an_error(setup, tmp_path):
    component, data, data_hash = setup
    with pytest.raises(EvaluationError, match="does not exist at commit"):
        run_evaluation(component, data, data_hash, fake_weights(SCORES), tmp_path, component_dir="nowhere")


def test_a_symlink_in_the_predictions_is_refused_not_followed(setup, tmp_path):
    component, data, data_hash = setup

    def planting(request):
        request.predictions_dir.mkdir(parents=True)
        (request.predictions_dir / "predictions.json").symlink_to(data / "manifest.json")
        from walkout_ci.executors import PredictionRun

        return PredictionRun(predictions_dir=request.predictions_dir, commit=request.commit, duration_s=0.0)

    with pytest.raises(EvaluationError, match="not a regular file"):
        run_evaluation(component, data, data_hash, fake_weights(SCORES), tmp_path, predictor=planting)


def test_stale_scratch_of_a_killed_run_is_swept(tmp_path):
    dead = subprocess.Popen(["true"])
    dead.wait()
    stale = tmp_path / f"{SCRATCH_PREFIX}stale"
    (stale / "worktree").mkdir(parents=True)
    (stale / "owner.pid").write_text(str(dead.pid))
    (stale / "worktree").chmod(0o555)
    live = tmp_path / f"{SCRATCH_PREFIX}live"
    live.mkdir()
    (live / "owner.pid").write_text(str(os.getpid()))
    assert sweep_stale_scratch(tmp_path) == [stale]
    assert not stale.exists() and live.exists()


def test_fill_command_uses_absolute_paths(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    command = fill_command(
        ("{python}", "--m={model}", "{data}", "{experiment_id}", "{weights_sha256}"),
        {"model": Path("m.pt"), "data": Path("d"), "experiment_id": None, "weights_sha256": "ab"},
    )
    assert command[1] == f"--m={tmp_path / 'm.pt'}" and command[2] == str(tmp_path / "d")
    assert command[3:] == ["", "ab"]


def test_tracked_evaluation_is_its_own_experiment(setup, tmp_path):
    component, data, data_hash = setup
    run = run_evaluation(component, data, data_hash, fake_weights(SCORES), tmp_path, track=True)
    assert run.experiment_id and run.experiment_link
    from walkout_ci.experiment import load_record

    record = load_record(run.experiment_id)
    assert record["params"]["commit"] == run.commit and record["status"] == "completed"
    assert record["metrics"]["AP50"] == pytest.approx(run.report["metrics"]["AP50"])


def test_git_is_required_to_find_the_commit(tmp_path):
    subprocess.run(["git", "init", "-q", str(tmp_path)], check=True)
    with pytest.raises(Exception, match="failed"):
        gitrepo.resolve_commit(tmp_path, "no-such-branch")


def test_evaluate_subcommand_writes_a_report(setup, tmp_path, capsys):
    from walkout_ci import cli

    component, data, _ = setup
    model = tmp_path / "model.json"
    model.write_bytes(fake_weights(SCORES))
    argv = ["evaluate", "--component-dir", str(component), "--model", str(model), "--data", str(data)]
    assert cli.main([*argv, "--report-dir", str(tmp_path / "r1"), "--no-track"]) == 0
    assert (tmp_path / "r1" / "report.json").is_file()
    assert "metrics: AP50=" in capsys.readouterr().out
    # A crashing evaluation is exit 2 with the reason on stderr.
    model.write_bytes(fake_weights(SCORES, exit_code=4))
    assert cli.main([*argv, "--report-dir", str(tmp_path / "r2"), "--no-track"]) == 2
    assert "exited with status 4" in capsys.readouterr().err
    # The evaluate subcommand used the same pipeline: its report holds the three stages' logs.
    assert (tmp_path / "r1" / "logs" / "predict.log").is_file()


def test_merge_base_without_common_history_is_a_clear_error(tmp_path):
    from walkout_ci.errors import GateError

    def git(*args):
        subprocess.run(["git", "-C", str(tmp_path), *args], check=True, capture_output=True)

    git("init", "-q", "-b", "main")
    git("-c", "user.email=a@b", "-c", "user.name=t", "commit", "-q", "--allow-empty", "-m", "one")
    git("checkout", "-q", "--orphan", "other")
    git("-c", "user.email=a@b", "-c", "user.name=t", "commit", "-q", "--allow-empty", "-m", "two")
    with pytest.raises(GateError, match="no common ancestor"):
        gitrepo.merge_base(tmp_path, "main")
    with pytest.raises(GateError, match="target branch 'release'"):
        gitrepo.merge_base(tmp_path, "release")


def test_without_the_sandbox_blind_data_is_refused_and_other_data_noted(setup, tmp_path, monkeypatch):
    from walkout_ci import sandbox

    component, data, data_hash = setup
    monkeypatch.setattr(sandbox, "probe", lambda: sandbox.Isolation(False, (), "no unshare in this test"))
    run = run_evaluation(component, data, data_hash, fake_weights(SCORES), tmp_path)
    assert any("without the sandbox (no unshare in this test)" in note for note in run.notes)
    # A decrypted copy of the blind set, passed as a plain folder, is refused like the sealed archive.
    manifest = json.loads((data / "manifest.json").read_text())
    (data / "manifest.json").write_text(json.dumps({**manifest, "blind": True}))
    with pytest.raises(EvaluationError, match="without the sandbox"):
        run_evaluation(
            component, data, dataset_hash(data), fake_weights(SCORES), tmp_path, report_dir=tmp_path / "r2"
        )
