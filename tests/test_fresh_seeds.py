"""scripts/fresh_seeds.py: a first look scores brand-new seeds with one commit's frozen code and pins."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SCRIPT = REPO / "scripts" / "fresh_seeds.py"


@pytest.fixture
def fresh_seeds(load_script):
    return load_script("fresh_seeds")


def test_the_snapshot_is_the_commit_and_its_packages_come_first(fresh_seeds, tmp_path, monkeypatch):
    commit = fresh_seeds.resolve_commit("HEAD")
    monkeypatch.chdir(tmp_path)
    snapshot = fresh_seeds.snapshot(commit, Path("."))  # a relative --out, as typed
    assert snapshot == tmp_path / f"snapshot-{commit}"  # absolute: the steps run from inside it
    committed = subprocess.run(
        ["git", "-C", str(REPO), "show", f"{commit}:model_refs.yaml"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert (snapshot / "model_refs.yaml").read_text() == committed
    # an edit made after the snapshot (the round goes on working) does not reach it
    (snapshot / "model_refs.yaml").write_text("edited")
    assert fresh_seeds.snapshot(commit, tmp_path) == snapshot  # reused, not rebuilt
    assert [p.name for p in tmp_path.iterdir()] == [snapshot.name]  # no temp folder left
    path = fresh_seeds.snapshot_environment(snapshot)["PYTHONPATH"].split(":")
    assert path[0] == str(snapshot / "app" / "src")
    assert all((snapshot / d).is_dir() for d in fresh_seeds.SOURCE_DIRS)


def test_each_seed_is_generated_scored_with_the_snapshots_lock_file_recorded_and_run_in_oracle_mode(
    fresh_seeds, tmp_path
):
    steps = fresh_seeds.seed_steps(
        "py", tmp_path / "snap", tmp_path / "2240", 2240, videos=22, frames=600, jobs=2
    )
    assert [s.name for s in steps] == ["generate", "qc", "oracle"]
    generate, qc, oracle = (s.command for s in steps)
    assert generate[generate.index("--seed") + 1] == "2240" and "val" in generate
    assert generate[generate.index("--frames") + 1] == "600"
    assert qc[qc.index("--refs") + 1] == str(tmp_path / "snap" / "model_refs.yaml")
    assert qc[qc.index("--save-observations") + 1] == str(tmp_path / "2240" / "obs")
    assert "--oracle" in oracle and "--refs" not in oracle


def test_a_failed_step_leaves_no_seed_folder_and_names_its_log(fresh_seeds, tmp_path, monkeypatch):
    failing = tmp_path / "python"
    failing.write_text(f"#!/bin/sh\necho \"$@\" > {tmp_path / 'argv'}\necho 'no such package' >&2\nexit 3\n")
    failing.chmod(0o755)
    monkeypatch.chdir(tmp_path)
    out = Path("out")  # relative, as typed on a command line
    with pytest.raises(fresh_seeds.FreshSeedsError, match=r"generate exited 3; its output: .*generate\.log"):
        fresh_seeds.score_seed(
            2240, out=out, snapshot_dir=tmp_path, python=str(failing), videos=1, frames=10, jobs=1
        )
    assert [p.name for p in out.iterdir()] == ["logs"]  # neither a finished folder nor a partial one
    assert "no such package" in (out / "logs" / "2240" / "generate.log").read_text()  # the log is kept
    # the steps run from the snapshot, so every path they are given is absolute
    argv = (tmp_path / "argv").read_text().split()
    assert argv[argv.index("--out") + 1] == str(tmp_path / "out" / ".2240.partial" / "val")


def test_a_seed_scored_before_a_repeated_seed_and_a_bad_commit_are_refused(fresh_seeds, tmp_path, capsys):
    (tmp_path / "2240").mkdir()
    assert fresh_seeds.main(["--seeds", "2240", "2241", "--out", str(tmp_path)]) == 2
    assert "seeds [2240] already have a folder" in capsys.readouterr().err
    assert fresh_seeds.main(["--seeds", "2241", "2241", "--out", str(tmp_path)]) == 2
    assert "repeats a seed" in capsys.readouterr().err
    assert fresh_seeds.main(["--rev", "no-such-branch", "--seeds", "2241", "--out", str(tmp_path)]) == 2
    assert "names no commit" in capsys.readouterr().err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["2240"]  # nothing was started


def test_the_script_runs_as_documented(tmp_path):
    done = subprocess.run([sys.executable, str(SCRIPT), "--help"], capture_output=True, text=True)
    assert done.returncode == 0 and "--seeds" in done.stdout


def test_all_seeds_replay_together_with_the_snapshots_code(fresh_seeds, tmp_path):
    seeds = [tmp_path / "2260", tmp_path / "2261"]
    step = fresh_seeds.pool_step("py", tmp_path, seeds, jobs=2)
    assert step.name == "replay" and step.command[:4] == ["py", "-m", "walkout", "replay"]
    pairs = [step.command[i : i + 4] for i in (4, 8)]
    assert pairs == [
        ["--observations", str(d / "obs"), "--videos", str(d / "val")] for d in seeds
    ]  # each seed's recordings with its own ground truth, in seed order
    assert step.command[step.command.index("--report-dir") + 1] == str(tmp_path / "replay")
    assert "--variants" not in step.command  # all but retracked: the per-stage attribution too


def test_the_pooled_row_is_added_when_the_replay_carries_its_figures(fresh_seeds, tmp_path, monkeypatch):
    calls = []

    def first_look(command, **kwargs):
        calls.append(command[2:])
        return subprocess.CompletedProcess(command, 0, stdout=f"| table {len(calls)} |\n", stderr="")

    monkeypatch.setattr(fresh_seeds.subprocess, "run", first_look)
    seeds = [tmp_path / "2260", tmp_path / "2261"]
    pool = tmp_path / "replay"
    pool.mkdir()
    # a snapshot whose replay predates the figures: the seeds' rows and the per-stage pointer only
    (pool / "replay.json").write_text(json.dumps({"format": "walkout-replay", "review_flags": {}}))
    text = fresh_seeds.write_table(tmp_path, seeds, pool=pool)
    assert calls[-2:] == [["2260/report", "2261/report"], ["2260/oracle", "2261/oracle"]]
    assert text == (
        "| table 1 |\n\nPer stage, where each wrong receipt comes from: replay/replay.md (`walkout "
        "replay` over the seeds' recordings).\n\nOracle mode (`walkout qc --oracle`: the engine and "
        "the simulator on ground truth):\n\n| table 2 |\n"
    )
    assert str(tmp_path) not in text and (tmp_path / "first_look.md").read_text() == text
    figures = {"format": "walkout-replay", "review_flags": {"models": {}}}
    (pool / "replay.json").write_text(json.dumps(figures))
    fresh_seeds.write_table(tmp_path, seeds, pool=pool)
    assert calls[-2] == ["2260/report", "2261/report", "replay"]
    fresh_seeds.write_table(tmp_path, seeds[:1], pool=pool)  # one seed: its row is the pool already
    assert calls[-2] == ["2260/report"]
    text = fresh_seeds.write_table(tmp_path, seeds)  # before the replay ran
    assert "Per stage" not in text and text.startswith("| table 7 |\n\nOracle mode")

    def failing(command, **kwargs):
        return subprocess.CompletedProcess(command, 2, stdout="", stderr="first_look: error: no report")

    monkeypatch.setattr(fresh_seeds.subprocess, "run", failing)
    with pytest.raises(fresh_seeds.FreshSeedsError, match="could not read the reports: first_look: error"):
        fresh_seeds.write_table(tmp_path, seeds)


def test_a_first_look_can_take_another_store(fresh_seeds, tmp_path, monkeypatch):
    (generate, *_) = fresh_seeds.seed_steps(
        "py", tmp_path / "snap", tmp_path / "2264", 2264, videos=22, frames=600, jobs=2, config="busy"
    )
    assert generate.command[generate.command.index("--config") + 1] == "busy"
    (default, *_) = fresh_seeds.seed_steps("py", tmp_path, tmp_path / "s", 1, videos=1, frames=1, jobs=1)
    assert "--config" not in default.command
    monkeypatch.chdir(tmp_path)
    (tmp_path / "store.yaml").write_text("shoppers: {}\n")
    # the steps run from the snapshot: a YAML file given relative to here goes to them absolute
    assert fresh_seeds.generator_config("store.yaml") == str(tmp_path / "store.yaml")
    assert fresh_seeds.generator_config("hard") == "hard" and fresh_seeds.generator_config(None) is None
    with pytest.raises(fresh_seeds.FreshSeedsError, match=r"--config 'stor\.yaml': no such file"):
        fresh_seeds.generator_config("stor.yaml")
