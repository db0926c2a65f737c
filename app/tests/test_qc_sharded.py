"""`walkout qc --executor clearml --shards N`: QC sharded over REAL clearml-agent daemons.

The pure parts (planning shards, shard inputs folders, merging shard predictions strictly) are tested
on constructed data. The end-to-end tests start two `clearml-agent daemon --queue Q --foreground`
processes against the ClearML stand-in (ci/tests/clearml_standin.py, loopback only); each checks a
`git clone --shared` of this repository's HEAD out and runs the app's gate.yaml predict command
(`walkout gate-predict`, the real models on CPU) on its shard of two tiny scenario videos (39 + 11
frames, from test_app_gate). Measured on 2 shared cores: about 60-90 s for the sharded run + the local
run, and about 60-80 s for the killed daemon (most of it the wait timeout).
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from walkout.errors import QCError
from walkout.gate_inputs import read_inputs
from walkout.predictions import PREDICTIONS_FORMAT, PredictionsError
from walkout.shard import Shard, merge_predictions, plan_shards, write_shard_inputs

REPO_ROOT = Path(__file__).resolve().parents[2]


def _load(name: str, path: Path):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


clearml_harness = _load("qc_sharded_clearml_harness", REPO_ROOT / "ci/tests/clearml_harness.py")
app_gate = _load("qc_sharded_app_gate", Path(__file__).with_name("test_app_gate.py"))
tiny_split = app_gate.tiny_split  # the module-scoped fixture: two tiny scenario videos


def _entry(name: str, frames: int | None) -> dict:
    return {
        "name": name,
        "video": f"videos/{name}/video.avi",
        "layout": f"videos/{name}/layout.yaml",
        "fps": 10.0,
        "frames": frames,
    }


# --------------------------------------------------------------------------------------------------
# Planning, shard inputs, merging


def test_plan_balances_frames_keeps_index_order_and_never_makes_an_empty_shard() -> None:
    entries = [_entry("a", 100), _entry("b", 10), _entry("c", 60), _entry("d", 50), _entry("e", None)]
    plan = plan_shards(entries, 2)
    # e (unknown length) counts as the longest known, 100. Longest first onto the lighter shard:
    # a -> 1 (tie: lower number), e -> 2, c -> 1 (160), d -> 2 (150), b -> 2 (160).
    assert [shard.videos for shard in plan] == [("a", "c"), ("b", "d", "e")]
    assert sorted(v for shard in plan for v in shard.videos) == ["a", "b", "c", "d", "e"]
    assert [shard.label for shard in plan] == ["shard 1/2", "shard 2/2"]
    assert plan_shards(entries, 2) == plan  # deterministic
    assert [len(shard.videos) for shard in plan_shards(entries[:2], 5)] == [1, 1]
    with pytest.raises(QCError, match="--shards must be >= 1"):
        plan_shards(entries, 0)


def test_shard_inputs_are_complete_inputs_folders_of_their_videos_only(tmp_path: Path) -> None:
    inputs = tmp_path / "inputs"
    entries = [_entry("v1", 5), _entry("v2", 7), _entry("v3", 3)]
    for entry in entries:
        for key in ("video", "layout"):
            (inputs / entry[key]).parent.mkdir(parents=True, exist_ok=True)
            (inputs / entry[key]).write_text(f"{entry['name']} {key}")
    (inputs / "layout.yaml").write_text("base")
    index = {"format": "walkout-app-inputs", "version": 1, "layout": "layout.yaml", "videos": entries}
    (inputs / "inputs.json").write_text(json.dumps(index))
    shard = Shard(number=2, count=2, entries=(entries[0], entries[2]))
    out = write_shard_inputs(inputs, shard, tmp_path / "shard")
    assert [video.name for video in read_inputs(out)] == ["v1", "v3"]
    assert not (out / "videos" / "v2").exists()
    assert (out / "videos/v3/video.avi").read_text() == "v3 video"
    assert (out / "layout.yaml").read_text() == "base"


def _shard_file(path: Path, names: list[str], **overrides) -> Path:
    document = {
        "format": PREDICTIONS_FORMAT,
        "version": 1,
        "mode": "models",
        "jobs": 1,
        "wall_seconds": 1.0,
        "videos": [{"video": name, "frames": 3} for name in names],
    }
    document.update(overrides)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(document))
    return path


def test_merge_keeps_every_video_once_in_shard_order(tmp_path: Path) -> None:
    one = Shard(1, 2, (_entry("a", 3), _entry("c", 3)))
    two = Shard(2, 2, (_entry("b", 3),))
    parts = [
        (one, _shard_file(tmp_path / "1/predictions.json", ["c", "a"])),
        (two, _shard_file(tmp_path / "2/predictions.json", ["b"], jobs=2)),
    ]
    merged = json.loads(merge_predictions(parts, tmp_path / "merged", wall_seconds=4.5).read_text())
    assert [entry["video"] for entry in merged["videos"]] == ["c", "a", "b"]
    assert (merged["jobs"], merged["wall_seconds"], merged["mode"]) == (3, 4.5, "models")


@pytest.mark.parametrize(
    ("names", "overrides", "message"),
    [
        (["a"], {}, "no predictions for video\\(s\\) c of shard 1/2"),
        (["a", "c", "a"], {}, "videos\\[2\\].video 'a' is listed twice"),
        (["a", "c", "b"], {}, "'b' is not a video of shard 1/2"),
        (["a", "c"], {"version": 2}, "format/version"),
        (["a", "c"], {"videos": {"a": 1}}, "videos must be a list"),
        (["a", "c"], {"mode": "oracle"}, "disagree on mode"),
    ],
)
def test_merge_refuses_a_shard_that_does_not_list_exactly_its_videos(
    tmp_path: Path, names: list[str], overrides: dict, message: str
) -> None:
    one = Shard(1, 2, (_entry("a", 3), _entry("c", 3)))
    two = Shard(2, 2, (_entry("b", 3),))
    parts = [
        (one, _shard_file(tmp_path / "1/predictions.json", names, **overrides)),
        (two, _shard_file(tmp_path / "2/predictions.json", ["b"])),
    ]
    with pytest.raises(PredictionsError, match=message):
        merge_predictions(parts, tmp_path / "merged", wall_seconds=1.0)
    assert not (tmp_path / "merged" / "predictions.json").exists()


def test_merge_refuses_a_key_given_twice(tmp_path: Path) -> None:
    shard = Shard(1, 1, (_entry("a", 3),))
    path = tmp_path / "predictions.json"
    path.write_text('{"format": "x", "format": "walkout-app-predictions"}')
    with pytest.raises(PredictionsError, match="lists a key twice"):
        merge_predictions([(shard, path)], tmp_path / "merged", wall_seconds=1.0)


# --------------------------------------------------------------------------------------------------
# Real clearml-agent daemons

needs_agent = pytest.mark.skipif(
    not clearml_harness.agent_available() and not os.environ.get("CI"),
    reason="clearml-agent is not installed here (pip install -c constraints.txt -r requirements-dev.txt)",
)
QUEUE = "walkout-qc"
# Starting a real clearml-agent daemon (a Python process importing the agent, then registering with
# the stand-in) took over 60 s once on 2 busy cores; the wait only delays the failure of a broken
# setup, it measures nothing, so it is generous.
REGISTER_TIMEOUT_S = 180


@pytest.fixture
def standin():
    server = clearml_harness.clearml_standin.StandIn().start()
    server.add_queue(QUEUE)
    yield server
    server.stop()
    server.assert_no_unknown_calls()


@pytest.fixture
def mono(tmp_path: Path) -> Path:
    """A `git clone --shared` of this repository's HEAD: what the agents check out (file:// URL)."""
    clone = tmp_path / "mono"
    subprocess.run(["git", "clone", "-q", "--shared", str(REPO_ROOT), str(clone)], check=True)
    return clone


def _worker_tasks(standin) -> dict[str, set]:
    """Record which worker reported which task (clearml-agent's status reports)."""
    seen: dict[str, set] = {}
    original = standin.api_workers_status_report

    def recording(payload: dict) -> dict:
        if payload.get("task"):
            seen.setdefault(payload.get("worker", ""), set()).add(payload["task"])
        return original(payload)

    standin.api_workers_status_report = recording
    return seen


def _sharded_qc(tmp_path: Path, standin, mono: Path, split: Path, report_dir: Path, wait_timeout_s: float):
    """Start `walkout qc --executor clearml --shards 2` (subprocess: ClearML reads its configuration once
    per process); returns the Popen (stdout/stderr piped)."""
    env = clearml_harness.client_env(standin, tmp_path / "client")
    env.update(WALKOUT_CLEARML_REPO_URL=mono.as_uri(), WALKOUT_CLEARML_POLL_S="0.5")
    command = [
        sys.executable,
        "-m",
        "walkout",
        "qc",
        "--videos",
        str(split),
        "--refs",
        str(mono / "model_refs.yaml"),
        "--report-dir",
        str(report_dir),
        "--executor",
        "clearml",
        "--queue",
        QUEUE,
        "--shards",
        "2",
        "--wait-timeout",
        str(wait_timeout_s),
    ]
    return subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


@needs_agent
def test_qc_sharded_over_two_real_agent_daemons_equals_the_local_run(
    tmp_path: Path, standin, mono: Path, tiny_split: Path
) -> None:
    from walkout.cli import main as walkout_main

    seen = _worker_tasks(standin)
    daemons = [clearml_harness.AgentDaemon(standin, QUEUE, tmp_path / f"daemon{i}") for i in (1, 2)]
    started = time.monotonic()
    try:
        clearml_harness.wait_for(
            lambda: len(standin.workers) == 2, REGISTER_TIMEOUT_S, "both daemons to register"
        )
        qc = _sharded_qc(tmp_path, standin, mono, tiny_split, tmp_path / "sharded", 300)
        stdout, stderr = qc.communicate(timeout=400)
        logs = [daemon.log()[-3000:] for daemon in daemons]
        assert qc.returncode == 0, (stdout[-2000:], stderr[-4000:], logs)
    finally:
        for daemon in daemons:
            daemon.stop()
    sharded_s = time.monotonic() - started
    # Two tasks, one per daemon (each daemon runs one task at a time), both completed.
    tasks = list(standin.tasks.values())
    assert sorted(task["status"] for task in tasks) == ["completed", "completed"]
    assert len(seen) == 2 and all(len(ids) == 1 for ids in seen.values()), seen

    assert walkout_main(["qc", "--videos", str(tiny_split), "--refs", str(mono / "model_refs.yaml"),
                         "--report-dir", str(tmp_path / "local")]) == 0  # fmt: skip
    sharded = json.loads((tmp_path / "sharded/report.json").read_text())
    local = json.loads((tmp_path / "local/report.json").read_text())
    timing = {"frames_per_s"}  # a measurement among the metrics, not a result
    assert set(sharded["metrics"]) == set(local["metrics"])
    assert {k: v for k, v in sharded["metrics"].items() if k not in timing} == {
        k: v for k, v in local["metrics"].items() if k not in timing
    }
    for key in ("per_class", "per_sample", "failures", "model", "experiment_id", "dataset"):
        assert sharded[key] == local[key], key
    for key in (
        "per_video",
        "review",
        "confidence_intervals",
        "review_flags",
        "video_end",
        "mode",
        "components",
    ):
        assert sharded["extra"][key] == local["extra"][key], key
    assert (sharded["extra"]["executor"], sharded["extra"]["shards"]) == ("clearml", 2)
    assert {sample["id"] for sample in sharded["per_sample"]} == set(app_gate.SCENARIOS)
    assert (
        sharded["code_commit"]
        == subprocess.run(
            ["git", "-C", str(mono), "rev-parse", "HEAD"], capture_output=True, text=True, check=True
        ).stdout.strip()
    )
    print(f"sharded QC over two daemons: {sharded_s:.0f} s")


@needs_agent
def test_a_killed_daemon_makes_sharded_qc_an_error_within_the_timeout(
    tmp_path: Path, standin, mono: Path, tiny_split: Path
) -> None:
    seen = _worker_tasks(standin)
    daemons = [clearml_harness.AgentDaemon(standin, QUEUE, tmp_path / f"daemon{i}") for i in (1, 2)]
    report_dir = tmp_path / "sharded"
    report_dir.mkdir()
    (report_dir / "report.json").write_text("{}")  # a stale report must not survive the ERROR
    wait_timeout_s = 60.0
    try:
        clearml_harness.wait_for(
            lambda: len(standin.workers) == 2, REGISTER_TIMEOUT_S, "both daemons to register"
        )
        started = time.monotonic()
        qc = _sharded_qc(tmp_path, standin, mono, tiny_split, report_dir, wait_timeout_s)
        # Kill the daemon running shard 1 (with its task process) once it is on it.
        clearml_harness.wait_for(lambda: len(standin.tasks) == 2, 60, "both shard tasks")
        first = next(task["id"] for task in standin.tasks.values() if "shard 1/2" in task["name"])
        clearml_harness.wait_for(
            lambda: any(first in ids for ids in seen.values()) and any(first in d.log() for d in daemons),
            60,
            "a daemon to run shard 1",
        )
        victim = next(daemon for daemon in daemons if first in daemon.log())
        victim.kill()
        stdout, stderr = qc.communicate(timeout=wait_timeout_s + 120)
        elapsed = time.monotonic() - started
    finally:
        for daemon in daemons:
            daemon.stop()
    assert qc.returncode == 2, (stdout[-2000:], stderr[-3000:])
    assert elapsed < wait_timeout_s + 60, elapsed
    assert not (report_dir / "report.json").exists()
    errors = json.loads((report_dir / "errors.json").read_text())
    assert errors["verdict"] == "ERROR" and "QC verdict: ERROR" in stderr
    lost = [video for video, message in errors["errors"].items() if "did not finish within 60 s" in message]
    assert lost and all("shard 1/2" in errors["errors"][video] for video in lost), errors
    # Nothing is left running or queued: the lost shard's task was stopped.
    assert standin.tasks[first]["status"] == "stopped"
    assert all(task["status"] in ("completed", "stopped", "failed") for task in standin.tasks.values())
    print(f"killed daemon -> ERROR after {elapsed:.0f} s (wait timeout {wait_timeout_s:.0f} s)")


# --------------------------------------------------------------------------------------------------
# Fail closed without a server: the wait loop, the lock check, the CLI's refusals


class _FakeTask:
    """Just what the wait loop asks a clearml Task: id, get_status, reload, data, web page."""

    def __init__(self, task_id: str, statuses: list[str]) -> None:
        self.id = task_id
        self._statuses = statuses
        self.data = type("Data", (), {"status_reason": "model crashed", "status_message": None})()

    def get_status(self) -> str:
        return self._statuses.pop(0) if len(self._statuses) > 1 else self._statuses[0]

    def reload(self) -> None:
        pass

    def get_output_log_web_page(self) -> str:
        return f"http://server/{self.id}"


def _launched(tmp_path: Path, task_id: str, statuses: list[str]):
    from walkout_ci.executors import PredictionRequest
    from walkout_ci.executors.clearml import ClearMLExecutorOptions, LaunchedPrediction

    request = PredictionRequest(
        repo_root=tmp_path, component_dir="app", component="app", commit="0" * 40, command=("x",),
        workdir=".", timeout_s=10.0, model_ref="model_refs.yaml", weights_sha256="0" * 64,
        inputs_dir=tmp_path, predictions_dir=tmp_path / task_id, label=f"shard of {task_id}",
    )  # fmt: skip
    options = ClearMLExecutorOptions(poll_s=0.01, api_timeout_s=5.0)
    return LaunchedPrediction(
        request=request, options=options, task=_FakeTask(task_id, statuses), started=0.0
    )


def test_a_failed_shard_ends_the_wait_at_once_and_a_stuck_one_at_the_deadline(tmp_path: Path) -> None:
    from walkout.shard import wait_for_shards

    running = _launched(tmp_path, "t1", ["in_progress"])
    crashed = _launched(tmp_path, "t2", ["queued", "in_progress", "failed"])
    started = time.monotonic()
    failed = wait_for_shards([running, crashed], timeout_s=30, poll_s=0.01, api_timeout_s=5)
    assert time.monotonic() - started < 5  # not the 30 s deadline
    assert list(failed) == [1] and "status 'failed' (model crashed)" in failed[1]
    done = _launched(tmp_path, "t3", ["completed"])
    stuck = _launched(tmp_path, "t4", ["queued"])
    failed = wait_for_shards([done, stuck], timeout_s=0.3, poll_s=0.01, api_timeout_s=5)
    assert list(failed) == [1] and "did not finish within 0 s (last status 'queued')" in failed[1]
    assert wait_for_shards([done], timeout_s=0.3, poll_s=0.01, api_timeout_s=5) == {}


def test_the_lock_file_must_be_committed_as_it_is(tmp_path: Path) -> None:
    from walkout.shard import locate_lock

    repo = tmp_path / "repo"
    (repo / "app").mkdir(parents=True)
    (repo / "app/gate.yaml").write_text("component: app\n")
    lock = repo / "model_refs.yaml"
    lock.write_text("schema_version: 1\n")
    for command in (
        ["init", "-q"],
        ["add", "-A"],
        ["-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "x"],
    ):
        subprocess.run(["git", "-C", str(repo), *command], check=True)  # fmt: skip
    checkout = locate_lock(lock)
    assert (checkout.lock_path, checkout.app_dir, len(checkout.commit)) == ("model_refs.yaml", "app", 40)
    lock.write_text("schema_version: 1\n# edited\n")
    with pytest.raises(QCError, match=r"differs from .* commit the lock file first"):
        locate_lock(lock)


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["--refs", "model_refs.yaml", "--shards", "2"], "need --executor clearml"),
        (["--oracle", "--executor", "clearml"], "agents never get the ground truth"),
        (["--refs", "model_refs.yaml", "--executor", "clearml", "--shards", "0"], "--shards must be >= 1"),
    ],
)
def test_qc_cli_refuses_what_sharding_cannot_do(
    tmp_path: Path, capsys, arguments: list, message: str
) -> None:
    from walkout.cli import main as walkout_main

    (tmp_path / "videos").mkdir()
    code = walkout_main(["qc", "--videos", str(tmp_path), "--report-dir", str(tmp_path / "r"), *arguments])
    assert code == 2 and message in capsys.readouterr().err
