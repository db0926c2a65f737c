"""`walkout-ci clone`: clone an experiment, change a few parameters, schedule it or run it here.

Online (a ClearML server is configured and the id is a server id): `Task.clone`, the overrides set as
"General/<key>" parameters (what `experiment.start(params=...)` connected), then `Task.enqueue` on a
queue (or left as a draft). The clone's code reads them through `exp.params` under clearml-agent.

Locally (`local=True`, or an offline/local id): the recorded command line (`code.argv`, run in
`code.cwd`) is run again with `WALKOUT_CI_PARAMS_OVERRIDE` set to the overrides, which
`experiment.start` applies to its params; the rerun is a new experiment.

A record is data anyone can edit (a bundle in a pull request, a copied store), so the local rerun
runs only our own training entry points (`ENTRY_POINTS`): the recorded argv must be
`<python> -m walkout_<component>.cli train ...`, the module file itself (what `sys.argv` holds under
`python -m`) or the console script `walkout-<component> train ...`, with only the options of that
component's `train` command. It is rerun as `sys.executable -m <module> train <options>` without a
shell: never the recorded executable. Anything else is an ExperimentError naming the recorded
command and what is allowed. Keep `ENTRY_POINTS` in step with the components' `train` options.
"""

from __future__ import annotations

import json
import logging
import os
import re
import subprocess
import sys
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from walkout_ci import clearml_config
from walkout_ci.deadline import call_with_deadline
from walkout_ci.errors import ConfigError, ExperimentError
from walkout_ci.experiment import PARAMS_OVERRIDE_ENV_VAR
from walkout_ci.gitrepo import code_commit
from walkout_ci.pins import OFFLINE_ID_PREFIXES, locate_experiment
from walkout_ci.store import Store

LOGGER = logging.getLogger("walkout_ci.clone")


def parse_overrides(items: Iterable[str]) -> dict[str, Any]:
    """`["optim.lr=0.01", "epochs=3"]` -> {"optim.lr": 0.01, "epochs": 3} (values parsed as YAML scalars)."""
    overrides: dict[str, Any] = {}
    for item in items:
        key, sep, raw = item.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"--set {item!r}: expected KEY=VALUE, e.g. --set optim.lr=0.01")
        try:
            value = yaml.safe_load(raw) if raw.strip() else ""
        except yaml.YAMLError:
            value = raw
        overrides[key.strip()] = value
    return overrides


@dataclass(frozen=True)
class EntryPoint:
    """One training command `clone --local` may rerun.

    module: the CLI module (`python -m <module>`); script: its console script name; subcommand: the
    only subcommand allowed; options: {"--option": takes a value?} accepted after the subcommand.
    """

    module: str
    script: str
    subcommand: str
    options: Mapping[str, bool]


ENTRY_POINTS: tuple[EntryPoint, ...] = (
    EntryPoint(
        "walkout_detection.cli",
        "walkout-detection",
        "train",
        {
            "--data": True,
            "--val-data": True,
            "--output": True,
            "--config": True,
            "--set": True,
            "--name": True,
            "--no-progress": False,
        },
    ),
    EntryPoint(
        "walkout_pose.cli",
        "walkout-pose",
        "train",
        {
            "--data": True,
            "--val-data": True,
            "--out": True,
            "--config": True,
            "--epochs": True,
            "--name": True,
            "--no-progress": False,
        },
    ),
    EntryPoint(
        "walkout_tracking.cli",
        "walkout-tracking",
        "train",
        {
            "--data": True,
            "--val-data": True,
            "--config": True,
            "--out": True,
            "--epochs": True,
            "--quiet": False,
        },
    ),
)
_PYTHON_NAME = re.compile(r"^python(\d+(\.\d+)?)?$")


def _describe_allowed(entry_points: Sequence[EntryPoint]) -> str:
    return "; ".join(
        f"`python -m {entry.module} {entry.subcommand} ...` or `{entry.script} {entry.subcommand} ...`"
        for entry in entry_points
    )


def _match_entry_point(
    argv: Sequence[str], entry_points: Sequence[EntryPoint]
) -> tuple[EntryPoint, list[str]]:
    """(entry point, arguments after the program) of a recorded argv; ValueError when none matches."""
    program = str(argv[0])
    name = Path(program).name
    for entry in entry_points:
        module_file = entry.module.replace(".", "/") + ".py"
        if name == entry.script or program == module_file or program.endswith("/" + module_file):
            return entry, list(argv[1:])
        if _PYTHON_NAME.match(name) and len(argv) >= 3 and argv[1] == "-m" and argv[2] == entry.module:
            return entry, list(argv[3:])
    raise ValueError("the program is not one of our training entry points")


def _check_arguments(entry: EntryPoint, arguments: Sequence[str]) -> list[str]:
    """The arguments if they are `<subcommand>` + known options of `entry`; ValueError naming the bad one."""
    if not arguments or arguments[0] != entry.subcommand:
        got = repr(arguments[0]) if arguments else "nothing"
        raise ValueError(f"expected the subcommand {entry.subcommand!r}, got {got}")
    index = 1
    while index < len(arguments):
        token = arguments[index]
        option, equals, _ = token.partition("=")
        if option not in entry.options:
            raise ValueError(
                f"argument {token!r} is not an option of `{entry.script} {entry.subcommand}` "
                f"(allowed: {', '.join(sorted(entry.options))})"
            )
        takes_value = entry.options[option]
        if equals and not takes_value:
            raise ValueError(f"option {option} takes no value, got {token!r}")
        if takes_value and not equals:
            index += 1
            if index >= len(arguments) or arguments[index].startswith("-"):
                raise ValueError(f"option {option} needs a value")
        index += 1
    return list(arguments)


def rerun_command(
    argv: Sequence[object], *, experiment_id: str = "?", entry_points: Sequence[EntryPoint] | None = None
) -> list[str]:
    """The command that reruns a recorded training argv: `[sys.executable, "-m", module, *arguments]`.

    argv: the record's `code.argv`. Raises ExperimentError naming the recorded command and what is
    allowed when it is not one of `entry_points` (default ENTRY_POINTS) with valid arguments.
    """
    entry_points = ENTRY_POINTS if entry_points is None else entry_points
    try:
        if (
            not isinstance(argv, list | tuple)
            or not argv
            or not all(isinstance(item, str) and "\0" not in item for item in argv)
        ):
            raise ValueError("it must be a non-empty list of strings")
        entry, arguments = _match_entry_point([str(item) for item in argv], entry_points)
        arguments = _check_arguments(entry, arguments)
    except ValueError as problem:
        raise ExperimentError(
            f"experiment {experiment_id}: recorded command {list(argv)!r} cannot be rerun: {problem}. "
            f"`clone --local` reruns only our training entry points: {_describe_allowed(entry_points)}"
        ) from None
    return [sys.executable, "-m", entry.module, *arguments]


@dataclass(frozen=True)
class CloneResult:
    """What `clone` did: the new task id (online) or the rerun's exit code (local)."""

    source_id: str
    new_id: str | None = None
    queue: str | None = None
    exit_code: int | None = None


def clone_online(
    experiment_id: str,
    overrides: dict[str, Any],
    *,
    queue: str | None,
    name: str | None,
    timeout_s: float = 120.0,
) -> CloneResult:
    """Clone a server task, set "General/<key>" overrides, optionally enqueue it."""
    store = Store.open()
    server = clearml_config.configure(store)
    if server is None:
        raise ExperimentError("no ClearML server is configured; use --local to rerun the experiment here")
    problem = clearml_config.probe_server(server)
    if problem is not None:
        raise ExperimentError(f"ClearML server {server.api_host} is unreachable: {problem}")

    def run() -> Any:
        from clearml import Task

        Task.set_offline(False)
        source = Task.get_task(task_id=experiment_id)
        if source is None or source.id != experiment_id:
            raise ExperimentError(f"experiment {experiment_id} is not on the server {server.api_host}")
        cloned = Task.clone(source_task=source, name=name or f"{source.name} (clone)")
        if overrides:
            cloned.set_parameters({f"General/{key}": value for key, value in overrides.items()})
        if queue:
            Task.enqueue(cloned, queue_name=queue)
        return cloned

    try:
        clone = call_with_deadline(run, timeout_s, "ClearML clone")
    except ExperimentError:
        raise
    except Exception as error:
        raise ExperimentError(
            f"cloning {experiment_id} on {server.api_host} failed: {type(error).__name__}: {error}"
        ) from error
    return CloneResult(source_id=experiment_id, new_id=str(clone.id), queue=queue)


def clone_local(
    experiment_id: str,
    overrides: dict[str, Any],
    *,
    search: Sequence[str | Path] = (),
    cwd: str | Path | None = None,
) -> CloneResult:
    """Rerun an experiment's recorded command line here with parameter overrides; returns its exit code."""
    location = locate_experiment(experiment_id, search=search, use_server=False)
    code = location.record.get("code") or {}
    argv = code.get("argv") or []
    if not argv:
        raise ExperimentError(
            f"experiment {experiment_id} recorded no command line (code.argv): cannot rerun it"
        )
    command = rerun_command(argv, experiment_id=experiment_id)
    workdir = Path(cwd or code.get("cwd") or ".")
    if not workdir.is_dir():
        raise ExperimentError(
            f"experiment {experiment_id} ran in {workdir}, which does not exist here; pass --cwd"
        )
    recorded = code.get("commit")
    current = code_commit(workdir)
    if recorded and current and recorded != current:
        LOGGER.warning(
            "experiment %s ran at commit %s; %s is now at %s: the rerun uses the current code",
            experiment_id,
            recorded[:12],
            workdir,
            current[:12],
        )
    environment = dict(os.environ)
    environment[PARAMS_OVERRIDE_ENV_VAR] = json.dumps(overrides)
    try:
        completed = subprocess.run(command, cwd=workdir, env=environment, check=False)
    except OSError as error:
        raise ExperimentError(f"cannot rerun {command!r}: {error}") from error
    return CloneResult(source_id=experiment_id, exit_code=completed.returncode)


def clone(
    experiment_id: str,
    overrides: dict[str, Any],
    *,
    local: bool = False,
    queue: str | None = None,
    name: str | None = None,
    search: Sequence[str | Path] = (),
    cwd: str | Path | None = None,
) -> CloneResult:
    """Clone online (server id, not `local`) or rerun locally; see the module docstring."""
    if local or experiment_id.startswith(OFFLINE_ID_PREFIXES):
        if queue:
            raise ConfigError(
                f"--queue needs a server experiment; {experiment_id} is offline (push it first: "
                f"`walkout-ci experiment push {experiment_id}`) or drop --queue to rerun it here"
            )
        return clone_local(experiment_id, overrides, search=search, cwd=cwd)
    return clone_online(experiment_id, overrides, queue=queue, name=name)
