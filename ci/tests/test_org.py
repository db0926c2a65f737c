"""`walkout-ci org init` on a small fake monorepo: layout, real submodules, store, hooks, idempotence.

The fake monorepo has one model package at submodules/fake (walkout_ci.testing's fake component) and
no wheels to build, so the org is built in about a second.
"""

from __future__ import annotations

import json
import os
import stat
import subprocess
from pathlib import Path

import pytest
import yaml

from walkout_ci import attest, hooks, org
from walkout_ci.cli import main as cli_main
from walkout_ci.testing import make_fake_component_repo

SPEC = org.OrgSpec(components=("fake",), wheel_projects=())


def git(repo: Path, *args: str) -> str:
    return subprocess.run(
        ["git", "-C", str(repo), *args], check=True, capture_output=True, text=True
    ).stdout.strip()


def fake_monorepo(root: Path) -> Path:
    """A monorepo with submodules/fake (its pin bundled in experiments/), a lock file and a README."""
    make_fake_component_repo(root, {"person": [0.9, 0.8, 0.9]}, subdir="submodules/fake")
    (root / "README.md").write_text("# walkout\n")
    (root / "constraints.txt").write_text("pyyaml==6.0.2\n")
    (root / "model_refs.yaml").write_text(
        "# lock\nschema_version: 1\ncomponents:\n  fake:\n    path: submodules/fake\n"
        "    commit: 0000000000000000000000000000000000000000\n    experiment_id: local-baseline\n"
    )
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", "app files")
    return root


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> tuple[Path, org.OrgInfo]:
    base = tmp_path_factory.mktemp("org")
    source = fake_monorepo(base / "mono")
    info = org.build_org(base / "org", source=source, spec=SPEC)
    return base / "org", info


def test_model_repo_has_the_package_at_its_root_history_kept_and_no_weights(built) -> None:
    root, info = built
    bare = root / "walkout-fake.git"
    main = git(bare, "rev-parse", "refs/heads/main")
    assert info.repos["walkout-fake"]["main"] == main
    files = git(bare, "ls-tree", "-r", "--name-only", main).splitlines()
    assert {"gate.yaml", "component.py", "model_ref.yaml", "constraints.txt"} <= set(files)
    assert not [name for name in files if name.startswith("experiments/")]
    # History kept: the split commits are parents, and they carried the bundled export.
    history = git(bare, "log", "--format=%s", main).splitlines()
    assert history[0].startswith("Publish walkout-fake") and "component with pinned baseline" in history
    parent_files = git(bare, "ls-tree", "-r", "--name-only", f"{main}^").splitlines()
    assert "experiments/local-baseline/experiment.json" in parent_files


def test_app_repo_has_real_gitlinks_relative_urls_and_a_relocked_lock(built, tmp_path: Path) -> None:
    root, info = built
    bare = root / "walkout.git"
    model_main = info.repos["walkout-fake"]["main"]
    entry = git(bare, "ls-tree", "HEAD", "submodules/fake")
    assert entry.split() == ["160000", "commit", model_main, "submodules/fake"]
    gitmodules = git(bare, "show", "HEAD:.gitmodules")
    assert "url = ../walkout-fake.git" in gitmodules
    lock = yaml.safe_load(git(bare, "show", "HEAD:model_refs.yaml"))
    assert lock["components"]["fake"]["commit"] == model_main
    assert git(bare, "show", "HEAD:README.md") == "# walkout"
    # A clone resolves the submodule beside it (file:// submodules need an explicit allow since git 2.38).
    clone = tmp_path / "app"
    subprocess.run(["git", "clone", "-q", str(bare), str(clone)], check=True)
    git(clone, "-c", "protocol.file.allow=always", "submodule", "update", "--init", "-q")
    assert git(clone, "submodule", "status").split()[0] == model_main
    assert (clone / "submodules" / "fake" / "gate.yaml").is_file()


def test_store_holds_the_bundled_experiments_and_pins_resolve_from_it(built) -> None:
    from walkout_ci import pins
    from walkout_ci.store import Store

    root, info = built
    assert info.experiments == ["local-baseline"]
    pin = pins.pin_from_dict(yaml.safe_load(git(root / "walkout-fake.git", "show", "main:model_ref.yaml")))
    weights = pins.resolve_pin(pin, store=Store(root=root / "store"), use_server=False)
    assert weights.is_file() and str(weights).startswith(str(root / "store"))


def test_hooks_config_and_key_are_installed(built) -> None:
    root, _info = built
    key_file = root / org.KEY_FILE
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert stat.S_IMODE(key_file.parent.stat().st_mode) == 0o700
    attest.key_from_file(key_file)
    for name, kind in (("walkout-fake", "model"), ("walkout", "qc")):
        hook = root / f"{name}.git" / "hooks" / "update"
        assert os.access(hook, os.X_OK)
        config = hooks.read_config(root / f"{name}.git")
        assert (config.repo, config.kind, config.key_file) == (name, kind, key_file.resolve())
    recorded = json.loads((root / org.ORG_FILE).read_text())
    assert recorded["repos"]["walkout"]["kind"] == "qc" and recorded["key_file"] == org.KEY_FILE


def test_an_existing_org_is_refused_unless_updated(built, capsys) -> None:
    root, info = built
    with pytest.raises(org.OrgError, match="exists already"):
        org.build_org(root, source=info.source, spec=SPEC)
    key_before = (root / org.KEY_FILE).read_text()
    main_before = git(root / "walkout-fake.git", "rev-parse", "main")
    (root / "walkout-fake.git" / "hooks" / "update").unlink()
    code = cli_main(
        [
            "org",
            "init",
            str(root),
            "--update",
            "--source",
            str(info.source),
            "--component",
            "fake",
            "--no-wheels",
        ]
    )
    assert code == 0, capsys.readouterr().err
    assert "org updated" in capsys.readouterr().out
    assert os.access(root / "walkout-fake.git" / "hooks" / "update", os.X_OK)
    assert (root / org.KEY_FILE).read_text() == key_before
    assert git(root / "walkout-fake.git", "rev-parse", "main") == main_before


def test_a_failed_build_leaves_nothing_behind(tmp_path: Path) -> None:
    source = fake_monorepo(tmp_path / "mono")
    with pytest.raises(org.OrgError, match="no submodules/missing/"):
        org.build_org(
            tmp_path / "org",
            source=source,
            spec=org.OrgSpec(components=("fake", "missing"), wheel_projects=()),
        )
    with pytest.raises(org.OrgError, match=r"pyproject\.toml does not exist"):
        org.build_org(
            tmp_path / "org", source=source, spec=org.OrgSpec(components=("fake",), wheel_projects=("ci",))
        )
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mono"]
    with pytest.raises(org.OrgError, match="not an org"):
        org.build_org(tmp_path / "mono", source=source, spec=SPEC, update=True)


def test_relock_keeps_comments_and_refuses_an_unknown_layout() -> None:
    text = "# keep me\nschema_version: 1\ncomponents:\n  a:\n    commit: old  \n  b:\n    commit: x\n"
    out = org.relock_commits(text, {"a": "1" * 40})
    assert out.startswith("# keep me\n") and f"commit: '{'1' * 40}'" in out and "commit: x" in out
    assert (
        yaml.safe_load(org.relock_commits(text, {"a": "ab" * 20}))["components"]["a"]["commit"] == "ab" * 20
    )
    with pytest.raises(org.OrgError, match=r"components\.c\.commit"):
        org.relock_commits(text, {"c": "1" * 40})


def test_the_index_is_a_pep503_simple_index(tmp_path: Path) -> None:
    wheels = tmp_path / "index" / "wheels"
    wheels.mkdir(parents=True)
    (wheels / "walkout_ci-0.1.0-py3-none-any.whl").write_bytes(b"zip")
    assert org.write_simple_index(tmp_path / "index") == ["walkout_ci-0.1.0-py3-none-any.whl"]
    page = (tmp_path / "index" / "simple" / "walkout-ci" / "index.html").read_text()
    assert "../../wheels/walkout_ci-0.1.0-py3-none-any.whl#sha256=" in page
    assert 'href="walkout-ci/"' in (tmp_path / "index" / "simple" / "index.html").read_text()
