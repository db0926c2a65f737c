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


def test_dotted_keys_map_to_clearml_sections_and_unknown_keys_list_close_matches() -> None:
    from walkout_ci.clone import clearml_parameter_name
    from walkout_ci.errors import ExperimentError

    known = ["General/train/learning_rate", "General/train/epochs", "General/seed", "Args/data"]
    assert clearml_parameter_name("train.learning_rate", known) == "General/train/learning_rate"
    assert clearml_parameter_name("seed", known) == "General/seed"
    assert clearml_parameter_name("train/epochs", known) == "General/train/epochs"
    assert clearml_parameter_name("Args/data", known) == "Args/data"
    with pytest.raises(ExperimentError, match=r"did you mean train\.learning_rate"):
        clearml_parameter_name("train.learning_rte", known, experiment_id="abc")
    with pytest.raises(ExperimentError, match=r"has no parameter 'model\.width'"):
        clearml_parameter_name("model.width", known)


def test_a_training_command_becomes_an_agent_runnable_module_call(tmp_path: Path) -> None:
    from walkout_ci.agent_task import runnable_script

    argv = ["/venv/bin/walkout-tracking", "train", "--data", "d/train", "--out=runs/a", "--epochs", "2"]
    script = runnable_script(argv, cwd=tmp_path, repo_root=None)
    assert script.module == "walkout_tracking.cli"
    assert script.entry_point == (
        f"-m walkout_tracking.cli train --data {tmp_path}/d/train --out={tmp_path}/runs/a --epochs 2"
    )
    assert runnable_script(["bash", "-c", "true"], cwd=tmp_path, repo_root=None) is None


def test_a_server_clone_writes_into_its_own_output_folder():
    from walkout_ci.clone import own_output_entry_point

    moved = own_output_entry_point(
        "-m walkout_pose.cli train --data /d --out /runs/a --no-progress", "abcdef123456"
    )
    assert moved == "-m walkout_pose.cli train --data /d --out /runs/a-clone-abcdef12 --no-progress"
    assert own_output_entry_point("-m walkout_pose.cli train --data /d", "abcdef123456") is None
    assert own_output_entry_point("train.py --out /x", "abcdef123456") is None
    assert own_output_entry_point(None, "abcdef123456") is None
