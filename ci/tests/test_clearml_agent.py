"""A REAL clearml-agent process runs walkout tasks against the ClearML stand-in.

`clearml-agent execute --id` and `clearml-agent daemon --queue Q --foreground` (started and stopped
here) serve the `clearml` executor's prediction tasks; the agent checks the commit out of the test
repository (file:// URL), runs `python -m walkout_ci.remote_eval` with this interpreter (no venv, no
pip: CLEARML_AGENT_SKIP_PYTHON_ENV_INSTALL / CLEARML_AGENT_SKIP_PIP_VENV_INSTALL) and reports to the
stand-in. Only the loopback is used. clearml-agent is in requirements-dev.txt; outside CI, a run
without it skips these tests (or point WALKOUT_TEST_CLEARML_AGENT_PATH at a scratch install).
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
