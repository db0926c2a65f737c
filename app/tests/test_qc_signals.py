"""SIGTERM during `walkout qc --jobs 2`: workers stopped, temp folder removed, one line, exit 143."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time

import psutil

DEADLINE_S = 60.0

# Makes every video take 10 minutes in the workers (imported at start-up by every Python process of
# the run through PYTHONPATH, so also by spawned workers): a parent that waited for its workers
# instead of stopping them would miss the deadline by far.
SLOW_WORKERS = """
import time
import walkout.oracle

def _slow_oracle(*args, **kwargs):
    time.sleep(600)

walkout.oracle.run_oracle = _slow_oracle
"""


def _workers(parent: psutil.Process) -> list[psutil.Process]:
    """The parent's spawn pool workers (not multiprocessing's resource tracker)."""
    found = []
    for child in parent.children(recursive=True):
        try:
            if "spawn_main" in " ".join(child.cmdline()):
                found.append(child)
        except psutil.Error:
            continue
    return found


def test_sigterm_stops_qc_workers_and_exits_143(tmp_path, rendered_scenarios):
    source = rendered_scenarios["single_pick"] / "videos" / "single_pick"
    split = tmp_path / "split"
    for index in range(3):
        shutil.copytree(source, split / "videos" / f"v{index}")
    hooks, temp = tmp_path / "hooks", tmp_path / "tmp"
    hooks.mkdir()
    temp.mkdir()
    (hooks / "sitecustomize.py").write_text(SLOW_WORKERS)
    python_path = os.pathsep.join(p for p in (str(hooks), os.environ.get("PYTHONPATH")) if p)
    command = [sys.executable, "-m", "walkout", "qc", "--oracle", "--videos", str(split)]
    process = subprocess.Popen(
        [*command, "--report-dir", str(tmp_path / "report"), "--jobs", "2"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env={**os.environ, "TMPDIR": str(temp), "PYTHONPATH": python_path},
    )
    children: list[psutil.Process] = []
    try:
        parent = psutil.Process(process.pid)
        start = time.monotonic()
        while len(_workers(parent)) < 2:
            assert process.poll() is None, process.communicate()
            assert time.monotonic() - start < DEADLINE_S, "the pool workers never started"
            time.sleep(0.05)
        time.sleep(1.0)  # let the workers get into their first video
        children = parent.children(recursive=True)
        process.send_signal(signal.SIGTERM)
        # communicate reads both pipes to EOF: a worker left holding them would block it past the deadline
        _, stderr = process.communicate(timeout=DEADLINE_S)
    finally:
        # only after a failure: never leave 10-minute sleepers (or their parent) behind
        for child in children:
            if child.is_running():
                child.kill()
        if process.poll() is None:
            process.kill()
            process.communicate()
    assert process.returncode == 128 + signal.SIGTERM, stderr.decode()
    lines = stderr.decode().strip().splitlines()
    assert lines[-1] == "walkout qc: stopped by SIGTERM; cleaned up", lines
    _, alive = psutil.wait_procs(children, timeout=10)
    assert not alive, f"left running: {[p.pid for p in alive]}"
    assert list(temp.iterdir()) == [], "the QC temp folder was not removed"
    assert not (tmp_path / "report" / "report.json").exists()
