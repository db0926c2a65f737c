"""`walkout bump` and `walkout lock --check` with real git submodules (and the in-tree layout), and
the gate's git plumbing for them: worktrees with submodules, gitlinks in the code hash."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest
import yaml

from walkout.cli import main

_spec = importlib.util.spec_from_file_location("app_tests_gitorg", Path(__file__).with_name("gitorg.py"))
gitorg = importlib.util.module_from_spec(_spec)
sys.modules[_spec.name] = gitorg
_spec.loader.exec_module(gitorg)
git = gitorg.git


@pytest.fixture
def org(tmp_path, monkeypatch):
    """detection as a real submodule of the app; pose and tracking in-tree folders."""
    gitorg.identity(monkeypatch, tmp_path)
    monkeypatch.setenv("WALKOUT_HOME", str(tmp_path / "store"))
    org = gitorg.Org(tmp_path / "org")
    org.detection = org.model_repo("detection")
    pose = tmp_path / "pose"
    pose.mkdir()
    gitorg.write_pin(pose, "pose", "offline-pose0001", b"pose weights")
    org.app = org.app_repo({"submodules/pose": pose}, submodules=["detection"])
    org.lock = org.app / "model_refs.yaml"
    return org


def _lock(org) -> dict:
    return yaml.safe_load(org.lock.read_text())["components"]


def _new_model(org, experiment_id: str = "offline-detection0002", weights: bytes = b"w2") -> str:
    """A new pinned model merged to the model repository's main; returns its commit."""
    gitorg.write_pin(org.detection, "detection", experiment_id, weights)
    commit = gitorg.commit_all(org.detection, f"detection: {experiment_id}")
    git(org.detection, "push", "-q", "origin", "main")
    return commit


def test_the_fresh_app_lock_names_the_gitlink_commit_and_checks(org, capsys):
    gitlink = git(org.app, "ls-tree", "HEAD", "submodules/detection").split()
    assert gitlink[0] == "160000"
    assert _lock(org)["detection"]["commit"] == gitlink[2] == git(org.detection, "rev-parse", "HEAD")
    # the in-tree folder: the last app commit that touched it
    assert _lock(org)["pose"]["commit"] == git(org.app, "log", "-1", "--format=%H", "--", "submodules/pose")
    assert main(["lock", "--check", "--refs", str(org.lock)]) == 0, capsys.readouterr().err


def test_bump_moves_the_gitlink_relocks_verifies_and_commits(org, capsys):
    old = git(org.app, "rev-parse", "HEAD:submodules/detection")
    new = _new_model(org)
    assert main(["bump", "detection", "--refs", str(org.lock)]) == 0, capsys.readouterr().err
    assert git(org.app, "rev-parse", "HEAD:submodules/detection") == new
    entry = _lock(org)["detection"]
    assert entry["commit"] == new and entry["experiment_id"] == "offline-detection0002"
    message = git(org.app, "log", "-1", "--format=%B")
    assert f"{old[:12]} -> {new[:12]}" in message
    assert "offline-detection0001 -> offline-detection0002" in message
    assert f"CI verdict for {new}: none recorded" in message
    assert git(org.app, "show", "--name-only", "--format=", "HEAD").split() == [
        "model_refs.yaml",
        "submodules/detection",
    ]
    assert git(org.app, "status", "--porcelain") == ""
    assert main(["lock", "--check", "--refs", str(org.lock)]) == 0
    # nothing new on main: a second bump changes nothing
    assert main(["bump", "detection", "--refs", str(org.lock)]) == 0
    assert "nothing to commit" in capsys.readouterr().out
    assert git(org.app, "rev-parse", "HEAD:submodules/detection") == new


def test_bump_records_cis_verdict_and_the_candidates_blind_metrics(org, capsys):
    from walkout_ci import attest

    new = _new_model(org)
    key = attest.key_from_text(attest.generate_key(), "test key")
    attestation = attest.make_attestation(
        repo="walkout-detection",
        kind="model",
        commit=new,
        base="0" * 40,
        verdict="PASS",
        created_at="2026-12-04T00:00:00+00:00",
        metrics={"AP50": 0.9912, "AP": 0.9345},
    )
    attest.store_verdict(org.detection, new, attest.sign(attestation, key))
    git(org.detection, "push", "-q", "origin", f"{attest.verdict_ref(new)}:{attest.verdict_ref(new)}")
    assert main(["bump", "detection", "--refs", str(org.lock)]) == 0, capsys.readouterr().err
    message = git(org.app, "log", "-1", "--format=%B")
    assert f"CI verdict for {new}: PASS (model gate" in message
    assert "candidate blind metrics: AP=0.9345, AP50=0.9912" in message


def test_a_code_only_gitlink_change_fails_lock_check_naming_both_commits(org, capsys):
    old = git(org.app, "rev-parse", "HEAD:submodules/detection")
    (org.detection / "src" / "code.py").write_text("VERSION = 2\n")
    new = gitorg.commit_all(org.detection, "detection: code only")
    git(org.detection, "push", "-q", "origin", "main")
    sub = org.app / "submodules" / "detection"
    git(sub, "fetch", "-q", "origin")
    git(sub, "checkout", "-q", new)
    git(org.app, "commit", "-q", "-m", "move the gitlink without re-locking", "--", "submodules/detection")
    capsys.readouterr()
    assert main(["lock", "--check", "--refs", str(org.lock)]) == 1
    err = capsys.readouterr().err
    assert "detection" in err and old in err and new in err
    # same pin, new code: bump re-locks the commit
    assert main(["bump", "detection", "--refs", str(org.lock)]) == 0
    assert _lock(org)["detection"]["commit"] == new
    assert _lock(org)["detection"]["experiment_id"] == "offline-detection0001"
    assert main(["lock", "--check", "--refs", str(org.lock)]) == 0


def test_lock_check_names_a_submodule_checked_out_away_from_its_gitlink(org, capsys):
    new = _new_model(org)
    sub = org.app / "submodules" / "detection"
    git(sub, "fetch", "-q", "origin")
    git(sub, "checkout", "-q", new)
    assert main(["lock", "--check", "--refs", str(org.lock)]) == 1
    err = capsys.readouterr().err
    assert f"checked out at {new}" in err and "git submodule update" in err


def test_bump_refuses_a_commit_not_on_the_protected_main(org, capsys):
    before = (git(org.app, "rev-parse", "HEAD"), org.lock.read_bytes())
    old_checkout = git(org.app / "submodules" / "detection", "rev-parse", "HEAD")
    git(org.detection, "checkout", "-q", "-b", "feature")
    gitorg.write_pin(org.detection, "detection", "offline-detection0003", b"w3")
    feature = gitorg.commit_all(org.detection, "an ungated model")
    git(org.detection, "push", "-q", "origin", "feature")
    assert main(["bump", "detection", "--to", "feature", "--refs", str(org.lock)]) == 2
    err = capsys.readouterr().err
    assert feature in err and "not on the model repository's protected origin/main" in err
    assert (git(org.app, "rev-parse", "HEAD"), org.lock.read_bytes()) == before
    assert git(org.app / "submodules" / "detection", "rev-parse", "HEAD") == old_checkout


def test_bump_refuses_a_pin_whose_weights_do_not_match_and_changes_nothing(org, capsys):
    before = (git(org.app, "rev-parse", "HEAD"), org.lock.read_bytes())
    old_checkout = git(org.app / "submodules" / "detection", "rev-parse", "HEAD")
    gitorg.write_pin(org.detection, "detection", "offline-detection0004", b"w4", sha256="0" * 64)
    gitorg.commit_all(org.detection, "a broken pin")
    git(org.detection, "push", "-q", "origin", "main")
    assert main(["bump", "detection", "--refs", str(org.lock)]) == 2
    err = capsys.readouterr().err
    assert "model_ref.yaml at" in err and "cannot be verified" in err
    assert (git(org.app, "rev-parse", "HEAD"), org.lock.read_bytes()) == before
    assert git(org.app / "submodules" / "detection", "rev-parse", "HEAD") == old_checkout
    assert git(org.app, "status", "--porcelain") == ""


def test_bump_of_an_in_tree_folder_is_refused_with_what_to_do(org, capsys):
    assert main(["bump", "pose", "--refs", str(org.lock)]) == 2
    err = capsys.readouterr().err
    assert "submodules/pose is not a git submodule" in err and "walkout lock" in err


def test_in_tree_lock_check_follows_the_last_commit_touching_the_folder(org, capsys):
    (org.app / "submodules" / "pose" / "README.md").write_text("code change\n")
    changed = gitorg.commit_all(org.app, "pose: code change")
    assert main(["lock", "--check", "--refs", str(org.lock)]) == 1
    err = capsys.readouterr().err
    assert "pose" in err and changed in err
    assert main(["lock", "--refs", str(org.lock)]) == 0
    git(org.app, "commit", "-q", "-m", "re-lock", "--", "model_refs.yaml")
    assert main(["lock", "--check", "--refs", str(org.lock)]) == 0


def test_worktrees_check_out_their_commits_submodules_and_the_code_hash_sees_gitlinks(org, tmp_path):
    from walkout_ci import gitrepo
    from walkout_ci.errors import GateError
    from walkout_ci.gate_config import load_gate_config
    from walkout_ci.gate_runner import _code_hash

    before = git(org.app, "rev-parse", "HEAD")
    (org.detection / "src" / "code.py").write_text("VERSION = 2\n")
    gitorg.commit_all(org.detection, "detection: code only")
    git(org.detection, "push", "-q", "origin", "main")
    assert main(["bump", "detection", "--refs", str(org.lock)]) == 0
    after = git(org.app, "rev-parse", "HEAD")
    for commit, version in ((before, "VERSION = 1\n"), (after, "VERSION = 2\n")):
        tree = gitrepo.add_worktree(org.app, commit, tmp_path / f"tree-{commit[:8]}")
        try:
            assert (tree / "submodules/detection/src/code.py").read_text() == version
        finally:
            gitrepo.remove_worktree(org.app, tree)
        assert not tree.exists()
    config_path = tmp_path / "gate.yaml"
    config_path.write_text((Path(__file__).resolve().parents[1] / "gate.yaml").read_text())
    config = load_gate_config(config_path)
    # The app's code_paths hold only a gitlink change between the two commits (and the lock, excluded).
    assert _code_hash(org.app, before, "app", config) != _code_hash(org.app, after, "app", config)

    # a gitlink to a submodule commit nobody pushed cannot be checked out: a clear GateError
    sub = org.app / "submodules" / "detection"
    (sub / "src" / "code.py").write_text("VERSION = 3\n")
    local_only = gitorg.commit_all(sub, "never pushed")
    unpushed = gitorg.commit_all(org.app, "gitlink to an unpushed commit")
    with pytest.raises(GateError, match=rf"submodules/detection @ {local_only[:12]}.*cannot be checked out"):
        gitrepo.add_worktree(org.app, unpushed, tmp_path / "tree-bad")
    assert not (tmp_path / "tree-bad").exists()
