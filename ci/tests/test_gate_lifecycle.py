"""The gate as CI runs it: stopped by SIGTERM/SIGINT mid-evaluation, and four gates on one cache."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from walkout_ci import blind, gitrepo
from walkout_ci.testing import (
    add_fake_truth,
    fake_weights,
    make_fake_component_repo,
    make_fake_dataset,
    make_leakage_checked_component_repo,
    pin_fake_candidate,
)

BASE_SCORES = {"person": [0.9, 0.8, 0.9, 0.7, 0.8, 0.9], "sku": [0.8, 0.9, 0.7, 0.9, 0.8, 0.9]}
COLLAPSED = {"person": BASE_SCORES["person"], "sku": [0.1] * 6}


def git(repo: Path, *args: str) -> None:
    subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True)


def gate_command(component: Path, data: Path, out: Path, cache: Path, *extra: str) -> list[str]:
    command = [sys.executable, "-m", "walkout_ci.cli", "gate", "--component-dir", str(component)]
    command += [
        "--data",
        str(data),
        "--out",
        str(out),
        "--cache-dir",
        str(cache),
        "--no-track",
        "--no-progress",
    ]
    return [*command, *extra]


def processes_mentioning(*texts: str) -> list[int]:
    """Pids whose command line contains every one of `texts` (to find orphans of a stopped gate).

    Callers pass their own tmp_path too: tests running beside this one (pytest-xdist) start
    `component.py predict` processes of their own."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if all(text in cmdline for text in texts):
            found.append(int(entry.name))
    return found


@pytest.fixture
def sleeping_candidate(tmp_path, monkeypatch):
    """Sealed blind data and a PR that pins a model whose prediction takes a minute."""
    key = blind.generate_key()
    monkeypatch.setenv("WALKOUT_BLIND_KEY", key)
    monkeypatch.setenv("WALKOUT_HOME", str(tmp_path / "home"))
    component = make_leakage_checked_component_repo(tmp_path / "repo", BASE_SCORES)
    pin_fake_candidate(component, "local-slow", fake_weights(BASE_SCORES, sleep_s=120))
    git(component, "add", "-A")
    git(component, "commit", "-q", "-m", "a slow model")
    make_fake_dataset(tmp_path / "data")
    add_fake_truth(tmp_path / "data", token="truth")
    archive = blind.seal(tmp_path / "data", tmp_path / "blind.sealed", key=key)
    return component, archive


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_a_stopped_gate_leaves_nothing_behind_and_says_so(sleeping_candidate, tmp_path, signum):
    component, archive = sleeping_candidate
    temp = tmp_path / "tmp"
    temp.mkdir()
    out = tmp_path / "out"
    environment = {**os.environ, "TMPDIR": str(temp)}
    gate = subprocess.Popen(
        gate_command(component, archive, out, tmp_path / "cache"),
        env=environment,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    # Wait until the candidate's prediction runs (the baseline was evaluated, data decrypted twice).
    deadline = time.monotonic() + 120
    while not processes_mentioning("component.py predict", str(tmp_path)):
        assert gate.poll() is None, gate.communicate()
        assert time.monotonic() < deadline, "the prediction never started"
        time.sleep(0.1)
    assert list(temp.iterdir()), "the run keeps its scratch in TMPDIR"
    gate.send_signal(signum)
    _, stderr = gate.communicate(timeout=60)
    assert gate.returncode == 128 + signum, stderr
    assert f"stopped by {signal.Signals(signum).name}" in stderr
    assert sorted(path.name for path in temp.iterdir()) == [], "decrypted data or scratch left behind"
    outlived = processes_mentioning("component.py predict", str(tmp_path))
    assert outlived == [], "the prediction outlived the gate"
    worktrees = gitrepo.git(component, "worktree", "list", "--porcelain")
    assert worktrees.count("worktree ") == 1, worktrees
    verdict = json.loads((out / "verdict.json").read_text())
    assert verdict["verdict"] == "ERROR" and "stopped by" in verdict["summary"]
    assert {path.name for path in out.iterdir()} >= {"verdict.json", "report.md", "report.html", "junit.xml"}


def test_four_gates_on_one_cache_ten_times(tmp_path, monkeypatch):
    """Concurrent gates share a cache (first writer wins, readers copy): every verdict right, no crash."""
    monkeypatch.setenv("WALKOUT_HOME", str(tmp_path / "home"))
    component = make_fake_component_repo(tmp_path / "repo", BASE_SCORES)
    data = tmp_path / "data"
    make_fake_dataset(data)
    candidates = {}
    for name, scores in (("equal", BASE_SCORES), ("collapsed", COLLAPSED)):
        candidates[name] = tmp_path / f"{name}.json"
        candidates[name].write_bytes(fake_weights(scores))
    plan = [("equal", 0, "PASS"), ("equal", 0, "PASS"), ("collapsed", 1, "FAIL"), ("collapsed", 1, "FAIL")]

    def run(round_index: int, gate_index: int) -> tuple[int, str, str]:
        name = plan[gate_index][0]
        out = tmp_path / f"out-{round_index}-{gate_index}"
        cache = tmp_path / f"cache-{round_index}"
        command = gate_command(component, data, out, cache, "--candidate", str(candidates[name]))
        done = subprocess.run(command, capture_output=True, text=True, timeout=300)
        verdict = json.loads((out / "verdict.json").read_text())
        return done.returncode, verdict["verdict"], verdict["summary"] + "\n" + done.stderr

    for round_index in range(10):
        # A fresh cache each round, so the four race to store the same baseline entry.
        with ThreadPoolExecutor(max_workers=4) as pool:
            results = list(pool.map(run, [round_index] * 4, range(4)))
        for (_, code, verdict), (returncode, got, stderr) in zip(plan, results, strict=True):
            assert (returncode, got) == (code, verdict), f"round {round_index}: {stderr[-2000:]}"
            assert "Traceback" not in stderr
