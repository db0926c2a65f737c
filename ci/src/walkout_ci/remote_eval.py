"""Entry point of a remote prediction task: what clearml-agent runs for the `clearml` executor.

Only the UNTRUSTED stage of an evaluation runs here (walkout_ci.evaluation: prepare and score stay
on the gate's machine with the target branch's code). The agent never gets the blind key, the
ground truth or the dataset: only the prepared inputs folder.

`python -m walkout_ci.remote_eval`, started by clearml-agent in a checkout of the requested commit
(working directory: the repository root), with the task's parameters (section "General", set by
`walkout_ci.executors.clearml`):

    component        component name (messages)
    component_dir    component folder relative to the repository root ("" = root)
    command          JSON list: gate.yaml `evaluate.predict` with {model} {inputs} {predictions} {python}
    workdir          gate.yaml evaluate.workdir, relative to the component folder
    timeout_s        prediction timeout in seconds
    model_kind       "pin": `model` is an experiment id or a repository-relative model_ref.yaml
                     (bundled exports in <component_dir>/experiments are searched);
                     "file": `model` is a repository-relative file of the checkout (the app's lock file)
    model            see model_kind
    weights_sha256   expected sha256 of the resolved model file (fail closed on a mismatch)
    inputs           the prepared inputs folder, on storage this agent mounts
    label            "baseline" | "candidate" | ... (messages)
    require_isolation  true on sealed (blind) data: refuse to run without the sandbox

It resolves and verifies the model, copies the weights (a "file" model stays in the checkout) and the
inputs into a scratch folder, runs the predict command inside walkout_ci.sandbox when this machine
has it (else with the allow-listed environment only, which the log says) and uploads the predictions
folder as the artifact "predictions" (with predict.log). Any failure marks the task failed (exit
code 2) and uploads nothing.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
from pathlib import Path, PurePosixPath
from typing import Any

from walkout_ci.errors import EvaluationError, WalkoutCIError
from walkout_ci.signals import Interrupted, interruptible

PREDICTIONS_ARTIFACT = "predictions"
LOG_FILENAME = "predict.log"
MODEL_KINDS = ("pin", "file")
DEFAULT_PARAMS: dict[str, Any] = {
    "component": "",
    "component_dir": "",
    "command": "[]",
    "workdir": ".",
    "timeout_s": 1800.0,
    "model_kind": "pin",
    "model": "",
    "weights_sha256": "",
    "inputs": "",
    "label": "candidate",
    "require_isolation": False,
}


def parse_command(raw: str) -> list[str]:
    """The `command` parameter: a JSON list of strings; EvaluationError naming the problem otherwise."""
    try:
        command = json.loads(raw)
    except ValueError as error:
        raise EvaluationError(f"task parameter 'command' is not a JSON list: {error}") from error
    if not isinstance(command, list) or not command or not all(isinstance(c, str) for c in command):
        raise EvaluationError(
            f"task parameter 'command' must be a non-empty list of strings, got {command!r}"
        )
    return command


def inside_repo(repo_root: Path, relative: str, what: str) -> Path:
    """`repo_root / relative` for a relative POSIX path without '..'; EvaluationError otherwise."""
    pure = PurePosixPath(relative)
    if not relative or pure.is_absolute() or ".." in pure.parts:
        raise EvaluationError(
            f"task parameter {what}={relative!r} must be a path relative to the repository, without '..'"
        )
    return repo_root / pure


def resolve_model(params: dict[str, Any], repo_root: Path) -> Path:
    """The verified local model file named by `model_kind` / `model`; sha256 must be `weights_sha256`."""
    from walkout_ci import pins
    from walkout_ci.report import sha256_of_file

    kind, model, expected = params["model_kind"], str(params["model"]), str(params["weights_sha256"])
    if kind not in MODEL_KINDS:
        raise EvaluationError(f"task parameter model_kind={kind!r}: allowed are {', '.join(MODEL_KINDS)}")
    if not model:
        raise EvaluationError("task parameter 'model' is empty: nothing to predict with")
    if len(expected) != 64:
        raise EvaluationError("task parameter 'weights_sha256' must be the 64-hex sha256 of the model")
    if kind == "file":
        path = inside_repo(repo_root, model, "model")
        if not path.is_file():
            raise EvaluationError(f"model file {model!r} does not exist in this checkout")
    else:
        component_root = repo_root / params["component_dir"]
        candidate = repo_root / model
        ref: str | Path = candidate if "/" in model and candidate.is_file() else model
        path = pins.resolve_model_ref(ref, search=[component_root / "experiments"])
    actual = sha256_of_file(path)
    if actual != expected:
        raise EvaluationError(
            f"model {model!r} resolved to {path} with sha256 {actual}, expected {expected}: not the model "
            "the gate verified"
        )
    return Path(path)


def _truthy(value: Any) -> bool:
    """A task parameter as a bool (ClearML returns parameters as strings on the agent)."""
    return value is True or str(value).strip().lower() in ("1", "true", "yes", "on")


def _hidden_folders(workdir: Path) -> list[Path]:
    """Folders of this agent the model code must not read: the walkout store, ClearML's config folder
    (credentials) when it is not above the checkout or the interpreter (hiding those hides the code)."""
    from walkout_ci.store import walkout_home

    candidates = [walkout_home()]
    config = os.environ.get("CLEARML_CONFIG_FILE")
    if config:
        candidates.append(Path(config).expanduser().parent)
    needed = [workdir.resolve(), Path(sys.executable).resolve()]
    hidden: list[Path] = []
    for folder in sorted(
        {path.resolve() for path in candidates if path.is_dir()}, key=lambda p: len(p.parts)
    ):
        # A folder inside one already hidden has no mount point left to cover (generated
        # clearml.conf lives in the store).
        if any(path.is_relative_to(folder) for path in needed) or any(
            folder.is_relative_to(h) for h in hidden
        ):
            continue
        hidden.append(folder)
    return hidden


def run_prediction(params: dict[str, Any], repo_root: Path, output: Path) -> list[str]:
    """Resolve the model, run the predict command; the predictions (+ predict.log) end up in `output`.

    Returns notes on the isolation it ran with. EvaluationError on anything that went wrong.
    """
    from walkout_ci import sandbox
    from walkout_ci.process import fill_command, run_logged

    command = parse_command(str(params["command"]))
    component_root = repo_root / params["component_dir"] if params["component_dir"] else repo_root
    workdir = component_root / str(params["workdir"])
    if not workdir.is_dir():
        raise EvaluationError(f"workdir {params['workdir']!r} does not exist in the checkout")
    inputs_source = Path(str(params["inputs"]))
    if not str(params["inputs"]) or not inputs_source.is_dir():
        raise EvaluationError(
            f"the inputs folder {str(params['inputs'])!r} is not reachable from this agent: mount the "
            "executor's WALKOUT_CLEARML_INPUTS_ROOT here"
        )
    model_file = resolve_model(params, repo_root)
    isolation = sandbox.probe()
    if not isolation.available and _truthy(params.get("require_isolation")):
        raise EvaluationError(
            "refusing to run the model code of a change on the sealed blind set's inputs without the "
            f"sandbox on this agent: {isolation.reason}"
        )
    notes = []
    scratch = Path(tempfile.mkdtemp(prefix="walkout-remote-predict-"))
    scratch.chmod(0o755)
    try:
        if params["model_kind"] == "file":
            # A file of the checkout (the app's lock file) names the component code and bundled
            # models relative to itself: it is used in place, as the local executor does.
            model = model_file
        else:
            model = scratch / "model" / model_file.name
            model.parent.mkdir()
            shutil.copyfile(model_file, model)
        inputs = scratch / "inputs"
        shutil.copytree(inputs_source, inputs, symlinks=False)
        predictions = scratch / "predictions"
        private = scratch / "private"
        for folder in (predictions, private):
            folder.mkdir()
        filled = fill_command(command, {"model": model, "inputs": inputs, "predictions": predictions})
        source = component_root / "src"
        environment = sandbox.clean_environment(
            {
                "HOME": os.fspath(private),
                "TMPDIR": os.fspath(private),
                "WALKOUT_HOME": os.fspath(private / "walkout-home"),
                "PYTHONPATH": os.fspath(source) if source.is_dir() else "",
                "MPLCONFIGDIR": os.fspath(private),
            }
        )
        hidden = [*_hidden_folders(workdir)]
        if params["model_kind"] == "pin":
            hidden.append(component_root / "experiments")  # other models are not the code's business
        if isolation.available:
            wrapped = sandbox.sandboxed(
                filled, writable=[predictions, private], hidden=hidden, isolation=isolation
            )
        else:
            wrapped = filled
            notes.append(
                f"the {params['label']}'s prediction ran on the agent without the sandbox "
                f"({isolation.reason}): allow-listed environment only, network and file system not isolated"
            )
        run_logged(
            wrapped,
            cwd=workdir,
            env=environment,
            timeout_s=float(params["timeout_s"]),
            log_path=scratch / LOG_FILENAME,
            what=f"the {params['label']}'s prediction on the agent",
            shown=filled,
        )
        output.mkdir(parents=True, exist_ok=True)
        for entry in predictions.iterdir():
            os.replace(entry, output / entry.name)
        log = sandbox.redact((scratch / LOG_FILENAME).read_text(errors="replace"))
        (output / LOG_FILENAME).write_text("".join(f"# {note}\n" for note in notes) + log)
        return notes
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    """Run as a ClearML task (see module docstring); 0 ok, 2 prediction failed, 128+n on a signal."""
    parser = argparse.ArgumentParser(
        prog="python -m walkout_ci.remote_eval", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--repo-root", type=Path, default=Path.cwd())
    args = parser.parse_args(argv)
    with interruptible():
        try:
            return _run(args.repo_root.absolute())
        except Interrupted as stop:
            print(f"walkout_ci.remote_eval: {stop}", file=sys.stderr)
            return stop.exit_code


def _run(repo_root: Path) -> int:
    from walkout_ci import experiment

    exp = experiment.start(
        "walkout/evaluation", "remote prediction", dict(DEFAULT_PARAMS), task_type="testing"
    )
    try:
        with tempfile.TemporaryDirectory(prefix="walkout-remote-out-") as scratch:
            output = Path(scratch) / PREDICTIONS_ARTIFACT
            for note in run_prediction(exp.params, repo_root, output):
                print(f"note: {note}", file=sys.stderr)
            if not exp.upload_folder(output, PREDICTIONS_ARTIFACT):
                raise EvaluationError("the predictions could not be uploaded to ClearML")
    except WalkoutCIError as error:
        print(f"remote prediction failed: {error}", file=sys.stderr)
        exp.close(status="failed")
        return 2
    except BaseException:
        exp.close(status="failed")
        raise
    exp.close(status="completed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
