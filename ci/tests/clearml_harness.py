"""TEST-ONLY helpers shared by the ClearML tests: environments, the executor client, real agents.

The client side (executor, clone, push) runs in subprocesses because ClearML reads its configuration
once per process. `AgentProcess` runs a REAL `clearml-agent` (`execute --id` or `daemon --queue ...
--foreground`) against the stand-in with the environment the issue measured: no venv creation, no
pip install (`CLEARML_AGENT_SKIP_PYTHON_ENV_INSTALL=1`, `CLEARML_AGENT_SKIP_PIP_VENV_INSTALL=<this
python>`), so the agent runs tasks with this interpreter and its installed packages.
"""

from __future__ import annotations

import importlib.util
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

_SPEC = importlib.util.spec_from_file_location(
    "clearml_standin", Path(__file__).with_name("clearml_standin.py")
)
clearml_standin = importlib.util.module_from_spec(_SPEC)
_SPEC.loader.exec_module(clearml_standin)

# Where a test run finds clearml-agent when it is not installed in this environment (a developer's
# scratch install: `pip install --target DIR clearml-agent==3.0.3 requests==2.32.5 ...`).
AGENT_PATH_ENV_VAR = "WALKOUT_TEST_CLEARML_AGENT_PATH"


def agent_available() -> bool:
    """Is `clearml_agent` importable here (installed, or under WALKOUT_TEST_CLEARML_AGENT_PATH)?"""
    extra = os.environ.get(AGENT_PATH_ENV_VAR)
    code = "import clearml_agent"
    env = dict(os.environ, PYTHONPATH=extra) if extra else None
    return subprocess.run([sys.executable, "-c", code], env=env, capture_output=True).returncode == 0


def client_env(standin, home: Path) -> dict[str, str]:
    """This process's environment without ClearML/walkout settings, pointed at the stand-in."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CLEARML_", "TRAINS_", "WALKOUT_"))}
    env.update(standin.env())
    env.update(WALKOUT_HOME=str(home / "walkout"), HOME=str(home))
    home.mkdir(parents=True, exist_ok=True)
    return env


def agent_env(standin, home: Path) -> dict[str, str]:
    """The environment of a real clearml-agent: the stand-in, its own HOME (checkouts, caches), the
    interpreter it runs tasks with, and no venv/pip installs."""
    env = client_env(standin, home)
    env["CLEARML_AGENT_SKIP_PYTHON_ENV_INSTALL"] = "1"
    env["CLEARML_AGENT_SKIP_PIP_VENV_INSTALL"] = sys.executable
    env["CLEARML_AGENT_QUEUE_POLL_FREQ_SEC"] = "1"  # the daemon's default of 5 s only slows tests down
    extra = os.environ.get(AGENT_PATH_ENV_VAR)
    if extra:
        env["PYTHONPATH"] = extra
    return env


def execute_task(standin, task_id: str, home: Path, timeout_s: float = 120.0) -> subprocess.CompletedProcess:
    """Run `clearml-agent execute --id TASK` to completion (what the agent does for one task)."""
    return subprocess.run(
        [sys.executable, "-m", "clearml_agent", "execute", "--id", task_id],
        env=agent_env(standin, home),
        capture_output=True,
        text=True,
        timeout=timeout_s,
    )


class AgentDaemon:
    """`clearml-agent daemon --queue Q --foreground`, started and stopped by a test."""

    def __init__(self, standin, queue: str, home: Path) -> None:
        self.log_path = home / "daemon.log"
        home.mkdir(parents=True, exist_ok=True)
        self._log = open(self.log_path, "wb")  # noqa: SIM115 (closed in stop())
        self.process = subprocess.Popen(
            [sys.executable, "-m", "clearml_agent", "daemon", "--queue", queue, "--foreground"],
            env=agent_env(standin, home),
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def stop(self, timeout_s: float = 30.0) -> int:
        """SIGTERM the daemon (its task too, same session); SIGKILL after `timeout_s`."""
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=timeout_s)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()
        self._log.close()
        return self.process.returncode

    def kill(self) -> None:
        """SIGKILL the daemon and its children at once (a lost worker)."""
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()


def wait_for(condition, timeout_s: float, what: str, poll_s: float = 0.1) -> None:
    """Poll `condition()` until true; AssertionError naming `what` after `timeout_s`."""
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout_s:.0f} s waiting for {what}")
        time.sleep(poll_s)


# Runs one evaluation (trusted prepare, clearml predict, trusted score) of the fake component in a
# subprocess; prints one JSON line: the run or the error.
EVALUATE_SCRIPT = r"""
import functools, json, sys
from pathlib import Path
from walkout_ci import gitrepo, pins
from walkout_ci.errors import WalkoutCIError
from walkout_ci.evaluation import Candidate, EvaluationContext, Scorer, evaluate
from walkout_ci.executors.clearml import ClearMLExecutorOptions, run_clearml_prediction
from walkout_ci.gate_config import load_gate_config
from walkout_ci.report import dataset_hash, sha256_of_file

repo, data, report_dir, model_ref, options = sys.argv[1:6]
repo = Path(repo)
component = repo / "comp"
commit = gitrepo.resolve_commit(repo, "HEAD")
ref = str(repo / model_ref) if (repo / model_ref).is_file() else model_ref
weights = pins.resolve_model_ref(ref, search=[component / "experiments"])
options = json.loads(options)
if options.get("inputs_root"):
    options["inputs_root"] = Path(options["inputs_root"])
context = EvaluationContext(
    repo_root=repo, component_dir="comp", component="fake", data=Path(data),
    dataset_hash=dataset_hash(data), track=False,
    predictor=functools.partial(run_clearml_prediction, options=ClearMLExecutorOptions(**options)))
candidate = Candidate(label="candidate", commit=commit, model_ref=ref,
                      weights_sha256=sha256_of_file(weights), model_path=weights)
try:
    run = evaluate(context, Scorer(commit=commit, evaluate=load_gate_config(component).evaluate), candidate,
                   Path(report_dir))
except WalkoutCIError as error:
    print(json.dumps({"error": str(error), "type": type(error).__name__}))
    sys.exit(error.exit_code)
print(json.dumps({"task_id": run.experiment_id, "link": run.experiment_link, "executor": run.executor,
                  "metrics": run.report["metrics"], "per_sample": run.report["per_sample"],
                  "report_dir": str(run.report_dir), "notes": run.notes}))
"""


def run_evaluation(
    tmp_path: Path, standin, repo: Path, data: Path, model_ref: str, timeout_s: float = 180.0, **options
) -> tuple[int, dict]:
    """Evaluate `model_ref` of the fake component at HEAD with the clearml executor (subprocess);
    returns (exit code, the JSON line it printed). options: ClearMLExecutorOptions fields."""
    options.setdefault("poll_s", 0.2)
    options.setdefault("wait_timeout_s", 120.0)
    report_dir = tmp_path / "reports" / model_ref.replace("/", "_")
    result = subprocess.run(
        [
            sys.executable,
            "-c",
            EVALUATE_SCRIPT,
            str(repo),
            str(data),
            str(report_dir),
            model_ref,
            json.dumps(options),
        ],
        env=client_env(standin, tmp_path / "client"),
        capture_output=True,
        text=True,
        timeout=timeout_s,
    )
    lines = [line for line in result.stdout.splitlines() if line.startswith("{")]
    assert lines, (result.stdout[-3000:], result.stderr[-3000:])
    return result.returncode, json.loads(lines[-1])
