"""A failed `evaluate` of any component removes the report.json an earlier run left in its folder."""

from __future__ import annotations

import subprocess
import sys

import pytest


@pytest.mark.parametrize("component", ["detection", "pose", "tracking"])
def test_a_failed_evaluation_leaves_no_stale_report(tmp_path, component):
    report_dir = tmp_path / "report"
    report_dir.mkdir()
    (report_dir / "report.json").write_text('{"metrics": {"AP50": 0.99}}')
    (tmp_path / "data").mkdir()
    command = [
        sys.executable,
        "-m",
        f"walkout_{component}.cli",
        "evaluate",
        "--model",
        str(tmp_path / "none.pt"),
    ]
    command += ["--data", str(tmp_path / "data"), "--report-dir", str(report_dir)]
    done = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert done.returncode == 2, done.stderr
    assert not (report_dir / "report.json").exists()
