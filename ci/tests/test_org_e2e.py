"""End to end, with real git, the installed hook scripts and the real gate: a model repository's pull
request -> `walkout-ci ci check --push` -> push to the protected `main`, accepted or refused.

The org is built from a fake monorepo (walkout_ci.testing's fake component at submodules/fake); the
researcher works in a clone of walkout-fake.git, weights go to the org's store, CI runs the real CLI
as a subprocess with the signing key, and every push goes through hooks/update (python -m
walkout_ci.hooks). Verdicts that a test needs "as if CI had made them earlier" are signed with the
org's key directly.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from walkout_ci import attest, org
from walkout_ci.testing import (
    fake_pin_yaml,
    fake_weights,
    make_fake_component_repo,
    make_fake_dataset,
    write_fake_experiment,
)

SPEC = org.OrgSpec(components=("fake",), wheel_projects=())
BASELINE = {"person": [0.9, 0.8, 0.9]}
FORGER = attest.key_from_text("f" * 48, "forger")


def git(repo: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    return subprocess.run(["git", "-C", str(repo), *args], check=check, capture_output=True, text=True)


class Org:
    """The org, the CI environment and helpers for researchers' clones."""

    def __init__(self, base: Path) -> None:
        self.base = base
        source = base / "mono"
        make_fake_component_repo(source, BASELINE, subdir="submodules/fake")
        self.root = base / "org"
        org.build_org(self.root, source=source, spec=SPEC)
        self.bare = self.root / "walkout-fake.git"
        self.store = self.root / "store"
        self.key = attest.key_from_file(self.root / org.KEY_FILE)
        self.data = base / "data"
        make_fake_dataset(self.data)
        self.env = {
            **os.environ,
            attest.KEY_ENV_VAR: self.key.secret.decode(),
            "WALKOUT_HOME": str(base / "ci-home"),
            "WALKOUT_OFFLINE": "1",
        }
        self.count = 0

    def main_tip(self) -> str:
        return git(self.bare, "rev-parse", "refs/heads/main").stdout.strip()

    def clone(self, name: str) -> Path:
        path = self.base / name
        git(self.base, "clone", "-q", str(self.bare), name)
        git(path, "config", "user.email", "researcher@example.com")
        git(path, "config", "user.name", "researcher")
        git(path, "checkout", "-q", "-b", name)
        return path

    def pin_model(self, clone: Path, scores: dict[str, list[float]]) -> str:
        """Store a new experiment in the org store, pin it in the clone, commit; returns the commit."""
        self.count += 1
        experiment = f"local-exp{self.count}"
        digest = write_fake_experiment(self.store / "experiments", experiment, fake_weights(scores))
        (clone / "model_ref.yaml").write_text(fake_pin_yaml(experiment, digest))
        return self.commit(clone, f"pin {experiment}")

    def commit(self, clone: Path, message: str) -> str:
        (clone / "notes.txt").write_text(message)
        git(clone, "add", "-A")
        git(clone, "commit", "-q", "-m", message)
        return git(clone, "rev-parse", "HEAD").stdout.strip()

    def ci_check(self, clone: Path, out: str) -> subprocess.CompletedProcess:
        command = [
            sys.executable, "-m", "walkout_ci.cli", "ci", "check", "--component-dir", str(clone),
            "--data", str(self.data), "--out", str(self.base / out), "--store", str(self.store),
            "--cache-dir", str(self.base / "cache"), "--no-track", "--no-progress", "--push",
        ]  # fmt: skip
        return subprocess.run(command, capture_output=True, text=True, env=self.env, cwd=clone)

    def sign(self, commit: str, base: str, key: attest.SigningKey | None = None, **changes) -> bytes:
        fields = dict(
            repo="walkout-fake",
            kind="model",
            commit=commit,
            base=base,
            verdict="PASS",
            created_at="2026-12-04T00:00:00+00:00",
            metrics={"AP50": 0.9},
        )
        fields.update(changes)
        return attest.sign(attest.make_attestation(**fields), key or self.key)

    def push(self, clone: Path, refspec: str) -> subprocess.CompletedProcess:
        # No signing key in the pusher's environment: researchers do not have it.
        env = {k: v for k, v in os.environ.items() if k != attest.KEY_ENV_VAR}
        command = ["git", "-C", str(clone), "push", "origin", refspec]
        return subprocess.run(command, capture_output=True, text=True, env=env)


@pytest.fixture(scope="module")
def world(tmp_path_factory) -> Org:
    return Org(tmp_path_factory.mktemp("e2e"))


def test_pull_request_with_a_better_model_passes_ci_and_merges(world: Org) -> None:
    clone = world.clone("better")
    base = world.main_tip()
    head = world.pin_model(clone, {"person": [0.95, 0.85, 0.95]})
    assert world.push(clone, "better").returncode == 0  # branches are free
    checked = world.ci_check(clone, "out-better")
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert (
        f"signed PASS verdict (model gate, walkout-fake) for {head[:12]} against {base[:12]}"
        in checked.stdout
    )
    verdict = json.loads((world.base / "out-better" / "verdict.json").read_text())
    assert verdict["verdict"] == "PASS"
    found, verified = attest.read_verdict(world.bare, head, world.key)
    assert (
        verified and found["base"] == base and found["metrics"]["AP50"] == pytest.approx(0.9166666, abs=1e-5)
    )
    assert found["candidate"]["experiment_id"].startswith("local-exp")
    merged = world.push(clone, "better:main")
    assert merged.returncode == 0, merged.stderr
    assert "CI verdict PASS (model gate)" in merged.stderr
    assert world.main_tip() == head


def test_a_worse_model_fails_ci_and_main_refuses_it(world: Org) -> None:
    clone = world.clone("worse")
    head = world.pin_model(clone, {"person": [0.2, 0.1, 0.3]})
    checked = world.ci_check(clone, "out-worse")
    assert checked.returncode == 1, checked.stdout + checked.stderr
    assert "signed FAIL verdict" in checked.stdout
    refused = world.push(clone, "worse:main")
    assert refused.returncode != 0
    assert f"CI's verdict for {head[:12]} is FAIL" in refused.stderr
    assert "hook declined" in refused.stderr and world.main_tip() != head


def test_a_commit_without_a_verdict_is_refused(world: Org) -> None:
    clone = world.clone("direct")
    head = world.commit(clone, "a direct change")
    refused = world.push(clone, "direct:main")
    assert refused.returncode != 0
    assert (
        f"no CI verdict for {head[:12]}" in refused.stderr and "walkout-ci ci check --push" in refused.stderr
    )


def test_a_forged_verdict_cannot_be_pushed_nor_used(world: Org) -> None:
    clone = world.clone("forged")
    head = world.commit(clone, "forged change")
    forged = world.sign(head, world.main_tip(), FORGER)
    attest.store_verdict(clone, head, forged)
    pushed = world.push(clone, f"refs/verdicts/{head}")
    assert pushed.returncode != 0 and "forged" in pushed.stderr
    # Even planted on the server behind the hooks' back, it does not open main.
    attest.store_verdict(world.bare, head, forged)
    refused = world.push(clone, "forged:main")
    assert refused.returncode != 0 and "is not valid" in refused.stderr and "forged" in refused.stderr


def test_a_tampered_verdict_is_refused(world: Org) -> None:
    clone = world.clone("tampered")
    head = world.commit(clone, "tampered change")
    data = json.loads(world.sign(head, world.main_tip(), verdict="FAIL"))
    data["attestation"]["verdict"] = "PASS"
    attest.store_verdict(world.bare, head, json.dumps(data).encode())
    refused = world.push(clone, "tampered:main")
    assert refused.returncode != 0 and "tampered" in refused.stderr


def test_a_stale_verdict_is_refused_after_main_moved(world: Org) -> None:
    # Two stacked pull requests both checked by CI while main was at `base`; the first merges.
    clone = world.clone("stacked")
    base = world.main_tip()
    first = world.commit(clone, "first")
    second = world.commit(clone, "second")
    for commit in (first, second):
        attest.store_verdict(clone, commit, world.sign(commit, base))
        assert world.push(clone, f"refs/verdicts/{commit}").returncode == 0  # valid verdicts are accepted
    assert world.push(clone, f"{first}:refs/heads/main").returncode == 0
    refused = world.push(clone, "stacked:main")
    assert refused.returncode != 0
    assert (
        f"is stale: it was made against main at {base[:12]}, but main is now at {first[:12]}"
        in refused.stderr
    )


def test_a_verdict_for_another_commit_is_refused(world: Org) -> None:
    clone = world.clone("other")
    base = world.main_tip()
    checked = world.commit(clone, "checked")
    git(clone, "commit", "-q", "--amend", "-m", "amended after CI")
    amended = git(clone, "rev-parse", "HEAD").stdout.strip()
    valid_for_checked = world.sign(checked, base)
    attest.store_verdict(clone, amended, valid_for_checked)
    pushed = world.push(clone, f"refs/verdicts/{amended}")
    assert pushed.returncode != 0 and "holds a verdict for" in pushed.stderr
    attest.store_verdict(world.bare, amended, valid_for_checked)
    refused = world.push(clone, "other:main")
    assert refused.returncode != 0 and "holds a verdict for another commit" in refused.stderr


def test_a_crashing_hook_refuses(world: Org) -> None:
    clone = world.clone("crash")
    head = world.commit(clone, "change")
    attest.store_verdict(clone, head, world.sign(head, world.main_tip()))
    assert world.push(clone, f"refs/verdicts/{head}").returncode == 0
    config = world.bare / "walkout-protect.json"
    saved = config.read_text()
    config.write_text("{broken")
    try:
        refused = world.push(clone, "crash:main")
    finally:
        config.write_text(saved)
    assert refused.returncode != 0 and "the protection hook failed" in refused.stderr
    assert world.main_tip() != head
    accepted = world.push(clone, "crash:main")  # the same push once the hook works again
    assert accepted.returncode == 0, accepted.stderr


def test_ci_check_without_the_key_records_nothing(world: Org) -> None:
    clone = world.clone("nokey")
    head = world.commit(clone, "no key")
    env = {k: v for k, v in world.env.items() if k != attest.KEY_ENV_VAR}
    command = [sys.executable, "-m", "walkout_ci.cli", "ci", "check", "--component-dir", str(clone),
               "--data", str(world.data), "--out", str(world.base / "out-nokey"), "--push"]  # fmt: skip
    refused = subprocess.run(command, capture_output=True, text=True, env=env, cwd=clone)
    assert refused.returncode == 2 and "WALKOUT_CI_SIGNING_KEY is not set" in refused.stderr
    assert not (world.base / "out-nokey").exists()  # refused before the gate ran
    assert attest.read_verdict(clone, head) is None
