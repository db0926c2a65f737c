"""The protection hook's decisions (walkout_ci.hooks), on a real bare repository, without pushing.

The end-to-end test with real pushes through the installed hook script is in test_org_e2e.py.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from walkout_ci import attest, hooks

KEY_TEXT = "s" * 48
KEY = attest.key_from_text(KEY_TEXT, "ci")
FORGER = attest.key_from_text("f" * 48, "forger")


def git(repo: Path, *args: str) -> str:
    return subprocess.run(
        ["git", "-C", str(repo), *args], check=True, capture_output=True, text=True
    ).stdout.strip()


class Server:
    """A bare repository `repo.git` with main at c0 and commits c1 (child of c0), c2 (child of c1) and
    side (another child of c0) pushed on a branch, the protect config and the server's key file."""

    def __init__(self, root: Path) -> None:
        work = root / "work"
        work.mkdir()
        git(work, "init", "-q", "-b", "main")
        git(work, "config", "user.email", "t@example.com")
        git(work, "config", "user.name", "t")
        self.commits = {}
        for name in ("c0", "c1", "c2"):
            (work / "f.txt").write_text(name)
            git(work, "add", "f.txt")
            git(work, "commit", "-q", "-m", name)
            self.commits[name] = git(work, "rev-parse", "HEAD")
        git(work, "checkout", "-q", "-b", "side", self.commits["c0"])
        git(work, "commit", "-q", "--allow-empty", "-m", "side")
        self.commits["side"] = git(work, "rev-parse", "HEAD")
        self.git_dir = root / "repo.git"
        subprocess.run(["git", "init", "-q", "--bare", "-b", "main", str(self.git_dir)], check=True)
        git(work, "push", "-q", str(self.git_dir), f"{self.commits['c0']}:refs/heads/main")
        git(work, "push", "-q", str(self.git_dir), f"{self.commits['c2']}:refs/heads/pr")
        git(work, "push", "-q", str(self.git_dir), "side:refs/heads/side")
        key_file = root / "secrets" / "ci.key"
        key_file.parent.mkdir()
        key_file.write_text(KEY_TEXT + "\n")
        config = hooks.ProtectConfig("walkout-detection", "model", ("main",), key_file)
        (self.git_dir / hooks.CONFIG_FILE).write_text(json.dumps(config.to_dict(relative_to=self.git_dir)))

    def __getitem__(self, name: str) -> str:
        return self.commits[name]

    def plant(self, commit: str, document: bytes) -> None:
        """Write a verdict straight into the server (as if the verdict-ref check were bypassed)."""
        attest.store_verdict(self.git_dir, commit, document)

    def verdict(self, commit: str, base: str, key: attest.SigningKey = KEY, **changes) -> bytes:
        fields = dict(
            repo="walkout-detection",
            kind="model",
            commit=commit,
            base=base,
            verdict="PASS",
            created_at="2026-12-04T00:00:00+00:00",
            metrics={"AP50": 0.97},
            summary="PASS: 5 rules checked, all passed",
        )
        fields.update(changes)
        return attest.sign(attest.make_attestation(**fields), key)

    def check(self, ref: str, old: str, new: str) -> hooks.Decision:
        return hooks.check_update(self.git_dir, ref, old, new)


@pytest.fixture(scope="module")
def server(tmp_path_factory) -> Server:
    return Server(tmp_path_factory.mktemp("hooks"))


def fresh(server: Server, commit: str) -> None:
    """Remove any verdict planted for `commit` by an earlier test."""
    subprocess.run(
        ["git", "--git-dir", str(server.git_dir), "update-ref", "-d", f"refs/verdicts/{commit}"],
        check=True,
    )


def test_a_pass_verdict_for_the_commit_against_the_tip_is_accepted(server: Server) -> None:
    fresh(server, server["c1"])
    server.plant(server["c1"], server.verdict(server["c1"], server["c0"]))
    decision = server.check("refs/heads/main", server["c0"], server["c1"])
    assert decision.accepted, decision.message
    assert "CI verdict PASS" in decision.message and "AP50=0.9700" in decision.message


@pytest.mark.parametrize(
    ("planted", "reason", "message"),
    [
        (None, "missing", "no CI verdict for"),
        (
            {"verdict": "FAIL", "summary": "FAIL: per_class[sku_03]: AP50 dropped"},
            "fail",
            "is FAIL: FAIL: per_class",
        ),
        ({"verdict": "ERROR"}, "error", "is ERROR"),
        ({"key": FORGER}, "forged", "forged"),
        ({"base": "c1"}, "stale", "is stale: it was made against main at"),
        ({"kind": "qc"}, "other-kind", "needs the 'model' gate"),
        ({"repo": "walkout-pose"}, "other-repo", "for repository 'walkout-pose'"),
        ({"commit": "c2"}, "other-commit", "holds a verdict for another commit"),
    ],
)
def test_main_is_refused_without_a_valid_fresh_pass(
    server: Server, planted, reason: str, message: str
) -> None:
    fresh(server, server["c1"])
    if planted is not None:
        changes = dict(planted)
        key = changes.pop("key", KEY)
        commit = server[changes.pop("commit", "c1")]
        base = server[changes.pop("base", "c0")]
        server.plant(server["c1"], server.verdict(commit, base, key, **changes))
    decision = server.check("refs/heads/main", server["c0"], server["c1"])
    assert not decision.accepted
    assert decision.reason == reason
    assert message in decision.message
    assert "what to do:" in decision.message


def test_a_tampered_verdict_is_refused(server: Server) -> None:
    fresh(server, server["c1"])
    data = json.loads(server.verdict(server["c1"], server["c0"], verdict="FAIL"))
    data["attestation"]["verdict"] = "PASS"
    server.plant(server["c1"], json.dumps(data).encode())
    decision = server.check("refs/heads/main", server["c0"], server["c1"])
    assert not decision.accepted and decision.reason == "tampered"
    assert "tampered" in decision.message


def test_main_moves_only_forward_and_is_never_created_or_deleted(server: Server) -> None:
    fresh(server, server["side"])
    server.plant(server["side"], server.verdict(server["side"], server["c1"]))
    not_ff = server.check("refs/heads/main", server["c1"], server["side"])
    assert not not_ff.accepted and not_ff.reason == "not-fast-forward"
    deleted = server.check("refs/heads/main", server["c0"], hooks.ZERO)
    assert not deleted.accepted and deleted.reason == "delete"
    created = server.check("refs/heads/main", hooks.ZERO, server["c1"])
    assert not created.accepted and created.reason == "create"


def test_other_branches_are_free(server: Server) -> None:
    assert server.check("refs/heads/feature", server["c0"], server["side"]).accepted
    assert server.check("refs/heads/feature", server["c0"], hooks.ZERO).accepted
    assert server.check("refs/tags/v1", hooks.ZERO, server["c0"]).accepted


def write_blob(server: Server, document: bytes) -> str:
    return (
        subprocess.run(
            ["git", "--git-dir", str(server.git_dir), "hash-object", "-w", "--stdin"],
            input=document,
            capture_output=True,
            check=True,
        )
        .stdout.decode()
        .strip()
    )


def test_verdict_refs_accept_only_a_signed_verdict_for_their_own_commit(server: Server) -> None:
    ref = f"refs/verdicts/{server['c2']}"
    good = write_blob(server, server.verdict(server["c2"], server["c1"]))
    assert server.check(ref, hooks.ZERO, good).accepted
    forged = write_blob(server, server.verdict(server["c2"], server["c1"], FORGER))
    assert server.check(ref, hooks.ZERO, forged).reason == "forged"
    other = write_blob(server, server.verdict(server["c1"], server["c0"]))
    assert server.check(ref, hooks.ZERO, other).reason == "other-commit"
    assert server.check(ref, good, hooks.ZERO).reason == "delete"
    assert server.check("refs/verdicts/latest", hooks.ZERO, good).reason == "bad-ref"
    assert server.check(ref, hooks.ZERO, server["c2"]).reason == "not-blob"


def test_the_hook_ignores_a_key_in_the_pushers_environment(server: Server, monkeypatch) -> None:
    # A local pusher's environment reaches the hook: it must not choose the key that verifies.
    monkeypatch.setenv(attest.KEY_ENV_VAR, "f" * 48)
    fresh(server, server["c1"])
    server.plant(server["c1"], server.verdict(server["c1"], server["c0"], FORGER))
    assert server.check("refs/heads/main", server["c0"], server["c1"]).reason == "forged"


def test_the_hook_fails_closed(server: Server, monkeypatch, capsys) -> None:
    monkeypatch.setenv("GIT_DIR", str(server.git_dir))

    def crash(*_args):
        raise RuntimeError("boom")

    monkeypatch.setattr(hooks, "check_update", crash)
    assert hooks.main(["update", "refs/heads/main", server["c0"], server["c1"]]) == 1
    assert "protection hook failed (RuntimeError: boom)" in capsys.readouterr().err
    monkeypatch.undo()
    monkeypatch.setenv("GIT_DIR", str(server.git_dir))
    assert hooks.main(["update", "refs/heads/main"]) == 1
    assert "usage" in capsys.readouterr().err


def test_a_broken_config_or_key_refuses(tmp_path: Path, monkeypatch, capsys) -> None:
    server = Server(tmp_path)
    server.plant(server["c1"], server.verdict(server["c1"], server["c0"]))
    monkeypatch.setenv("GIT_DIR", str(server.git_dir))
    args = ["update", "refs/heads/main", server["c0"], server["c1"]]
    assert hooks.main(args) == 0
    (tmp_path / "secrets" / "ci.key").unlink()
    assert hooks.main(args) == 1
    assert "cannot read the verdict signing key file" in capsys.readouterr().err
    (server.git_dir / hooks.CONFIG_FILE).write_text("{not json")
    assert hooks.main(args) == 1
    assert "walkout-protect.json" in capsys.readouterr().err
