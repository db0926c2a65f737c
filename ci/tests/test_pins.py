"""Model pins: schema validation, atomic writes, resolve (id | pin | checkpoint), exports, CLI."""

from __future__ import annotations

import dataclasses
import json
import zipfile
from pathlib import Path

import pytest
import torch
import yaml

from walkout_ci import bundle, cli, pins
from walkout_ci.errors import ExperimentError, PinError
from walkout_ci.experiment import Experiment
from walkout_ci.store import Store, read_json, sha256_file


def make_experiment(
    store: Store, tmp_path: Path, experiment_id: str = "local-abc", session: bool = True
) -> str:
    """A completed store-only experiment with real torch weights (and a fake ClearML session zip)."""
    exp = Experiment(
        experiment_id=experiment_id, project="walkout/test", name="t", mode="local", params={}, store=store
    )
    weights = tmp_path / f"{experiment_id}.pt"
    torch.save({"w": torch.arange(6, dtype=torch.float32)}, weights)
    manifest = tmp_path / "manifest.json"
    manifest.write_text(json.dumps({"split": "train", "blind": False, "content_hashes": ["a" * 64]}))
    exp.set_training_data(manifest)
    exp.upload_weights(weights)
    exp.close()
    if session:
        # The shape of a ClearML offline session: task.json + data/<...>/artifacts/<name>/<file>.
        offline = "/somewhere/offline/" + experiment_id
        member = f"data/p/t.{experiment_id}/artifacts/weights/{weights.name}"
        artifact = {"key": "weights", "uri": f"{offline}/{member}"}
        task = {"id": experiment_id, "offline_folder": offline, "execution": {"artifacts": [artifact]}}
        with zipfile.ZipFile(store.experiment_dir(experiment_id) / "clearml_session.zip", "w") as archive:
            archive.writestr("task.json", json.dumps(task))
            archive.writestr("metrics.jsonl", "")
            archive.writestr(
                f"data/p/t.{experiment_id}/artifacts/weights/{weights.name}", weights.read_bytes()
            )
        record = read_json(store.record_path(experiment_id))
        record["clearml_session"] = "clearml_session.zip"
        (store.record_path(experiment_id)).write_text(json.dumps(record))
    return experiment_id


@pytest.fixture
def store(tmp_path: Path) -> Store:
    return Store.open(tmp_path / "store")


def test_pin_round_trip_and_schema(store: Store, tmp_path: Path) -> None:
    experiment_id = make_experiment(store, tmp_path)
    out = tmp_path / "pkg" / "model_ref.yaml"
    pin = pins.pin_experiment(
        experiment_id, out, component="detection", blind_metrics={"AP50": 0.9}, store=store
    )
    data = yaml.safe_load(out.read_text())
    assert list(data) == [
        "schema_version",
        "component",
        "experiment_id",
        "artifact",
        "weights_sha256",
        "training_dataset",
        "blind_metrics",
        "created_at",
    ]
    assert data["weights_sha256"] == sha256_file(
        store.experiment_dir(experiment_id) / "artifacts/weights/local-abc.pt"
    )
    assert data["training_dataset"]["hash"] == sha256_file(tmp_path / "manifest.json")
    assert pins.read_pin(out) == pin
    assert not [p for p in out.parent.iterdir() if p.name != "model_ref.yaml"]  # no temp file left


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"experiment_idd": "x"}, "did you mean 'experiment_id'"),
        ({"weights_sha256": "abc"}, "weights_sha256"),
        ({"schema_version": 2}, "schema_version 2"),
        ({"component": None}, "missing required key 'component'"),
        ({"blind_metrics": {"AP50": "high"}}, "blind_metrics"),
        ({"experiment_id": "../../etc"}, "invalid experiment id"),
    ],
)
def test_read_pin_rejects_bad_files(tmp_path: Path, change: dict, message: str) -> None:
    data = {
        "schema_version": 1,
        "component": "detection",
        "experiment_id": "offline-1",
        "artifact": "weights",
        "weights_sha256": "0" * 64,
        "training_dataset": None,
        "blind_metrics": {},
        "created_at": None,
    }
    data.update(change)
    path = tmp_path / "model_ref.yaml"
    path.write_text(yaml.safe_dump(data))
    with pytest.raises(PinError, match=message) as info:
        pins.read_pin(path)
    assert str(path) in str(info.value)


def test_resolve_by_id_pin_and_checkpoint(store: Store, tmp_path: Path) -> None:
    experiment_id = make_experiment(store, tmp_path)
    by_id = pins.resolve_model_ref(experiment_id, store=store, use_server=False)
    assert torch.load(by_id, weights_only=True)["w"].tolist() == [0, 1, 2, 3, 4, 5]
    pin_path = tmp_path / "model_ref.yaml"
    pins.pin_experiment(experiment_id, pin_path, component="detection", store=store)
    assert pins.resolve_model_ref(pin_path, store=store, use_server=False) == by_id
    checkpoint = tmp_path / "local-abc.pt"
    assert pins.resolve_model_ref(str(checkpoint), store=store) == checkpoint.absolute()
    with pytest.raises(PinError, match="no such file"):
        pins.resolve_model_ref(str(tmp_path / "nope.pt"), store=store)


def test_unknown_offline_id_is_an_error_naming_it(store: Store) -> None:
    # ClearML's Task.get_task returns an empty task for an unknown offline id; we must not.
    with pytest.raises(PinError, match="offline-doesnotexist") as info:
        pins.resolve_model_ref("offline-doesnotexist", store=store, search=["/nonexistent"])
    assert "store" in str(info.value) and "/nonexistent" in str(info.value)


def test_tampered_weights_are_refused(store: Store, tmp_path: Path) -> None:
    experiment_id = make_experiment(store, tmp_path)
    pin_path = tmp_path / "model_ref.yaml"
    pin = pins.pin_experiment(experiment_id, pin_path, component="detection", store=store)
    weights = store.experiment_dir(experiment_id) / "artifacts/weights/local-abc.pt"
    weights.write_bytes(b"malicious pickle")
    with pytest.raises(PinError, match=pin.weights_sha256) as info:
        pins.resolve_model_ref(pin_path, store=store, use_server=False)
    assert experiment_id in str(info.value)


def test_pin_pointing_at_other_weights_is_refused(store: Store, tmp_path: Path) -> None:
    experiment_id = make_experiment(store, tmp_path)
    pin_path = tmp_path / "model_ref.yaml"
    pin = pins.pin_experiment(experiment_id, pin_path, component="detection", store=store)
    pins.write_pin(pin_path, pins.ModelPin(**{**pin.__dict__, "weights_sha256": "f" * 64}))
    with pytest.raises(PinError, match=r"the pin expects f{64}"):
        pins.resolve_model_ref(pin_path, store=store, use_server=False)


def test_missing_artifact_names_what_exists(store: Store, tmp_path: Path) -> None:
    experiment_id = make_experiment(store, tmp_path)
    with pytest.raises(PinError, match=r"no artifact 'best'.*it has: weights"):
        pins.resolve_model_ref(experiment_id, store=store, use_server=False, artifact="best")
    (store.experiment_dir(experiment_id) / "artifacts/weights/local-abc.pt").unlink()
    with pytest.raises(PinError, match="missing"):
        pins.resolve_model_ref(experiment_id, store=store, use_server=False)


def test_artifact_path_cannot_escape_the_experiment(store: Store, tmp_path: Path) -> None:
    experiment_id = make_experiment(store, tmp_path)
    record = read_json(store.record_path(experiment_id))
    record["artifacts"]["weights"]["path"] = "../../../etc/passwd"
    store.record_path(experiment_id).write_text(json.dumps(record))
    with pytest.raises(PinError, match="outside"):
        pins.resolve_model_ref(experiment_id, store=store, use_server=False)


def test_export_resolves_on_a_fresh_clone_with_an_empty_store(store: Store, tmp_path: Path) -> None:
    experiment_id = make_experiment(store, tmp_path)
    package = tmp_path / "repo" / "submodules" / "detection"
    pins.pin_experiment(experiment_id, package / "model_ref.yaml", component="detection", store=store)
    target = bundle.export_experiment(experiment_id, package / "experiments", store=store)
    assert target == package / "experiments" / experiment_id
    with zipfile.ZipFile(target / "clearml_session.zip") as archive:
        # The weights live once in the bundle, outside the session archive.
        assert not [n for n in archive.namelist() if "/artifacts/" in n]
    assert (target / "training_data.json").is_file()
    empty = Store.open(tmp_path / "fresh_clone_store")
    path = pins.resolve_model_ref(package / "model_ref.yaml", store=empty, use_server=False)
    assert path.is_relative_to(target)
    assert torch.load(path, weights_only=True)["w"].sum().item() == 15
    # The session can be rebuilt with its artifacts for `experiment push`.
    location = pins.locate_experiment(experiment_id, search=[package / "experiments"], store=empty)
    folder = bundle.rebuild_session_folder(location, tmp_path / "rebuilt")
    assert (
        folder / f"data/p/t.{experiment_id}/artifacts/weights/local-abc.pt"
    ).read_bytes() == path.read_bytes()


def test_export_refuses_corrupt_weights(store: Store, tmp_path: Path) -> None:
    experiment_id = make_experiment(store, tmp_path)
    (store.experiment_dir(experiment_id) / "artifacts/weights/local-abc.pt").write_bytes(b"x")
    with pytest.raises(PinError, match="sha256"):
        bundle.export_experiment(experiment_id, tmp_path / "out", store=store)
    assert not (tmp_path / "out" / experiment_id).exists()
    assert list((tmp_path / "out").iterdir()) == []  # no staging folder left behind


def test_import_bundle_and_repin(store: Store, tmp_path: Path) -> None:
    experiment_id = make_experiment(store, tmp_path)
    target = bundle.export_experiment(experiment_id, tmp_path / "exports", store=store)
    other = Store.open(tmp_path / "other")
    assert bundle.import_bundle(target, store=other) == experiment_id
    assert pins.resolve_model_ref(experiment_id, store=other, use_server=False).is_file()
    pin_a = tmp_path / "a" / "model_ref.yaml"
    pin_b = tmp_path / "b" / "model_ref.yaml"
    pins.pin_experiment(experiment_id, pin_a, component="detection", store=store)
    pins.write_pin(
        pin_b, pins.ModelPin(component="pose", experiment_id="offline-other", weights_sha256="0" * 64)
    )
    assert bundle.find_pins([tmp_path]) == [pin_a, pin_b]
    assert bundle.repin([pin_a, pin_b], experiment_id, "abc123") == [pin_a]
    assert pins.read_pin(pin_a).experiment_id == "abc123"
    assert pins.read_pin(pin_b).experiment_id == "offline-other"


def test_push_without_server_is_a_clear_error(
    store: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("CLEARML_API_HOST", "CLEARML_CONFIG_FILE", "WALKOUT_CLEARML_USER_CONFIG"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    experiment_id = make_experiment(store, tmp_path)
    with pytest.raises(ExperimentError, match="no ClearML server is configured"):
        bundle.push_experiment(experiment_id, store=store)


def test_cli_pin_resolve_export(
    store: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    monkeypatch.setenv("WALKOUT_HOME", str(store.root))
    monkeypatch.delenv("CLEARML_API_HOST", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    experiment_id = make_experiment(store, tmp_path)
    report = tmp_path / "report.json"
    report.write_text(json.dumps({"schema_version": 1, "metrics": {"AP50": 0.91}}))
    pin_path = tmp_path / "pkg" / "model_ref.yaml"
    assert (
        cli.main(
            [
                "pin",
                experiment_id,
                "--component",
                "detection",
                "--out",
                str(pin_path),
                "--blind-metrics",
                str(report),
            ]
        )
        == 0
    )
    assert pins.read_pin(pin_path).blind_metrics == {"AP50": 0.91}
    assert (
        cli.main(["experiment", "export", experiment_id, "--to", str(tmp_path / "pkg" / "experiments")]) == 0
    )
    capsys.readouterr()
    assert cli.main(["resolve", str(pin_path)]) == 0
    assert Path(capsys.readouterr().out.strip()).is_file()
    assert cli.main(["resolve", "offline-unknown"]) == 2
    assert "offline-unknown" in capsys.readouterr().err
    assert (
        cli.main(
            [
                "pin",
                experiment_id,
                "--component",
                "detection",
                "--out",
                str(pin_path),
                "--blind-metrics",
                "{not json",
            ]
        )
        == 2
    )
    assert cli.main(["experiment", "list"]) == 0
    assert experiment_id in capsys.readouterr().out


def test_an_online_experiment_exports_without_a_session_and_cannot_be_pushed(
    store: Store, tmp_path: Path
) -> None:
    experiment_id = make_experiment(store, tmp_path, experiment_id="abc123", session=False)
    target = bundle.export_experiment(experiment_id, tmp_path / "exports", store=store)
    assert read_json(target / "experiment.json")["clearml_session"] is None
    assert not (target / "clearml_session.zip").exists()
    location = pins.locate_experiment(
        experiment_id, search=[tmp_path / "exports"], store=Store.open(tmp_path / "e"), use_server=False
    )
    with pytest.raises(ExperimentError, match="no ClearML offline session"):
        bundle.rebuild_session_folder(location, tmp_path / "rebuilt")


def test_pins_name_the_dataset_and_explain_prints_the_lineage(
    tmp_path: Path, capsys: pytest.CaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = Store.open(tmp_path / "store")
    train = tmp_path / "sim-train-v3"
    train.mkdir()
    (train / "manifest.json").write_text(json.dumps({"split": "train", "blind": False, "content_hashes": []}))
    exp = Experiment(
        experiment_id="local-lineage", project="walkout/test", name="t", mode="local", params={}, store=store
    )
    exp.record["cloned_from"] = "local-parent"
    exp.set_training_data(train)
    weights = tmp_path / "w.pt"
    weights.write_bytes(b"w")
    exp.upload_weights(weights)
    exp.close()
    pin = pins.pin_experiment(
        "local-lineage", tmp_path / "model_ref.yaml", component="detection", store=store
    )
    # A name and the content hash; never the absolute path of the machine that trained it.
    assert pin.training_dataset == {"id": "sim-train-v3", "hash": sha256_file(train / "manifest.json")}
    assert str(tmp_path) not in (tmp_path / "model_ref.yaml").read_text()
    origin = read_json(store.record_path("local-lineage"))["provenance"]
    assert (
        set(origin) == {"user", "host", "device", "started_at", "commit", "dirty"}
        and origin["device"] == "cpu"
    )
    lines = pins.explain_lineage(tmp_path / "model_ref.yaml", store=store)
    text = "\n".join(lines)
    assert f"trained by {origin['user']} on {origin['host']} (cpu)" in text
    assert "dataset: sim-train-v3 (split train) sha256 " + sha256_file(train / "manifest.json") in text
    assert "cloned from local-parent" in text and "experiment local-parent: not found" in text
    monkeypatch.setenv("WALKOUT_HOME", str(tmp_path / "store"))
    assert cli.main(["resolve", "--explain", str(tmp_path / "model_ref.yaml")]) == 0
    assert "experiment local-lineage" in capsys.readouterr().out


def test_initial_weights_load_once_through_the_packages_check(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """load_initial_weights resolves the reference, hands the verified weights to the package's check
    and wraps an unusable reference in the package's error; initial_weights_for loads a reference once."""
    monkeypatch.setenv("WALKOUT_HOME", str(tmp_path / "home"))
    store = Store.open(tmp_path / "home")
    experiment_id = make_experiment(store, tmp_path, experiment_id="local-src", session=False)

    class PackageConfigError(Exception):
        pass

    seen: list[Path] = []

    def load_state(weights: Path) -> dict:
        seen.append(weights)
        return torch.load(weights, weights_only=True)

    initial = pins.load_initial_weights(
        experiment_id, search=[], key="train.init_from", load_state=load_state, error=PackageConfigError
    )
    assert initial.ref == experiment_id and initial.experiment_id == experiment_id
    assert initial.state_dict["w"].tolist() == [0, 1, 2, 3, 4, 5]
    assert initial.experiment_dir == store.experiment_dir(experiment_id)
    torch.save({"w": torch.zeros(6)}, tmp_path / "other.pt")
    with pytest.raises(PackageConfigError, match=r"train\.init_from='.*other\.pt' is a bare checkpoint"):
        pins.load_initial_weights(
            str(tmp_path / "other.pt"),
            search=[],
            key="train.init_from",
            load_state=load_state,
            error=PackageConfigError,
        )
    with pytest.raises(PackageConfigError, match="local-missing"):
        pins.load_initial_weights(
            "local-missing", search=[], key="train.init_from", load_state=load_state, error=PackageConfigError
        )
    assert len(seen) == 1  # the package's check only ever sees resolved, verified weights

    calls: list[str] = []

    def load(ref: str) -> pins.InitialWeights:
        calls.append(ref)
        return dataclasses.replace(initial, ref=ref)

    assert pins.initial_weights_for("", None, load) is None
    first = pins.initial_weights_for(experiment_id, None, load)
    assert pins.initial_weights_for(experiment_id, first, load) is first  # a clone kept the reference
    assert pins.initial_weights_for("local-other", first, load).ref == "local-other"  # a clone changed it
    assert calls == [experiment_id, "local-other"]
