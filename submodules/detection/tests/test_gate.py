"""The gate's three stages through the CLI: inputs carry no labels, predictions are validated strictly,
the score records the provenance it is given, and SIGTERM cleans up."""

from __future__ import annotations

import json
import math
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from walkout_ci.report import dataset_hash, read_report
from walkout_detection.checkpoint import save_checkpoint
from walkout_detection.cli import main
from walkout_detection.config import load_config
from walkout_detection.model import CenterNet

SHA = "ab" * 32
TINY_MODEL = {"model": {"width": 8, "head_channels": 8, "blocks_stride16": 0}}


def _checkpoint(path: Path, class_names: list[str]) -> Path:
    """An untrained tiny detector: its many low-score detections exercise the whole pipeline."""
    config = load_config(TINY_MODEL)
    torch.manual_seed(0)
    model = CenterNet.from_config(config.model, num_classes=len(class_names))
    return save_checkpoint(path, model=model, config=config, class_names=class_names, experiment_id="exp-1")


@pytest.fixture(scope="module")
def stages(small_val_dataset: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """gate-inputs then gate-predict on the 8-image fixture, with a model that knows an extra class."""
    work = tmp_path_factory.mktemp("gate")
    model = _checkpoint(work / "model.pt", ["person", "sku_red", "sku_blue", "sku_extra"])
    inputs, predictions = work / "inputs", work / "predictions"
    assert main(["gate-inputs", "--data", str(small_val_dataset), "--out", str(inputs)]) == 0
    code = main(
        ["gate-predict", "--model", str(model), "--inputs", str(inputs), "--out", str(predictions),
         "--device", "cpu", "--no-progress"]
    )  # fmt: skip
    assert code == 0
    return {"model": model, "inputs": inputs, "predictions": predictions}


def _score(data: Path, predictions: Path, report_dir: Path, *extra: str) -> int:
    return main(
        ["gate-score", "--data", str(data), "--predictions", str(predictions), "--report-dir",
         str(report_dir), "--model-ref", "candidate", "--weights-sha256", SHA, *extra]
    )  # fmt: skip


def test_inputs_hold_images_and_an_index_but_no_annotations(
    small_val_dataset: Path, stages: dict[str, Path]
) -> None:
    inputs = stages["inputs"]
    files = sorted(str(path.relative_to(inputs)) for path in inputs.rglob("*") if path.is_file())
    originals = sorted((small_val_dataset / "coco" / "images").iterdir())
    assert files == sorted(["inputs.json"] + [f"images/{path.name}" for path in originals])
    for original in originals:
        assert (inputs / "images" / original.name).read_bytes() == original.read_bytes()
    index = json.loads((inputs / "inputs.json").read_text())
    assert index["format"] == "walkout-detection-inputs" and index["version"] == 1
    assert index["class_names"] == ["person", "sku_red", "sku_blue"]
    assert index["images"][0] == {
        "file_name": "synthetic_000001.png",
        "path": "images/synthetic_000001.png",
        "width": 160,
        "height": 128,
    }
    text = (inputs / "inputs.json").read_text()
    for label_field in ("annotations", "bbox", "category_id", "iscrowd", "area"):
        assert label_field not in text


def test_inputs_refuse_a_folder_that_is_not_empty(
    small_val_dataset: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "stale.json").write_text("{}")
    assert main(["gate-inputs", "--data", str(small_val_dataset), "--out", str(tmp_path)]) == 2
    assert f"inputs folder {tmp_path} is not empty" in capsys.readouterr().err


def test_predictions_follow_the_documented_format(stages: dict[str, Path]) -> None:
    payload = json.loads((stages["predictions"] / "predictions.json").read_text())
    assert payload["format"] == "walkout-detection-predictions" and payload["version"] == 1
    assert payload["score_threshold"] == 0.3
    names = [entry["file_name"] for entry in payload["predictions"]]
    assert names == [f"synthetic_{index:06d}.png" for index in range(1, 9)]
    detections = [d for entry in payload["predictions"] for d in entry["detections"]]
    assert detections and all(set(d) == {"bbox", "score", "category"} for d in detections)
    # The model's fourth class is not a dataset category: it cannot be scored, so it is left out.
    assert {d["category"] for d in detections} <= {"person", "sku_red", "sku_blue"}


def test_predict_is_deterministic(stages: dict[str, Path], tmp_path: Path) -> None:
    code = main(
        ["gate-predict", "--model", str(stages["model"]), "--inputs", str(stages["inputs"]),
         "--out", str(tmp_path), "--device", "cpu", "--no-progress"]
    )  # fmt: skip
    assert code == 0
    first = json.loads((stages["predictions"] / "predictions.json").read_text())
    second = json.loads((tmp_path / "predictions.json").read_text())
    assert first["predictions"] == second["predictions"]


def test_predict_refuses_a_model_without_a_dataset_class(
    stages: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    model = _checkpoint(tmp_path / "small.pt", ["person", "sku_red"])
    code = main(
        ["gate-predict", "--model", str(model), "--inputs", str(stages["inputs"]),
         "--out", str(tmp_path / "p"), "--device", "cpu"]
    )  # fmt: skip
    assert code == 2
    assert "categories ['sku_blue'] that the model does not know" in capsys.readouterr().err
    assert not (tmp_path / "p" / "predictions.json").exists()


def test_score_records_the_given_provenance(
    small_val_dataset: Path, stages: dict[str, Path], tmp_path: Path
) -> None:
    assert _score(small_val_dataset, stages["predictions"], tmp_path / "a", "--experiment-id", "",
                  "--code-commit", "") == 0  # fmt: skip
    report = read_report(tmp_path / "a" / "report.json")
    assert report["model"] == {"ref": "candidate", "weights_sha256": SHA}  # as given, not recomputed
    assert report["experiment_id"] is None and report["code_commit"] is None
    assert report["dataset"]["hash"] == dataset_hash(small_val_dataset)
    assert len(report["per_sample"]) == 8
    code = _score(
        small_val_dataset, stages["predictions"] / "predictions.json", tmp_path / "b",
        "--experiment-id", "exp-9", "--code-commit", "c0ffee",
    )  # fmt: skip
    assert code == 0
    again = read_report(tmp_path / "b" / "report.json")
    assert again["experiment_id"] == "exp-9" and again["code_commit"] == "c0ffee"
    assert again["metrics"] == report["metrics"] and again["per_sample"] == report["per_sample"]


def test_score_refuses_a_malformed_weights_sha256(
    small_val_dataset: Path, stages: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(
        ["gate-score", "--data", str(small_val_dataset), "--predictions", str(stages["predictions"]),
         "--report-dir", str(tmp_path), "--model-ref", "m", "--weights-sha256", "ABC"]
    )  # fmt: skip
    assert code == 2
    assert "--weights-sha256 must be 64 lowercase hex digits" in capsys.readouterr().err


def _first_detection(payload: dict) -> dict:
    return next(d for entry in payload["predictions"] for d in entry["detections"])


def _set_first(field: str, value) -> object:
    return lambda payload: _first_detection(payload).__setitem__(field, value)


def _set_bbox(index: int, value: float) -> object:
    return lambda payload: _first_detection(payload)["bbox"].__setitem__(index, value)


BAD_PREDICTIONS = {
    "nan score": (_set_first("score", math.nan), r"detections\[\d+\]: field 'score' must be a finite"),
    "score above 1": (
        _set_first("score", 1.5),
        r"field 'score' must be a finite number in \[0, 1\]; got 1.5",
    ),
    "infinite bbox": (_set_bbox(0, math.inf), r"field 'bbox' holds NaN or infinity"),
    "nan bbox": (_set_bbox(1, math.nan), r"field 'bbox' holds NaN or infinity"),
    "negative width": (_set_bbox(2, -1.0), r"field 'bbox' has a negative width or height"),
    "negative height": (_set_bbox(3, -0.5), r"field 'bbox' has a negative width or height"),
    "bbox of 3": (_set_first("bbox", [1, 2, 3]), r"field 'bbox' must be \[x, y, w, h\] of 4 numbers"),
    "bool in bbox": (_set_bbox(0, True), r"field 'bbox' must be \[x, y, w, h\] of 4 numbers"),
    "string score": (_set_first("score", "0.5"), r"field 'score' must be a finite number"),
    "unknown category": (
        _set_first("category", "sku_extra"),
        r"field 'category' 'sku_extra' is not a class of the dataset",
    ),
    "unknown detection field": (_set_first("label", 1), r"has unknown field 'label'"),
    "unknown image": (
        lambda payload: payload["predictions"][0].update(file_name="nope.png"),
        r"predictions\[0\]: field 'file_name' 'nope.png' is not an image of the dataset",
    ),
    "duplicate image": (
        lambda payload: payload["predictions"][1].update(file_name=payload["predictions"][0]["file_name"]),
        r"predictions\[1\]: field 'file_name' 'synthetic_000001.png' appears twice",
    ),
    "missing image": (
        lambda payload: payload["predictions"].pop(3),
        r"field 'predictions' has no entry for 1 image\(s\): synthetic_000004.png",
    ),
    "detections not a list": (
        lambda payload: payload["predictions"][0].update(detections={}),
        r"predictions\[0\] \(synthetic_000001.png\): field 'detections' must be a list",
    ),
    "wrong format": (
        lambda payload: payload.update(format="walkout-pose-predictions"),
        r"field 'format' is 'walkout-pose-predictions'; expected 'walkout-detection-predictions'",
    ),
    "wrong version": (
        lambda payload: payload.update(version=2),
        r"field 'version' is 2; this package reads 1",
    ),
    "missing threshold": (lambda payload: payload.pop("score_threshold"), r"lacks field 'score_threshold'"),
    "unknown top-level field": (lambda payload: payload.update(labels=[]), r"has unknown field 'labels'"),
    "negative inference time": (
        lambda payload: payload["timings"].update(inference_s=-1),
        r"field 'timings.inference_s' must be a finite number >= 0",
    ),
}


@pytest.mark.parametrize("case", sorted(BAD_PREDICTIONS))
def test_score_rejects_bad_predictions_naming_the_field(
    case: str,
    small_val_dataset: Path,
    stages: dict[str, Path],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    edit, message = BAD_PREDICTIONS[case]
    payload = json.loads((stages["predictions"] / "predictions.json").read_text())
    edit(payload)
    bad = tmp_path / "predictions.json"
    bad.write_text(json.dumps(payload))  # json writes NaN / Infinity literals, as a careless writer would
    assert _score(small_val_dataset, bad, tmp_path / "report") == 2
    err = capsys.readouterr().err
    assert f"predictions file {bad}" in err
    assert re.search(message, err), err
    assert len(err.strip().splitlines()) == 1
    assert not (tmp_path / "report" / "report.json").exists()


def test_score_rejects_duplicate_keys_and_bad_json(
    small_val_dataset: Path, stages: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    text = (stages["predictions"] / "predictions.json").read_text()
    bad = tmp_path / "predictions.json"
    bad.write_text(text.replace('"version": 1,', '"version": 1, "version": 1,', 1))
    assert _score(small_val_dataset, bad, tmp_path / "r") == 2
    assert "key 'version' appears twice" in capsys.readouterr().err
    bad.write_text(text[:100])
    assert _score(small_val_dataset, bad, tmp_path / "r") == 2
    assert f"{bad} is not valid JSON" in capsys.readouterr().err
    assert _score(small_val_dataset, tmp_path / "absent", tmp_path / "r") == 2
    assert "absent does not exist" in capsys.readouterr().err


def test_predict_reads_nothing_outside_the_inputs_folder(
    stages: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    inputs = tmp_path / "inputs"
    (inputs / "images").mkdir(parents=True)
    index = json.loads((stages["inputs"] / "inputs.json").read_text())
    index["images"] = index["images"][:1]
    index["images"][0]["path"] = "../elsewhere.png"
    (inputs / "inputs.json").write_text(json.dumps(index))
    code = main(
        ["gate-predict", "--model", str(stages["model"]), "--inputs", str(inputs),
         "--out", str(tmp_path / "p"), "--device", "cpu"]
    )  # fmt: skip
    assert code == 2
    assert "images[0]: field 'path' must be a relative path inside the folder" in capsys.readouterr().err


SLOW_EVALUATE = """
import sys, time
from pathlib import Path
import walkout_detection.gate as gate

def slow_predict(*args, **kwargs):
    Path(sys.argv[1]).write_text("predicting")  # the temp folder exists by now
    time.sleep(120)

gate.predict_inputs = slow_predict
from walkout_detection.cli import main
sys.exit(main(sys.argv[2:]))
"""


def test_sigterm_during_evaluate_removes_the_temp_folder(
    small_val_dataset: Path, stages: dict[str, Path], tmp_path: Path
) -> None:
    temp = tmp_path / "tmp"
    temp.mkdir()
    marker = tmp_path / "started"
    env = {**os.environ, "TMPDIR": str(temp), "OMP_NUM_THREADS": "1"}
    process = subprocess.Popen(
        [sys.executable, "-c", SLOW_EVALUATE, str(marker), "evaluate", "--model", str(stages["model"]),
         "--data", str(small_val_dataset), "--report-dir", str(tmp_path / "report"), "--device", "cpu",
         "--no-progress"],
        env=env, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 120
        while not marker.exists():
            assert process.poll() is None, process.stderr.read()
            assert time.monotonic() < deadline, "evaluate never reached prediction"
            time.sleep(0.05)
        assert any(path.name.startswith("walkout-detection-evaluate-") for path in temp.iterdir())
        process.send_signal(signal.SIGTERM)
        _, err = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert process.returncode == 128 + signal.SIGTERM
    assert err.strip() == "walkout-detection evaluate: stopped by SIGTERM; cleaned up"
    assert list(temp.iterdir()) == []
    assert not (tmp_path / "report" / "report.json").exists()


def test_sigterm_during_train_exits_143_and_marks_the_experiment_failed(
    small_dataset: Path, tmp_path: Path, walkout_home: Path
) -> None:
    """A training run stopped mid-way: exit 128 + 15, no half-written checkpoint or temp file, and the
    experiment recorded as failed (the stop unwinds through Ignite and train's cleanup)."""
    temp, output = tmp_path / "tmp", tmp_path / "run"
    temp.mkdir()
    # torch keeps a compile cache under TMPDIR by default: a cache, not this run's temp files.
    env = {
        **os.environ,
        "TMPDIR": str(temp),
        "OMP_NUM_THREADS": "1",
        "TORCHINDUCTOR_CACHE_DIR": str(tmp_path / "c"),
    }
    process = subprocess.Popen(
        [sys.executable, "-m", "walkout_detection.cli", "train", "--data", str(small_dataset), "--output",
         str(output), "--no-progress", "--set", "model.width=8", "--set", "model.head_channels=8",
         "--set", "model.blocks_stride16=0", "--set", "train.epochs=10000", "--set", "train.num_threads=1",
         "--set", "train.device=cpu"],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 180
        while not (output / "last.pt").exists():  # one epoch trained and validated
            assert process.poll() is None, process.stderr.read()
            assert time.monotonic() < deadline, "training never finished an epoch"
            time.sleep(0.05)
        process.send_signal(signal.SIGTERM)
        _, err = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert process.returncode == 128 + signal.SIGTERM
    assert err.strip().splitlines()[-1] == "walkout-detection train: stopped by SIGTERM; cleaned up"
    assert not [path for path in output.rglob("*") if path.name.endswith(".tmp")]
    assert list(temp.iterdir()) == []
    records = [json.loads(path.read_text()) for path in walkout_home.glob("experiments/*/experiment.json")]
    assert [record["status"] for record in records] == ["failed"]
