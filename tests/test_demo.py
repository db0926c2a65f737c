"""`make demo-quick` (scripts/demo.py --quick) in a temp folder: a fresh org, real git, hooks, submodules
and gates on tiny data (~2-3 min on 2 cores). Asserts the five outcomes from the demo's summary.json."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def summary(tmp_path_factory) -> dict:
    out = tmp_path_factory.mktemp("demo") / "demo"
    result = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "demo.py"), "--quick", "--out", str(out)],
        capture_output=True, text=True, timeout=900, check=False,
    )  # fmt: skip
    data = json.loads((out / "summary.json").read_text())
    data["exit_code"], data["stdout"], data["out"] = result.returncode, result.stdout, out
    return data


def step(summary: dict, number: int) -> dict:
    return next(s for s in summary["steps"] if s["step"] == number)


def test_model_repository_steps(summary) -> None:
    first, second, fifth = step(summary, 1), step(summary, 2), step(summary, 5)
    assert first["ok"] and "gate FAIL naming" in first["outcome"] and "merge refused" in first["outcome"], (
        first
    )
    assert any("is FAIL" in note for note in first["notes"])
    assert second["ok"] and "gate PASS; merged" in second["outcome"], second
    assert fifth["ok"] and "no CI verdict" in " ".join(fifth["notes"]), fifth
    assert (summary["out"] / "index.html").is_file()
    assert "total" in summary["stdout"]


@pytest.mark.xfail(
    strict=True,
    reason="the app's QC gate cannot resolve the lock's experiments inside the predict sandbox in an org "
    "(no bundled exports, no store there): walkout_ci.gate_runner must hand the sandbox the locked weights",
)
def test_app_steps_and_the_whole_demo(summary) -> None:
    third, fourth = step(summary, 3), step(summary, 4)
    assert third["ok"] and "system QC PASS" in third["outcome"], third
    assert fourth["ok"] and "system QC FAIL" in fourth["outcome"], fourth
    assert summary["exit_code"] == 0
