"""call_with_deadline: value, exception, timeout."""

from __future__ import annotations

import threading
import time

import pytest

from walkout_ci.deadline import DeadlineExceeded, call_with_deadline


def test_returns_value_and_reraises() -> None:
    assert call_with_deadline(lambda: 42, 5.0, "answer") == 42
    with pytest.raises(KeyError):
        call_with_deadline(lambda: {}["missing"], 5.0, "lookup")


def test_a_call_that_never_returns_is_abandoned_in_time() -> None:
    forever = threading.Event()  # never set: stands in for clearml's endless retry loop
    start = time.monotonic()
    with pytest.raises(DeadlineExceeded, match="stuck call did not return within 0 s"):
        call_with_deadline(forever.wait, 0.2, "stuck call")
    assert time.monotonic() - start < 2.0
    forever.set()  # let the abandoned thread finish
