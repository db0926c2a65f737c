"""Server-side protection of `main`: the logic of the bare repositories' `update` hook.

`walkout-ci org init` installs `hooks/update` (templates/hooks/update) in every bare repository; git
runs it once per pushed ref as `update REFNAME OLDREV NEWREV` inside the bare repository, and refuses
that ref when it exits non-zero. It runs `python -I -m walkout_ci.hooks update ...`, which reads the
repository's `walkout-protect.json`:

```json
{"schema_version": 1, "repo": "walkout-detection", "kind": "model",
 "protected_branches": ["main"], "key_file": "../secrets/ci-signing.key"}
```

(`key_file` relative to the bare repository; the server's copy of CI's verdict signing key.)

Rules (`check_update`):
- a protected branch (`refs/heads/main`) moves only forward (no deletion, no creation, fast-forwards
  only) and only to a commit with a signed CI verdict at `refs/verdicts/<newrev>` (walkout_ci.attest)
  that is PASS, for that exact commit, this repository and gate kind ("model": the model gate; "qc":
  the app's system QC gate), made against the branch's current tip (`base == oldrev`);
- `refs/verdicts/<commit>` accepts only a blob holding a correctly signed verdict for that commit and
  this repository, and is never deleted (so nobody can plant a forgery or remove CI's verdict);
- every other ref is free.

Fail closed: any exception (unreadable config or key, git failing, a bug) refuses the update. The key
is read from the file only, never from the environment (a local pusher's environment reaches hooks).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from walkout_ci import attest

CONFIG_FILE = "walkout-protect.json"
CONFIG_SCHEMA_VERSION = 1
ZERO = "0" * 40
_SHA1 = re.compile(r"^[0-9a-f]{40}$")
_NAME = re.compile(r"^[A-Za-z0-9._-]+$")


class HookError(Exception):
    """The hook cannot decide (bad config, unreadable key, git failing): the update is refused."""


@dataclass(frozen=True)
class ProtectConfig:
    """A bare repository's `walkout-protect.json` (see the module docstring)."""

    repo: str
    kind: str
    protected_branches: tuple[str, ...]
    key_file: Path

    def to_dict(self, relative_to: Path | None = None) -> dict[str, Any]:
        """The JSON mapping; `key_file` relative to `relative_to` when given (a movable org)."""
        key_file = self.key_file
        if relative_to is not None:
            key_file = Path(os.path.relpath(self.key_file, relative_to))
        return {
            "schema_version": CONFIG_SCHEMA_VERSION,
            "repo": self.repo,
            "kind": self.kind,
            "protected_branches": list(self.protected_branches),
            "key_file": key_file.as_posix(),
        }


def parse_config(data: Any, git_dir: Path, source: str) -> ProtectConfig:
    """Validate a protect config mapping; HookError naming `source` and the field."""
    if not isinstance(data, dict):
        raise HookError(f"{source}: must be a JSON object")
    expected = {"schema_version", "repo", "kind", "protected_branches", "key_file"}
    if set(data) != expected:
        raise HookError(f"{source}: fields must be exactly {', '.join(sorted(expected))}, got {sorted(data)}")
    if data["schema_version"] != CONFIG_SCHEMA_VERSION:
        raise HookError(f"{source}: schema_version must be {CONFIG_SCHEMA_VERSION}")
    if not isinstance(data["repo"], str) or not _NAME.match(data["repo"]):
        raise HookError(f"{source}: 'repo' must be a repository name, got {data['repo']!r}")
    if data["kind"] not in attest.KINDS:
        raise HookError(f"{source}: 'kind' must be one of {', '.join(attest.KINDS)}, got {data['kind']!r}")
    branches = data["protected_branches"]
    if not isinstance(branches, list) or not all(isinstance(b, str) and _NAME.match(b) for b in branches):
        raise HookError(f"{source}: 'protected_branches' must be a list of branch names")
    if not isinstance(data["key_file"], str) or not data["key_file"]:
        raise HookError(f"{source}: 'key_file' must be a path")
    return ProtectConfig(
        repo=data["repo"],
        kind=data["kind"],
        protected_branches=tuple(branches),
        key_file=(git_dir / data["key_file"]).resolve(),
    )


def read_config(git_dir: Path) -> ProtectConfig:
    """The protect config of the bare repository `git_dir`."""
    path = git_dir / CONFIG_FILE
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        raise HookError(f"cannot read {path}: {error}") from error
    return parse_config(data, git_dir, str(path))


@dataclass(frozen=True)
class Decision:
    """The hook's answer for one ref: accepted or not, and the lines to show the pusher."""

    accepted: bool
    message: str
    reason: str = "ok"


def _git(git_dir: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    completed = subprocess.run(["git", "--git-dir", os.fspath(git_dir), *args], capture_output=True)
    if check and completed.returncode != 0:
        raise HookError(f"`git {' '.join(args)}` failed: {completed.stderr.decode(errors='replace').strip()}")
    return completed


def _object_type(git_dir: Path, oid: str) -> str | None:
    completed = _git(git_dir, "cat-file", "-t", oid, check=False)
    return completed.stdout.decode().strip() if completed.returncode == 0 else None


def read_verdict_blob(git_dir: Path, commit: str) -> bytes | None:
    """The bytes at `refs/verdicts/<commit>` (None when there is no such ref); HookError if not a blob."""
    ref = attest.VERDICT_REF_PREFIX + commit
    found = _git(git_dir, "rev-parse", "--verify", "--quiet", ref, check=False)
    if found.returncode != 0:
        return None
    oid = found.stdout.decode().strip()
    if _object_type(git_dir, oid) != "blob":
        raise HookError(f"{ref} does not point at a blob (a verdict document)")
    return _git(git_dir, "cat-file", "blob", oid).stdout


def _refuse(reason: str, what: str, todo: str) -> Decision:
    return Decision(False, f"{what}\nwhat to do: {todo}", reason)


RERUN = (
    "push your branch and let CI run `walkout-ci ci check --push` on it (it signs and records the "
    "verdict at refs/verdicts/<commit>), then push main again"
)


def check_protected(
    config: ProtectConfig, key: attest.SigningKey, git_dir: Path, branch: str, old: str, new: str
):
    """Decide an update of a protected branch (see the module docstring)."""
    short = new[:12]
    if new == ZERO:
        return _refuse("delete", f"{branch} is protected: it cannot be deleted", "nothing; it stays")
    if old == ZERO:
        return _refuse(
            "create",
            f"{branch} is protected and is created only by `walkout-ci org init`",
            f"push a different branch name, or ask the org admin to recreate {branch}",
        )
    if _object_type(git_dir, new) != "commit":
        return _refuse("not-commit", f"{new} is not a commit", "push a commit")
    if _git(git_dir, "merge-base", "--is-ancestor", old, new, check=False).returncode != 0:
        return _refuse(
            "not-fast-forward",
            f"{branch} moves only forward: {short} does not contain the current tip {old[:12]}",
            f"update your branch with {branch} (merge or rebase), push it, let CI check it, "
            f"then push {branch}",
        )
    ref = attest.VERDICT_REF_PREFIX + new
    document = read_verdict_blob(git_dir, new)
    if document is None:
        return _refuse("missing", f"no CI verdict for {short} ({ref} does not exist)", RERUN)
    try:
        attestation = attest.verify(document, key, where=ref)
    except attest.AttestationError as error:
        return _refuse(
            error.reason,
            f"the CI verdict for {short} is not valid: {error}",
            "only CI can sign verdicts; " + RERUN,
        )
    if attestation["commit"] != new:
        return _refuse(
            "other-commit",
            f"{ref} holds a verdict for another commit ({attestation['commit'][:12]}), not {short}",
            RERUN,
        )
    if attestation["repo"] != config.repo:
        return _refuse(
            "other-repo",
            f"{ref} is a verdict for repository {attestation['repo']!r}, not {config.repo!r}",
            RERUN,
        )
    if attestation["kind"] != config.kind:
        return _refuse(
            "other-kind",
            f"{ref} is a {attestation['kind']!r} gate verdict; {config.repo} needs the {config.kind!r} gate",
            f"run the {config.kind!r} gate in CI for this repository; " + RERUN,
        )
    if attestation["base"] != old:
        return _refuse(
            "stale",
            f"the CI verdict for {short} is stale: it was made against {branch} at "
            f"{attestation['base'][:12]}, but {branch} is now at {old[:12]}",
            f"update your branch with {branch} (merge or rebase), push it, let CI check it again, then push "
            f"{branch}",
        )
    if attestation["verdict"] != "PASS":
        summary = attestation.get("summary") or ""
        return _refuse(
            attestation["verdict"].lower(),
            f"CI's verdict for {short} is {attestation['verdict']}: {summary}".rstrip(": "),
            "fix the regression (see the gate report of that CI run), push a new commit and let CI check it",
        )
    metrics = ", ".join(f"{name}={value:.4f}" for name, value in sorted(attestation["metrics"].items()))
    return Decision(
        True,
        f"{branch} -> {short}: CI verdict PASS ({config.kind} gate) against {old[:12]}"
        + (f"; candidate metrics: {metrics}" if metrics else ""),
    )


def check_verdict_ref(config: ProtectConfig, key: attest.SigningKey, git_dir: Path, ref: str, new: str):
    """Decide an update of `refs/verdicts/<commit>`: only a correctly signed verdict for that commit."""
    commit = ref[len(attest.VERDICT_REF_PREFIX) :]
    if not _SHA1.match(commit):
        return _refuse("bad-ref", f"{ref}: verdict refs are refs/verdicts/<40-hex commit>", "use that name")
    if new == ZERO:
        return _refuse(
            "delete", f"{ref}: CI verdicts are never deleted", "nothing; a newer CI run replaces it"
        )
    if _object_type(git_dir, new) != "blob":
        return _refuse("not-blob", f"{ref} must point at a blob holding a signed verdict", RERUN)
    document = _git(git_dir, "cat-file", "blob", new).stdout
    try:
        attestation = attest.verify(document, key, where=ref)
    except attest.AttestationError as error:
        return _refuse(error.reason, f"refusing {ref}: {error}", "only CI records verdicts; " + RERUN)
    if attestation["commit"] != commit or attestation["repo"] != config.repo:
        return _refuse(
            "other-commit",
            f"refusing {ref}: it holds a verdict for {attestation['repo']}@{attestation['commit'][:12]}",
            "record a verdict under its own commit's ref",
        )
    return Decision(True, f"{ref}: CI verdict {attestation['verdict']} recorded")


def check_update(git_dir: Path, refname: str, old: str, new: str) -> Decision:
    """The decision for one `update` hook call in the bare repository `git_dir`."""
    for value in (old, new):
        if not _SHA1.match(value):
            raise HookError(f"unexpected object id {value!r} (SHA-1 repositories only)")
    config = read_config(git_dir)
    protected = {f"refs/heads/{branch}" for branch in config.protected_branches}
    if refname not in protected and not refname.startswith(attest.VERDICT_REF_PREFIX):
        return Decision(True, "")
    key = attest.key_from_file(config.key_file)
    if refname in protected:
        return check_protected(config, key, git_dir, refname.removeprefix("refs/heads/"), old, new)
    return check_verdict_ref(config, key, git_dir, refname, new)


def main(argv: list[str] | None = None) -> int:
    """`python -m walkout_ci.hooks update REFNAME OLDREV NEWREV` -> 0 accept, 1 refuse (fail closed)."""
    argv = sys.argv[1:] if argv is None else argv
    try:
        if len(argv) != 4 or argv[0] != "update":
            raise HookError("usage: python -m walkout_ci.hooks update REFNAME OLDREV NEWREV")
        _, refname, old, new = argv
        git_dir = Path(os.environ.get("GIT_DIR") or ".").resolve()
        decision = check_update(git_dir, refname, old, new)
    except BaseException as error:
        # Fail closed: whatever happened (a bug, a signal, a bad config), the update is refused.
        print(
            f"walkout: refusing the update: the protection hook failed ({type(error).__name__}: {error}); "
            "updates of protected refs are refused until it works (ask the org admin)",
            file=sys.stderr,
        )
        return 1
    if decision.message:
        prefix = "walkout: " if decision.accepted else f"walkout: refusing {refname}: "
        lines = decision.message.splitlines()
        print(prefix + lines[0], file=sys.stderr)
        for line in lines[1:]:
            print("walkout: " + line, file=sys.stderr)
    return 0 if decision.accepted else 1


if __name__ == "__main__":
    sys.exit(main())
