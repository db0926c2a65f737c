"""call_with_deadline: value, exception, timeout."""

from __future__ import annotations

import threading

import pytest

from walkout_ci.deadline import DeadlineExceeded, call_with_deadline


def test_returns_value_and_reraises() -> None:
    assert call_with_deadline(lambda: 42, 5.0, "answer") == 42
    with pytest.raises(KeyError):
        call_with_deadline(lambda: {}["missing"], 5.0, "lookup")


def test_a_call_that_never_returns_is_abandoned_in_time() -> None:
    # Stands in for clearml's endless retry loop. A safety timer ends it after a minute, so a
    # call_with_deadline that waited for the call (instead of a wall-clock bound that flakes on a
    # loaded machine) fails below: it would return the call's value instead of raising.
    forever = threading.Event()
    safety = threading.Timer(60.0, forever.set)
    safety.start()
    try:
        with pytest.raises(DeadlineExceeded, match="stuck call did not return within 0 s"):
            call_with_deadline(forever.wait, 0.2, "stuck call")
        # it gave up while the call was still running: the abandoned daemon thread is alive
        stuck = [thread for thread in threading.enumerate() if thread.name == "walkout-ci stuck call"]
        assert stuck and all(thread.is_alive() and thread.daemon for thread in stuck)
        assert not forever.is_set()
    finally:
        safety.cancel()
        forever.set()  # let the abandoned thread finish
