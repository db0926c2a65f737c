"""A REAL clearml-agent process runs walkout tasks against the ClearML stand-in.

`clearml-agent execute --id` and `clearml-agent daemon --queue Q --foreground` (started and stopped
here) serve the `clearml` executor's prediction tasks; the agent checks the commit out of the test
repository (file:// URL), runs `python -m walkout_ci.remote_eval` with this interpreter (no venv, no
pip: CLEARML_AGENT_SKIP_PYTHON_ENV_INSTALL / CLEARML_AGENT_SKIP_PIP_VENV_INSTALL) and reports to the
stand-in. Only the loopback is used. A cloned pose training task with a nested override
(`walkout-ci clone ID --set train.learning_rate=0.003`) runs through `execute --id` too, and the
trainer is shown to have used the new value (app/tests/test_qc_sharded.py: sharded QC over daemons).
clearml-agent is in requirements-dev.txt; outside CI, a run without it skips these tests (or point
WALKOUT_TEST_CLEARML_AGENT_PATH at a scratch install).
Measured on 2 cores: about 6 s of agent time per task.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from walkout_ci.testing import (
    fake_weights,
    make_fake_component_repo,
    make_fake_dataset,
    write_fake_experiment,
)

_SPEC = importlib.util.spec_from_file_location(
    "clearml_harness", Path(__file__).with_name("clearml_harness.py")
)
clearml_harness = importlib.util.module_from_spec(_SPEC)
_SPEC.loader.exec_module(clearml_harness)

REPO_ROOT = Path(__file__).resolve().parents[2]
SCORES = {"person": [0.9, 0.8, 0.7, 0.95], "sku": [0.6, 0.9, 0.85, 0.4]}

if not clearml_harness.agent_available():
    if os.environ.get("CI"):
        raise RuntimeError(
            "clearml-agent is not installed: `make test` installs it from requirements-dev.txt"
        )
    pytest.skip(
        "clearml-agent is not installed here (pip install -c constraints.txt -r requirements-dev.txt)",
        allow_module_level=True,
    )


@pytest.fixture
def standin():
    server = clearml_harness.clearml_standin.StandIn().start()
    yield server
    server.stop()
    server.assert_no_unknown_calls()


@pytest.fixture
def fake_repo(tmp_path: Path) -> dict:
    component = make_fake_component_repo(tmp_path / "repo", SCORES)
    repo = component.parent
    write_fake_experiment(component / "experiments", "local-crash", fake_weights(SCORES, exit_code=3))
    subprocess.run(["git", "-C", str(repo), "add", "-A"], check=True)
    subprocess.run(["git", "-C", str(repo), "commit", "-q", "-m", "crash model"], check=True)
    data = tmp_path / "data"
    make_fake_dataset(data)
    return {"repo": repo, "component": component, "data": data}


def executing_agent(standin, home: Path, results: list) -> callable:
    """The stand-in's on-enqueue hook: run `clearml-agent execute --id` for the task (a real agent)."""

    def run(task_id: str) -> None:
        results.append(clearml_harness.execute_task(standin, task_id, home))

    return run


def test_real_agent_execute_serves_a_gate_prediction_task(tmp_path: Path, standin, fake_repo: dict) -> None:
    runs: list = []
    standin.agent = executing_agent(standin, tmp_path / "agent", runs)
    code, result = clearml_harness.run_evaluation(
        tmp_path, standin, fake_repo["repo"], fake_repo["data"], "comp/model_ref.yaml"
    )
    standin.wait_agents()
    assert code == 0, (result, [run.stdout[-3000:] + run.stderr[-2000:] for run in runs])
    (run,) = runs
    assert run.returncode == 0 and "python -u -m walkout_ci.remote_eval" in run.stdout
    (task,) = standin.tasks.values()
    assert task["status"] == "completed" and result["task_id"] == task["id"]
    mean = sum(sum(values) for values in SCORES.values()) / 8
    assert result["metrics"]["AP50"] == pytest.approx(mean)
    # The agent ran the prediction in the sandbox (this machine has it) and said so in the log.
    assert not any("without the sandbox" in note for note in result["notes"])


def test_real_agent_crashing_model_makes_the_gate_error(tmp_path: Path, standin, fake_repo: dict) -> None:
    runs: list = []
    standin.agent = executing_agent(standin, tmp_path / "agent", runs)
    env = clearml_harness.client_env(standin, tmp_path / "client")
    env.update(WALKOUT_CLEARML_POLL_S="0.2", WALKOUT_CLEARML_WAIT_TIMEOUT_S="120")
    gate = subprocess.run(
        [
            sys.executable,
            "-m",
            "walkout_ci.cli",
            "gate",
            "--component-dir",
            str(fake_repo["component"]),
            "--candidate",
            "local-crash",
            "--data",
            str(fake_repo["data"]),
            "--out",
            str(tmp_path / "gate"),
            "--executor",
            "clearml",
            "--no-cache",
            "--no-track",
            "--no-progress",
        ],
        cwd=fake_repo["repo"],
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
    )
    standin.wait_agents()
    assert gate.returncode == 2, (gate.stdout[-3000:], gate.stderr[-3000:])
    verdict = json.loads((tmp_path / "gate" / "verdict.json").read_text())
    assert verdict["verdict"] == "ERROR"
    failed = [task for task in standin.tasks.values() if task["status"] == "failed"]
    assert len(failed) == 1 and failed[0]["hyperparams"]["General"]["model"]["value"] == "local-crash"
    assert "exited with status 3" in json.dumps(verdict) or "status 'failed'" in json.dumps(verdict)
    assert all(run.returncode != 0 for run in runs if "local-crash" in run.stdout)


def test_real_agent_daemon_serves_the_queue_until_stopped(tmp_path: Path, standin, fake_repo: dict) -> None:
    standin.add_queue("walkout-test")
    daemon = clearml_harness.AgentDaemon(standin, "walkout-test", tmp_path / "daemon")
    try:
        clearml_harness.wait_for(lambda: standin.workers, 60, "the daemon to register as a worker")
        (worker,) = standin.workers.values()
        assert worker["queues"] == ["q-walkout-test"]
        code, result = clearml_harness.run_evaluation(
            tmp_path,
            standin,
            fake_repo["repo"],
            fake_repo["data"],
            "comp/model_ref.yaml",
            queue="walkout-test",
        )
        assert code == 0, (result, daemon.log()[-4000:])
    finally:
        returncode = daemon.stop()
    (task,) = standin.tasks.values()
    assert task["status"] == "completed" and standin.queues["q-walkout-test"]["entries"] == []
    assert "queues.get_next_task" in standin.calls
    assert not standin.workers, "the stopped daemon unregistered itself"
    assert returncode is not None


# A tiny pose training run: 32x32 crops, width 8, one epoch on 12 stick-figure frames (seconds).
TINY_POSE_CONFIG = {
    "model": {"input_height": 32, "input_width": 32, "width": 8, "deconv_channels": 8},
    "train": {
        "epochs": 1,
        "batch_size": 8,
        "learning_rate": 0.002,
        "warmup_iterations": 2,
        "num_threads": 1,
        "num_workers": 0,
        "max_val_persons": 8,
        "device": "cpu",
    },
}


def _pose_split(root: Path, frames: int, seed: int) -> Path:
    """A tiny COCO keypoints split from the pose package's test data writer (stick figures)."""
    spec = importlib.util.spec_from_file_location(
        "pose_tests_conftest", REPO_ROOT / "submodules/pose/tests/conftest.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.write_split(root, frames=frames, seed=seed)


def test_cloned_training_task_with_a_nested_override_reaches_the_trainer_through_a_real_agent(
    tmp_path: Path, standin
) -> None:
    import torch
    import yaml

    # The code the agent checks out: a clone of this repository's HEAD whose origin is itself (a
    # file:// URL ClearML records as the repository), so the task's commit never moves under it.
    repo = tmp_path / "repo"
    subprocess.run(["git", "clone", "-q", "--shared", str(REPO_ROOT), str(repo)], check=True)
    subprocess.run(["git", "-C", str(repo), "remote", "set-url", "origin", repo.as_uri()], check=True)
    data = _pose_split(tmp_path / "train", frames=12, seed=1)
    config = tmp_path / "pose.yaml"
    config.write_text(yaml.safe_dump(TINY_POSE_CONFIG))
    run = tmp_path / "run"
    env = clearml_harness.client_env(standin, tmp_path / "client")
    # Started from the checkout's src folder, `-m walkout_pose.cli` is the checkout's code: ClearML
    # records that repository and commit (an agent could not clone this machine's editable install).
    train = subprocess.run(
        [sys.executable, "-m", "walkout_pose.cli", "train", "--data", str(data), "--out", str(run),
         "--config", str(config), "--no-progress"],
        cwd=repo / "submodules/pose/src", env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert train.returncode == 0, (train.stdout[-2000:], train.stderr[-4000:])
    (source_id,) = standin.tasks
    source = standin.tasks[source_id]
    assert source["hyperparams"]["General"]["train/learning_rate"]["value"] == "0.002"
    assert source["script"]["entry_point"].startswith("-m walkout_pose.cli train")
    assert yaml.safe_load((run / "config.yaml").read_text())["train"]["learning_rate"] == 0.002
    (run / "config.yaml").unlink()  # what the agent's run writes below is the clone's alone

    standin.add_queue("walkout-train")
    clone = subprocess.run(
        [sys.executable, "-m", "walkout_ci.cli", "clone", source_id, "--set", "train.learning_rate=0.003",
         "--queue", "walkout-train"],
        env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert clone.returncode == 0, clone.stderr[-3000:]
    (clone_id,) = [task_id for task_id in standin.tasks if task_id != source_id]
    assert standin.tasks[clone_id]["hyperparams"]["General"]["train/learning_rate"]["value"] == "0.003"
    # The clone writes into its own folder, never over the source run's weights.
    clone_run = Path(f"{run}-clone-{clone_id[:8]}")
    assert f"--out {clone_run}" in standin.tasks[clone_id]["script"]["entry_point"]

    agent = clearml_harness.execute_task(standin, clone_id, tmp_path / "agent", timeout_s=300)
    assert agent.returncode == 0, (agent.stdout[-4000:], agent.stderr[-3000:])
    assert "-m walkout_pose.cli train" in agent.stdout
    assert standin.tasks[clone_id]["status"] == "completed"
    # The trainer under the agent trained with the new value: the config it ran with (config.yaml,
    # written from the params it got back from ClearML) and the learning rate its optimizer started
    # from (the checkpoint's config, the one that built the optimizer).
    assert not (run / "config.yaml").exists()  # the source run's folder is untouched
    assert yaml.safe_load((clone_run / "config.yaml").read_text())["train"]["learning_rate"] == 0.003
    checkpoint = torch.load(clone_run / "last.pt", weights_only=True)
    assert checkpoint["config"]["train"]["learning_rate"] == 0.003
