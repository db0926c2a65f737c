"""End to end through the real CLI, in-process: train, evaluate (report contract), predict."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import cv2
import pytest

from walkout_ci.report import read_report, sha256_of_file
from walkout_detection import train as train_module
from walkout_detection.cli import main
from walkout_detection.config import load_config
from walkout_detection.data import load_coco
from walkout_detection.evaluate import evaluate_detections, run_detector
from walkout_detection.predict import PIN_PATH, load_detector, resolve_weights
from walkout_sim.cli import main as sim_main

TINY = [
    "--set", "model.width=8",
    "--set", "model.head_channels=8",
    "--set", "model.blocks_stride16=1",
    "--set", "train.epochs=2",
    "--set", "train.batch_size=4",
    "--set", "train.warmup_iterations=2",
    "--set", "train.learning_rate=0.01",
    "--no-progress",
]  # fmt: skip


@pytest.fixture(scope="module")
def sim_data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A real simulator export: 1 video x 16 frames, every 2nd frame in coco/ (8 images)."""
    root = tmp_path_factory.mktemp("sim") / "train"
    code = sim_main(
        ["generate", "--split", "train", "--videos", "1", "--frames", "16", "--image-stride", "2",
         "--seed", "5", "--out", str(root), "--quiet"]
    )  # fmt: skip
    assert code == 0
    return root


@pytest.fixture(scope="module")
def trained(sim_data: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    run = tmp_path_factory.mktemp("run")
    home = tmp_path_factory.mktemp("home")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("WALKOUT_HOME", str(home))
        assert main(["train", "--data", str(sim_data), "--output", str(run), *TINY]) == 0
    return run


def test_train_writes_checkpoints_logs_and_an_experiment(trained: Path) -> None:
    assert (trained / "best.pt").is_file() and (trained / "last.pt").is_file()
    assert list((trained / "tensorboard").glob("events.out.tfevents.*"))
    summary = json.loads((trained / "metrics.json").read_text())
    assert summary["epochs_run"] == 2
    assert [entry["epoch"] for entry in summary["history"]] == [1, 2]
    assert summary["class_names"][0] == "person" and len(summary["class_names"]) == 15
    assert summary["experiment_id"]
    assert 0.0 <= summary["best_metrics"]["AP50"] <= 1.0


def test_evaluate_writes_the_report_contract(trained: Path, sim_data: Path, tmp_path: Path) -> None:
    report_dir = tmp_path / "report"
    code = main(
        ["evaluate", "--model", str(trained / "best.pt"), "--data", str(sim_data),
         "--report-dir", str(report_dir), "--no-progress"]
    )  # fmt: skip
    assert code == 0
    report = read_report(report_dir / "report.json")
    assert report["component"] == "detection"
    assert report["experiment_id"] == json.loads((trained / "metrics.json").read_text())["experiment_id"]
    assert {"AP", "AP50", "AP75"} <= set(report["metrics"])
    assert len(report["per_sample"]) == 8
    assert report["dataset"]["hash"]
    # an untrained-ish model fails somewhere: failures carry debug images that exist
    images = {failure["image"] for failure in report["failures"] if failure.get("image")}
    assert images and all((report_dir / image).is_file() for image in images)


def test_gate_stages_give_exactly_what_evaluate_gives(sim_data: Path, tmp_path: Path) -> None:
    """gate-inputs + gate-predict + gate-score through the CLI equal `evaluate`, and both equal the
    detector run in memory on the dataset (the path `evaluate` took before it was split in stages).
    The production model, so that the metrics are neither zero nor perfect."""
    weights = resolve_weights(PIN_PATH)
    model = str(weights)
    assert main(["evaluate", "--model", model, "--data", str(sim_data), "--report-dir", str(tmp_path / "e"),
                 "--device", "cpu", "--no-progress"]) == 0  # fmt: skip
    inputs, predictions = tmp_path / "inputs", tmp_path / "predictions"
    assert main(["gate-inputs", "--data", str(sim_data), "--out", str(inputs)]) == 0
    assert main(["gate-predict", "--model", model, "--inputs", str(inputs), "--out", str(predictions),
                 "--device", "cpu", "--no-progress"]) == 0  # fmt: skip
    evaluated = read_report(tmp_path / "e" / "report.json")
    code = main(
        ["gate-score", "--data", str(sim_data), "--predictions", str(predictions), "--report-dir",
         str(tmp_path / "g"), "--model-ref", model, "--weights-sha256", sha256_of_file(weights),
         "--experiment-id", evaluated["experiment_id"], "--code-commit", evaluated["code_commit"] or ""]
    )  # fmt: skip
    assert code == 0
    gated = read_report(tmp_path / "g" / "report.json")
    for key in ("metrics", "per_class", "per_sample", "failures", "model", "dataset", "experiment_id"):
        assert gated[key] == evaluated[key], key
    assert 0.0 < gated["metrics"]["AP"] < 1.0

    detector = load_detector(model, device="cpu")
    dataset = load_coco(sim_data, class_names=detector.class_names)
    detections, _ = run_detector(detector, dataset, progress=False)
    direct = evaluate_detections(
        dataset, detections, score_threshold=detector.settings.score_threshold, match_iou=0.5
    )
    assert direct.metrics == gated["metrics"]
    assert direct.per_class == gated["per_class"]
    assert direct.per_sample == gated["per_sample"]
    assert [(f["sample_id"], f["class"], f["kind"]) for f in direct.failures] == [
        (f["sample_id"], f["class"], f["kind"]) for f in gated["failures"]
    ]


def test_predict_images_and_video_with_previews(trained: Path, sim_data: Path, tmp_path: Path) -> None:
    video = next((sim_data / "videos").glob("*/video.avi"))
    images = sim_data / "coco" / "images"
    output = tmp_path / "detections.json"
    code = main(
        ["predict", str(images), str(video), "--model", str(trained / "best.pt"), "--output", str(output),
         "--preview", str(tmp_path / "preview"), "--score-threshold", "0.0"]
    )  # fmt: skip
    assert code == 0
    payload = json.loads(output.read_text())
    frames = [result for result in payload["results"] if result["frame"] is not None]
    stills = [result for result in payload["results"] if result["frame"] is None]
    assert len(stills) == 8 and len(frames) == 16
    assert [result["frame"] for result in frames] == list(range(1, 17))
    detection = next(d for result in payload["results"] for d in result["detections"])
    assert set(detection) == {"class", "score", "bbox"} and detection["class"] in payload["class_names"]
    assert len(list((tmp_path / "preview").glob("*.png"))) == 8
    capture = cv2.VideoCapture(str(tmp_path / "preview" / "video_preview.avi"))
    assert int(capture.get(cv2.CAP_PROP_FRAME_COUNT)) == 16


def test_bad_inputs_exit_2_with_a_clear_message(
    trained: Path, sim_data: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    report_dir = tmp_path / "r"
    corrupt = tmp_path / "corrupt.pt"
    corrupt.write_bytes((trained / "best.pt").read_bytes()[:1000])
    assert (
        main(["evaluate", "--model", str(corrupt), "--data", str(sim_data), "--report-dir", str(report_dir)])
        == 2
    )
    assert f"checkpoint {corrupt} is corrupt" in capsys.readouterr().err
    assert not (report_dir / "report.json").exists()

    missing = tmp_path / "nothing.pt"
    assert (
        main(["evaluate", "--model", str(missing), "--data", str(sim_data), "--report-dir", str(report_dir)])
        == 2
    )
    assert "nothing.pt" in capsys.readouterr().err

    broken = tmp_path / "broken"
    shutil.copytree(sim_data, broken)
    (broken / "coco" / "detection.json").write_text("{not json")
    code = main(
        [
            "evaluate",
            "--model",
            str(trained / "best.pt"),
            "--data",
            str(broken),
            "--report-dir",
            str(report_dir),
        ]
    )
    assert code == 2
    assert "malformed COCO JSON" in capsys.readouterr().err

    assert (
        main(["predict", str(tmp_path / "no.png"), "--model", str(trained / "best.pt"), "--output", "x.json"])
        == 2
    )
    assert "no.png does not exist" in capsys.readouterr().err


def test_training_refuses_the_blind_set(
    sim_data: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    blind = tmp_path / "blind"
    shutil.copytree(sim_data, blind)
    manifest = json.loads((blind / "manifest.json").read_text())
    (blind / "manifest.json").write_text(json.dumps({**manifest, "split": "blind", "blind": True}))
    code = main(["train", "--data", str(blind), "--output", str(tmp_path / "run"), *TINY])
    assert code == 2
    assert "blind" in capsys.readouterr().err
    assert not (tmp_path / "run" / "best.pt").exists()


def test_held_sampling_on_data_that_marks_no_held_product_is_refused_before_training(
    sim_data: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    coco = json.loads((sim_data / "coco" / "detection.json").read_text())
    assert not any("held_by" in a for a in coco["annotations"])  # 16 frames: nobody holds anything yet
    args = ["train", "--data", str(sim_data), "--output", str(tmp_path / "run"), *TINY]
    code = main([*args, "--set", "train.held_sampling_share=0.5"])
    assert code == 2
    assert "held_sampling_share = 0.5 but no training image has a held product" in capsys.readouterr().err
    assert not (tmp_path / "run").exists()


def test_learning_crowd_regions_of_an_unknown_class_is_refused_before_training(
    sim_data: Path, tmp_path: Path, walkout_home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    args = ["train", "--data", str(sim_data), "--output", str(tmp_path / "run"), *TINY]
    code = main([*args, "--set", "train.learn_crowd_classes=person,shopper"])
    assert code == 2
    err = capsys.readouterr().err
    assert "train.learn_crowd_classes names 'shopper', not a class of the training data" in err
    assert "person" in err.split("its classes are", 1)[1]
    assert not (tmp_path / "run").exists()
    assert not any(walkout_home.rglob("*.json"))  # refused before an experiment was started


def test_a_clone_that_learns_crowd_regions_reads_the_training_data_again(
    sim_data: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A clone (walkout-ci clone, run by an agent) overrides the parameters the run started with.
    data = tmp_path / "train"
    shutil.copytree(sim_data, data)
    coco_path = data / "coco" / "detection.json"
    coco = json.loads(coco_path.read_text())
    person = next(c["id"] for c in coco["categories"] if c["name"] == "person")
    crowd = next(a for a in coco["annotations"] if a["category_id"] == person)
    crowd["iscrowd"] = 1
    coco_path.write_text(json.dumps(coco))
    seen = {}

    def capture(**kwargs):
        seen["boxes"] = sum(len(r.labels) for r in kwargs["train_dataset"].images)
        raise SystemExit(0)  # stop before training: only the data the run was given matters here

    monkeypatch.setattr(train_module, "_train_tracked", capture)
    monkeypatch.setenv("WALKOUT_CI_PARAMS_OVERRIDE", json.dumps({"train.learn_crowd_classes": "person"}))
    config = load_config({"train": {"epochs": 1}})
    with pytest.raises(SystemExit):
        train_module.train(config=config, train_data=data, output_dir=tmp_path / "run", progress=False)
    as_clone = seen["boxes"]
    monkeypatch.delenv("WALKOUT_CI_PARAMS_OVERRIDE")
    with pytest.raises(SystemExit):
        train_module.train(config=config, train_data=data, output_dir=tmp_path / "run2", progress=False)
    assert as_clone == seen["boxes"] + 1  # the crowd person is learned only as the clone asked


def test_training_rejects_bad_config(
    sim_data: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(["train", "--data", str(sim_data), "--output", str(tmp_path), "--set", "train.epoch=3"])
    assert code == 2
    assert "did you mean 'epochs'" in capsys.readouterr().err


def test_gate_yaml_drives_walkout_ci_on_our_reports(trained: Path, sim_data: Path, tmp_path: Path) -> None:
    """gate.yaml is valid for walkout-ci and every rule is computable from what evaluate writes: a
    report compared with itself passes the metric, drop and paired rules; the barely trained model
    fails only the per-class floor (exit 1)."""
    from walkout_ci.cli import main as ci_main
    from walkout_ci.gate_config import load_gate_config

    package = Path(__file__).resolve().parents[1]
    assert load_gate_config(package / "gate.yaml").component == "detection"
    report_dir = tmp_path / "report"
    model = str(trained / "best.pt")
    assert main(["evaluate", "--model", model, "--data", str(sim_data), "--report-dir", str(report_dir)]) == 0
    out = tmp_path / "gate"
    code = ci_main(
        ["gate", "--component-dir", str(package), "--baseline-report", str(report_dir),
         "--candidate-report", str(report_dir), "--out", str(out)]
    )  # fmt: skip
    verdict = json.loads((out / "verdict.json").read_text())
    assert code == 1 and verdict["verdict"] == "FAIL"
    failing = {rule["name"].split("[")[0] for rule in verdict["rules"] if rule["status"] != "PASS"}
    assert failing == {"per_class.floor"}
    names = {rule["name"].split("[")[0] for rule in verdict["rules"]}
    assert {"comparable", "metric", "per_class.max_drop"} <= names


def test_fine_tuning_starts_from_an_experiments_weights_and_inherits_its_training_data(
    sim_data: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import torch

    from walkout_ci import pins

    assert main(["train", "--data", str(sim_data), "--output", str(tmp_path / "source"), *TINY]) == 0
    source_id = json.loads((tmp_path / "source" / "metrics.json").read_text())["experiment_id"]
    # A learning rate of ~0 keeps the weights where they started: the source's, not a fresh init (of
    # another seed: the source's own seed would draw the source's initial weights again).
    tune = [*TINY, "--set", "train.epochs=1", "--set", "train.learning_rate=1e-7", "--set", "train.seed=1"]
    assert main(["train", "--data", str(sim_data), "--output", str(tmp_path / "tuned"), *tune,
                 "--set", f"train.init_from={source_id}"]) == 0  # fmt: skip
    assert main(["train", "--data", str(sim_data), "--output", str(tmp_path / "scratch"), *tune]) == 0

    def first_conv(checkpoint: str) -> torch.Tensor:
        state = torch.load(tmp_path / checkpoint, weights_only=True)["state_dict"]
        return next(value for key, value in state.items() if value.dim() == 4)

    # The experiment's weights artifact is its best checkpoint.
    assert torch.allclose(first_conv("tuned/last.pt"), first_conv("source/best.pt"), atol=1e-4)
    assert not torch.allclose(first_conv("scratch/last.pt"), first_conv("source/best.pt"), atol=1e-2)

    tuned_id = json.loads((tmp_path / "tuned" / "metrics.json").read_text())["experiment_id"]
    record = pins.locate_experiment(tuned_id).record
    assert record["initialized_from"] == source_id and record["cloned_from"] is None
    assert len(record["training_data"]) == 2  # the source's data and this run's
    assert record["params"]["train"]["init_from"] == source_id
    lineage = "\n".join(pins.explain_lineage(tuned_id))
    assert f"fine-tuned from the weights of {source_id}" in lineage
    assert f"experiment {source_id}:" in lineage
    capsys.readouterr()

    # A different network shape, a bare checkpoint, an unknown id: exit 2 before any experiment starts.
    bad = {
        "model.width=16": "set the model section to the source's",
        str(tmp_path / "source" / "best.pt"): "bare checkpoint",
        "offline-0123456789abcdef0123456789abcdef": "unknown experiment id",
    }
    for value, message in bad.items():
        override = ["--set", value, "--set", f"train.init_from={source_id}"] if "=" in value else [
            "--set", f"train.init_from={value}"]  # fmt: skip
        code = main(["train", "--data", str(sim_data), "--output", str(tmp_path / "bad"), *tune, *override])
        assert code == 2, value
        assert message in capsys.readouterr().err, value
        assert not (tmp_path / "bad" / "best.pt").exists()
