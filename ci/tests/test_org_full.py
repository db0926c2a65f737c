"""`walkout-ci org init` on this monorepo itself (once): three model repositories split with their
history, the app with real gitlinks, wheels in the index, and a model repository cloned alone that
installs walkout-ci and walkout-sim from the org index and runs some of its own tests.

Third-party dependencies (torch, ...) come from this environment: the clone gets only our packages
from the org index (pip --isolated, so no other index is consulted) into a folder put first on
PYTHONPATH, and the test checks they are the ones imported.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from walkout_ci import org

MONOREPO = Path(__file__).resolve().parents[2]


def git(repo: Path, *args: str) -> str:
    return subprocess.run(
        ["git", "-C", str(repo), *args], check=True, capture_output=True, text=True
    ).stdout.strip()


@pytest.mark.skipif(not (MONOREPO / "submodules" / "tracking").is_dir(), reason="needs the monorepo")
def test_the_monorepo_becomes_an_org_and_a_model_repo_works_alone(tmp_path: Path) -> None:
    info = org.build_org(tmp_path / "org", source=MONOREPO)
    root = tmp_path / "org"
    assert sorted(info.repos) == ["walkout", "walkout-detection", "walkout-pose", "walkout-tracking"]
    lock = yaml.safe_load(git(root / "walkout.git", "show", "main:model_refs.yaml"))
    for component in ("detection", "pose", "tracking"):
        bare = root / f"walkout-{component}.git"
        main = git(bare, "rev-parse", "main")
        gitlink = git(root / "walkout.git", "ls-tree", "main", f"submodules/{component}").split()
        assert gitlink[:3] == ["160000", "commit", main]
        assert lock["components"][component]["commit"] == main
        assert int(git(bare, "rev-list", "--count", main)) > 3  # history kept
        files = git(bare, "ls-tree", "-r", "--name-only", main).splitlines()
        assert "pyproject.toml" in files and "gate.yaml" in files and "constraints.txt" in files
        assert not [name for name in files if name.startswith("experiments/")]
        pin = yaml.safe_load(git(bare, "show", "main:model_ref.yaml"))
        assert pin["experiment_id"] in info.experiments
    assert {name.split("-")[0] for name in info.wheels} == {"walkout_ci", "walkout_sim"}

    clone = tmp_path / "walkout-tracking"
    subprocess.run(["git", "clone", "-q", str(root / "walkout-tracking.git"), str(clone)], check=True)
    site = tmp_path / "site"
    index = (root / "index" / "simple").as_uri()
    install = [sys.executable, "-m", "pip", "--isolated", "install", "--quiet", "--no-deps", "--target",
               str(site), "--index-url", index, "walkout-ci", "walkout-sim"]  # fmt: skip
    subprocess.run(install, check=True, capture_output=True, cwd=clone)
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(site), str(clone / "src")]),
        "WALKOUT_HOME": str(root / "store"),  # the org's store: pins resolve by id from there
        "WALKOUT_OFFLINE": "1",
    }
    where = subprocess.run(
        [sys.executable, "-c", "import walkout_ci, walkout_sim, walkout_tracking as t; "
         "print(walkout_ci.__file__, walkout_sim.__file__, t.__file__)"],
        check=True, capture_output=True, text=True, env=env, cwd=clone,
    ).stdout.split()  # fmt: skip
    assert where[0].startswith(str(site)) and where[1].startswith(str(site))
    assert where[2].startswith(str(clone))
    resolved = subprocess.run(
        [sys.executable, "-m", "walkout_ci.cli", "resolve", "model_ref.yaml"],
        capture_output=True, text=True, env=env, cwd=clone,
    )  # fmt: skip
    assert resolved.returncode == 0, resolved.stderr
    assert resolved.stdout.strip().startswith(str(root / "store"))
    gate_help = subprocess.run(
        [sys.executable, "-m", "walkout_ci.cli", "gate", "--help"], capture_output=True, env=env, cwd=clone
    )
    assert gate_help.returncode == 0
    tests = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-x", "-p", "no:cacheprovider", "tests/test_boxes.py",
         "tests/test_kalman.py"],
        capture_output=True, text=True, env=env, cwd=clone,
    )  # fmt: skip
    assert tests.returncode == 0, tests.stdout[-3000:] + tests.stderr[-2000:]
