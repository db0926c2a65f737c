"""`walkout bump COMPONENT [--to REF]`: move one real submodule to a commit of its model repository's
protected `main`, re-lock `model_refs.yaml` from that commit's pin, verify the pin, commit both.

The integrator's step between "a model pull request merged" and "the app's system QC gate":

1. `git -C <path> fetch origin` (the model repository; `--no-fetch` skips it).
2. The target: `--to REF` (a commit, tag or branch of the model repository; a bare branch name is
   also tried as `origin/REF`), default `origin/main`.
3. Refused unless the target is on the model repository's protected main
   (`git merge-base --is-ancestor <commit> origin/main` inside the submodule): a commit that did not
   pass the model gate must not reach the store.
4. The submodule is checked out at the target (this moves the gitlink in the work tree), its
   `model_ref.yaml` is read and resolved through walkout-ci (store, configured server, the
   submodule's bundled `experiments/`), its weights' sha256 checked, and the component's entry of
   `model_refs.yaml` re-locked from it with `refs.refs_from_pins` (`commit` = the submodule commit).
   The other components' entries are left exactly as they were.
5. One superproject commit holding the gitlink and the lock file only (`git commit -- <lock> <path>`:
   whatever else is staged stays staged), its message naming old -> new commit and experiment.

Any failure raises BumpError (exit 2) naming what to fix; the submodule's checkout and the lock file
are put back first, so a failed bump changes nothing. A bump to the commit the lock already names
(and agrees with) changes nothing and commits nothing.
"""

from __future__ import annotations

import dataclasses
import os
import subprocess
from dataclasses import dataclass
from pathlib import Path

from walkout.errors import WalkoutError
from walkout.refs import (
    COMPONENTS,
    PIN_FILENAME,
    ComponentRef,
    ModelRefs,
    checked_out_commit,
    component_dir,
    gitlink_commit,
    load_refs,
    refs_from_pins,
    write_refs,
)

REMOTE = "origin"
PROTECTED_BRANCH = "main"


class BumpError(WalkoutError):
    """A bump cannot be done: not a submodule, dirty, unknown or unprotected commit, bad pin."""


@dataclass(frozen=True)
class BumpResult:
    """What a bump did. `superproject_commit` is None when there was nothing to change."""

    component: str
    path: str
    old_commit: str
    new_commit: str
    old_experiment: str | None
    new_experiment: str | None
    superproject_commit: str | None
    message: str


def _git(repo: Path, *args: str, what: str) -> str:
    """`git -C repo args...` -> stdout; BumpError naming `what` failed and git's own message."""
    try:
        result = subprocess.run(
            ["git", "-C", os.fspath(repo), *args], capture_output=True, text=True, check=False, timeout=600
        )
    except (OSError, subprocess.TimeoutExpired) as error:
        raise BumpError(f"{what}: cannot run git ({error})") from error
    if result.returncode != 0:
        raise BumpError(f"{what}: `git {' '.join(args)}` failed: {(result.stderr or result.stdout).strip()}")
    return result.stdout.strip()


def _resolve_target(folder: Path, path: str, target: str) -> str:
    """The full commit sha of `target` in the submodule (also tried as `origin/<target>`)."""
    for candidate in (target, f"{REMOTE}/{target}"):
        result = subprocess.run(
            ["git", "-C", os.fspath(folder), "rev-parse", "--verify", "--quiet", f"{candidate}^{{commit}}"],
            capture_output=True,
            text=True,
            check=False,
        )
        if result.returncode == 0 and result.stdout.strip():
            return result.stdout.strip()
    raise BumpError(
        f"--to {target!r} is no commit, tag or branch of the model repository in {path} (after fetching "
        f"{REMOTE}); pass a commit of its {REMOTE}/{PROTECTED_BRANCH}"
    )


def _require_on_protected_main(folder: Path, path: str, commit: str) -> None:
    """BumpError unless `commit` is an ancestor of (or equal to) the model repository's protected main."""
    protected = f"{REMOTE}/{PROTECTED_BRANCH}"
    _git(
        folder, "rev-parse", "--verify", "--quiet", f"{protected}^{{commit}}", what=f"{path}: no {protected}"
    )
    result = subprocess.run(
        ["git", "-C", os.fspath(folder), "merge-base", "--is-ancestor", commit, protected],
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode == 1:
        raise BumpError(
            f"refusing to bump {path} to {commit}: that commit is not on the model repository's protected "
            f"{protected}, so it never passed the model gate; merge it there through a pull request first, "
            f"or pick a commit of {protected} (`git -C {path} log {protected}`)"
        )
    if result.returncode != 0:
        raise BumpError(f"{path}: cannot tell whether {commit} is on {protected}: {result.stderr.strip()}")


def _require_clean(repo: Path, what: str, *paths: str) -> None:
    """BumpError when `git status` shows uncommitted changes (under `paths`) of `repo`."""
    status = _git(repo, "status", "--porcelain", "--", *(paths or (".",)), what=f"{what}: git status")
    if status:
        raise BumpError(
            f"{what} has uncommitted changes ({status.splitlines()[0].strip()} ...); commit or discard them "
            "before bumping"
        )


def _verified_pin(folder: Path, path: str, component: str, commit: str):
    """The submodule's pin at its checked-out commit, resolved and hash-checked through walkout-ci."""
    from walkout_ci import pins
    from walkout_ci.errors import WalkoutCIError
    from walkout_ci.report import sha256_of_file

    pin_path = folder / PIN_FILENAME
    if not pin_path.is_file():
        raise BumpError(
            f"{path} has no {PIN_FILENAME} at {commit}: that commit pins no model; pin one in the model "
            "repository (`walkout-ci pin`) and merge it to main first"
        )
    try:
        pin = pins.read_pin(pin_path)
        weights = pins.resolve_pin(pin, search=[folder / "experiments"])
    except WalkoutCIError as error:
        raise BumpError(f"{path}/{PIN_FILENAME} at {commit} cannot be verified: {error}") from error
    if pin.component != component:
        raise BumpError(
            f"{path}/{PIN_FILENAME} at {commit} is the pin of component {pin.component!r}, not {component!r}"
        )
    actual = sha256_of_file(weights)
    if actual != pin.weights_sha256:
        raise BumpError(
            f"{path}/{PIN_FILENAME} at {commit}: the weights of {pin.experiment_id} have sha256 {actual}, "
            f"the pin says {pin.weights_sha256}"
        )
    return pin


def commit_message(old: ComponentRef, new: ComponentRef, url: str | None, verdict: dict | None = None) -> str:
    """The bump commit's message: subject `Bump <c>: <old> -> <new> (experiment <a> -> <b>)`, then
    the full commits, experiment ids, weights hashes, the new blind metrics, and CI's verdict for the
    submodule commit with the blind metrics it measured (a branch pin carries none: only CI holds the
    blind key)."""
    subject = (
        f"Bump {new.name}: {(old.commit or 'none')[:12]} -> {(new.commit or 'none')[:12]} "
        f"(experiment {old.experiment_id} -> {new.experiment_id})"
    )
    lines = [
        subject,
        "",
        f"{new.path}: {old.commit} -> {new.commit}",
        f"experiment_id: {old.experiment_id} -> {new.experiment_id}",
        f"weights_sha256: {old.weights_sha256} -> {new.weights_sha256}",
    ]
    if new.blind_metrics:
        metrics = ", ".join(f"{key}={value:.4f}" for key, value in sorted(new.blind_metrics.items()))
        lines.append(f"blind metrics: {metrics}")
    if verdict is None:
        lines.append(f"CI verdict for {new.commit}: none recorded in the model repository")
    else:
        measured = ", ".join(f"{key}={value:.4f}" for key, value in sorted(verdict["metrics"].items()))
        lines.append(
            f"CI verdict for {new.commit}: {verdict['verdict']} ({verdict['kind']} gate against "
            f"{verdict['base'][:12]}); candidate blind metrics: {measured or 'none'}"
        )
    lines.append(
        f"The submodule commit is on {REMOTE}/{PROTECTED_BRANCH} of {url or 'the model repository'}; "
        "model_refs.yaml re-locked by `walkout bump`."
    )
    return "\n".join(lines) + "\n"


def bump(
    lock_path: str | os.PathLike, component: str, to: str | None = None, *, fetch: bool = True
) -> BumpResult:
    """Bump `component` as described in the module docstring; returns what was done."""
    lock_path = Path(lock_path)
    if component not in COMPONENTS:
        raise BumpError(f"unknown component {component!r}; expected one of {', '.join(COMPONENTS)}")
    refs = load_refs(lock_path)
    root = lock_path.resolve().parent
    entry = refs.components[component]
    folder = component_dir(root, component, entry.path, source=lock_path)
    old = gitlink_commit(root, entry.path)
    if old is None:
        raise BumpError(
            f"{entry.path} is not a git submodule at HEAD (no gitlink in `git ls-tree HEAD {entry.path}`): "
            "in this layout the component code is committed in the app repository itself; re-lock with "
            "`walkout lock` and commit model_refs.yaml"
        )
    if checked_out_commit(root, entry.path) is None:
        raise BumpError(
            f"the submodule {entry.path} is not checked out; run `git submodule update --init {entry.path}`"
        )
    _require_clean(root, f"the lock file {lock_path.name}", lock_path.name)
    _require_clean(folder, f"the submodule {entry.path}")
    if fetch:
        _git(folder, "fetch", "--quiet", REMOTE, what=f"fetching the model repository into {entry.path}")
    new = _resolve_target(folder, entry.path, to or f"{REMOTE}/{PROTECTED_BRANCH}")
    _require_on_protected_main(folder, entry.path, new)
    url = _git(folder, "remote", "get-url", REMOTE, what=f"{entry.path}: remote {REMOTE}")
    original_lock = lock_path.read_bytes()
    original_checkout = checked_out_commit(root, entry.path)
    try:
        _git(folder, "checkout", "--quiet", "--detach", new, what=f"checking out {new} in {entry.path}")
        pin = _verified_pin(folder, entry.path, component, new)
        relocked = refs_from_pins(root, previous=refs).components[component]
        if relocked.commit != new or relocked.experiment_id != pin.experiment_id:
            raise BumpError(
                f"re-locking {component} gave commit {relocked.commit} / experiment "
                f"{relocked.experiment_id}, expected {new} / {pin.experiment_id}; is {entry.path} checked "
                "out elsewhere?"
            )
        components = dict(refs.components)
        components[component] = relocked
        updated = ModelRefs(components=components, source=refs.source)
        if new == old and relocked.to_mapping() == entry.to_mapping():
            return BumpResult(
                component, entry.path, old, new, entry.experiment_id, relocked.experiment_id, None, ""
            )
        write_refs(lock_path, updated)
        message = commit_message(
            dataclasses.replace(entry, commit=old), relocked, url, _ci_verdict(folder, new)
        )
        _git(
            root,
            "commit",
            "--quiet",
            "-m",
            message,
            "--",
            lock_path.name,
            entry.path,
            what="committing the bump",
        )
    except BaseException:
        # Put everything back: a failed bump leaves the checkout as it found it.
        _restore(root, folder, lock_path, original_lock, original_checkout)
        raise
    head = _git(root, "rev-parse", "HEAD", what="reading the bump commit")
    return BumpResult(
        component, entry.path, old, new, entry.experiment_id, relocked.experiment_id, head, message
    )


def _ci_verdict(folder: Path, commit: str) -> dict | None:
    """CI's signed verdict for `commit`, read from the model repository's refs/verdicts (fetched);
    None when it has none or it cannot be read (the hook on the model repository's main already
    required a valid PASS; this is a record for the integrator, not a check)."""
    from walkout_ci import attest
    from walkout_ci.errors import WalkoutCIError

    try:
        attest.fetch_verdicts(folder, REMOTE)
        found = attest.read_verdict(folder, commit)
    except WalkoutCIError:
        return None
    return found[0] if found else None


def _restore(root: Path, folder: Path, lock_path: Path, lock_bytes: bytes, checkout: str | None) -> None:
    """Undo a half-done bump (best effort: the error being raised is what the user needs to see)."""
    if lock_path.read_bytes() != lock_bytes:
        temporary = lock_path.with_name(f".{lock_path.name}.restore")
        temporary.write_bytes(lock_bytes)
        os.replace(temporary, lock_path)
    if checkout is not None:
        subprocess.run(
            ["git", "-C", os.fspath(folder), "checkout", "--quiet", "--detach", checkout],
            capture_output=True,
            check=False,
        )
