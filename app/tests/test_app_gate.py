"""The app's system QC gate (`walkout-ci gate --component-dir app`) loaded from `app/gate.yaml` and run
end to end with the real models on two tiny scenario videos (39 + 11 frames), in temporary git
repositories:

(a) this monorepo's layout (a `git clone --shared` of HEAD): candidate = HEAD's lock = the merge-base's
    lock -> PASS, the candidate read from the cache.
(b) an app repository with a REAL submodule (detection, a tiny org of bare repositories built here):
    a code-only commit merged to the model repository's main, `walkout bump`, `walkout lock --check`,
    and the gate: the baseline predicts with the merge-base's submodule commit and the candidate with
    the bumped one (each side's worktree checks out its own submodule; the candidate's code prints a
    marker into its predict.log), both scored by the merge-base's scorer -> PASS.

Each gate runs the real detection + tracking + pose models on CPU: about 20 s an evaluation on 2
shared cores (three evaluations in all).
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from walkout.cli import main as walkout_main
from walkout_ci.cli import main as ci_main

_spec = importlib.util.spec_from_file_location("app_tests_gitorg", Path(__file__).with_name("gitorg.py"))
gitorg = importlib.util.module_from_spec(_spec)
sys.modules[_spec.name] = gitorg
_spec.loader.exec_module(gitorg)
git = gitorg.git

REPO_ROOT = Path(__file__).resolve().parents[2]
# Two scripted videos at the store's exit: a shopper takes a soap and leaves (one receipt line), and a
# shopper walks out with nothing (an empty receipt). Shopper speed 5 px/frame keeps them short.
SCENARIOS = {
    "tiny_pick": {
        "name": "tiny_pick",
        "seed": 3,
        "shoppers": [
            {
                "id": 1,
                "enter_s": 0.0,
                "start": [258, 204],
                "speed": 5.0,
                "leave": True,
                "actions": [{"do": "pick", "slot": "B2-12"}],
            }
        ],
    },
    "tiny_walk": {
        "name": "tiny_walk",
        "seed": 4,
        "shoppers": [
            {
                "id": 1,
                "enter_s": 0.0,
                "start": [288, 214],
                "speed": 5.0,
                "leave": True,
                "actions": [{"do": "walk_to", "point": [292, 214]}],
            }
        ],
    },
}
MARKER = "detection code of the bumped commit"


@pytest.fixture(scope="module")
def tiny_split(tmp_path_factory) -> Path:
    """A verified two-video split: the scenarios' videos, the base layout and a manifest listing them."""
    from walkout_sim.config import GeneratorConfig, OutputConfig
    from walkout_sim.generate import render_scenario

    root = tmp_path_factory.mktemp("tiny")
    config = GeneratorConfig(output=OutputConfig(image_stride=1000))
    split = root / "split"
    manifest, hashes = None, []
    for name, scenario in SCENARIOS.items():
        script = root / f"{name}.yaml"
        script.write_text(yaml.safe_dump(scenario))
        render_scenario(script, root / name, config=config)
        part = json.loads((root / name / "manifest.json").read_text())
        manifest = manifest or part
        hashes += part["content_hashes"]
        shutil.copytree(root / name / "videos", split / "videos", dirs_exist_ok=True)
    shutil.copyfile(root / "tiny_pick" / "layout.yaml", split / "layout.yaml")
    files = {
        path.relative_to(split).as_posix(): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted(split.rglob("*"))
        if path.is_file()
    }
    manifest.update(files=files, content_hashes=hashes)
    (split / "manifest.json").write_text(json.dumps(manifest, indent=1))
    return split


@pytest.fixture
def isolated(tmp_path, monkeypatch):
    """Git identity, a private store and cache secret for one test."""
    gitorg.identity(monkeypatch, tmp_path)
    monkeypatch.setenv("WALKOUT_HOME", str(tmp_path / "store"))
    monkeypatch.setenv("WALKOUT_CACHE_SECRET", "test-cache-secret")
    return tmp_path


def _gate(app_dir: Path, split: Path, out: Path, cache: Path) -> dict:
    """Run `walkout-ci gate --component-dir app` in-process; returns verdict.json (exit code checked)."""
    code = ci_main(
        [
            "gate",
            "--component-dir",
            str(app_dir),
            "--data",
            str(split),
            "--out",
            str(out),
            "--cache-dir",
            str(cache),
            "--no-track",
            "--no-progress",
        ]
    )
    verdict = json.loads((out / "verdict.json").read_text())
    assert code == 0, json.dumps(verdict, indent=1)[:4000]
    return verdict


def _archive(paths: list[str], destination: Path) -> None:
    """The committed content of `paths` at this repository's HEAD, extracted into `destination`."""
    destination.mkdir(parents=True, exist_ok=True)
    archive = subprocess.run(
        ["git", "-C", str(REPO_ROOT), "archive", "--format=tar", "HEAD", *paths],
        capture_output=True,
        check=True,
    )
    subprocess.run(["tar", "-x", "-C", str(destination)], input=archive.stdout, check=True)


def test_app_gate_in_the_monorepo_layout_passes_with_the_same_lock(isolated, tiny_split):
    clone = isolated / "mono"
    git(isolated, "clone", "-q", "--shared", str(REPO_ROOT), str(clone))
    verdict = _gate(clone / "app", tiny_split, isolated / "out", isolated / "cache")
    assert verdict["verdict"] == "PASS"
    assert verdict["component"] == "app"
    evaluations = verdict["evaluations"]
    assert not evaluations["baseline"]["from_cache"] and evaluations["candidate"]["from_cache"]
    report = json.loads((isolated / "out/evaluations/baseline/report.json").read_text())
    assert report["metrics"]["receipts_judged"] == 2
    assert {sample["id"] for sample in report["per_sample"]} == set(SCENARIOS)


def test_app_gate_with_a_real_submodule_runs_each_side_with_its_own_component_code(isolated, tiny_split):
    # The model repository: the detection package at its root, one commit on main.
    package = isolated / "detection-package"
    _archive(["submodules/detection"], isolated / "archive")
    shutil.move(isolated / "archive" / "submodules" / "detection", package)
    org = gitorg.Org(isolated / "org")
    detection = org.model_repo("detection", source=package)
    # The app repository: app/ and the in-tree pose and tracking, detection a real submodule.
    _archive(["app", "submodules/pose", "submodules/tracking"], isolated / "app-files")
    files = {
        name: isolated / "app-files" / name for name in ("app", "submodules/pose", "submodules/tracking")
    }
    app = org.app_repo(files, submodules=["detection"])
    lock = app / "model_refs.yaml"
    assert walkout_main(["lock", "--check", "--refs", str(lock)]) == 0
    old = git(app, "rev-parse", "HEAD:submodules/detection")

    # A code-only change merged to the model repository's main: same pin, observable code.
    init = detection / "src" / "walkout_detection" / "__init__.py"
    init.write_text(init.read_text() + f"\nimport sys as _sys\n\nprint({MARKER!r}, file=_sys.stderr)\n")
    new = gitorg.commit_all(detection, "detection: say which code runs")
    git(detection, "push", "-q", "origin", "main")

    # The integrator bumps on a branch; the lock check passes; the gate compares with main.
    git(app, "checkout", "-q", "-b", "bump-detection")
    assert walkout_main(["bump", "detection", "--refs", str(lock)]) == 0
    assert walkout_main(["lock", "--check", "--refs", str(lock)]) == 0
    assert git(app, "rev-parse", "HEAD:submodules/detection") == new != old
    out = isolated / "out"
    verdict = _gate(app / "app", tiny_split, out, isolated / "cache")
    assert verdict["verdict"] == "PASS"
    evaluations = verdict["evaluations"]
    # the gitlink is in the code hash: the candidate is not the baseline's cache entry
    assert not evaluations["baseline"]["from_cache"] and not evaluations["candidate"]["from_cache"]
    assert evaluations["candidate"]["commit"] == git(app, "rev-parse", "HEAD")
    assert evaluations["baseline"]["commit"] == git(app, "rev-parse", "main")
    assert MARKER in (out / "evaluations/candidate/logs/predict.log").read_text()
    assert MARKER not in (out / "evaluations/baseline/logs/predict.log").read_text()
    assert not list(Path(isolated / "org/work/walkout/.git/worktrees").glob("*"))
