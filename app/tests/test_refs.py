"""model_refs.yaml: schema, agreement with the submodule pins, and verified model resolution."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
import yaml

from walkout.cli import main
from walkout.errors import RefsError
from walkout.pipeline import verify_refs
from walkout.refs import COMPONENTS, check_against_pins, load_refs, parse_refs, refs_from_pins, write_refs

REPO_ROOT = Path(__file__).resolve().parents[2]


def test_the_repository_lock_file_agrees_with_every_submodule_pin():
    refs = load_refs(REPO_ROOT / "model_refs.yaml")
    assert set(refs.components) == set(COMPONENTS)
    for name in COMPONENTS:
        assert (REPO_ROOT / refs.components[name].path).is_dir(), f"{name}: submodule path missing"
    assert check_against_pins(refs, REPO_ROOT) == []


def _fake_repo(root: Path, *, weights: dict[str, bytes] | None = None) -> Path:
    """A repository with three submodules, each pinning a bundled offline experiment; returns the lock."""
    weights = weights or {name: f"{name} weights".encode() for name in COMPONENTS}
    components = {}
    for name in COMPONENTS:
        experiment_id = f"offline-{name}0001"
        package = root / "submodules" / name
        bundle = package / "experiments" / experiment_id
        bundle.mkdir(parents=True)
        (bundle / "weights.pt").write_bytes(weights[name])
        digest = hashlib.sha256(weights[name]).hexdigest()
        record = {"id": experiment_id, "artifacts": {"weights": {"path": "weights.pt", "sha256": digest}}}
        (bundle / "experiment.json").write_text(json.dumps(record))
        pin = {
            "schema_version": 1,
            "component": name,
            "experiment_id": experiment_id,
            "artifact": "weights",
            "weights_sha256": digest,
            "training_dataset": None,
            "blind_metrics": {"score": 0.9},
        }
        (package / "model_ref.yaml").write_text(yaml.safe_dump(pin))
        components[name] = {"path": f"submodules/{name}"}
    lock = root / "model_refs.yaml"
    lock.write_text(yaml.safe_dump({"schema_version": 1, "components": components}))
    write_refs(lock, refs_from_pins(root, previous=load_refs(lock)))
    return lock


@pytest.fixture
def fake_repo(tmp_path, monkeypatch):
    monkeypatch.setenv("WALKOUT_HOME", str(tmp_path / "store"))
    return _fake_repo(tmp_path / "repo")


def test_lock_from_pins_then_every_model_resolves_with_its_hash(fake_repo):
    refs = load_refs(fake_repo)
    assert all(refs.components[name].pinned for name in COMPONENTS)
    assert refs.components["pose"].blind_metrics == {"score": 0.9}
    paths = verify_refs(fake_repo)
    assert paths["detection"].read_bytes() == b"detection weights"


def test_lock_check_cli_reports_agreement_and_disagreement(fake_repo, capsys):
    assert main(["lock", "--check", "--refs", str(fake_repo)]) == 0
    data = yaml.safe_load(fake_repo.read_text())
    data["components"]["pose"]["experiment_id"] = "offline-other"
    fake_repo.write_text(yaml.safe_dump(data))
    assert main(["lock", "--check", "--refs", str(fake_repo)]) == 1
    assert "pose" in capsys.readouterr().err


def test_weights_changed_on_disk_is_a_hash_mismatch(fake_repo):
    weights = fake_repo.parent / "submodules/tracking/experiments/offline-tracking0001/weights.pt"
    weights.write_bytes(b"tampered")
    with pytest.raises(RefsError, match=r"tracking.*sha256"):
        verify_refs(fake_repo)


def test_lock_hash_differing_from_the_pin_is_refused(fake_repo):
    data = yaml.safe_load(fake_repo.read_text())
    data["components"]["detection"]["weights_sha256"] = "0" * 64
    fake_repo.write_text(yaml.safe_dump(data))
    with pytest.raises(RefsError, match=r"detection: model_refs.yaml weights_sha256"):
        verify_refs(fake_repo)


def test_unknown_experiment_is_a_clear_error(fake_repo):
    # lock and pin agree, but nobody has that experiment
    pin_path = fake_repo.parent / "submodules/pose/model_ref.yaml"
    pin = yaml.safe_load(pin_path.read_text())
    pin["experiment_id"] = "offline-nosuchrun"
    pin_path.write_text(yaml.safe_dump(pin))
    write_refs(fake_repo, refs_from_pins(fake_repo.parent, previous=load_refs(fake_repo)))
    with pytest.raises(RefsError, match=r"offline-nosuchrun.*cannot be resolved.*unknown experiment"):
        verify_refs(fake_repo)


def test_run_with_refs_to_an_unknown_experiment_exits_2(fake_repo, rendered_scenarios, capsys):
    data = yaml.safe_load(fake_repo.read_text())
    pin_path = fake_repo.parent / "submodules/detection/model_ref.yaml"
    pin = yaml.safe_load(pin_path.read_text())
    pin["experiment_id"] = data["components"]["detection"]["experiment_id"] = "offline-ghost"
    pin_path.write_text(yaml.safe_dump(pin))
    fake_repo.write_text(yaml.safe_dump(data))
    video = next(iter(rendered_scenarios.values()))
    code = main(
        [
            "run",
            str(video / "videos" / video.name),
            "--refs",
            str(fake_repo),
            "--out",
            str(fake_repo.parent / "o.json"),
        ]
    )
    assert code == 2
    assert "offline-ghost" in capsys.readouterr().err
    assert not (fake_repo.parent / "o.json").exists()


def test_unpinned_lock_file_is_refused(tmp_path):
    lock = tmp_path / "model_refs.yaml"
    components = {name: {"path": f"submodules/{name}", "experiment_id": None} for name in COMPONENTS}
    lock.write_text(yaml.safe_dump({"schema_version": 1, "components": components}))
    with pytest.raises(RefsError, match="not pinned"):
        verify_refs(lock)


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda d: d.update(schema_version=2), "schema_version must be 1"),
        (lambda d: d.update(componets=d.pop("components")), "did you mean 'components'"),
        (lambda d: d["components"]["pose"].update(weights_sha=None), "did you mean 'weights_sha256'"),
        (lambda d: d["components"]["pose"].update(weights_sha256="xyz"), "64 lowercase hex"),
        (lambda d: d["components"].pop("tracking"), "components.tracking is missing"),
    ],
)
def test_bad_lock_files_name_the_field(mutate, message):
    data = {
        "schema_version": 1,
        "components": {name: {"path": f"submodules/{name}"} for name in COMPONENTS},
    }
    mutate(data)
    with pytest.raises(RefsError, match=message):
        parse_refs(data)
