"""Running one evaluation stage as a child process: placeholders, a log file, a time limit, cleanup.

Shared by the trusted stages (walkout_ci.evaluation) and the sandboxed prediction
(walkout_ci.executors.local). The child gets its own session; a timeout, an exception or a signal on
our side (walkout_ci.signals.Interrupted) stops its whole process group before the error propagates,
so no stage outlives the command that started it.
"""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path

from walkout_ci.errors import EvaluationError
from walkout_ci.sandbox import redact
from walkout_ci.signals import stop_process_group

LOGGER = logging.getLogger("walkout_ci.process")
# Lines of a stage's log quoted in an error message.
LOG_TAIL_LINES = 25


def fill_command(command: tuple[str, ...] | list[str], values: Mapping[str, object]) -> list[str]:
    """Replace {name} placeholders in every argument; paths become absolute, None becomes ""."""
    filled = {"python": sys.executable}
    for name, value in values.items():
        if value is None:
            filled[name] = ""
        elif isinstance(value, Path):
            filled[name] = os.fspath(value.absolute())
        else:
            filled[name] = str(value)
    return [part.format(**filled) for part in command]


def shown_command(template: tuple[str, ...] | list[str]) -> list[str]:
    """A stage's command as people read it: the gate.yaml template, `{python}` written as python."""
    return [part.replace("{python}", "python") for part in template]


def machine_paths(scratch: Path, name: str) -> dict[str, str]:
    """Paths to hide in quoted output: a stage's scratch folder and the interpreter's prefix."""
    return {os.fspath(scratch): name, sys.prefix: "<python>", sys.base_prefix: "<python>"}


def log_tail(log_path: Path, lines: int = LOG_TAIL_LINES, *, hide: Mapping[str, str] | None = None) -> str:
    """The last lines of a log, indented for quoting, with every secret value redacted."""
    try:
        text = log_path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return "  | (no output captured)"
    tail = "\n".join("  | " + line[:400] for line in text.splitlines()[-lines:])
    # Machine paths (the sandbox's scratch, the interpreter's prefix) mean nothing in a PR comment.
    for path, name in sorted((hide or {}).items(), key=lambda item: -len(item[0])):
        tail = tail.replace(path, name)
    return redact(tail) or "  | (no output)"


def run_logged(
    command: list[str],
    *,
    cwd: Path,
    env: Mapping[str, str],
    timeout_s: float,
    log_path: Path,
    what: str,
    shown: list[str] | None = None,
    hide: Mapping[str, str] | None = None,
) -> None:
    """Run `command`, stdout+stderr to `log_path`; EvaluationError on a crash, non-zero exit or timeout.

    what: the stage's name for messages ("prediction of the candidate"); shown: the command as it
    should appear in messages (default `command`; the sandbox wrapper is left out); hide: paths to
    replace by names in quoted output.
    """
    shown = shown or command
    LOGGER.info("%s: %s (in %s)", what, " ".join(shown), cwd)
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with open(log_path, "wb") as log:
        try:
            process = subprocess.Popen(
                command,
                cwd=cwd,
                env=dict(env),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        except OSError as error:
            raise EvaluationError(f"{what}: cannot start {shown[0]!r}: {error}") from error
        try:
            returncode = process.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            stop_process_group(process)
            raise EvaluationError(
                f"{what} timed out after {timeout_s:g} s (evaluate.timeout_s in gate.yaml) and was "
                f"stopped: {' '.join(shown)}\n{log_tail(log_path, hide=hide)}"
            ) from None
        except BaseException:
            stop_process_group(process)
            raise
        # Whatever the stage left running in its group dies with it.
        stop_process_group(process)
    if returncode != 0:
        raise EvaluationError(
            f"{what} exited with status {returncode}: {' '.join(shown)}\nlast lines of its output:\n"
            f"{log_tail(log_path, hide=hide)}"
        )
