"""The gate's three stages through the real CLI (in-process): gate-inputs -> gate-predict -> gate-score."""

import json
import re
import shutil
from pathlib import Path

import numpy as np
import pytest

from walkout_ci.gitrepo import code_commit
from walkout_ci.report import dataset_hash, read_report, sha256_of_file
from walkout_tracking.cli import main
from walkout_tracking.config import load_config
from walkout_tracking.model import build_model, save_checkpoint
from walkout_tracking.motchallenge import read_mot_file

SHA = "ab" * 32


@pytest.fixture(scope="module")
def tiny_checkpoint(tmp_path_factory) -> Path:
    """An untrained appearance model: enough to exercise frames, crops and embeddings."""
    config = load_config({"model": {"channels": [4], "embedding_dim": 4, "crop_height": 16, "crop_width": 8}})
    path = tmp_path_factory.mktemp("model") / "tiny.pt"
    return save_checkpoint(path, build_model(config.model), config, {})


@pytest.fixture(scope="module")
def stages(sim_train, tmp_path_factory) -> dict[str, Path]:
    """gate-inputs and a motion-only gate-predict on the tiny export, run once for the module."""
    root = tmp_path_factory.mktemp("stages")
    inputs, predictions = root / "inputs", root / "predictions"
    assert main(["gate-inputs", "--data", str(sim_train), "--out", str(inputs)]) == 0
    argv = ["gate-predict", "--model", "motion-only", "--inputs", str(inputs)]
    assert main([*argv, "--out", str(predictions), "--quiet"]) == 0
    return {"inputs": inputs, "predictions": predictions}


def _score(data: Path, predictions: Path, report_dir: Path, **overrides: str) -> int:
    options = {
        "--model-ref": "motion-only",
        "--weights-sha256": SHA,
        "--experiment-id": "",
        "--code-commit": "",
        **overrides,
    }
    argv = ["gate-score", "--data", str(data), "--predictions", str(predictions)]
    argv += ["--report-dir", str(report_dir)]
    for key, value in options.items():
        argv += [key, value]
    return main(argv)


def test_three_stages_give_exactly_what_evaluate_gives(sim_train, tiny_checkpoint, tmp_path):
    evaluated = tmp_path / "evaluate"
    argv = ["evaluate", "--model", str(tiny_checkpoint), "--data", str(sim_train)]
    assert main([*argv, "--report-dir", str(evaluated), "--quiet"]) == 0

    inputs, predictions, staged = tmp_path / "inputs", tmp_path / "predictions", tmp_path / "staged"
    assert main(["gate-inputs", "--data", str(sim_train), "--out", str(inputs)]) == 0
    argv = ["gate-predict", "--model", str(tiny_checkpoint), "--inputs", str(inputs)]
    assert main([*argv, "--out", str(predictions), "--quiet"]) == 0
    commit = code_commit(Path(__file__).parent) or ""
    sha = sha256_of_file(tiny_checkpoint)
    overrides = {"--model-ref": str(tiny_checkpoint), "--weights-sha256": sha, "--code-commit": commit}
    assert _score(sim_train, predictions, staged, **overrides) == 0

    a, b = read_report(evaluated), read_report(staged)
    timing_free = ("frames_per_s",)
    assert {k: v for k, v in a["metrics"].items() if k not in timing_free} == {
        k: v for k, v in b["metrics"].items() if k not in timing_free
    }
    for key in ("per_class", "per_sample", "failures", "model", "dataset", "experiment_id", "code_commit"):
        assert a[key] == b[key], key
    assert a["extra"] == b["extra"]
    assert a["extra"]["appearance"] is True
    assert a["model"]["weights_sha256"] == sha
    for name in ("train_0000", "train_0001"):
        assert (evaluated / "results" / f"{name}.txt").read_text() == (
            staged / "results" / f"{name}.txt"
        ).read_text()


def test_gate_inputs_hold_frames_and_anonymous_detections_only(sim_train, stages):
    inputs = stages["inputs"]
    files = sorted(p.relative_to(inputs).as_posix() for p in inputs.rglob("*") if p.is_file())
    assert files == [
        "inputs.json",
        "train_0000/det.txt",
        "train_0000/video.avi",
        "train_0001/det.txt",
        "train_0001/video.avi",
    ]
    index = json.loads((inputs / "inputs.json").read_text())
    assert index["format"] == "walkout-tracking-inputs" and index["version"] == 1
    assert [s["num_frames"] for s in index["sequences"]] == [40, 40]
    for name in ("train_0000", "train_0001"):
        det = read_mot_file(inputs / name / "det.txt", num_frames=40)
        gt = read_mot_file(sim_train / "videos" / name / "gt" / "gt.txt", min_confidence=1)
        assert set(det.ids.tolist()) == {-1}  # no identities
        assert 0 < len(det) < len(gt)  # noisy detections (some dropped), not the gt rows
        assert (det.boxes != np.round(det.boxes)).any(axis=1).all()  # every box jittered
        # Within a frame, boxes are in position order, not in gt track-id order.
        for frame in np.unique(det.frames):
            xs = det.boxes[det.frames == frame, 0]
            assert (np.diff(xs) >= 0).all()
    text = "".join(p.read_text() for p in inputs.rglob("*.txt")) + (inputs / "inputs.json").read_text()
    assert "gt.txt" not in text and "track_id" not in text


def test_gate_predict_reads_nothing_but_the_inputs(sim_train, stages, tmp_path):
    """The dataset can be gone: prediction needs only the inputs folder."""
    inputs = tmp_path / "inputs"
    shutil.copytree(stages["inputs"], inputs)
    argv = ["gate-predict", "--model", "motion-only", "--inputs", str(inputs), "--out", str(tmp_path / "p")]
    assert main([*argv, "--quiet"]) == 0
    again = json.loads((tmp_path / "p" / "predictions.json").read_text())
    original = json.loads((stages["predictions"] / "predictions.json").read_text())
    assert again["sequences"] == original["sequences"]  # deterministic


def test_gate_score_writes_the_report_fields_it_is_given(sim_train, stages, tmp_path):
    report_dir = tmp_path / "report"
    assert _score(sim_train, stages["predictions"], report_dir, **{"--code-commit": "c0ffee"}) == 0
    report = read_report(report_dir)
    assert report["model"] == {"ref": "motion-only", "weights_sha256": SHA}
    assert report["experiment_id"] is None and report["code_commit"] == "c0ffee"
    assert report["dataset"]["hash"] == dataset_hash(sim_train)
    assert {s["id"] for s in report["per_sample"]} == {"train_0000", "train_0001"}


def test_gate_inputs_refuse_a_folder_that_is_not_empty(sim_train, tmp_path, capsys):
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "old.txt").write_text("x")
    assert main(["gate-inputs", "--data", str(sim_train), "--out", str(tmp_path / "out")]) == 2
    assert "is not empty" in capsys.readouterr().err


def test_gate_score_refuses_a_bad_weights_digest(sim_train, stages, tmp_path, capsys):
    assert _score(sim_train, stages["predictions"], tmp_path / "r", **{"--weights-sha256": "abc"}) == 2
    assert "--weights-sha256" in capsys.readouterr().err
    assert not (tmp_path / "r" / "report.json").exists()


def _first_row(doc):
    return doc["sequences"]["train_0000"][0]


def _set(field, value):
    def change(doc):
        _first_row(doc)[field] = value

    return change


def _duplicate(doc):
    rows = doc["sequences"]["train_0000"]
    rows.append(dict(rows[0]))


def _rename(doc):
    doc["sequences"]["train_9999"] = doc["sequences"].pop("train_0001")


def _drop(doc):
    del doc["sequences"]["train_0001"]


def _extra_field(doc):
    _first_row(doc)["track"] = 3


def _key(key, value):
    def change(doc):
        doc[key] = value

    return change


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (_set("w", float("nan")), r"sequences\['train_0000'\]\[0\]\.w: nan; must be a finite number"),
        (_set("x", float("inf")), r"\[0\]\.x: inf; must be a finite number"),
        (_set("h", -2.0), r"\[0\]\.h: -2\.0 is negative"),
        (_set("frame", 41), r"\[0\]\.frame: 41; must be an integer in 1\.\.40"),
        (_set("frame", 0), r"\[0\]\.frame: 0; must be an integer in 1\.\.40"),
        (_set("frame", 1.0), r"\[0\]\.frame: 1\.0; must be an integer"),
        (_set("id", True), r"\[0\]\.id: True; must be an integer >= 1"),
        (_set("y", "12"), r"\[0\]\.y: '12'; must be a finite number"),
        (_set("score", 1.5), r"\[0\]\.score: 1\.5; must be in \[0, 1\]"),
        (_extra_field, r"\[0\]: missing fields \[\], unknown fields \['track'\]"),
        (
            _duplicate,
            r"sequences\['train_0000'\]\[\d+\]: duplicate \(frame, id\) = \(1, \d+\), already at \[0\]",
        ),
        (_rename, r"sequences: missing \['train_0001'\], unknown \['train_9999'\]"),
        (_drop, r"sequences: missing \['train_0001'\], unknown \[\]"),
        (_key("format", "walkout-detection-predictions"), r"format 'walkout-detection-predictions'"),
        (_key("version", 2), r"version 2; expected format 'walkout-tracking-predictions' version 1"),
        (_key("scores", {}), r"unknown keys \['scores'\]"),
    ],
)
def test_gate_score_rejects_bad_predictions_naming_the_field(
    sim_train, stages, tmp_path, capsys, change, message
):
    doc = json.loads((stages["predictions"] / "predictions.json").read_text())
    assert doc["sequences"]["train_0000"][0]["frame"] == 1
    change(doc)
    bad = tmp_path / "predictions.json"
    bad.write_text(json.dumps(doc))  # json writes NaN / Infinity literals, as a careless writer would
    report_dir = tmp_path / "report"
    assert _score(sim_train, bad, report_dir) == 2
    err = capsys.readouterr().err
    assert str(bad) in err
    assert len(re.findall(message, err)) == 1, err
    assert not (report_dir / "report.json").exists()


def test_gate_score_on_missing_predictions_is_an_error(sim_train, tmp_path, capsys):
    assert _score(sim_train, tmp_path, tmp_path / "r") == 2
    assert "predictions.json does not exist" in capsys.readouterr().err
