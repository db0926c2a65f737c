"""`clone --local` reruns only our own training entry points, never a recorded arbitrary command."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from walkout_ci import cli
from walkout_ci.clone import rerun_command
from walkout_ci.errors import ExperimentError


def make_bundle(root: Path, experiment_id: str, argv: list, cwd: Path) -> Path:
    """An exported experiment (`<root>/<id>/experiment.json`) whose record holds `argv`."""
    folder = root / experiment_id
    folder.mkdir(parents=True)
    record = {
        "schema_version": 1,
        "id": experiment_id,
        "project": "walkout/detection",
        "name": "train",
        "mode": "offline",
        "status": "completed",
        "params": {},
        "metrics": {},
        "artifacts": {},
        "training_data": [],
        "code": {"argv": argv, "cwd": str(cwd), "commit": None},
    }
    (folder / "experiment.json").write_text(json.dumps(record))
    return root


def test_a_recorded_shell_command_is_refused_and_never_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    monkeypatch.setenv("WALKOUT_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("WALKOUT_OFFLINE", "1")
    pwned = tmp_path / "pwned"
    argv = ["sh", "-c", f"touch {pwned}"]
    bundles = make_bundle(tmp_path / "experiments", "offline-evil", argv, tmp_path)
    code = cli.main(["clone", "offline-evil", "--local", "--search", str(bundles)])
    assert code == 2 and not pwned.exists()
    error = capsys.readouterr().err
    assert "offline-evil" in error and "'sh', '-c'" in error
    assert "python -m walkout_detection.cli train" in error and "walkout-tracking train" in error


@pytest.mark.parametrize(
    "argv",
    [
        ["sh", "-c", "touch /tmp/pwned"],
        ["/usr/bin/env", "walkout-detection", "train"],
        ["/tmp/evil/walkout_detection_cli.py", "train"],
        ["python", "-c", "import os"],
        ["python", "-m", "os", "train"],
        ["walkout-detection", "evaluate", "--model", "x"],  # only train
        ["walkout-detection", "train", "--data", "d", "--output", "o", "--exec", "x"],
        ["walkout-detection", "train", "--data"],  # option without its value
        ["walkout-detection", "train", "--data", "--output"],
        ["walkout-detection", "train", "positional"],
        ["walkout-detection", "train", "--no-progress=1"],
        ["walkout-pose", "train", "--output", "o"],  # detection's option, not pose's
        ["walkout-detection", "train", "--data", "a\0b"],
        "walkout-detection train",  # not a list
        [],
    ],
)
def test_anything_but_our_training_entry_points_is_an_error(argv) -> None:
    with pytest.raises(ExperimentError, match="cannot be rerun") as caught:
        rerun_command(argv, experiment_id="offline-x")
    assert "offline-x" in str(caught.value) and "walkout-pose train" in str(caught.value)


@pytest.mark.parametrize(
    ("argv", "module", "arguments"),
    [
        (
            [
                "/venv/bin/walkout-detection",
                "train",
                "--data",
                "d",
                "--output",
                "o",
                "--set",
                "train.epochs=2",
            ],
            "walkout_detection.cli",
            ["train", "--data", "d", "--output", "o", "--set", "train.epochs=2"],
        ),
        (
            [
                "/repo/submodules/pose/src/walkout_pose/cli.py",
                "train",
                "--data=d",
                "--out",
                "o",
                "--no-progress",
            ],
            "walkout_pose.cli",
            ["train", "--data=d", "--out", "o", "--no-progress"],
        ),
        (
            ["python3.11", "-m", "walkout_tracking.cli", "train", "--data", "d", "--out", "o", "--quiet"],
            "walkout_tracking.cli",
            ["train", "--data", "d", "--out", "o", "--quiet"],
        ),
    ],
)
def test_our_entry_points_rerun_with_this_interpreter(argv, module: str, arguments: list[str]) -> None:
    assert rerun_command(argv) == [sys.executable, "-m", module, *arguments]
