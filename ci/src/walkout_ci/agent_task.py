"""Make a training run's ClearML task something clearml-agent can run again (clone + enqueue).

ClearML records what it sees: a console script entry point (`.venv/bin/walkout-detection`, which no
agent has), no arguments (our CLIs parse argv before `Task.init`), and the requirements its import
analysis finds (not `pytorch-ignite`, whose import name is `ignite`, nor our own packages). After
`Task.init`, `make_runnable(task, argv)` rewrites the task's script for one of our training entry
points (walkout_ci.clone.ENTRY_POINTS):

- entry point `-m walkout_<component>.cli train <arguments>` (clearml-agent runs `python -m ...`
  with these arguments), path arguments made absolute (data on storage the agents mount; a config
  file inside the repository relative to the working directory instead);
- working directory: the component's `src` folder in the checkout, so `-m` imports the commit's
  code first;
- requirements: every installed distribution the component needs, pinned (`name==version`), and our
  own packages as `name @ git+<repository>@<commit>#subdirectory=<folder>`;
- repository, commit and uncommitted diff stay what ClearML detected (it stores `git diff` too).

`runnable_script(argv)` is the pure part (tested without ClearML).
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import os
import re
import shlex
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

OUR_PREFIX = "walkout"


@dataclass(frozen=True)
class RunnableScript:
    """What clearml-agent should run: `python <entry_point>` in `working_dir` (repository-relative)."""

    module: str
    arguments: tuple[str, ...]
    working_dir: str

    @property
    def entry_point(self) -> str:
        return shlex.join(["-m", self.module, *self.arguments])


def runnable_script(argv: Sequence[str], *, cwd: Path, repo_root: Path | None) -> RunnableScript | None:
    """The agent-runnable form of a training command line, or None when argv is not ours."""
    from walkout_ci.clone import match_command
    from walkout_ci.errors import ExperimentError

    try:
        entry, arguments = match_command(list(argv))
    except ExperimentError:
        return None
    spec = importlib.util.find_spec(entry.module)
    source = Path(spec.origin).resolve().parents[1] if spec and spec.origin else None
    working_dir = "."
    if repo_root is not None and source is not None and source.is_relative_to(repo_root.resolve()):
        working_dir = source.relative_to(repo_root.resolve()).as_posix()
    absolute = _absolute_paths(arguments, entry.path_options, cwd=cwd)
    if repo_root is not None and working_dir != ".":
        absolute = _config_in_checkout(absolute, repo_root=repo_root.resolve(), working_dir=working_dir)
    return RunnableScript(module=entry.module, arguments=tuple(absolute), working_dir=working_dir)


def _absolute_paths(arguments: Sequence[str], options: Sequence[str], *, cwd: Path) -> list[str]:
    result = list(arguments)
    for index, token in enumerate(result):
        option, equals, value = token.partition("=")
        if option not in options:
            continue
        if equals:
            result[index] = f"{option}={os.path.abspath(cwd / value)}"
        elif index + 1 < len(result):
            result[index + 1] = os.path.abspath(cwd / result[index + 1])
    return result


def _config_in_checkout(arguments: list[str], *, repo_root: Path, working_dir: str) -> list[str]:
    """A --config file inside the repository is named relative to the working dir (it is in the
    agent's checkout; an absolute path of this machine is not)."""
    result = list(arguments)
    for index, token in enumerate(result[:-1]):
        if token == "--config":
            path = Path(result[index + 1])
            if path.is_relative_to(repo_root):
                result[index + 1] = os.path.relpath(path, repo_root / working_dir)
    return result


def requirements(
    module: str, repository: str | None, commit: str | None, repo_root: Path | None
) -> list[str]:
    """Pinned requirements of the distribution providing `module` (recursively), ours as git URLs."""
    distributions = importlib.metadata.packages_distributions()
    top = module.split(".")[0]
    roots = distributions.get(top) or []
    lines: dict[str, str] = {}
    pending = list(roots)
    while pending:
        name = pending.pop()
        key = _canonical(name)
        if key in lines:
            continue
        try:
            distribution = importlib.metadata.distribution(name)
        except importlib.metadata.PackageNotFoundError:
            continue
        lines[key] = _requirement_line(distribution, repository, commit, repo_root)
        for requirement in distribution.requires or []:
            if ";" in requirement and "extra ==" in requirement:
                continue  # optional extras are not needed to train
            match = re.match(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)", requirement)
            if match:
                pending.append(match.group(1))
    return sorted(lines.values(), key=str.lower)


def _canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _requirement_line(
    distribution, repository: str | None, commit: str | None, repo_root: Path | None
) -> str:
    name, version = distribution.metadata["Name"], distribution.version
    if _canonical(name).startswith(OUR_PREFIX) and repository and commit and repo_root is not None:
        folder = _project_folder(distribution, repo_root)
        if folder is not None:
            url = (
                repository
                if "://" in repository or repository.startswith("git@")
                else Path(repository).as_uri()
            )
            subdirectory = f"#subdirectory={folder}" if folder != "." else ""
            return f"{name} @ git+{url}@{commit}{subdirectory}"
    return f"{name}=={version}"


def _project_folder(distribution, repo_root: Path) -> str | None:
    """The repository folder of an editable install of ours (its pyproject.toml), or None."""
    for top in (distribution.read_text("top_level.txt") or "").split() or [distribution.metadata["Name"]]:
        spec = importlib.util.find_spec(top.replace("-", "_"))
        if spec is None or not spec.origin:
            continue
        for folder in Path(spec.origin).resolve().parents:
            if (folder / "pyproject.toml").is_file() and folder.is_relative_to(repo_root.resolve()):
                return folder.relative_to(repo_root.resolve()).as_posix() or "."
    return None


def make_runnable(task, argv: Sequence[str], *, cwd: Path | None = None) -> RunnableScript | None:
    """Rewrite a locally started task's script and requirements (module docstring); None if not ours."""
    from walkout_ci import gitrepo
    from walkout_ci.errors import GateError

    cwd = Path(cwd or Path.cwd())
    try:
        repo_root = gitrepo.repo_root(cwd)
    except GateError:
        repo_root = None
    script = runnable_script(argv, cwd=cwd, repo_root=repo_root)
    if script is None:
        return None
    # Waits for ClearML's own repository detection, so what we set below is not overwritten.
    task._wait_for_repo_detection(timeout=120.0)
    detected = task.data.script
    repository = getattr(detected, "repository", None) or None
    commit = getattr(detected, "version_num", None) or None
    task.set_packages(requirements(script.module, repository, commit, repo_root))
    task.set_script(entry_point=script.entry_point, working_dir=script.working_dir)
    return script
