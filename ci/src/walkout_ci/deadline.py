"""Run a blocking call with a deadline.

clearml 2.1.12 retries connection errors (and 5xx answers) forever inside every API call
(`clearml/backend_interface/base.py: _send`), whatever `api.http.retries` says. Every ClearML call
whose caller must not hang (training, the gate, push) goes through `call_with_deadline`: the call runs
in a daemon thread; past the deadline the caller gets a TimeoutError and moves on, and the stuck thread
dies with the process.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any, TypeVar

T = TypeVar("T")


class DeadlineExceeded(TimeoutError):
    """The call did not return in time (it may still be running in its daemon thread)."""


def call_with_deadline(call: Callable[[], T], timeout_s: float, what: str) -> T:
    """Return `call()`, re-raise its exception, or raise DeadlineExceeded naming `what` after `timeout_s`."""
    outcome: dict[str, Any] = {}

    def run() -> None:
        try:
            outcome["value"] = call()
        except BaseException as error:
            outcome["error"] = error

    worker = threading.Thread(target=run, name=f"walkout-ci {what}", daemon=True)
    worker.start()
    worker.join(max(timeout_s, 0.0))
    if worker.is_alive():
        raise DeadlineExceeded(f"{what} did not return within {timeout_s:.0f} s")
    if "error" in outcome:
        raise outcome["error"]
    return outcome["value"]
