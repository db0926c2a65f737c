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


def test_app_steps_and_the_whole_demo(summary) -> None:
    third, fourth = step(summary, 3), step(summary, 4)
    assert third["ok"] and "system QC PASS" in third["outcome"], third
    assert third["system_qc"]["verdict"] == "PASS" and not third["system_qc"]["failed_rules"], third
    # the QC videos are sealed, so CI leakage-checks each of the three experiments the lock pins
    assert third["system_qc"]["leakage_checks_passed"] == 3, third
    # 4: a detection change that passes the model gate on its own metrics (unchanged), is merged and
    # bumped, and makes the receipts worse: system QC FAIL naming receipt metrics, the app's main refuses.
    assert fourth["ok"] and "model gate PASS, merged" in fourth["outcome"], fourth
    assert "system QC FAIL" in fourth["outcome"] and "app main refused" in fourth["outcome"], fourth
    gate = fourth["model_gate"]["metrics"]
    assert fourth["model_gate"]["verdict"] == "PASS", fourth
    assert all(gate[name][0] == gate[name][1] for name in ("AP50", "AP", "F1_per_image")), gate
    qc = fourth["system_qc"]
    assert qc["verdict"] == "FAIL" and "receipt_exact_match" in qc["failed_rules"], qc
    exact, missed = qc["metrics"]["receipt_exact_match"], qc["metrics"]["missed_items_per_100"]
    assert exact[1] < exact[0] and missed[1] > missed[0], qc
    assert any("is FAIL" in note for note in fourth["notes"]), fourth
    assert summary["exit_code"] == 0, summary["stdout"][-3000:]
