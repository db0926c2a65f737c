"""SIGTERM and SIGINT unwind a long run like an exception, so the temp output folder is removed.

A CI timeout or cancellation sends SIGTERM, whose default action kills Python at once and leaves the
temp folder behind; Ctrl-C (SIGINT) would print a traceback. Inside :func:`interruptible` both raise
:class:`Interrupted` in the main thread; the CLI catches it, prints one line and exits 128 + the
signal number (143 for SIGTERM, 130 for SIGINT).

walkout_sim imports nothing of ours, so this is its own small copy of the idea behind
``walkout_ci.signals``. One addition: an exception raised by a signal handler while Python runs a
finalizer (``__del__``, a weakref callback) is printed and swallowed, and the run would go on. The
signal is therefore also remembered, and :func:`raise_if_interrupted` (called once per rendered frame
and again just before the output is committed) raises it again, so a swallowed signal can delay
the stop by one frame but never lets the run finish.
"""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Iterator

HANDLED_SIGNALS = (signal.SIGINT, signal.SIGTERM)

# The first signal received inside the active interruptible() block (empty outside one / before it).
_received: list[int] = []


class Interrupted(BaseException):
    """The run was stopped by SIGINT or SIGTERM; ``exit_code`` is 128 + the signal number.

    A BaseException (like KeyboardInterrupt), so an ``except Exception`` on the way does not swallow it.
    """

    def __init__(self, signum: int) -> None:
        self.signum = int(signum)
        self.exit_code = 128 + self.signum
        super().__init__(f"stopped by {signal.Signals(self.signum).name}; the partial output was removed")


def raise_if_interrupted() -> None:
    """Raise :class:`Interrupted` if a handled signal arrived in the active block (a no-op otherwise)."""
    if _received:
        raise Interrupted(_received[0])


@contextlib.contextmanager
def interruptible() -> Iterator[None]:
    """Within the block, SIGINT and SIGTERM raise :class:`Interrupted` (main thread only; else a no-op).

    Only the first signal raises: a second one while the first unwinds is ignored, so the cleanup of
    the temp folder is not cut short (SIGKILL still works; the next run sweeps what it leaves).
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum, _frame):
        if _received:
            return  # already unwinding: let the cleanup finish
        _received.append(signum)
        raise Interrupted(signum)

    _received.clear()
    previous = {signum: signal.signal(signum, handler) for signum in HANDLED_SIGNALS}
    try:
        yield
    finally:
        for signum, old in previous.items():
            signal.signal(signum, old)
        _received.clear()
