"""model_refs.yaml hardening: component paths stay in the repository, `lock` writes only what loads."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import yaml

from walkout.cli import main
from walkout.errors import RefsError
from walkout.refs import COMPONENTS, ComponentRef, ModelRefs, load_refs, parse_refs, write_refs

DIGEST = "ab" * 32


def _lock_data(**paths: str) -> dict:
    """A valid unpinned lock document; `paths` overrides component paths (e.g. pose="../x")."""
    return {
        "schema_version": 1,
        "components": {name: {"path": paths.get(name, f"submodules/{name}")} for name in COMPONENTS},
    }


def _repo(root: Path, pins: dict[str, dict] | None = None, **paths: str) -> Path:
    """A repository folder with submodules/<name>/ (and the given pins); returns its lock file."""
    for name in COMPONENTS:
        (root / "submodules" / name).mkdir(parents=True, exist_ok=True)
    for name, pin in (pins or {}).items():
        (root / "submodules" / name / "model_ref.yaml").write_text(yaml.safe_dump(pin))
    lock = root / "model_refs.yaml"
    lock.write_text(yaml.safe_dump(_lock_data(**paths)))
    return lock


def _pin(name: str, **overrides) -> dict:
    pin = {
        "schema_version": 1,
        "component": name,
        "experiment_id": f"offline-{name}",
        "artifact": "weights",
        "weights_sha256": DIGEST,
        "blind_metrics": {"AP": 0.9},
    }
    pin.update(overrides)
    return pin


@pytest.mark.parametrize(
    ("path", "problem"),
    [
        ("/etc", "is absolute"),
        ("../elsewhere/pose", "climbs out with '..'"),
        ("submodules/../../pose", "climbs out with '..'"),
        ("submodules\\..\\..\\pose", "climbs out with '..'"),
        ("C:\\models\\pose", "is absolute"),
    ],
)
def test_a_path_leaving_the_repository_names_the_component_and_field(path, problem):
    with pytest.raises(RefsError) as error:
        parse_refs(_lock_data(pose=path), source="model_refs.yaml")
    message = str(error.value)
    assert "model_refs.yaml: components.pose.path" in message and problem in message
    assert "inside the repository" in message


def test_a_path_inside_the_repository_is_accepted(tmp_path):
    refs = load_refs(_repo(tmp_path, pose="./submodules/pose"))
    assert refs.components["pose"].path == "./submodules/pose"


def test_a_symlink_leading_out_of_the_repository_is_refused_at_load(tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    repo = tmp_path / "repo"
    lock = _repo(repo, tracking="vendor/tracking")
    (repo / "vendor").mkdir()
    (repo / "vendor" / "tracking").symlink_to(outside, target_is_directory=True)
    with pytest.raises(RefsError, match=r"components\.tracking\.path: 'vendor/tracking' leads outside"):
        load_refs(lock)
    # a link that stays inside the repository is fine
    (repo / "vendor" / "tracking").unlink()
    (repo / "vendor" / "tracking").symlink_to(repo / "submodules" / "tracking", target_is_directory=True)
    assert load_refs(lock).components["tracking"].path == "vendor/tracking"


def test_lock_check_with_an_escaping_pin_link_is_an_error_not_stale(tmp_path, capsys):
    outside = tmp_path / "outside.yaml"
    outside.write_text(yaml.safe_dump(_pin("detection")))
    repo = tmp_path / "repo"
    lock = _repo(repo)
    (repo / "submodules" / "detection" / "model_ref.yaml").symlink_to(outside)
    assert main(["lock", "--check", "--refs", str(lock)]) == 2
    captured = capsys.readouterr()
    assert "components.detection.path" in captured.err and "outside the repository" in captured.err
    assert "stale" not in captured.out + captured.err


def test_lock_check_with_a_dotdot_path_exits_2_naming_the_field(tmp_path, capsys):
    lock = _repo(tmp_path / "repo", pose="../pose")
    assert main(["lock", "--check", "--refs", str(lock)]) == 2
    captured = capsys.readouterr()
    assert "components.pose.path: '../pose' climbs out with '..'" in captured.err
    assert "stale" not in captured.out + captured.err


@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf])
def test_non_finite_blind_metrics_are_refused(value):
    data = _lock_data()
    data["components"]["pose"]["blind_metrics"] = {"AP": 0.5, "AR": value}
    with pytest.raises(RefsError, match=r"components\.pose\.blind_metrics\.AR: expected a finite number"):
        parse_refs(data)


def test_yaml_nan_in_a_lock_file_is_refused(tmp_path):
    lock = _repo(tmp_path)
    lock.write_text(
        lock.read_text().replace(
            "path: submodules/pose", "path: submodules/pose\n    blind_metrics: {AP: .nan}"
        )
    )
    with pytest.raises(RefsError, match=r"components\.pose\.blind_metrics\.AP: expected a finite number"):
        load_refs(lock)


def _refs(**entry) -> ModelRefs:
    components = {name: ComponentRef(name=name, path=f"submodules/{name}") for name in COMPONENTS}
    components["pose"] = ComponentRef(name="pose", **({"path": "submodules/pose"} | entry))
    return ModelRefs(components=components)


@pytest.mark.parametrize(
    ("entry", "field"),
    [
        ({"path": "../pose"}, "components.pose.path"),
        ({"blind_metrics": {"AP": math.nan}}, "components.pose.blind_metrics.AP"),
        ({"experiment_id": 42}, "components.pose.experiment_id"),
        ({"weights_sha256": "ABC"}, "components.pose.weights_sha256"),
    ],
)
def test_write_refs_refuses_what_load_refs_would_refuse_and_writes_nothing(tmp_path, entry, field):
    lock = _repo(tmp_path)
    before = lock.read_bytes()
    with pytest.raises(RefsError) as error:
        write_refs(lock, _refs(**entry))
    assert f"refusing to write {lock}" in str(error.value) and field in str(error.value)
    assert lock.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model_refs.yaml", "submodules"]


def test_write_refs_output_loads_back(tmp_path):
    lock = _repo(tmp_path)
    written = _refs(experiment_id="offline-pose", weights_sha256=DIGEST, blind_metrics={"AP": 0.75})
    write_refs(lock, written)
    assert load_refs(lock).components["pose"] == written.components["pose"]


def test_lock_from_a_pin_with_nan_metrics_exits_2_naming_the_pin(tmp_path, capsys):
    lock = _repo(tmp_path, pins={"pose": _pin("pose", blind_metrics={"AP": math.nan})})
    before = lock.read_bytes()
    assert main(["lock", "--refs", str(lock)]) == 2
    err = capsys.readouterr().err
    assert "submodules/pose/model_ref.yaml: blind_metrics.AP is nan" in err
    assert lock.read_bytes() == before


def test_lock_from_a_pin_with_a_bad_experiment_id_writes_nothing(tmp_path, capsys):
    lock = _repo(
        tmp_path,
        pins={name: _pin(name) for name in COMPONENTS} | {"tracking": _pin("tracking", experiment_id=7)},
    )
    before = lock.read_bytes()
    assert main(["lock", "--refs", str(lock)]) == 2
    err = capsys.readouterr().err
    assert "refusing to write" in err and "components.tracking.experiment_id" in err
    assert lock.read_bytes() == before


def test_lock_from_good_pins_writes_a_loadable_file(tmp_path):
    lock = _repo(tmp_path, pins={name: _pin(name) for name in COMPONENTS})
    assert main(["lock", "--refs", str(lock)]) == 0
    refs = load_refs(lock)
    assert all(refs.components[name].pinned for name in COMPONENTS)
    assert main(["lock", "--check", "--refs", str(lock)]) == 0
