"""SIGTERM and SIGINT unwind a long command like an exception, so every `finally` cleans up.

CI cancellation and job timeouts send SIGTERM, whose default action kills Python at once: no
`finally` runs, decrypted data, git worktrees, temp folders and child processes stay behind. Inside
`interruptible()` both signals raise `Interrupted` in the main thread instead; a command's `main`
catches it, prints one line and returns `exit_code` (128 + the signal number, the shell convention).

    from walkout_ci.signals import Interrupted, interruptible

    def main(argv=None) -> int:
        with interruptible():
            try:
                return run(argv)
            except Interrupted as stop:
                print(f"walkout-x: {stop}", file=sys.stderr)
                return stop.exit_code

`Interrupted` derives from BaseException (like KeyboardInterrupt), so an `except Exception` on the way
does not swallow it. A second signal while the first is being handled is ignored, so the cleanup
itself is not cut short; child processes started with `start_new_session=True` must be stopped by
their owner's `finally` (see `stop_process_group`).
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator

HANDLED_SIGNALS = (signal.SIGINT, signal.SIGTERM)


class Interrupted(BaseException):
    """A command was stopped by SIGINT or SIGTERM; `exit_code` is 128 + the signal number."""

    def __init__(self, signum: int) -> None:
        self.signum = int(signum)
        self.exit_code = 128 + self.signum
        super().__init__(f"stopped by {signal.Signals(self.signum).name}; cleaned up")


@contextlib.contextmanager
def interruptible() -> Iterator[None]:
    """Within the block, SIGINT and SIGTERM raise `Interrupted` (main thread only; a no-op elsewhere)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    fired: list[int] = []

    def handler(signum, _frame):
        if fired:
            return  # already unwinding: let the cleanup finish
        fired.append(signum)
        raise Interrupted(signum)

    previous = {signum: signal.signal(signum, handler) for signum in HANDLED_SIGNALS}
    try:
        yield
    finally:
        for signum, old in previous.items():
            signal.signal(signum, old)


def stop_process_group(process: subprocess.Popen, *, grace_s: float = 5.0) -> None:
    """Stop a child started with `start_new_session=True` and everything it started.

    SIGTERM to the whole group first (so the child can clean up its own temp files), SIGKILL after
    `grace_s`; waits for the child so no zombie or orphan is left.
    """
    if process.poll() is not None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(process.pid, signal.SIGKILL)  # stragglers of an exited leader
        return
    for sig, wait_s in ((signal.SIGTERM, grace_s), (signal.SIGKILL, 10.0)):
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(process.pid, sig)
        try:
            process.wait(timeout=wait_s)
            break
        except subprocess.TimeoutExpired:
            continue
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, signal.SIGKILL)


def run_command(
    prog: str,
    command: str,
    call: Callable[[], int],
    *,
    errors: tuple[type[BaseException], ...],
    crash_exit_code: int | None = None,
) -> int:
    """Run one CLI command the way every walkout CLI does; returns its exit code.

    Inside `interruptible()`: an error of a type in `errors` prints `<prog> <command>: error: <message>`
    (secret values redacted) and returns its `exit_code` (default 2), and so does any exception with an
    integer `exit_code` (the root errors of every walkout package); `Interrupted` prints one line
    and returns 128 + the signal number. `crash_exit_code`: any other exception is logged with its
    traceback and gives this code (2 for tools a gate calls: a crash is "could not evaluate", never the
    1 that means "regression"); None lets it propagate.
    """
    from walkout_ci.sandbox import redact

    with interruptible():
        try:
            return int(call())
        except Interrupted as stop:
            print(f"{prog} {command}: {stop}", file=sys.stderr)
            return stop.exit_code
        except errors as error:
            print(f"{prog} {command}: error: {redact(str(error))}", file=sys.stderr)
            return int(getattr(error, "exit_code", 2))
        except Exception as error:
            if isinstance(getattr(error, "exit_code", None), int):
                # Another walkout package's error (each root error carries its exit code).
                print(f"{prog} {command}: error: {redact(str(error))}", file=sys.stderr)
                return error.exit_code
            if crash_exit_code is None:
                raise
            logging.getLogger(prog).exception("%s %s crashed", prog, command)
            return crash_exit_code
