"""The few git operations the gate needs: merge-base, files and tree hashes at a commit, worktrees.

Every function runs `git` as a subprocess in `repo` (any folder inside the work tree) and raises
GateError naming the command and git's own message when git fails.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import posixpath
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

from walkout_ci.errors import GateError


def git(repo: str | os.PathLike, *args: str, check: bool = True) -> str:
    """Run `git -C repo args...` and return its stdout without the trailing newline."""
    command = ["git", "-C", os.fspath(repo), *args]
    try:
        completed = subprocess.run(command, capture_output=True, text=True, check=False)
    except OSError as error:
        raise GateError(f"cannot run git ({error}); is git installed?") from error
    if check and completed.returncode != 0:
        raise GateError(
            f"`{' '.join(command)}` failed: {completed.stderr.strip() or completed.stdout.strip()}"
        )
    return completed.stdout.rstrip("\n")


EVALUATED_COMMIT_ENV_VAR = "WALKOUT_EVAL_COMMIT"


def code_commit(directory: str | os.PathLike) -> str | None:
    """The commit of the code in `directory`, for a report's `code_commit` or an experiment's record.

    The commit the walkout-ci executor checked out (`$WALKOUT_EVAL_COMMIT`) wins; otherwise HEAD of the
    git checkout holding `directory`. None outside git or before the first commit: never raises,
    because a missing commit must not stop an evaluation or a training run.
    """
    if os.environ.get(EVALUATED_COMMIT_ENV_VAR):
        return os.environ[EVALUATED_COMMIT_ENV_VAR]
    try:
        completed = subprocess.run(
            ["git", "-C", os.fspath(directory), "rev-parse", "HEAD"],
            capture_output=True,
            text=True,
            timeout=10,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    commit = completed.stdout.strip()
    return commit if completed.returncode == 0 and commit else None


def repo_root(path: str | os.PathLike) -> Path:
    """The top folder of the git work tree containing `path`."""
    path = Path(path)
    folder = path if path.is_dir() else path.parent
    return Path(git(folder, "rev-parse", "--show-toplevel")).resolve()


def relative_to_root(root: Path, path: str | os.PathLike) -> str:
    """`path` as a POSIX path relative to the repository root ("" for the root itself)."""
    relative = Path(path).resolve().relative_to(root)
    return "" if str(relative) == "." else relative.as_posix()


def resolve_commit(repo: str | os.PathLike, revision: str) -> str:
    """Full sha of a revision (branch, tag, HEAD, sha)."""
    return git(repo, "rev-parse", "--verify", "--quiet", f"{revision}^{{commit}}")


def merge_base(repo: str | os.PathLike, target_branch: str, head: str = "HEAD") -> str:
    """`git merge-base head target_branch`: where the PR branched off its target (the baseline commit)."""
    for candidate in (target_branch, f"origin/{target_branch}"):
        if git(repo, "rev-parse", "--verify", "--quiet", f"{candidate}^{{commit}}", check=False):
            base = git(repo, "merge-base", head, candidate, check=False)
            if not base:
                raise GateError(
                    f"{head} and {candidate} have no common ancestor here; in a shallow CI clone fetch more "
                    f"history (`git fetch --unshallow` or `fetch-depth: 0`) so the baseline can be found"
                )
            return base
    raise GateError(
        f"target branch {target_branch!r} (or origin/{target_branch}) does not exist in {repo}; "
        "fetch it first (in CI: `git fetch origin <branch>`, with enough history for a merge-base)"
    )


def show_bytes(repo: str | os.PathLike, commit: str, relative_path: str) -> bytes | None:
    """The exact bytes of a file at a commit (`git show commit:path`), or None when it is not there."""
    spec = f"{commit}:{relative_path}"
    if git(repo, "cat-file", "-t", spec, check=False) != "blob":
        return None
    completed = subprocess.run(["git", "-C", os.fspath(repo), "show", spec], capture_output=True, check=False)
    if completed.returncode != 0:
        raise GateError(f"`git show {spec}` failed: {completed.stderr.decode(errors='replace').strip()}")
    return completed.stdout


def show_file(repo: str | os.PathLike, commit: str, relative_path: str) -> str | None:
    """The text of a file at a commit, or None when it does not exist there."""
    data = show_bytes(repo, commit, relative_path)
    return None if data is None else data.decode("utf-8", errors="replace")


def join_inside(base: str, relative: str) -> str:
    """`base/relative` normalised as a repository-relative POSIX path; GateError if it leaves the repo."""
    joined = posixpath.normpath(posixpath.join(base, relative)) if base else posixpath.normpath(relative)
    if joined == ".." or joined.startswith("../") or posixpath.isabs(joined):
        raise GateError(
            f"{relative!r} (relative to {base or 'the repository root'}) points outside the repository"
        )
    return "" if joined == "." else joined


def tree_files(repo: str | os.PathLike, commit: str, relative_path: str) -> list[tuple[str, str]]:
    """(repository-relative path, git blob id) of every file under a folder at a commit.

    Submodules (gitlinks) are not files: `tree_gitlinks` lists them.
    """
    return [(name, sha) for kind, name, sha in _tree_entries(repo, commit, relative_path) if kind == "blob"]


def tree_gitlinks(repo: str | os.PathLike, commit: str, relative_path: str) -> list[tuple[str, str]]:
    """(repository-relative path, submodule commit) of every gitlink (mode 160000) under a folder at a
    commit: the submodule commits that commit's superproject pins."""
    return [(name, sha) for kind, name, sha in _tree_entries(repo, commit, relative_path) if kind == "commit"]


def _tree_entries(repo: str | os.PathLike, commit: str, relative_path: str) -> list[tuple[str, str, str]]:
    """(kind "blob" | "commit", repository-relative path, object id) under a folder at a commit."""
    listing = git(repo, "ls-tree", "-r", "-z", "--full-tree", commit, "--", relative_path or ".")
    entries = []
    for entry in listing.split("\0"):
        if not entry:
            continue
        meta, name = entry.split("\t", 1)
        _mode, kind, sha = meta.split()
        entries.append((kind, name, sha))
    return entries


def is_dirty(repo: str | os.PathLike, relative_path: str) -> bool:
    """True when the work tree has uncommitted changes under `relative_path`."""
    return bool(git(repo, "status", "--porcelain", "--", relative_path or "."))


# Submodule URLs of a local org are file paths or file:// URLs, which git refuses for submodules
# since 2.38.1 unless allowed (CVE-2022-39253 concerns symlinked objects of *untrusted* clones; ours
# are the org's own repositories).
SUBMODULE_GIT_OPTIONS = ("-c", "protocol.file.allow=always")


def add_worktree(repo: str | os.PathLike, commit: str, destination: Path) -> Path:
    """Check out `commit` into a new detached worktree at `destination` (which must not exist).

    When the commit's tree has gitlinks (real submodules), they are checked out too, at the commits
    that tree pins (`git submodule update --init --recursive`), so the worktree holds that commit's
    component code, not whatever the developer's checkout has. A submodule commit that cannot be
    fetched raises GateError naming the submodule and the commit; the half-made worktree is removed.
    Registrations of worktrees whose folder is gone (a run killed before its cleanup) are pruned first.
    """
    with _worktree_lock(repo):
        git(repo, "worktree", "prune", check=False)
        git(repo, "worktree", "add", "--detach", "--force", "--quiet", os.fspath(destination), commit)
    gitlinks = tree_gitlinks(repo, commit, "")
    if gitlinks:
        try:
            git(
                destination, *SUBMODULE_GIT_OPTIONS, "submodule", "update", "--init", "--recursive", "--quiet"
            )
        except GateError as error:
            remove_worktree(repo, destination)
            pinned = ", ".join(f"{path} @ {sha[:12]}" for path, sha in gitlinks)
            raise GateError(
                f"commit {commit[:12]} pins submodule commits ({pinned}) that cannot be checked out: "
                f"{error}. "
                "Push the submodule commit to its repository (a bump must name a commit on the model "
                "repository's main) and check that .gitmodules' URLs resolve from here"
            ) from error
    return destination


def remove_worktree(repo: str | os.PathLike, destination: Path) -> None:
    """Remove a worktree made by `add_worktree` and forget it (never raises: cleanup is best effort).

    git refuses to remove a worktree holding initialised submodules unless forced twice; its folder is
    removed directly then, and the registration pruned.
    """
    with _worktree_lock(repo):
        git(repo, "worktree", "remove", "--force", "--force", os.fspath(destination), check=False)
        if Path(destination).exists():
            shutil.rmtree(destination, ignore_errors=True)
        git(repo, "worktree", "prune", check=False)


@contextlib.contextmanager
def _worktree_lock(repo: str | os.PathLike) -> Iterator[None]:
    """Serialise worktree add/remove/prune of one repository across processes: concurrent gates on
    one checkout would otherwise prune a worktree another is still creating."""
    common = Path(git(repo, "rev-parse", "--git-common-dir"))
    if not common.is_absolute():
        common = Path(repo) / common
    with open(common / "walkout-worktrees.lock", "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
