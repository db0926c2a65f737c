"""The gate's QC stages: inputs without ground truth, predictions, strict scoring equal to `walkout qc`."""

from __future__ import annotations

import copy
import json
import shutil
from pathlib import Path

import pytest

from walkout.cli import main
from walkout_ci.report import dataset_hash, read_report

SHA = "ab" * 32


def _split(tmp_path: Path, rendered: dict[str, Path], names: list[str]) -> Path:
    """A split folder (with a manifest.json and the base layout) holding copies of rendered scenarios."""
    root = tmp_path / "split"
    for name in names:
        shutil.copytree(rendered[name] / "videos" / name, root / "videos" / name)
    first = rendered[names[0]]
    shutil.copy(first / "manifest.json", root / "manifest.json")
    shutil.copy(first / "layout.yaml", root / "layout.yaml")
    return root


def _score_args(split: Path, predictions: Path, report_dir: Path, **overrides: str) -> list[str]:
    values = {
        "--data": str(split),
        "--predictions": str(predictions),
        "--report-dir": str(report_dir),
        "--model-ref": "model_refs.yaml",
        "--weights-sha256": SHA,
        "--experiment-id": "",
        "--code-commit": "c0ffee",
        **overrides,
    }
    return ["gate-score", *[item for pair in values.items() for item in pair]]


@pytest.fixture(scope="module")
def staged(tmp_path_factory, rendered_scenarios) -> dict[str, Path]:
    """A two-video split (one receipt made wrong) run once through gate-inputs and gate-predict --oracle."""
    tmp_path = tmp_path_factory.mktemp("staged")
    split = _split(tmp_path, rendered_scenarios, ["single_pick", "pick_then_put_back"])
    receipts_path = split / "videos" / "single_pick" / "receipts.json"
    truth = json.loads(receipts_path.read_text())
    shopper = next(iter(truth))
    truth[shopper] = {**truth[shopper], "truffle": 1}  # a wrong receipt: a failure with a contact sheet
    receipts_path.write_text(json.dumps(truth))
    inputs, predictions = tmp_path / "inputs", tmp_path / "predictions"
    assert main(["gate-inputs", "--data", str(split), "--out", str(inputs)]) == 0
    predict = ["gate-predict", "--oracle", "--data", str(split), "--inputs", str(inputs)]
    assert main([*predict, "--out", str(predictions), "--jobs", "1"]) == 0
    return {"split": split, "inputs": inputs, "predictions": predictions}


def test_inputs_hold_only_videos_layouts_and_the_index(staged):
    inputs = staged["inputs"]
    files = sorted(str(p.relative_to(inputs)) for p in inputs.rglob("*") if p.is_file())
    assert files == [
        "inputs.json",
        "layout.yaml",
        "videos/pick_then_put_back/layout.yaml",
        "videos/pick_then_put_back/video.avi",
        "videos/single_pick/layout.yaml",
        "videos/single_pick/video.avi",
    ]
    index = json.loads((inputs / "inputs.json").read_text())
    assert index["format"] == "walkout-app-inputs" and index["version"] == 1
    assert [v["name"] for v in index["videos"]] == ["pick_then_put_back", "single_pick"]
    assert all(v["fps"] == 10.0 and v["frames"] > 0 for v in index["videos"])


def test_three_stages_equal_walkout_qc(staged, tmp_path):
    split = staged["split"]
    qc_dir, staged_dir = tmp_path / "qc", tmp_path / "staged"
    assert main(["qc", "--oracle", "--videos", str(split), "--report-dir", str(qc_dir), "--jobs", "1"]) == 0
    assert main(_score_args(split, staged["predictions"], staged_dir)) == 0
    qc, gate = read_report(qc_dir), read_report(staged_dir)
    # frames_per_s is a measured speed; everything else must be identical
    qc_metrics = {k: v for k, v in qc["metrics"].items() if k != "frames_per_s"}
    assert qc_metrics == {k: v for k, v in gate["metrics"].items() if k != "frames_per_s"}
    assert qc["metrics"]["receipt_exact_match"] == 0.5  # the made-wrong receipt is judged
    assert qc["per_sample"] == gate["per_sample"]
    assert qc["per_class"] == gate["per_class"]
    assert qc["failures"] == gate["failures"] and len(gate["failures"]) == 1
    assert (staged_dir / gate["failures"][0]["image"]).is_file()
    assert gate["model"] == {"ref": "model_refs.yaml", "weights_sha256": SHA}
    assert gate["experiment_id"] is None and gate["code_commit"] == "c0ffee"
    assert gate["dataset"]["hash"] == dataset_hash(split) == qc["dataset"]["hash"]


def test_oracle_predict_needs_data_and_models_refuse_it(staged, tmp_path, capsys):
    inputs = str(staged["inputs"])
    assert main(["gate-predict", "--oracle", "--inputs", inputs, "--out", str(tmp_path / "p")]) == 2
    assert "--data" in capsys.readouterr().err
    models = ["gate-predict", "--model", "model_refs.yaml", "--data", str(staged["split"])]
    assert main([*models, "--inputs", inputs, "--out", str(tmp_path / "p")]) == 2
    assert "must not get it" in capsys.readouterr().err


def test_gate_inputs_refuses_a_folder_holding_files(staged, tmp_path, capsys):
    out = tmp_path / "inputs"
    out.mkdir()
    (out / "stale.txt").write_text("x")
    assert main(["gate-inputs", "--data", str(staged["split"]), "--out", str(out)]) == 2
    assert "must be an empty folder" in capsys.readouterr().err


def _video(document: dict, name: str) -> dict:
    return next(v for v in document["videos"] if v["video"] == name)


def _first_box(document: dict) -> list:
    video = _video(document, "single_pick")
    boxes = next(iter(video["trajectories"].values()))
    return next(iter(boxes.values()))


def _set_first_event(document: dict, key: str, value) -> None:
    _video(document, "pick_then_put_back")["events"][0][key] = value


BREAKAGES = {
    "wrong format": (lambda d: d.update(format="walkout-detection-predictions"), "format/version"),
    "wrong version": (lambda d: d.update(version=2), "format/version"),
    "unknown video": (lambda d: _video(d, "single_pick").update(video="nope"), "unknown video 'nope'"),
    "missing video": (lambda d: d["videos"].pop(0), "no predictions for video(s)"),
    "duplicate video": (lambda d: d["videos"].append(copy.deepcopy(d["videos"][0])), "listed twice"),
    "NaN in a box": (lambda d: _first_box(d).__setitem__(0, float("nan")), "must be finite"),
    "negative box size": (lambda d: _first_box(d).__setitem__(2, -50.0), "negative box size"),
    "negative event frame": (lambda d: _set_first_event(d, "frame", -3), ".events[0].frame"),
    "event frame as text": (lambda d: _set_first_event(d, "frame", "12"), "must be an integer"),
    "unknown event sku": (lambda d: _set_first_event(d, "sku", "caviar"), "unknown SKU 'caviar'"),
    "unknown event key": (lambda d: _set_first_event(d, "secret", 1), "unknown key(s) ['secret']"),
    "unknown receipt sku": (
        lambda d: next(iter(_video(d, "single_pick")["receipts"].values())).update(caviar=1),
        "unknown SKU 'caviar'",
    ),
    "frames short": (lambda d: _video(d, "single_pick").update(frames=3), "frames processed"),
}


@pytest.mark.parametrize("breakage", sorted(BREAKAGES))
def test_gate_score_refuses_bad_predictions_naming_the_field(staged, tmp_path, capsys, breakage):
    change, expected = BREAKAGES[breakage]
    document = json.loads((staged["predictions"] / "predictions.json").read_text())
    change(document)
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "predictions.json").write_text(json.dumps(document))  # NaN written as the JSON extension
    report_dir = tmp_path / "report"
    assert main(_score_args(staged["split"], bad, report_dir)) == 2
    error = capsys.readouterr().err
    assert "predictions.json" in error and expected in error, error
    assert not (report_dir / "report.json").exists()


def test_gate_score_refuses_duplicate_json_keys(staged, tmp_path, capsys):
    text = (staged["predictions"] / "predictions.json").read_text()
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "predictions.json").write_text(
        text.replace('"mode": "oracle"', '"mode": "oracle", "mode": "models"')
    )
    assert main(_score_args(staged["split"], bad, tmp_path / "report")) == 2
    assert "duplicate key 'mode'" in capsys.readouterr().err


def test_gate_score_refuses_a_bad_weights_sha256(staged, tmp_path, capsys):
    args = _score_args(staged["split"], staged["predictions"], tmp_path / "r", **{"--weights-sha256": "ABC"})
    assert main(args) == 2
    assert "--weights-sha256" in capsys.readouterr().err
