"""`walkout-ci org init DIR`: the multi-repository org users run, bootstrapped from this monorepo.

Layout made under DIR (all paths inside are relative, so the folder can be moved):

```
DIR/
  org.json                       # what was built: repos (kind, component, first main commit), paths
  walkout-<c>.git/               # bare model repository per component c (detection, pose, tracking):
                                 #   the package at the root, its history kept (git subtree split of
                                 #   submodules/<c>), plus one commit that removes the bundled
                                 #   experiments/ (git carries only experiment ids) and adds
                                 #   constraints.txt (so a clone installs alone)
  walkout.git/                   # bare app repository: the monorepo's other files in one commit, with
                                 #   .gitmodules (relative URLs ../walkout-<c>.git) and real gitlinks at
                                 #   submodules/<c> = the model repositories' main commits;
                                 #   model_refs.yaml's `commit` fields are set to those commits
  <repo>.git: .github/           # GitHub workflows at each repository's root (templates/workflows/):
                                 #   model repos .github/workflows/gate.yml (job `model gate`), the app
                                 #   system-qc.yml (job `system QC`), relock.yml and dependabot.yml
  <repo>.git/hooks/update        # protection hook (walkout_ci.hooks), with <repo>.git/walkout-protect.json
  index/simple/<project>/index.html, index/wheels/*.whl
                                 # PEP 503 simple index with wheels of walkout-ci and walkout-sim
  store/experiments/<id>/        # the org's experiment store (a walkout store: WALKOUT_HOME=DIR/store,
                                 #   or --search DIR/store/experiments), holding every bundled experiment
  secrets/ci-signing.key         # the verdict signing key (0600; CI holds the same as a secret)
```

The repositories are built from the source's committed HEAD only (never its work tree), with fixed
authors and the source commit's date, so the same source commit gives the same repository commits.
Building happens in a temporary folder next to DIR that is renamed into place at the end: a failure
leaves nothing behind. An existing org is refused unless `update=True`, which refreshes the parts
that are not history (hooks, their config, the index, new experiments in the store) and keeps the
repositories, the key and what the store already holds.
"""

from __future__ import annotations

import hashlib
import html
import io
import json
import os
import re
import shutil
import stat
import subprocess
import sys
import tarfile
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from walkout_ci import attest, hooks
from walkout_ci.errors import WalkoutCIError
from walkout_ci.experiment import utc_now
from walkout_ci.store import atomic_write_json, atomic_write_text

ORG_FILE = "org.json"
ORG_SCHEMA_VERSION = 1
KEY_FILE = "secrets/ci-signing.key"
INDEX_DIR = "index"
STORE_DIR = "store"
BOT_NAME = "walkout-ci org init"
BOT_EMAIL = "org-init@walkout.invalid"


class OrgError(WalkoutCIError):
    """The org cannot be built or updated (exists already, bad source, a step failed)."""


@dataclass(frozen=True)
class OrgSpec:
    """What to carve out of the source repository.

    components: model packages at `<submodules_dir>/<c>/`, each becoming `walkout-<c>.git`.
    wheel_projects: source folders (with a pyproject.toml) whose wheels go into the index.
    """

    components: tuple[str, ...] = ("detection", "pose", "tracking")
    submodules_dir: str = "submodules"
    app_repo: str = "walkout"
    wheel_projects: tuple[str, ...] = ("ci", "sim")
    protected_branch: str = "main"
    constraints_file: str = "constraints.txt"

    def model_repo(self, component: str) -> str:
        """The model repository's name (without .git)."""
        return f"walkout-{component}"


@dataclass
class OrgInfo:
    """What `build_org` made (also written as DIR/org.json)."""

    root: Path
    source: Path
    source_commit: str
    repos: dict[str, dict[str, Any]] = field(default_factory=dict)
    wheels: list[str] = field(default_factory=list)
    experiments: list[str] = field(default_factory=list)
    updated: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {
            "schema_version": ORG_SCHEMA_VERSION,
            "created_at": utc_now(),
            "source": {"path": str(self.source), "commit": self.source_commit},
            "repos": self.repos,
            "index": f"{INDEX_DIR}/simple",
            "wheels": sorted(self.wheels),
            "store": STORE_DIR,
            "experiments": sorted(self.experiments),
            "key_file": KEY_FILE,
        }


# --- git helpers ------------------------------------------------------------------------------------


def _run(command: list[str], *, cwd: Path | None = None, env: dict | None = None, data: bytes | None = None):
    """Run a command; OrgError naming it and its stderr when it fails. Returns stdout bytes."""
    try:
        completed = subprocess.run(command, cwd=cwd, env=env, input=data, capture_output=True, check=False)
    except OSError as error:
        raise OrgError(f"cannot run {command[0]}: {error}") from error
    if completed.returncode != 0:
        message = completed.stderr.decode(errors="replace").strip() or completed.stdout.decode(
            errors="replace"
        )
        raise OrgError(f"`{' '.join(command)}` failed: {message.strip()[-2000:]}")
    return completed.stdout


def _git(repo: Path, *args: str, env: dict | None = None, data: bytes | None = None) -> str:
    return _run(["git", "-C", os.fspath(repo), *args], env=env, data=data).decode().strip()


def _bot_env(date: str, index_file: Path | None = None) -> dict[str, str]:
    """Environment for deterministic commits: fixed author/committer, the source commit's date."""
    env = dict(os.environ)
    env.update(
        GIT_AUTHOR_NAME=BOT_NAME,
        GIT_AUTHOR_EMAIL=BOT_EMAIL,
        GIT_COMMITTER_NAME=BOT_NAME,
        GIT_COMMITTER_EMAIL=BOT_EMAIL,
        GIT_AUTHOR_DATE=date,
        GIT_COMMITTER_DATE=date,
    )
    if index_file is not None:
        env["GIT_INDEX_FILE"] = os.fspath(index_file)
    return env


def _extract(repo: Path, commit: str, path: str, destination: Path) -> Path:
    """Write the committed files under `path` at `commit` into `destination` (git archive + tar)."""
    data = _run(["git", "-C", os.fspath(repo), "archive", "--format=tar", commit, "--", path])
    destination.mkdir(parents=True, exist_ok=True)
    with tarfile.open(fileobj=io.BytesIO(data)) as archive:
        archive.extractall(destination, filter="data")
    return destination / path


def _tree_has(repo: Path, commit: str, path: str) -> bool:
    completed = subprocess.run(
        ["git", "-C", os.fspath(repo), "cat-file", "-e", f"{commit}:{path}"], capture_output=True, check=False
    )
    return completed.returncode == 0


# --- GitHub files at each repository's root --------------------------------------------------------

# Repository path -> template (walkout_ci/templates/workflows/) for each kind of repository: GitHub reads
# workflows only at a repository's root, so each published repository gets its own.
GITHUB_FILES = {
    "model": {".github/workflows/gate.yml": "model-gate.yml"},
    "qc": {
        ".github/workflows/system-qc.yml": "system-qc.yml",
        ".github/workflows/relock.yml": "relock.yml",
        ".github/dependabot.yml": "dependabot.yml",
    },
}


def workflow_files(kind: str) -> dict[str, str]:
    """The GitHub files of a repository of `kind` ("model" or "qc"): {repository path: text}."""
    folder = resources.files("walkout_ci").joinpath("templates/workflows")
    files = GITHUB_FILES[kind]
    return {path: folder.joinpath(name).read_text(encoding="utf-8") for path, name in files.items()}


def _set_file(work: Path, commit: str, path: str, text: str, env: dict) -> bool:
    """Put `text` at `path` in the index (GIT_INDEX_FILE in `env`); True when `commit` had other content."""
    blob = _git(work, "hash-object", "-w", "--stdin", data=text.encode())
    _git(work, "update-index", "--add", "--cacheinfo", f"100644,{blob},{path}", env=env)
    current = subprocess.run(
        ["git", "-C", os.fspath(work), "rev-parse", "--verify", "--quiet", f"{commit}:{path}"],
        capture_output=True,
        text=True,
        check=False,
    )
    return current.stdout.strip() != blob


# --- the model repositories -------------------------------------------------------------------------


def split_component(work: Path, spec: OrgSpec, component: str, commit: str, date: str, index: Path) -> str:
    """The model repository's main commit: the subtree split of `submodules/<c>` (history kept) plus a
    commit removing experiments/ and adding the source's constraints file. Returns its sha."""
    prefix = f"{spec.submodules_dir}/{component}"
    split = _git(work, "subtree", "split", "-q", f"--prefix={prefix}", commit)
    env = _bot_env(date, index)
    _git(work, "read-tree", split, env=env)
    changes = []
    if _tree_has(work, split, "experiments"):
        _git(work, "rm", "-r", "-q", "--cached", "experiments", env=env)
        changes.append("experiments/ removed: weights live in the org's experiment store, git keeps ids")
    if _tree_has(work, commit, spec.constraints_file):
        blob = _git(work, "rev-parse", f"{commit}:{spec.constraints_file}")
        _git(work, "update-index", "--add", "--cacheinfo", f"100644,{blob},{spec.constraints_file}", env=env)
        changes.append(f"{spec.constraints_file} added: the exact versions to install with, from the app")
    for path, text in workflow_files("model").items():
        if _set_file(work, split, path, text, env):
            changes.append(f"{path} written: GitHub reads workflows only at a repository's root")
    tree = _git(work, "write-tree", env=env)
    if not changes:
        return split
    message = f"Publish {spec.model_repo(component)} as its own repository\n\n" + "\n".join(
        f"- {line}" for line in changes
    )
    return _git(work, "commit-tree", tree, "-p", split, "-m", message, env=env)


# --- the app repository -----------------------------------------------------------------------------

GITMODULES_HEADER = (
    "# The model repositories, checked out as submodules. Relative URLs: they live beside this\n"
    "# repository on the same git host (walkout-ci org init).\n"
)


def gitmodules_text(spec: OrgSpec) -> str:
    """.gitmodules with one submodule per component, URL `../walkout-<c>.git`."""
    lines = [GITMODULES_HEADER.rstrip("\n")]
    for component in spec.components:
        path = f"{spec.submodules_dir}/{component}"
        lines += [f'[submodule "{path}"]', f"\tpath = {path}", f"\turl = ../{spec.model_repo(component)}.git"]
    return "\n".join(lines) + "\n"


def relock_commits(text: str, commits: dict[str, str], source: str = "model_refs.yaml") -> str:
    """model_refs.yaml text with each `components.<c>.commit` set to `commits[c]` (comments kept).

    Line-based on purpose (a YAML round trip would drop the comments); the result is parsed back and
    checked, so a layout it does not understand is an OrgError, never a silently wrong lock.
    """
    lines = text.splitlines(keepends=True)
    current = None
    seen: set[str] = set()
    for number, line in enumerate(lines):
        header = re.match(r"^  ([A-Za-z0-9_-]+):\s*$", line)
        if header:
            current = header.group(1)
            continue
        field_match = re.match(r"^(    commit:\s*)(\S*)(\s*)$", line)
        if field_match and current in commits:
            # Quoted when YAML would read the bare id as something else (an all-digit id is an int).
            value = commits[current]
            value = value if yaml.safe_load(value) == value else f"'{value}'"
            lines[number] = f"{field_match.group(1)}{value}{field_match.group(3) or chr(10)}"
            seen.add(current)
    result = "".join(lines)
    data = yaml.safe_load(result)
    for component, commit in commits.items():
        entry = ((data or {}).get("components") or {}).get(component) or {}
        if component not in seen or entry.get("commit") != commit:
            raise OrgError(f"{source}: cannot set components.{component}.commit (unexpected layout)")
    return result


def build_app_commit(
    work: Path, spec: OrgSpec, commit: str, model_commits: dict[str, str], date: str, index: Path
) -> str:
    """The app repository's first commit: the source tree at `commit` with each component folder
    replaced by a gitlink to its model repository's main commit, a generated .gitmodules and the lock
    file's commits set to those gitlinks. Returns its sha."""
    env = _bot_env(date, index)
    _git(work, "read-tree", commit, env=env)
    for component, sha in model_commits.items():
        path = f"{spec.submodules_dir}/{component}"
        if _tree_has(work, commit, path):
            _git(work, "rm", "-r", "-q", "--cached", path, env=env)
        _git(work, "update-index", "--add", "--cacheinfo", f"160000,{sha},{path}", env=env)
    blob = _git(work, "hash-object", "-w", "--stdin", data=gitmodules_text(spec).encode())
    _git(work, "update-index", "--add", "--cacheinfo", f"100644,{blob},.gitmodules", env=env)
    if _tree_has(work, commit, "model_refs.yaml"):
        text = _git_show(work, commit, "model_refs.yaml")
        relocked = relock_commits(text, {c: model_commits[c] for c in spec.components})
        blob = _git(work, "hash-object", "-w", "--stdin", data=relocked.encode())
        _git(work, "update-index", "--add", "--cacheinfo", f"100644,{blob},model_refs.yaml", env=env)
    for path, text in workflow_files("qc").items():
        _set_file(work, commit, path, text, env)
    tree = _git(work, "write-tree", env=env)
    message = f"The walkout app, published from monorepo commit {commit}\n\n" + "\n".join(
        f"- {spec.submodules_dir}/{c}: submodule at {model_commits[c]}" for c in spec.components
    )
    return _git(work, "commit-tree", tree, "-m", message, env=env)


def _git_show(repo: Path, commit: str, path: str) -> str:
    return _run(["git", "-C", os.fspath(repo), "show", f"{commit}:{path}"]).decode()


# --- bare repositories and hooks --------------------------------------------------------------------


def hook_script(python: str) -> str:
    """The `update` hook text (templates/hooks/update) for the interpreter `python`."""
    template = resources.files("walkout_ci").joinpath("templates/hooks/update").read_text(encoding="utf-8")
    if '"' in python or "\n" in python:
        raise OrgError(f"interpreter path {python!r} cannot be quoted in a shell hook")
    return template.replace("@PYTHON@", python)


def install_hooks(git_dir: Path, config: hooks.ProtectConfig, python: str) -> None:
    """Write `hooks/update` (executable) and `walkout-protect.json` into a bare repository."""
    atomic_write_text(git_dir / "hooks" / "update", hook_script(python))
    (git_dir / "hooks" / "update").chmod(0o755)
    atomic_write_json(git_dir / hooks.CONFIG_FILE, config.to_dict(relative_to=git_dir))


def create_bare(path: Path, source: Path, commit: str, branch: str) -> None:
    """A bare repository at `path` whose `branch` is `commit` (fetched from the work clone `source`)."""
    _run(["git", "init", "-q", "--bare", "-b", branch, os.fspath(path)])
    _git(source, "push", "-q", os.fspath(path), f"{commit}:refs/heads/{branch}")


# --- package index ----------------------------------------------------------------------------------


def normalize_project(name: str) -> str:
    """PEP 503 normalised project name."""
    return re.sub(r"[-_.]+", "-", name).lower()


def write_simple_index(index_dir: Path) -> list[str]:
    """(Re)write `index_dir/simple/` (PEP 503) for the wheels in `index_dir/wheels/`; returns the wheels."""
    wheels = sorted(path.name for path in (index_dir / "wheels").glob("*.whl"))
    projects: dict[str, list[str]] = {}
    for name in wheels:
        projects.setdefault(normalize_project(name.split("-")[0]), []).append(name)
    simple = index_dir / "simple"
    links = "".join(f'<a href="{html.escape(p)}/">{html.escape(p)}</a><br>\n' for p in sorted(projects))
    atomic_write_text(simple / "index.html", f"<!DOCTYPE html>\n<html><body>\n{links}</body></html>\n")
    for project, files in projects.items():
        rows = []
        for name in files:
            digest = hashlib.sha256((index_dir / "wheels" / name).read_bytes()).hexdigest()
            href = html.escape(f"../../wheels/{name}#sha256={digest}")
            rows.append(f'<a href="{href}">{html.escape(name)}</a><br>\n')
        page = (
            f"<!DOCTYPE html>\n<html><body>\n<h1>{html.escape(project)}</h1>\n{''.join(rows)}</body></html>\n"
        )
        atomic_write_text(simple / project / "index.html", page)
    return wheels


def build_wheels(
    work: Path, commit: str, projects: Iterable[str], wheels_dir: Path, scratch: Path, python: str
):
    """Wheels of `projects` (folders with a pyproject.toml at `commit`) into `wheels_dir`."""
    wheels_dir.mkdir(parents=True, exist_ok=True)
    for project in projects:
        if not _tree_has(work, commit, f"{project}/pyproject.toml"):
            raise OrgError(
                f"{project}/pyproject.toml does not exist at {commit[:12]}: cannot build its wheel"
            )
        folder = _extract(work, commit, project, scratch / "wheel-src")
        _run(
            [
                python,
                "-m",
                "pip",
                "wheel",
                "--quiet",
                "--no-deps",
                "--no-build-isolation",
                "--wheel-dir",
                os.fspath(wheels_dir),
                os.fspath(folder),
            ],
            cwd=scratch,
        )


# --- experiment store -------------------------------------------------------------------------------


def _same_tree(a: Path, b: Path) -> bool:
    def listing(root: Path) -> dict[str, bytes]:
        return {p.relative_to(root).as_posix(): p.read_bytes() for p in root.rglob("*") if p.is_file()}

    return listing(a) == listing(b)


def fill_store(work: Path, spec: OrgSpec, commit: str, store: Path, scratch: Path) -> list[str]:
    """Copy every bundled experiment (`submodules/<c>/experiments/<id>/` at `commit`) into
    `store/experiments/<id>/`, then check each component's pin resolves from the store alone.

    An id already in the store is kept when identical, an OrgError when different. Returns the ids.
    """
    from walkout_ci import pins
    from walkout_ci.store import Store

    ids = []
    for component in spec.components:
        relative = f"{spec.submodules_dir}/{component}/experiments"
        if not _tree_has(work, commit, relative):
            continue
        extracted = _extract(work, commit, relative, scratch / "experiments" / component)
        for folder in sorted(p for p in extracted.iterdir() if p.is_dir()):
            target = store / "experiments" / folder.name
            if target.exists():
                if not _same_tree(folder, target):
                    raise OrgError(
                        f"{relative}/{folder.name} differs from the store's {target}: one experiment id, "
                        "two contents; remove one of them"
                    )
            else:
                target.parent.mkdir(parents=True, exist_ok=True)
                staging = Path(tempfile.mkdtemp(prefix=f".{folder.name}.", dir=target.parent))
                shutil.copytree(folder, staging, dirs_exist_ok=True)
                os.replace(staging, target)
            ids.append(folder.name)
    for component in spec.components:
        pin_path = f"{spec.submodules_dir}/{component}/{pins.PIN_FILE_NAME}"
        if not _tree_has(work, commit, pin_path):
            continue
        pin = pins.pin_from_dict(yaml.safe_load(_git_show(work, commit, pin_path)), source=pin_path)
        # Only the org's store, no server, no bundles: exactly what a clone of the model repo will see.
        pins.resolve_pin(pin, store=Store(root=store), use_server=False)
    return sorted(set(ids))


# --- the whole org ----------------------------------------------------------------------------------


def _write_key(path: Path, key_text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.parent.chmod(stat.S_IRWXU)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(key_text.strip() + "\n")


def _source(source: Path | None) -> Path:
    from walkout_ci import gitrepo

    try:
        return gitrepo.repo_root(source or Path.cwd())
    except WalkoutCIError as error:
        raise OrgError(f"the source must be inside a git repository: {error}") from error


def _check_spec(work: Path, spec: OrgSpec, commit: str) -> None:
    for component in spec.components:
        prefix = f"{spec.submodules_dir}/{component}"
        if not _tree_has(work, commit, prefix):
            raise OrgError(
                f"the source has no {prefix}/ at {commit[:12]}: nothing to publish as a model repository"
            )
        if _run(["git", "-C", os.fspath(work), "cat-file", "-t", f"{commit}:{prefix}"]).strip() != b"tree":
            raise OrgError(f"{prefix} at {commit[:12]} is not a folder (already a submodule?)")


def build_org(
    dest: str | os.PathLike,
    *,
    source: str | os.PathLike | None = None,
    spec: OrgSpec | None = None,
    update: bool = False,
    key_text: str | None = None,
    python: str | None = None,
) -> OrgInfo:
    """Create (or with `update`, refresh) the org at `dest` from the git repository `source`.

    key_text: the verdict signing key to install (default: a new random one; kept on update).
    python: the interpreter the hooks run (must have walkout-ci installed; default: this one).
    """
    spec = spec or OrgSpec()
    python = python or sys.executable
    dest = Path(dest).expanduser().absolute()
    source_root = _source(Path(source) if source is not None else None)
    if dest.exists() and not update:
        raise OrgError(f"{dest} exists already: refusing to overwrite an org; pass --update to refresh it")
    if update and not (dest / ORG_FILE).is_file():
        raise OrgError(f"{dest} is not an org (no {ORG_FILE}): nothing to update; run `walkout-ci org init`")
    dest.parent.mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(prefix=f".{dest.name}.build-", dir=dest.parent))
    try:
        work = scratch / "work"
        _run(["git", "clone", "-q", os.fspath(source_root), os.fspath(work)])
        commit = _git(work, "rev-parse", "HEAD^{commit}")
        date = _git(work, "show", "-s", "--format=%cI", commit)
        _check_spec(work, spec, commit)
        if update:
            return _update(dest, scratch, work, spec, commit, source_root, python)
        org = scratch / "org"
        org.mkdir()
        info = OrgInfo(root=dest, source=source_root, source_commit=commit)
        index = scratch / "index"
        model_commits = {}
        for component in spec.components:
            model_commits[component] = split_component(work, spec, component, commit, date, index)
            name = spec.model_repo(component)
            create_bare(org / f"{name}.git", work, model_commits[component], spec.protected_branch)
            info.repos[name] = {
                "path": f"{name}.git",
                "kind": "model",
                "component": component,
                "main": model_commits[component],
            }
        app_commit = build_app_commit(work, spec, commit, model_commits, date, index)
        create_bare(org / f"{spec.app_repo}.git", work, app_commit, spec.protected_branch)
        info.repos[spec.app_repo] = {
            "path": f"{spec.app_repo}.git",
            "kind": "qc",
            "component": None,
            "main": app_commit,
        }
        _write_key(org / KEY_FILE, key_text or attest.generate_key())
        attest.key_from_file(org / KEY_FILE)  # a too-short key given by the caller fails here, not in a hook
        info.experiments = fill_store(work, spec, commit, org / STORE_DIR, scratch)
        build_wheels(work, commit, spec.wheel_projects, org / INDEX_DIR / "wheels", scratch, python)
        info.wheels = write_simple_index(org / INDEX_DIR)
        # Hooks last: the initial pushes above created `main`, which the hooks would refuse.
        for name, repo in info.repos.items():
            config = hooks.ProtectConfig(
                repo=name,
                kind=repo["kind"],
                protected_branches=(spec.protected_branch,),
                key_file=org / KEY_FILE,
            )
            install_hooks(org / repo["path"], config, python)
        atomic_write_json(org / ORG_FILE, info.to_dict())
        os.replace(org, dest)
        return info
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def _update(
    dest: Path, scratch: Path, work: Path, spec: OrgSpec, commit: str, source_root: Path, python: str
):
    """Refresh hooks, their config, the index and the store of an existing org (repositories kept)."""
    previous = json.loads((dest / ORG_FILE).read_text())
    info = OrgInfo(root=dest, source=source_root, source_commit=commit, updated=True)
    info.repos = previous.get("repos", {})
    attest.key_from_file(dest / KEY_FILE)
    # The new index is built aside and swapped in whole: pip never sees a half-written one.
    index = scratch / "index-new"
    build_wheels(work, commit, spec.wheel_projects, index / "wheels", scratch, python)
    info.wheels = write_simple_index(index)
    info.experiments = fill_store(work, spec, commit, dest / STORE_DIR, scratch)
    for name, repo in info.repos.items():
        config = hooks.ProtectConfig(
            repo=name,
            kind=repo["kind"],
            protected_branches=(spec.protected_branch,),
            key_file=dest / KEY_FILE,
        )
        install_hooks(dest / repo["path"], config, python)
    old_index = scratch / "index-old"
    if (dest / INDEX_DIR).exists():
        os.replace(dest / INDEX_DIR, old_index)
    os.replace(index, dest / INDEX_DIR)
    atomic_write_json(dest / ORG_FILE, info.to_dict())
    return info


def read_org(root: str | os.PathLike) -> dict[str, Any]:
    """DIR/org.json of an org; OrgError naming the file when missing or unreadable."""
    path = Path(root) / ORG_FILE
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        raise OrgError(f"{path}: not an org ({error}); create one with `walkout-ci org init`") from error
