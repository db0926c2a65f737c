"""Stopped runs: SIGINT exits 130 and cleans up, SIGKILL leftovers are swept by the next run."""

from __future__ import annotations

import contextlib
import json
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

import walkout_sim
from walkout_sim.config import GeneratorConfig, OutputConfig
from walkout_sim.export import PID_FILE, _run_record, sweep_stale_temp_dirs
from walkout_sim.signals import Interrupted, interruptible

TINY = GeneratorConfig(output=OutputConfig(png_compression=0, image_stride=10))


def _start(tmp_path: Path, *command: str, renders: int = 1) -> subprocess.Popen:
    """Start `walkout-sim <command> --quiet` and return once `renders` temp folders in `tmp_path` hold a
    written frame (one per running generate process)."""
    process = subprocess.Popen(
        [sys.executable, "-m", "walkout_sim.cli", *command, "--quiet"], stderr=subprocess.PIPE
    )
    deadline = time.monotonic() + 120
    while len({png.parents[2] for png in tmp_path.glob(".*.tmp-*/coco/images/*.png")}) < renders:
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            process.wait()
            pytest.fail(f"walkout-sim wrote no frame: {process.stderr.read().decode()}")
        time.sleep(0.02)
    return process


def _signal_and_wait(process: subprocess.Popen, signum: int) -> tuple[int, str]:
    """Send `signum`, wait for the exit (killed after 120 s); returns (exit code, stderr)."""
    process.send_signal(signum)
    try:
        code = process.wait(timeout=120)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    return code, process.stderr.read().decode()


def _dead_pid() -> int:
    """The pid of a process that has exited and been reaped."""
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def test_sigint_during_scenario_exits_130_and_leaves_nothing(tmp_path):
    process = _start(tmp_path, "scenario", "crowd_of_six", "--out", str(tmp_path / "crowd"))
    code, err = _signal_and_wait(process, signal.SIGINT)
    assert code == 128 + signal.SIGINT, err
    assert list(tmp_path.iterdir()) == [], err
    assert err.strip() == "walkout-sim scenario: stopped by SIGINT; the partial output was removed"


def test_a_sigkilled_run_leaves_a_temp_folder_that_the_next_run_sweeps(tmp_path):
    process = _start(
        tmp_path,
        "generate",
        "--split",
        "train",
        "--videos",
        "2",
        "--frames",
        "400",
        "--out",
        str(tmp_path / "a"),
    )
    process.kill()  # SIGKILL: no handler runs, the temp folder stays
    process.wait()
    stale = tmp_path / f".a.tmp-{process.pid}"
    assert json.loads((stale / PID_FILE).read_text())["pid"] == process.pid

    walkout_sim.generate_split(tmp_path / "b", split="train", videos=1, frames=2, seed=0, config=TINY)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["b"]
    assert not (tmp_path / "b" / PID_FILE).exists()
    assert PID_FILE not in (tmp_path / "b" / "manifest.json").read_text()


def _temp_folder(parent: Path, name: str, record: dict | None) -> Path:
    folder = parent / name
    (folder / "coco").mkdir(parents=True)
    if record is not None:
        (folder / PID_FILE).write_text(json.dumps(record))
    return folder


def test_sweep_removes_only_our_folders_of_dead_runs(tmp_path):
    me = _run_record()
    dead = {"pid": _dead_pid(), "host": socket.gethostname(), "start": None}
    swept = [
        _temp_folder(tmp_path, ".x.tmp-1", dead),
        # our pid, but another start time: the run died and its pid was reused by this process
        _temp_folder(tmp_path, ".y.tmp-2", {**me, "start": "1"}),
    ]
    kept = [
        _temp_folder(tmp_path, ".live.tmp-3", me),  # a run that is still going
        _temp_folder(tmp_path, ".new.tmp-4", None),  # a run so new it has no pid file yet
        _temp_folder(tmp_path, ".far.tmp-5", {**dead, "host": "another-host"}),  # pids of another machine
        _temp_folder(tmp_path, "data", dead),  # not named like our temp folders
        _temp_folder(tmp_path, ".odd.tmp-6", {"pid": "x"}),  # not a pid file we wrote
    ]
    if me["start"] is None:  # without /proc a reused pid cannot be told apart: only the dead one goes
        kept.append(swept.pop())
    assert sorted(sweep_stale_temp_dirs(tmp_path)) == sorted(swept)
    assert all(folder.is_dir() for folder in kept)
    assert not any(folder.exists() for folder in swept)


def test_a_signal_swallowed_by_a_finalizer_still_stops_the_run(tmp_path):
    before = signal.getsignal(signal.SIGTERM)
    with interruptible():
        # Python prints and drops an exception raised inside __del__; simulate exactly that.
        with contextlib.suppress(Interrupted):
            signal.raise_signal(signal.SIGTERM)
        with pytest.raises(Interrupted) as stop:
            walkout_sim.generate_split(tmp_path / "t", split="train", videos=1, frames=3, seed=0, config=TINY)
    assert stop.value.exit_code == 143
    assert list(tmp_path.iterdir()) == []
    assert signal.getsignal(signal.SIGTERM) is before  # the handler is scoped to the block


def test_sigterm_during_parts_stops_every_part_and_leaves_nothing(tmp_path):
    out = tmp_path / "parts"
    size = ["--videos", "2", "--frames", "200", "--image-stride", "1"]
    process = _start(out, "parts", "busy:1", "hard:2", "--out", str(out), *size, renders=2)
    code, err = _signal_and_wait(process, signal.SIGTERM)
    assert code == 128 + signal.SIGTERM, err
    assert list(out.iterdir()) == [], err  # the parts' temp folders were removed by their processes
    assert err.strip() == "walkout-sim parts: stopped by SIGTERM; the partial output was removed"
