"""SIGTERM / SIGINT stop a long command cleanly: exit 128 + signal, one line, no temp folder left."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest

from walkout_pose.config import load_config
from walkout_pose.model import build_model, save_checkpoint

# Stands in for a long evaluation: scoring announces itself (inside evaluate's temp folder) and hangs.
SLOW_SCORING = """
import pathlib, sys, time
import walkout_pose.evaluate as evaluate

def hang(**kwargs):
    pathlib.Path(sys.argv[1]).write_text("scoring")
    time.sleep(300)

evaluate.score_predictions = hang
from walkout_pose.cli import main
sys.exit(main(sys.argv[2:]))
"""


def wait_for(path, process, timeout_s=120.0):
    deadline = time.monotonic() + timeout_s
    while not path.exists():
        if process.poll() is not None:
            pytest.fail(f"the command ended early ({process.returncode}): {process.communicate()[1]}")
        if time.monotonic() > deadline:
            process.kill()
            pytest.fail("the command never reached scoring")
        time.sleep(0.1)


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_a_signal_during_evaluate_exits_128_plus_signal_and_removes_the_temp_folder(
    signum, tiny_val_split, tmp_path
):
    config = load_config({"model": {"input_height": 32, "input_width": 32, "width": 8, "deconv_channels": 8}})
    checkpoint = save_checkpoint(tmp_path / "model.pt", build_model(config.model), config=config)
    temp_root = tmp_path / "tmp"
    temp_root.mkdir()
    ready = tmp_path / "ready"
    environment = {**os.environ, "TMPDIR": str(temp_root), "WALKOUT_HOME": str(tmp_path / "home")}
    environment.pop("CLEARML_API_HOST", None)
    command = [sys.executable, "-c", SLOW_SCORING, str(ready), "evaluate", "--model", str(checkpoint)]
    command += ["--data", str(tiny_val_split), "--report-dir", str(tmp_path / "report"), "--no-progress"]
    process = subprocess.Popen(
        command, env=environment, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        wait_for(ready, process)
        assert [path.name.startswith("walkout-pose-evaluate-") for path in temp_root.iterdir()] == [True]
        process.send_signal(signum)
        _, stderr = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    assert process.returncode == 128 + signum
    assert stderr.strip().splitlines()[-1] == (
        f"walkout-pose evaluate: stopped by {signal.Signals(signum).name}; cleaned up"
    )
    assert list(temp_root.iterdir()) == []
    assert not (tmp_path / "report" / "report.json").exists()
