"""`walkout-ci clone`: clone an experiment, change a few parameters, schedule it or run it here.

Keys are typed in dotted form (`train.learning_rate`). ClearML stores the nested params that
`experiment.start(params=...)` connected as "General/train/learning_rate": `clearml_parameter_name`
maps one to the other, and a key the source experiment does not have is an ExperimentError listing
close matches (a typo must not silently add a new, ignored parameter).

Online (a ClearML server is configured and the id is a server id): `Task.clone`, the overrides set on
those parameter names, then `Task.enqueue` on a queue (or left as a draft). The clone's code reads
them through `exp.params` under clearml-agent.

Locally (`local=True`, or an offline/local id): the recorded command line (`code.argv`, run in
`code.cwd`) is run again with `WALKOUT_CI_PARAMS_OVERRIDE` set to the overrides, which
`experiment.start` applies to its params; the rerun is a new experiment that records
`cloned_from` (`WALKOUT_CI_CLONED_FROM`) and writes into its own output folder (the recorded
`--output`/`--out` plus `-clone-<id>`, or `output=`), never over the source run's weights.

A record is data anyone can edit (a bundle in a pull request, a copied store), so the local rerun
runs only our own training entry points (`ENTRY_POINTS`): the recorded argv must be
`<python> -m walkout_<component>.cli train ...`, the module file itself (what `sys.argv` holds under
`python -m`) or the console script `walkout-<component> train ...`, with only the options of that
component's `train` command. It is rerun as `sys.executable -m <module> train <options>` without a
shell: never the recorded executable. Anything else is an ExperimentError naming the recorded
command and what is allowed. Keep `ENTRY_POINTS` in step with the components' `train` options.
"""

from __future__ import annotations

import difflib
import json
import logging
import os
import re
import shlex
import subprocess
import sys
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from walkout_ci import clearml_config
from walkout_ci.deadline import call_with_deadline
from walkout_ci.errors import ConfigError, ExperimentError
from walkout_ci.experiment import CLONED_FROM_ENV_VAR, PARAMS_OVERRIDE_ENV_VAR
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


def dotted_name(parameter: str) -> str:
    """ClearML "General/train/learning_rate" -> "train.learning_rate" (other sections keep theirs:
    "Args/data" -> "Args/data")."""
    section, _, name = parameter.partition("/")
    return name.replace("/", ".") if section == "General" else parameter


def clearml_parameter_name(key: str, known: Iterable[str], *, experiment_id: str = "?") -> str:
    """The ClearML parameter a user's key names: "train.learning_rate" -> "General/train/learning_rate".

    known: the source task's parameter names ("Section/name"). A key with a "/" is taken as ClearML's
    own form ("General/train/learning_rate", "Args/epochs"). ExperimentError listing close matches
    when the key is not one of `known`.
    """
    names = set(known)
    if "/" in key:
        candidates = [key, f"General/{key}"]
    else:
        candidates = [f"General/{key.replace('.', '/')}", f"General/{key}"]
    for candidate in candidates:
        if candidate in names:
            return candidate
    typed = {dotted_name(name): name for name in names}
    close = difflib.get_close_matches(key, list(typed), n=5, cutoff=0.5)
    hint = f"; did you mean {', '.join(close)}?" if close else ""
    listing = ", ".join(sorted(typed)[:30]) or "none"
    raise ExperimentError(
        f"--set {key}: experiment {experiment_id} has no parameter {key!r}{hint} (its parameters: {listing})"
    )


def flatten_params(params: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """{"train": {"lr": 1}} -> {"train.lr": 1}: the dotted keys a recorded params dict accepts."""
    flat: dict[str, Any] = {}
    for key, value in params.items():
        dotted = f"{prefix}{key}"
        if isinstance(value, Mapping) and value:
            flat.update(flatten_params(value, dotted + "."))
        else:
            flat[dotted] = value
    return flat


def check_local_overrides(
    overrides: Mapping[str, Any], params: Mapping[str, Any], experiment_id: str
) -> None:
    """ExperimentError (with close matches) for an override key the recorded params do not have."""
    known = {f"General/{key.replace('.', '/')}" for key in flatten_params(params)}
    for key in overrides:
        clearml_parameter_name(key, known, experiment_id=experiment_id)


@dataclass(frozen=True)
class EntryPoint:
    """One training command `clone --local` may rerun.

    module: the CLI module (`python -m <module>`); script: its console script name; subcommand: the
    only subcommand allowed; options: {"--option": takes a value?} accepted after the subcommand;
    output_option: the option naming the run's output folder; path_options: options whose value is
    a path (made absolute when a task is recorded for an agent).
    """

    module: str
    script: str
    subcommand: str
    options: Mapping[str, bool]
    output_option: str = "--out"
    path_options: tuple[str, ...] = ("--data", "--val-data", "--out", "--config")


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
        output_option="--output",
        path_options=("--data", "--val-data", "--output", "--config"),
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


def match_command(
    argv: Sequence[object], *, experiment_id: str = "?", entry_points: Sequence[EntryPoint] | None = None
) -> tuple[EntryPoint, list[str]]:
    """(entry point, validated arguments after the program) of a recorded argv; see `rerun_command`."""
    entry_points = ENTRY_POINTS if entry_points is None else entry_points
    try:
        if (
            not isinstance(argv, list | tuple)
            or not argv
            or not all(isinstance(item, str) and "\0" not in item for item in argv)
        ):
            raise ValueError("it must be a non-empty list of strings")
        entry, arguments = _match_entry_point([str(item) for item in argv], entry_points)
        return entry, _check_arguments(entry, arguments)
    except ValueError as problem:
        raise ExperimentError(
            f"experiment {experiment_id}: recorded command {list(argv)!r} cannot be rerun: {problem}. "
            f"`clone --local` reruns only our training entry points: {_describe_allowed(entry_points)}"
        ) from None


def replace_option(arguments: Sequence[str], option: str, value: str) -> list[str]:
    """`arguments` with `option`'s value replaced (both `--opt V` and `--opt=V`); appended if absent."""
    result, index, found = [], 0, False
    while index < len(arguments):
        token = arguments[index]
        if token == option and index + 1 < len(arguments):
            result += [option, value]
            index += 2
            found = True
            continue
        if token.startswith(option + "="):
            result.append(f"{option}={value}")
            found = True
        else:
            result.append(token)
        index += 1
    return result if found else [*result, option, value]


def option_value(arguments: Sequence[str], option: str) -> str | None:
    """The value of `option` in `arguments` (`--opt V` or `--opt=V`), or None."""
    for index, token in enumerate(arguments):
        if token == option and index + 1 < len(arguments):
            return arguments[index + 1]
        if token.startswith(option + "="):
            return token.split("=", 1)[1]
    return None


def rerun_command(
    argv: Sequence[object], *, experiment_id: str = "?", entry_points: Sequence[EntryPoint] | None = None
) -> list[str]:
    """The command that reruns a recorded training argv: `[sys.executable, "-m", module, *arguments]`.

    argv: the record's `code.argv`. Raises ExperimentError naming the recorded command and what is
    allowed when it is not one of `entry_points` (default ENTRY_POINTS) with valid arguments.
    """
    entry, arguments = match_command(argv, experiment_id=experiment_id, entry_points=entry_points)
    return [sys.executable, "-m", entry.module, *arguments]


@dataclass(frozen=True)
class CloneResult:
    """What `clone` did: the new task id (online) or the rerun's exit code (local)."""

    source_id: str
    new_id: str | None = None
    queue: str | None = None
    exit_code: int | None = None
    output: Path | None = None


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
        known = source.get_parameters() or {}
        names = {key: clearml_parameter_name(key, known, experiment_id=experiment_id) for key in overrides}
        cloned = Task.clone(source_task=source, name=name or f"{source.name} (clone)")
        entry_point = own_output_entry_point(getattr(cloned.data.script, "entry_point", None), cloned.id)
        if entry_point is not None:
            cloned.set_script(entry_point=entry_point)
        if overrides:
            cloned.set_parameters({names[key]: value for key, value in overrides.items()})
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


def own_output_entry_point(entry_point: str | None, clone_id: str) -> str | None:
    """A cloned task's entry point (`-m <module> train ... --output DIR`) with its output folder moved
    to `DIR-clone-<id[:8]>`, so the clone never writes over the source run; None when it is not one
    of our training entry points or names no output folder (then it is left as it is)."""
    try:
        parts = shlex.split(entry_point or "")
    except ValueError:
        return None
    if len(parts) < 2 or parts[0] != "-m":
        return None
    entry = next((e for e in ENTRY_POINTS if e.module == parts[1]), None)
    if entry is None:
        return None
    arguments = parts[2:]
    recorded = option_value(arguments, entry.output_option)
    if recorded is None:
        return None
    moved = replace_option(arguments, entry.output_option, f"{recorded.rstrip('/')}-clone-{clone_id[:8]}")
    return shlex.join(["-m", entry.module, *moved])


def clone_local(
    experiment_id: str,
    overrides: dict[str, Any],
    *,
    search: Sequence[str | Path] = (),
    cwd: str | Path | None = None,
    output: str | Path | None = None,
) -> CloneResult:
    """Rerun an experiment's recorded command line here with parameter overrides; returns its exit code.

    The rerun writes into `output` (default: the recorded output folder + "-clone-<8 hex>") and its
    record says `cloned_from: experiment_id`.
    """
    location = locate_experiment(experiment_id, search=search, use_server=False)
    code = location.record.get("code") or {}
    argv = code.get("argv") or []
    if not argv:
        raise ExperimentError(
            f"experiment {experiment_id} recorded no command line (code.argv): cannot rerun it"
        )
    check_local_overrides(overrides, location.record.get("params") or {}, experiment_id)
    entry, arguments = match_command(argv, experiment_id=experiment_id)
    recorded_output = option_value(arguments, entry.output_option)
    if output is None:
        if recorded_output is None:
            raise ExperimentError(
                f"experiment {experiment_id} recorded no {entry.output_option}: pass --output for the rerun"
            )
        output = f"{recorded_output.rstrip('/')}-clone-{uuid.uuid4().hex[:8]}"
    arguments = replace_option(arguments, entry.output_option, os.fspath(output))
    command = [sys.executable, "-m", entry.module, *arguments]
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
    environment[CLONED_FROM_ENV_VAR] = experiment_id
    try:
        completed = subprocess.run(command, cwd=workdir, env=environment, check=False)
    except OSError as error:
        raise ExperimentError(f"cannot rerun {command!r}: {error}") from error
    return CloneResult(
        source_id=experiment_id, exit_code=completed.returncode, output=(workdir / output).absolute()
    )


def clone(
    experiment_id: str,
    overrides: dict[str, Any],
    *,
    local: bool = False,
    queue: str | None = None,
    name: str | None = None,
    search: Sequence[str | Path] = (),
    cwd: str | Path | None = None,
    output: str | Path | None = None,
) -> CloneResult:
    """Clone online (server id, not `local`) or rerun locally; see the module docstring."""
    if local or experiment_id.startswith(OFFLINE_ID_PREFIXES):
        if queue:
            raise ConfigError(
                f"--queue needs a server experiment; {experiment_id} is offline (push it first: "
                f"`walkout-ci experiment push {experiment_id}`) or drop --queue to rerun it here"
            )
        return clone_local(experiment_id, overrides, search=search, cwd=cwd, output=output)
    return clone_online(experiment_id, overrides, queue=queue, name=name)
