"""SIGTERM (CI cancellation, job timeouts) stops a long command cleanly: exit 143, temp folder removed."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

FRAMES = 20000  # long enough that tracking + scoring cannot finish before the signal arrives


def _long_sequence(root: Path) -> Path:
    """A MOTChallenge sequence with ground truth only (detections are synthesised from it)."""
    sequence = root / "data" / "long"
    (sequence / "gt").mkdir(parents=True)
    frames = np.repeat(np.arange(1, FRAMES + 1), 3)
    ids = np.tile([1, 2, 3], FRAMES)
    x = 20 + 60 * (ids - 1) + (frames % 50)
    rows = np.stack([frames, ids, x, np.full_like(x, 30), np.full_like(x, 20), np.full_like(x, 40)], axis=1)
    text = "\n".join(f"{f},{i},{x},{y},{w},{h},1,1,1" for f, i, x, y, w, h in rows.tolist())
    (sequence / "gt" / "gt.txt").write_text(text + "\n")
    return root / "data"


def test_sigterm_during_evaluate_exits_143_and_leaves_no_temp_folder(tmp_path):
    data = _long_sequence(tmp_path)
    temp_root = tmp_path / "tmp"
    temp_root.mkdir()
    env = {**os.environ, "TMPDIR": str(temp_root)}
    command = [sys.executable, "-m", "walkout_tracking.cli", "evaluate", "--model", "motion-only"]
    command += ["--data", str(data), "--report-dir", str(tmp_path / "report"), "--quiet"]
    process = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 120
        while not any(temp_root.glob("walkout-tracking-evaluate-*")):
            assert process.poll() is None, process.communicate()
            assert time.monotonic() < deadline, "evaluate never created its temp folder"
            time.sleep(0.02)
        process.send_signal(signal.SIGTERM)
        _, err = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert process.returncode == 128 + signal.SIGTERM, err
    assert "stopped by SIGTERM" in err
    assert list(temp_root.iterdir()) == []
    assert not (tmp_path / "report" / "report.json").exists()
