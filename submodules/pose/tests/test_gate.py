"""The gate's three stages through the real CLI: inputs carry no labels, predict needs nothing else,
score equals `evaluate` exactly and refuses malformed predictions with exit 2."""

from __future__ import annotations

import copy
import json
import re
import shutil
import sys
from pathlib import Path

import pytest
import torch

from walkout_ci.gate_config import load_gate_config
from walkout_ci.report import dataset_hash, read_report, sha256_of_file
from walkout_pose.cli import main
from walkout_pose.config import EvaluateConfig, load_config
from walkout_pose.data import load_keypoints_dataset
from walkout_pose.evaluate import compute_metrics, predict_persons
from walkout_pose.model import build_model, load_checkpoint, save_checkpoint

TINY = {"model": {"input_height": 32, "input_width": 32, "width": 8, "deconv_channels": 8}}
INPUT_KEYS = {"format", "version", "keypoint_names", "frames", "image", "persons", "id", "box_xyxy"}


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    """An untrained tiny model: poor but deterministic keypoints, so per-person scores vary."""
    torch.manual_seed(0)
    config = load_config(TINY)
    return save_checkpoint(
        tmp_path_factory.mktemp("model") / "model.pt", build_model(config.model), config=config
    )


@pytest.fixture(scope="module")
def staged(tmp_path_factory, tiny_val_split, checkpoint):
    """gate-inputs then gate-predict on the validation split: (inputs folder, predictions folder)."""
    root = tmp_path_factory.mktemp("staged")
    assert main(["gate-inputs", "--data", str(tiny_val_split), "--out", str(root / "inputs")]) == 0
    predict = ["gate-predict", "--model", str(checkpoint), "--inputs", str(root / "inputs")]
    assert main([*predict, "--out", str(root / "predictions"), "--no-progress"]) == 0
    return root / "inputs", root / "predictions"


def score_args(data, predictions, report_dir, checkpoint, *, experiment_id="", commit="abc123"):
    return [
        *("gate-score", "--data", str(data), "--predictions", str(predictions)),
        *("--report-dir", str(report_dir), "--model-ref", "candidate"),
        *("--weights-sha256", sha256_of_file(checkpoint), "--experiment-id", experiment_id),
        *("--code-commit", commit),
    ]


def keys_of(value) -> set[str]:
    """Every object key anywhere in a JSON value."""
    if isinstance(value, dict):
        return set(value) | set().union(*(keys_of(item) for item in value.values()))
    if isinstance(value, list):
        return set().union(*(keys_of(item) for item in value)) if value else set()
    return set()


def test_three_stages_equal_evaluate_exactly(staged, tiny_val_split, checkpoint, tmp_path):
    _, predictions = staged
    assert main(score_args(tiny_val_split, predictions, tmp_path / "staged", checkpoint)) == 0
    command = ["evaluate", "--model", str(checkpoint), "--data", str(tiny_val_split)]
    assert main([*command, "--report-dir", str(tmp_path / "evaluate"), "--no-progress"]) == 0
    staged_report = read_report(tmp_path / "staged")
    evaluated = read_report(tmp_path / "evaluate")
    for key in ("metrics", "per_class", "per_sample", "failures", "dataset"):
        assert staged_report[key] == evaluated[key], key
    assert len(staged_report["per_sample"]) == 12
    assert len({sample["score"] for sample in staged_report["per_sample"]}) > 1
    # The gate's values go in as given; nothing is recomputed from a model.
    assert staged_report["model"] == {"ref": "candidate", "weights_sha256": sha256_of_file(checkpoint)}
    assert staged_report["experiment_id"] is None and staged_report["code_commit"] == "abc123"
    assert staged_report["dataset"]["hash"] == dataset_hash(tiny_val_split)
    for failure in staged_report["failures"]:
        if failure["image"]:
            assert (tmp_path / "staged" / failure["image"]).is_file()
    # ...and the files route gives exactly the in-memory figures (training's validation path).
    dataset = load_keypoints_dataset(tiny_val_split)
    persons = list(dataset.persons)
    model, _ = load_checkpoint(checkpoint)
    with torch.inference_mode():
        direct, _ = predict_persons(model, dataset, persons, batch_size=32, progress=False)
    assert compute_metrics(dataset, persons, direct, EvaluateConfig())["metrics"] == evaluated["metrics"]


def test_gate_inputs_hold_frames_and_boxes_but_no_labels(staged, tiny_val_split):
    inputs, _ = staged
    files = sorted(path.relative_to(inputs).as_posix() for path in inputs.rglob("*") if path.is_file())
    index = json.loads((inputs / "inputs.json").read_text())
    assert files == sorted(["inputs.json", *(frame["image"] for frame in index["frames"])])
    assert keys_of(index) <= INPUT_KEYS  # no keypoints, visibilities, areas, num_keypoints, track ids
    assert "keypoints" not in (inputs / "inputs.json").read_text()
    dataset = load_keypoints_dataset(tiny_val_split)
    boxes = {person.sample_id: person.box_xyxy.tolist() for person in dataset.persons}
    listed = {person["id"]: person["box_xyxy"] for frame in index["frames"] for person in frame["persons"]}
    assert listed == boxes
    for frame in index["frames"]:  # the very bytes: prediction decodes the pixels evaluation would
        original = tiny_val_split / "coco" / frame["image"]
        assert (inputs / frame["image"]).read_bytes() == original.read_bytes()


def test_gate_predict_needs_nothing_but_the_inputs(tiny_val_split, checkpoint, tmp_path, staged):
    split = tmp_path / "split"
    shutil.copytree(tiny_val_split, split)
    assert main(["gate-inputs", "--data", str(split), "--out", str(tmp_path / "inputs")]) == 0
    shutil.rmtree(split)  # the dataset is gone: predict can only read the inputs folder
    predict = ["gate-predict", "--model", str(checkpoint), "--inputs", str(tmp_path / "inputs")]
    assert main([*predict, "--out", str(tmp_path / "predictions"), "--no-progress"]) == 0
    written = (tmp_path / "predictions" / "predictions.json").read_bytes()
    assert written == (staged[1] / "predictions.json").read_bytes()  # deterministic, byte for byte


def test_gate_inputs_refuses_a_non_empty_out_folder(tiny_val_split, tmp_path, capsys):
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "old.txt").write_text("x")
    assert main(["gate-inputs", "--data", str(tiny_val_split), "--out", str(tmp_path / "out")]) == 2
    assert "not empty" in capsys.readouterr().err
    assert [path.name for path in (tmp_path / "out").iterdir()] == ["old.txt"]


def test_gate_score_refuses_a_malformed_weights_sha256(staged, tiny_val_split, checkpoint, tmp_path, capsys):
    args = score_args(tiny_val_split, staged[1], tmp_path / "r", checkpoint)
    args[args.index("--weights-sha256") + 1] = "ABC"
    assert main(args) == 2
    assert "--weights-sha256" in capsys.readouterr().err
    assert not (tmp_path / "r" / "report.json").exists()


def _set_keypoint(document, value):
    document["persons"][3]["keypoints"][2][0] = value


CORRUPTIONS = {
    "nan": (
        lambda d: _set_keypoint(d, float("nan")),
        r"persons\[3\] .*'keypoints\[2\] \(right_shoulder\)' x is nan",
    ),
    "infinite": (lambda d: _set_keypoint(d, float("inf")), r"persons\[3\] .*x is inf"),
    "string": (lambda d: _set_keypoint(d, "1.0"), r"persons\[3\] .*x is '1.0' \(str\)"),
    "bool": (lambda d: _set_keypoint(d, True), r"persons\[3\] .*x is True \(bool\)"),
    "confidence": (
        lambda d: d["persons"][0]["keypoints"][6].__setitem__(2, 1.5),
        r"persons\[0\] .*'keypoints\[6\] \(right_wrist\)' confidence is 1.5",
    ),
    "six keypoints": (
        lambda d: d["persons"][1]["keypoints"].pop(),
        r"persons\[1\] .*field 'keypoints' holds 6 entries; expected 7",
    ),
    "pair": (lambda d: d["persons"][1]["keypoints"][0].pop(), r"persons\[1\] .*'keypoints\[0\] \(head\)'"),
    "unknown person": (
        lambda d: d["persons"][2].update(id="video9_000001#99"),
        r"persons\[2\] \(id 'video9_000001#99'\) field 'id': unknown person",
    ),
    "missing person": (lambda d: d["persons"].pop(4), r"field 'persons' lacks 1 of the 12 persons"),
    "duplicate": (
        lambda d: d["persons"].append(copy.deepcopy(d["persons"][5])),
        r"persons\[12\] .*field 'id': duplicate person \(also persons\[5\]\)",
    ),
    "extra field": (
        lambda d: d["persons"][0].update(score=0.9),
        r"persons\[0\]: field\(s\) \['score'\] not allowed",
    ),
    "format": (lambda d: d.update(format="coco-results"), r"field 'format' is 'coco-results'"),
    "version": (lambda d: d.update(version=2), r"field 'version' is 2"),
    "keypoint names": (
        lambda d: d["keypoint_names"].__setitem__(0, "nose"),
        r"field 'keypoint_names' .*unknown: \['nose'\]",
    ),
    "top level": (lambda d: d.update(timings={"s": 1}), r"top-level field\(s\) \['timings'\] not allowed"),
    "not a list": (lambda d: d.update(persons={}), r"field 'persons' is a dict; expected a list"),
}


@pytest.mark.parametrize("name", list(CORRUPTIONS))
def test_gate_score_refuses_malformed_predictions(name, staged, tiny_val_split, checkpoint, tmp_path, capsys):
    change, message = CORRUPTIONS[name]
    document = json.loads((staged[1] / "predictions.json").read_text())
    change(document)
    (tmp_path / "predictions").mkdir()
    (tmp_path / "predictions" / "predictions.json").write_text(json.dumps(document))
    assert main(score_args(tiny_val_split, tmp_path / "predictions", tmp_path / "r", checkpoint)) == 2
    err = capsys.readouterr().err
    assert "predictions.json" in err
    assert re.search(message, err), err
    assert len(err.strip().splitlines()) == 1
    assert not (tmp_path / "r" / "report.json").exists()


def test_gate_score_refuses_a_key_given_twice(staged, tiny_val_split, checkpoint, tmp_path, capsys):
    text = (staged[1] / "predictions.json").read_text()
    (tmp_path / "p").mkdir()
    (tmp_path / "p" / "predictions.json").write_text(text.replace('"format":', '"format": "x", "format":', 1))
    assert main(score_args(tiny_val_split, tmp_path / "p", tmp_path / "r", checkpoint)) == 2
    assert "duplicate key 'format'" in capsys.readouterr().err


def test_gate_yaml_stages_run_through_this_cli(tiny_val_split, checkpoint, tmp_path):
    """The three commands of gate.yaml, placeholders filled as the gate fills them, all succeed."""
    stages = load_gate_config(Path(__file__).resolve().parents[1] / "gate.yaml").evaluate
    values = {
        "python": sys.executable,
        "data": str(tiny_val_split),
        "inputs": str(tmp_path / "inputs"),
        "model": str(checkpoint),
        "predictions": str(tmp_path / "predictions"),
        "report_dir": str(tmp_path / "report"),
        "model_ref": "model_ref.yaml",
        "weights_sha256": sha256_of_file(checkpoint),
        "experiment_id": "offline-0123",
        "commit": "",
    }
    for command in (stages.prepare, stages.predict, stages.score):
        argv = [part.format(**values) for part in command]
        assert argv[:3] == [sys.executable, "-m", "walkout_pose.cli"]
        assert main(argv[3:]) == 0, argv
    report = read_report(tmp_path / "report")
    assert report["experiment_id"] == "offline-0123" and report["code_commit"] is None
