"""walkout_ci.signals.run_command: the one way every walkout CLI runs a command."""

from __future__ import annotations

import os
import signal

import pytest

from walkout_ci.errors import PinError
from walkout_ci.signals import run_command


class OtherPackageError(Exception):
    exit_code = 2


def test_an_expected_error_is_one_line_and_its_exit_code(capsys, monkeypatch):
    monkeypatch.setenv("WALKOUT_BLIND_KEY", "s3cret-blind-key-value")

    def fail() -> int:
        raise PinError("unknown experiment id 'x' (key s3cret-blind-key-value)")

    assert run_command("walkout-ci", "pin", fail, errors=(PinError,)) == 2
    err = capsys.readouterr().err
    assert err.startswith("walkout-ci pin: error: unknown experiment id") and err.count("\n") == 1
    assert "s3cret-blind-key-value" not in err  # quoted messages are redacted


def test_another_packages_error_with_an_exit_code_is_reported_too(capsys):
    def fail() -> int:
        raise OtherPackageError("bad checkpoint")

    assert run_command("walkout", "qc", fail, errors=()) == 2
    assert "walkout qc: error: bad checkpoint" in capsys.readouterr().err


def test_a_crash_is_the_crash_code_or_propagates():
    def crash() -> int:
        raise ZeroDivisionError

    assert run_command("walkout-pose", "evaluate", crash, errors=(), crash_exit_code=2) == 2
    with pytest.raises(ZeroDivisionError):
        run_command("walkout-ci", "gate", crash, errors=())


def test_sigterm_unwinds_through_finally_and_gives_143(capsys):
    cleaned = []

    def long_command() -> int:
        try:
            os.kill(os.getpid(), signal.SIGTERM)
            return 0  # not reached: the signal raises first
        finally:
            cleaned.append(True)

    assert run_command("walkout", "qc", long_command, errors=()) == 143
    assert cleaned == [True] and "stopped by SIGTERM" in capsys.readouterr().err
    # The previous handler is back once the command returned.
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL
