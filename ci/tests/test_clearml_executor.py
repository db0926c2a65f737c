"""The clearml executor and `experiment push`, through the real clearml SDK against the stand-in.

`clearml_standin.py` (test-only) plays the ClearML API server and its file server; here a quick
callback plays clearml-agent (on `tasks.enqueue` it checks the task's commit out into a git worktree
and runs the task's entry point, `python -m walkout_ci.remote_eval`, with CLEARML_TASK_ID set);
test_clearml_agent.py runs the same flows with a REAL clearml-agent. The client side (executor, push)
runs in subprocesses because ClearML reads its configuration once per process.

Opt-in against a real server: WALKOUT_TEST_CLEARML_SERVER=1 with CLEARML_API_HOST etc. configured
(`pytest -m clearml_server`).
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from walkout_ci import pins
from walkout_ci.store import Store
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
clearml_standin = clearml_harness.clearml_standin
client_env = clearml_harness.client_env

SCORES = {"person": [0.9, 0.8, 0.7, 0.95], "sku": [0.6, 0.9, 0.85, 0.4]}


class WorktreeAgent:
    """Plays clearml-agent: check the task's commit out, run its module with CLEARML_TASK_ID set."""

    def __init__(self, standin, repo: Path, home: Path) -> None:
        self.standin, self.repo, self.home = standin, repo, home
        self.logs: list[str] = []

    def __call__(self, task_id: str) -> None:
        task = self.standin.tasks[task_id]
        script = task["script"]
        entry = script["entry_point"]
        assert entry.startswith("-m "), entry  # Task.create(module=...) stores "-m <module>"
        with tempfile.TemporaryDirectory(prefix="standin-agent-") as scratch:
            checkout = Path(scratch) / "checkout"
            assert script["repository"] == self.repo.absolute().as_uri()
            subprocess.run(
                [
                    "git",
                    "-C",
                    str(self.repo),
                    "worktree",
                    "add",
                    "--detach",
                    str(checkout),
                    script["version_num"],
                ],
                check=True,
                capture_output=True,
            )
            try:
                env = client_env(self.standin, self.home)
                env["CLEARML_TASK_ID"] = task_id
                result = subprocess.run(
                    [sys.executable, *entry.split()],
                    cwd=checkout / script.get("working_dir", "."),
                    env=env,
                    capture_output=True,
                    text=True,
                    timeout=120,
                )
                self.logs.append(result.stdout + result.stderr)
                # As clearml-agent: the process's exit code decides the final status of a remote task.
                if self.standin.tasks[task_id]["status"] not in ("failed", "stopped"):
                    if result.returncode == 0:
                        self.standin.set_status(task_id, "completed")
                    else:
                        self.standin.set_status(task_id, "failed", f"exit code {result.returncode}")
            finally:
                subprocess.run(
                    ["git", "-C", str(self.repo), "worktree", "remove", "--force", str(checkout)],
                    capture_output=True,
                )


@pytest.fixture
def standin():
    server = clearml_standin.StandIn().start()
    yield server
    server.stop()
    server.assert_no_unknown_calls()


@pytest.fixture
def fake_repo(tmp_path: Path) -> dict:
    component = make_fake_component_repo(tmp_path / "repo", SCORES)
    repo = component.parent
    # A second, committed experiment whose evaluation crashes.
    write_fake_experiment(component / "experiments", "local-crash", fake_weights(SCORES, exit_code=3))
    subprocess.run(["git", "-C", str(repo), "add", "-A"], check=True)
    subprocess.run(["git", "-C", str(repo), "commit", "-q", "-m", "crash model"], check=True)
    data = tmp_path / "data"
    make_fake_dataset(data)
    return {"repo": repo, "component": component, "data": data}


def run_executor(tmp_path: Path, standin, fake_repo: dict, model_ref: str, **options) -> tuple[int, dict]:
    """One evaluation of the fake component with the clearml executor (clearml_harness.run_evaluation)."""
    return clearml_harness.run_evaluation(
        tmp_path, standin, fake_repo["repo"], fake_repo["data"], model_ref, **options
    )


def local_metrics(tmp_path: Path, fake_repo: dict, model_ref: str) -> dict:
    """The same evaluation with the local executor: what the clearml executor must reproduce exactly."""
    from walkout_ci import gitrepo
    from walkout_ci.evaluation import Candidate, EvaluationContext, Scorer, evaluate
    from walkout_ci.executors.local import run_local_prediction
    from walkout_ci.gate_config import load_gate_config
    from walkout_ci.report import dataset_hash, sha256_of_file

    repo, component = fake_repo["repo"], fake_repo["component"]
    commit = gitrepo.resolve_commit(repo, "HEAD")
    weights = pins.resolve_model_ref(repo / model_ref, search=[component / "experiments"])
    context = EvaluationContext(
        repo_root=repo,
        component_dir="comp",
        component="fake",
        data=fake_repo["data"],
        dataset_hash=dataset_hash(fake_repo["data"]),
        predictor=run_local_prediction,
        track=False,
    )
    candidate = Candidate(
        label="candidate",
        commit=commit,
        model_ref=model_ref,
        weights_sha256=sha256_of_file(weights),
        model_path=weights,
    )
    scorer = Scorer(commit=commit, evaluate=load_gate_config(component).evaluate)
    report = evaluate(context, scorer, candidate, tmp_path / "local-report").report
    return {"metrics": report["metrics"], "per_sample": report["per_sample"]}


def test_clearml_executor_runs_only_the_prediction_remotely(tmp_path: Path, standin, fake_repo: dict) -> None:
    agent = WorktreeAgent(standin, fake_repo["repo"], tmp_path / "agent")
    standin.agent = agent
    inputs_root = tmp_path / "shared-inputs"
    inputs_root.mkdir()
    code, result = run_executor(
        tmp_path, standin, fake_repo, "comp/model_ref.yaml", inputs_root=str(inputs_root)
    )
    standin.wait_agents()
    assert code == 0, (result, agent.logs, [t.get("status_reason") for t in standin.tasks.values()])
    assert result["executor"] == "clearml"
    local = local_metrics(tmp_path, fake_repo, "comp/model_ref.yaml")
    assert {"metrics": result["metrics"], "per_sample": result["per_sample"]} == local
    report_dir = Path(result["report_dir"])
    assert (report_dir / "logs" / "predict.log").is_file()  # the agent's log came back with the predictions
    (task,) = standin.tasks.values()
    assert result["task_id"] == task["id"] and task["status"] == "completed"
    head = subprocess.run(
        ["git", "-C", str(fake_repo["repo"]), "rev-parse", "HEAD"], capture_output=True, text=True, check=True
    ).stdout.strip()
    assert task["script"]["version_num"] == head
    assert task["script"]["entry_point"] == "-m walkout_ci.remote_eval"
    general = {name: item["value"] for name, item in task["hyperparams"]["General"].items()}
    # The agent gets the predict command and the prepared inputs, never the data or the score command.
    assert json.loads(general["command"])[2] == "predict"
    assert (general["model_kind"], general["model"]) == ("pin", "comp/model_ref.yaml")
    staged = Path(general["inputs"])
    assert staged.parent == inputs_root and not staged.exists()  # staged for the agent, removed after
    assert str(fake_repo["data"]) not in json.dumps(task)
    assert not any(name in general for name in ("data", "dataset_hash", "score"))
    assert "tasks.enqueue" in standin.calls and "tasks.create" in standin.calls


def test_clearml_executor_reports_a_failed_task_as_an_error(tmp_path: Path, standin, fake_repo: dict) -> None:
    # The agent side of a crash is covered in-process below and with a real agent in
    # test_clearml_agent.py; here: how the executor treats a failed task.
    standin.agent = lambda task_id: standin.set_status(task_id, "failed", "exit code 3")
    code, result = run_executor(tmp_path, standin, fake_repo, "local-crash")
    assert code == 2
    assert result["type"] == "EvaluationError"
    assert "status 'failed' (exit code 3)" in result["error"]
    (task,) = standin.tasks.values()
    assert task["hyperparams"]["General"]["model"]["value"] == "local-crash"


def test_clearml_executor_fails_closed_without_the_predictions_artifact(
    tmp_path: Path, standin, fake_repo: dict
) -> None:
    standin.agent = lambda task_id: standin.set_status(task_id, "completed")
    code, result = run_executor(tmp_path, standin, fake_repo, "comp/model_ref.yaml")
    assert code == 2 and "without a 'predictions' artifact" in result["error"], result


def test_clearml_executor_errors_when_the_server_dies_during_the_wait(
    tmp_path: Path, standin, fake_repo: dict
) -> None:
    standin.agent = lambda task_id: standin.server.shutdown() or standin.server.server_close()
    start = time.monotonic()
    code, result = run_executor(tmp_path, standin, fake_repo, "comp/model_ref.yaml", api_timeout_s=2.0)
    assert code == 2
    assert "stopped answering" in result["error"], result
    assert time.monotonic() - start < 60.0  # not the 120 s wait limit, let alone forever


def test_remote_prediction_runs_the_predict_command_and_fails_closed(
    tmp_path: Path, fake_repo: dict, monkeypatch
) -> None:
    from walkout_ci import sandbox
    from walkout_ci.errors import EvaluationError
    from walkout_ci.gate_config import load_gate_config
    from walkout_ci.remote_eval import DEFAULT_PARAMS, run_prediction
    from walkout_ci.report import sha256_of_file

    monkeypatch.setenv("WALKOUT_HOME", str(tmp_path / "home"))
    evaluate = load_gate_config(fake_repo["component"]).evaluate
    inputs = tmp_path / "inputs"
    inputs.mkdir()
    (inputs / "inputs.json").write_text(json.dumps({"format": "fake-inputs", "version": 1}))
    repo = fake_repo["repo"]
    weights = pins.resolve_model_ref(repo / "comp/model_ref.yaml")
    params = {
        **DEFAULT_PARAMS,
        "component": "fake",
        "component_dir": "comp",
        "command": json.dumps(list(evaluate.predict)),
        "model": "comp/model_ref.yaml",
        "weights_sha256": sha256_of_file(weights),
        "inputs": str(inputs),
    }
    run_prediction(params, repo, tmp_path / "out")
    predictions = json.loads((tmp_path / "out" / "predictions.json").read_text())
    assert predictions["scores"] == SCORES and (tmp_path / "out" / "predict.log").is_file()
    crash = pins.resolve_model_ref("local-crash", search=[fake_repo["component"] / "experiments"])
    with pytest.raises(EvaluationError, match="exited with status 3"):
        run_prediction(
            {**params, "model": "local-crash", "weights_sha256": sha256_of_file(crash)}, repo, tmp_path / "c"
        )
    with pytest.raises(EvaluationError, match="expected " + "0" * 64):
        run_prediction({**params, "weights_sha256": "0" * 64}, repo, tmp_path / "sha")
    with pytest.raises(EvaluationError, match="not reachable from this agent"):
        run_prediction({**params, "inputs": str(tmp_path / "nowhere")}, repo, tmp_path / "nd")
    with pytest.raises(EvaluationError, match=r"without '\.\.'"):
        run_prediction({**params, "model_kind": "file", "model": "../secret.yaml"}, repo, tmp_path / "dots")
    with pytest.raises(EvaluationError, match="model_kind='weights'"):
        run_prediction({**params, "model_kind": "weights"}, repo, tmp_path / "kind")
    monkeypatch.setattr(sandbox, "probe", lambda: sandbox.Isolation(False, (), "no unshare here"))
    with pytest.raises(EvaluationError, match="without the sandbox on this agent: no unshare here"):
        run_prediction({**params, "require_isolation": "True"}, repo, tmp_path / "iso")
    assert not (tmp_path / "iso").exists()


def test_clearml_executor_times_out_without_an_agent(tmp_path: Path, standin, fake_repo: dict) -> None:
    standin.add_queue("gpu")
    code, result = run_executor(
        tmp_path, standin, fake_repo, "comp/model_ref.yaml", queue="gpu", wait_timeout_s=1.5
    )
    assert code == 2
    assert "did not finish within 2 s" in result["error"] and "queued" in result["error"]
    (task,) = standin.tasks.values()
    assert task["status"] == "stopped"  # no task left waiting in the queue


PUSH_SETUP = r"""
import sys
from walkout_ci import bundle, experiment, pins
pkg = sys.argv[1]
exp = experiment.start("walkout/test", "offline-run", {"lr": 0.1})
for step in range(3):
    exp.log_scalar("loss", "train", 1.0 / (step + 1), step)
open(pkg + "/w.pt", "wb").write(b"weights-bytes")
exp.upload_weights(pkg + "/w.pt")
exp.close()
pins.pin_experiment(exp.id, pkg + "/model_ref.yaml", component="detection")
bundle.export_experiment(exp.id, pkg + "/experiments")
print(exp.id)
"""


def test_push_imports_a_bundle_into_the_server_and_repins(tmp_path: Path, standin) -> None:
    pkg = tmp_path / "pkg"
    pkg.mkdir()
    offline_env = client_env(standin, tmp_path / "trainer")
    for key in standin.env():
        offline_env.pop(key)
    result = subprocess.run(
        [sys.executable, "-c", PUSH_SETUP, str(pkg)],
        env=offline_env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    offline_id = result.stdout.strip().splitlines()[-1]
    assert offline_id.startswith("offline-")
    # A fresh clone: empty store, the server configured, only the bundle in the repository.
    env = client_env(standin, tmp_path / "fresh")
    push = subprocess.run(
        [
            sys.executable,
            "-m",
            "walkout_ci.cli",
            "experiment",
            "push",
            offline_id,
            "--search",
            str(pkg / "experiments"),
            "--pins",
            str(tmp_path),
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert push.returncode == 0, push.stderr
    (new_id,) = standin.tasks
    assert f"pushed {offline_id} as {new_id}" in push.stdout
    assert pins.read_pin(pkg / "model_ref.yaml").experiment_id == new_id
    # The bundle moved to the new id: a fresh clone without the server still resolves the new pin.
    assert not (pkg / "experiments" / offline_id).exists()
    assert (pkg / "experiments" / new_id / "experiment.json").is_file()
    fresh = Store.open(tmp_path / "clone_store")
    assert pins.resolve_model_ref(pkg / "model_ref.yaml", store=fresh, use_server=False).read_bytes() == (
        b"weights-bytes"
    )
    assert sorted(standin.scalars(new_id)) == [("loss", "train", i, 1.0 / (i + 1)) for i in range(3)]
    assert standin.tasks[new_id]["status"] == "completed"
    assert any(name.endswith("artifacts/weights/w.pt") for name in standin.files)


ONLINE_SCRIPT = r"""
import json, sys
from pathlib import Path
from walkout_ci import blind, experiment, pins
from walkout_ci.errors import BlindSetError
from walkout_ci.store import Store
work = Path(sys.argv[1])
(work / "train").mkdir(parents=True)
manifest = {"blind": False, "content_hashes": ["a" * 64, "b" * 64]}
(work / "train" / "manifest.json").write_text(json.dumps(manifest))
exp = experiment.start("walkout/test", "online", {"lr": 0.1})
exp.log_scalar("loss", "train", 0.5, 0)
exp.set_training_data(work / "train")
(work / "w.pt").write_bytes(b"w")
exp.upload_weights(work / "w.pt")
exp.close()
# A fresh store: the weights and the training hashes must come from the server.
weights = pins.resolve_model_ref(exp.id, store=Store.open(work / "fresh_store"))
ok = blind.check_leakage(exp.id, {"content_hashes": ["c" * 64]}, store=Store.open(work / "fresh2"))
try:
    blind.check_leakage(exp.id, {"content_hashes": ["b" * 64]}, store=Store.open(work / "fresh3"))
    leak = None
except BlindSetError as error:
    leak = str(error)
from walkout_ci import bundle
exported = bundle.export_experiment(exp.id, work / "exports", store=Store.open(work / "fresh4"))
print(json.dumps({"mode": exp.mode, "id": exp.id, "weights": str(weights), "ok": ok.training_hashes,
                  "leak": leak, "exported": str(exported)}))
"""


def test_online_experiment_round_trip_through_the_server(tmp_path: Path, standin) -> None:
    result = subprocess.run(
        [sys.executable, "-c", ONLINE_SCRIPT, str(tmp_path)],
        env=client_env(standin, tmp_path / "h"),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    info = json.loads([line for line in result.stdout.splitlines() if line.startswith("{")][-1])
    task_id = info["id"]
    assert info["mode"] == "online" and task_id in standin.tasks
    weights = Path(info["weights"])
    assert weights.is_relative_to(tmp_path / "fresh_store") and weights.read_bytes() == b"w"
    assert info["ok"] == 2 and "1 frame(s)" in info["leak"]
    # Exporting a server-only experiment downloads it first; the bundle resolves without the server.
    offline_store = Store.open(tmp_path / "offline_clone")
    resolved = pins.resolve_model_ref(
        task_id, search=[tmp_path / "exports"], store=offline_store, use_server=False
    )
    assert Path(info["exported"]) == tmp_path / "exports" / task_id and resolved.read_bytes() == b"w"
    assert standin.scalars(task_id) == [("loss", "train", 0, 0.5)]  # once: no TensorBoard double
    assert standin.tasks[task_id]["hyperparams"]["General"]["lr"]["value"] == "0.1"


@pytest.mark.clearml_server
@pytest.mark.skipif(
    os.environ.get("WALKOUT_TEST_CLEARML_SERVER") != "1",
    reason="opt-in: needs a real ClearML server (WALKOUT_TEST_CLEARML_SERVER=1 + CLEARML_API_HOST/keys)",
)
def test_real_server_experiment_round_trip(tmp_path: Path) -> None:
    code = (
        "import sys; from walkout_ci import experiment\n"
        "exp = experiment.start('walkout/ci-test', 'real-server', {'lr': 0.1})\n"
        "open(sys.argv[1], 'wb').write(b'real'); exp.upload_weights(sys.argv[1]); exp.close()\n"
        "print(exp.mode, exp.id)\n"
    )
    env = dict(os.environ, WALKOUT_HOME=str(tmp_path / "store"))
    result = subprocess.run(
        [sys.executable, "-c", code, str(tmp_path / "w.pt")],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    mode, task_id = result.stdout.split()[-2:]
    assert mode == "online"
    env["WALKOUT_HOME"] = str(tmp_path / "fresh")
    resolve = subprocess.run(
        [sys.executable, "-m", "walkout_ci.cli", "resolve", task_id],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert resolve.returncode == 0, resolve.stderr
    assert Path(resolve.stdout.strip()).read_bytes() == b"real"


def test_clone_on_the_server_overrides_parameters_and_enqueues(tmp_path: Path, standin) -> None:
    standin.add_queue("gpu")
    source_id = "source-task"
    standin.tasks[source_id] = {
        "id": source_id,
        "name": "train",
        "status": "completed",
        "project": None,
        "output": {},
        "execution": {"artifacts": []},
        "script": {},
        "configuration": {},
        "tags": [],
        "system_tags": [],
        "hyperparams": {
            "General": {
                name: {"section": "General", "name": name, "value": value, "type": "float"}
                for name, value in (("lr", "0.1"), ("epochs", "1"), ("train/learning_rate", "0.007"))
            }
        },
    }
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "walkout_ci.cli",
            "clone",
            source_id,
            "--set",
            "lr=0.5",
            "--set",
            "epochs=3",
            "--set",
            "train.learning_rate=0.003",
            "--queue",
            "gpu",
        ],
        env=client_env(standin, tmp_path / "h"),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    (new_id,) = [task_id for task_id in standin.tasks if task_id != source_id]
    assert f"cloned {source_id} as {new_id}, enqueued on 'gpu'" in result.stdout
    general = standin.tasks[new_id]["hyperparams"]["General"]
    assert (general["lr"]["value"], general["epochs"]["value"]) == ("0.5", "3")
    # The dotted key users type reached ClearML's nested form; no new "train.learning_rate" key.
    assert general["train/learning_rate"]["value"] == "0.003" and "train.learning_rate" not in general
    typo = subprocess.run(
        [sys.executable, "-m", "walkout_ci.cli", "clone", source_id, "--set", "train.learning_rat=1"],
        env=client_env(standin, tmp_path / "h"),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert typo.returncode == 2 and "did you mean train.learning_rate" in typo.stderr, typo.stderr
    assert len(standin.tasks) == 2  # nothing cloned for a typo
    assert standin.tasks[new_id]["status"] == "queued"
    assert standin.queues["q-gpu"]["entries"] == [{"task": new_id}]
    assert standin.tasks[source_id]["hyperparams"]["General"]["lr"]["value"] == "0.1"


def test_executor_options_from_environment() -> None:
    from walkout_ci.errors import EvaluationError
    from walkout_ci.executors.clearml import ClearMLExecutorOptions

    options = ClearMLExecutorOptions.from_env(
        {
            "WALKOUT_CLEARML_QUEUE": "gpu",
            "WALKOUT_CLEARML_WAIT_TIMEOUT_S": "90",
            "WALKOUT_CLEARML_INPUTS_ROOT": "/mnt/b",
        }
    )
    assert (options.queue, options.wait_timeout_s, options.inputs_root, options.poll_s) == (
        "gpu",
        90.0,
        Path("/mnt/b"),
        5.0,
    )
    assert ClearMLExecutorOptions.from_env({}) == ClearMLExecutorOptions()
    with pytest.raises(EvaluationError, match="WALKOUT_CLEARML_POLL_S"):
        ClearMLExecutorOptions.from_env({"WALKOUT_CLEARML_POLL_S": "soon"})


SERVER_DIES_SCRIPT = r"""
import sys, time
from pathlib import Path
from walkout_ci import experiment
go = Path(sys.argv[1])
exp = experiment.start("walkout/test", "server-dies", {"lr": 0.1})
print("MODE", exp.mode, flush=True)
while not go.exists():
    time.sleep(0.05)
t0 = time.time()
for step in range(20):
    exp.log_scalar("loss", "train", 1.0, step)
weights = go.parent / "w.pt"
weights.write_bytes(b"w")
exp.upload_weights(weights)
exp.log_metrics({"AP50": 0.5})
exp.close()
print("AFTER_DEATH_S", time.time() - t0, exp.id, flush=True)
"""


def test_server_dying_mid_run_neither_crashes_nor_hangs_training(tmp_path: Path, standin) -> None:
    go = tmp_path / "go"
    process = subprocess.Popen(
        [sys.executable, "-c", SERVER_DIES_SCRIPT, str(go)],
        env=client_env(standin, tmp_path / "h"),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        line = process.stdout.readline()
        while line and not line.startswith("MODE"):  # ClearML prints its own lines first
            line = process.stdout.readline()
        assert line.split() == ["MODE", "online"]
        standin.stop()  # the server goes away in the middle of training
        go.touch()
        stdout, stderr = process.communicate(timeout=120)
    finally:
        process.kill()
    assert process.returncode == 0, stderr
    elapsed, experiment_id = stdout.split("AFTER_DEATH_S")[1].split()[:2]
    # clearml 2.1.12 retries a connection error forever inside every API call (and in its at-exit
    # flush): without the deadline + liveness probe this run never finishes (communicate's 120-s
    # timeout fails the test). The bound is loose because CI machines can be heavily loaded.
    assert float(elapsed) < 60.0
    store = Store.open(tmp_path / "h" / "walkout")
    assert pins.resolve_model_ref(experiment_id, store=store, use_server=False).read_bytes() == b"w"
    record = json.loads(store.record_path(experiment_id).read_text())
    assert record["status"] == "completed" and "stopped answering" in record["tracker_lost"]["reason"]


def test_sick_server_that_answers_ping_but_not_the_api_falls_back_offline(tmp_path: Path, standin) -> None:
    standin.api_status = 503  # logs in, then every API call fails: clearml would retry forever
    code = (
        "import json, sys, time; t = time.time(); from walkout_ci import experiment\n"
        "exp = experiment.start('walkout/test', 'sick', {'lr': 0.1}, init_timeout_s=3)\n"
        "exp.close()\n"
        "open(sys.argv[1], 'w').write(json.dumps({'mode': exp.mode, 's': time.time() - t}))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code, str(tmp_path / "out.json")],
        env=client_env(standin, tmp_path / "h"),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    info = json.loads((tmp_path / "out.json").read_text())
    assert info["mode"] == "offline"
    # The 3-s deadline, not luck, ended the wait: without it Task.init retries until the 120-s
    # subprocess timeout above fails the test. Wall time is not asserted: on a loaded CI machine
    # the imports and the offline Task.init alone have taken over 30 s.
    assert "Task.init did not return within 3 s" in result.stderr, result.stderr[-3000:]
