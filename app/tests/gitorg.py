"""A tiny org of real git repositories for the bump / lock / app-gate tests.

`Org(root)` holds bare "server" repositories beside each other, as a git host would:
`walkout-<component>.git` (a model repository: `model_ref.yaml` + bundled `experiments/<id>/` at its
root) and `walkout.git` (the app: `.gitmodules` with relative URLs, a real gitlink at
`submodules/<component>`, `model_refs.yaml`). Work clones live in `root/work/`. Weights are a few
bytes (tests of git plumbing) unless a real package folder is copied in.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
from pathlib import Path

import yaml

ALLOW_FILE = ("-c", "protocol.file.allow=always")


def git(repo: Path, *args: str) -> str:
    """`git -C repo args...` (raises with git's message on failure) -> stdout stripped."""
    result = subprocess.run(["git", "-C", str(repo), *args], capture_output=True, text=True, check=False)
    assert result.returncode == 0, f"git {' '.join(args)} in {repo}: {result.stderr or result.stdout}"
    return result.stdout.strip()


def identity(monkeypatch, home: Path) -> None:
    """A git identity and an empty global config, so commits work the same on every machine."""
    for key, value in {
        "GIT_AUTHOR_NAME": "Test",
        "GIT_AUTHOR_EMAIL": "test@example.com",
        "GIT_COMMITTER_NAME": "Test",
        "GIT_COMMITTER_EMAIL": "test@example.com",
        "GIT_CONFIG_GLOBAL": str(home / "gitconfig"),
        "GIT_CONFIG_NOSYSTEM": "1",
    }.items():
        monkeypatch.setenv(key, value)
    (home / "gitconfig").write_text("[init]\n\tdefaultBranch = main\n")


def write_pin(folder: Path, component: str, experiment_id: str, weights: bytes, *, sha256: str | None = None):
    """A bundled offline experiment `experiments/<id>/` plus `model_ref.yaml` pinning it in `folder`."""
    bundle = folder / "experiments" / experiment_id
    bundle.mkdir(parents=True, exist_ok=True)
    (bundle / "weights.pt").write_bytes(weights)
    digest = hashlib.sha256(weights).hexdigest()
    record = {"id": experiment_id, "artifacts": {"weights": {"path": "weights.pt", "sha256": digest}}}
    (bundle / "experiment.json").write_text(json.dumps(record))
    pin = {
        "schema_version": 1,
        "component": component,
        "experiment_id": experiment_id,
        "artifact": "weights",
        "weights_sha256": sha256 or digest,
        "training_dataset": None,
        "blind_metrics": {"score": 0.9},
    }
    (folder / "model_ref.yaml").write_text(yaml.safe_dump(pin))


def commit_all(repo: Path, message: str) -> str:
    """Stage everything in `repo`, commit, return the new commit."""
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", message)
    return git(repo, "rev-parse", "HEAD")


class Org:
    """Bare repositories under `root`, work clones under `root/work`."""

    def __init__(self, root: Path) -> None:
        self.root = root
        (root / "work").mkdir(parents=True, exist_ok=True)

    def bare(self, name: str) -> Path:
        return self.root / f"{name}.git"

    def model_repo(self, component: str, *, source: Path | None = None, weights: bytes = b"w1") -> Path:
        """A model repository `walkout-<component>.git` with one commit on main; returns its work clone.

        source: a real package folder to copy (its own pin and experiments); else a fake pin.
        """
        work = self.root / "work" / f"walkout-{component}"
        if source is not None:
            shutil.copytree(source, work, ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
        else:
            work.mkdir(parents=True)
            (work / "src").mkdir()
            (work / "src" / "code.py").write_text("VERSION = 1\n")
            write_pin(work, component, f"offline-{component}0001", weights)
        git(work, "init", "-q", "-b", "main")
        commit_all(work, f"{component}: first model")
        git(self.root, "clone", "-q", "--bare", str(work), str(self.bare(f"walkout-{component}")))
        git(work, "remote", "add", "origin", str(self.bare(f"walkout-{component}")))
        git(work, "fetch", "-q", "origin")
        git(work, "branch", "-q", "--set-upstream-to=origin/main", "main")
        return work

    def app_repo(self, files: dict[str, Path], submodules: list[str]) -> Path:
        """The app repository `walkout.git`: `files` copied in (repository path -> source), real
        submodules at `submodules/<c>` for `submodules`, in-tree folders for the other components
        (copied by the caller through `files`), `walkout lock` run and everything committed on main.
        Returns the work clone (origin = walkout.git, so relative submodule URLs resolve)."""
        bare = self.bare("walkout")
        git(self.root, "init", "-q", "--bare", "-b", "main", str(bare))
        work = self.root / "work" / "walkout"
        git(self.root, "clone", "-q", str(bare), str(work))
        for relative, source in files.items():
            target = work / relative
            if source.is_dir():
                shutil.copytree(source, target, ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
            else:
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(source, target)
        for component in submodules:
            git(
                work,
                *ALLOW_FILE,
                "submodule",
                "add",
                "-q",
                f"../walkout-{component}.git",
                f"submodules/{component}",
            )
        lock = work / "model_refs.yaml"
        components = {name: {"path": f"submodules/{name}"} for name in ("detection", "pose", "tracking")}
        lock.write_text(yaml.safe_dump({"schema_version": 1, "components": components}))
        commit_all(work, "app: first version")
        from walkout.cli import main

        assert main(["lock", "--refs", str(lock)]) == 0
        commit_all(work, "app: lock")
        git(work, "push", "-q", "origin", "main")
        return work
