"""Entry point of a remote evaluation task: what clearml-agent runs for the `clearml` executor.

`python -m walkout_ci.remote_eval`, started by clearml-agent in a checkout of the requested commit
(working directory: the repository root), with the task's parameters (section "General", set by
`walkout_ci.executors.clearml`):

    component        component name (report check)
    component_dir    component folder relative to the repository root ("" = root)
    command          JSON list: the gate.yaml evaluate command with {model} {data} {report_dir} {python}
    workdir          gate.yaml evaluate.workdir, relative to the component folder
    timeout_s        evaluation timeout in seconds
    model            model reference resolvable here: experiment id or model_ref.yaml path (relative
                     to the repository root); bundled exports in <component_dir>/experiments are searched
    weights_sha256   expected sha256 of the resolved weights (fail closed on mismatch)
    data             dataset folder or sealed blind archive reachable from the agent
                     (a sealed archive needs WALKOUT_BLIND_KEY in the agent's environment)
    dataset_hash     expected dataset hash (checked against the report)

It resolves the model, runs the command, validates the report and uploads the report folder as the
artifact "report". Any failure marks the task failed (exit code 2) and uploads nothing.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from walkout_ci.errors import EvaluationError, WalkoutCIError

REPORT_ARTIFACT = "report"
DEFAULT_PARAMS: dict[str, Any] = {
    "component": "",
    "component_dir": "",
    "command": "[]",
    "workdir": ".",
    "timeout_s": 1800.0,
    "model": "",
    "weights_sha256": "",
    "data": "",
    "dataset_hash": "",
    "label": "candidate",
}


@contextlib.contextmanager
def dataset_folder(data: str) -> Iterator[Path]:
    """The dataset folder to evaluate on: `data` itself, or a sealed archive decrypted temporarily."""
    from walkout_ci import blind

    if blind.is_sealed(data):
        with blind.open_sealed(data) as root:
            yield root
    else:
        path = Path(data)
        if not path.is_dir():
            raise EvaluationError(f"dataset {data!r} is not a folder reachable from this agent")
        yield path


def run_evaluation(params: dict[str, Any], repo_root: Path, report_dir: Path) -> dict:
    """Resolve the model, run the evaluate command, return the validated report written to report_dir."""
    from walkout_ci import pins
    from walkout_ci.executors.local import fill_command
    from walkout_ci.report import read_report
    from walkout_ci.store import sha256_file

    try:
        command = json.loads(params["command"])
    except ValueError as error:
        raise EvaluationError(f"task parameter 'command' is not a JSON list: {error}") from error
    if not isinstance(command, list) or not command or not all(isinstance(c, str) for c in command):
        raise EvaluationError(
            f"task parameter 'command' must be a non-empty list of strings, got {command!r}"
        )
    component_root = repo_root / params["component_dir"]
    model = params["model"]
    model_path = repo_root / model if (repo_root / model).is_file() else model
    weights = pins.resolve_model_ref(model_path, search=[component_root / "experiments"])
    actual = sha256_file(weights)
    if params["weights_sha256"] and actual != params["weights_sha256"]:
        raise EvaluationError(
            f"model {model!r} resolved to {weights} with sha256 {actual}, expected {params['weights_sha256']}"
        )
    environment = dict(os.environ)
    source = component_root / "src"
    if source.is_dir():
        environment["PYTHONPATH"] = os.pathsep.join(
            [str(source), *([environment["PYTHONPATH"]] if environment.get("PYTHONPATH") else [])]
        )
    with dataset_folder(params["data"]) as data:
        filled = fill_command(tuple(command), model=Path(weights), data=data, report_dir=report_dir)
        try:
            completed = subprocess.run(
                filled,
                cwd=component_root / params["workdir"],
                env=environment,
                capture_output=True,
                text=True,
                timeout=float(params["timeout_s"]),
                check=False,
            )
        except subprocess.TimeoutExpired as error:
            raise EvaluationError(f"evaluation timed out after {params['timeout_s']} s") from error
        except OSError as error:
            raise EvaluationError(f"cannot run {filled[0]!r}: {error}") from error
    sys.stdout.write(completed.stdout)
    sys.stderr.write(completed.stderr)
    if completed.returncode != 0:
        raise EvaluationError(
            f"evaluation exited with code {completed.returncode}: {completed.stderr[-2000:]}"
        )
    return read_report(report_dir)


def main(argv: list[str] | None = None) -> int:
    """Run as a ClearML task (see module docstring); 0 ok, 2 evaluation failed."""
    from walkout_ci import experiment

    parser = argparse.ArgumentParser(
        prog="python -m walkout_ci.remote_eval", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--repo-root", type=Path, default=Path.cwd())
    args = parser.parse_args(argv)
    exp = experiment.start(
        "walkout/evaluation", "remote evaluation", dict(DEFAULT_PARAMS), task_type="testing"
    )
    try:
        with tempfile.TemporaryDirectory(prefix="walkout-remote-eval-") as scratch:
            report_dir = Path(scratch) / "report"
            report = run_evaluation(exp.params, args.repo_root.absolute(), report_dir)
            exp.log_metrics(report["metrics"])
            if not exp.upload_folder(report_dir, REPORT_ARTIFACT):
                raise EvaluationError("the report could not be uploaded to ClearML")
    except WalkoutCIError as error:
        print(f"remote evaluation failed: {error}", file=sys.stderr)
        exp.close(status="failed")
        return 2
    exp.close(status="completed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
