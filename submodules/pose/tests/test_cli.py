"""End to end through the real CLI, in-process: train -> evaluate -> predict on a tiny split."""

from __future__ import annotations

import json
import shutil

import cv2
import pytest
import torch
import yaml

from walkout_ci.report import read_report
from walkout_pose.cli import main
from walkout_pose.config import KEYPOINT_NAMES
from walkout_pose.model import read_checkpoint

TINY_CONFIG = {
    "model": {"input_height": 32, "input_width": 32, "width": 8, "deconv_channels": 8},
    "train": {"epochs": 2, "batch_size": 8, "warmup_iterations": 2, "num_threads": 1, "max_val_persons": 20},
}


@pytest.fixture(scope="module")
def trained(tmp_path_factory, tiny_split, tiny_val_split):
    """One tiny training run shared by the tests of this module: (run folder, store, stdout)."""
    root = tmp_path_factory.mktemp("cli")
    config = root / "pose.yaml"
    config.write_text(yaml.safe_dump(TINY_CONFIG))
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("WALKOUT_HOME", str(root / "home"))
        patch.delenv("CLEARML_API_HOST", raising=False)
        torch.manual_seed(0)
        code = main(
            [
                "train",
                "--data",
                str(tiny_split),
                "--val-data",
                str(tiny_val_split),
                "--out",
                str(root / "run"),
                "--config",
                str(config),
                "--no-progress",
            ]
        )
    assert code == 0
    return root / "run", root / "home"


def test_train_writes_checkpoints_summary_and_an_experiment(trained):
    run, home = trained
    summary = json.loads((run / "summary.json").read_text())
    assert summary["best_epoch"] in (1, 2)
    assert len(summary["history"]) == 2
    assert {"AP", "PCK@0.1", "wrist_PCK@0.1"} <= set(summary["best_val_metrics"])
    checkpoint = read_checkpoint(run / "best.pt")
    assert checkpoint["keypoint_names"] == list(KEYPOINT_NAMES)
    assert checkpoint["config"]["model"]["width"] == 8
    assert checkpoint["extra"]["experiment_id"] == summary["experiment_id"]
    record = json.loads((home / "experiments" / summary["experiment_id"] / "experiment.json").read_text())
    assert record["status"] == "completed"
    assert "weights" in record["artifacts"]
    assert record["training_data"][0]["split"] == "train"
    assert any((run / "tensorboard").iterdir())


def test_evaluate_writes_a_valid_report(trained, tiny_val_split, tmp_path):
    run, _ = trained
    report_dir = tmp_path / "report"
    code = main(
        [
            "evaluate",
            "--model",
            str(run / "best.pt"),
            "--data",
            str(tiny_val_split),
            "--report-dir",
            str(report_dir),
        ]
    )
    assert code == 0
    report = read_report(report_dir)
    assert report["component"] == "pose"
    assert {"AP", "AP50", "PCK@0.05", "PCK@0.1", "wrist_PCK@0.1", "mean_OKS"} <= set(report["metrics"])
    assert set(report["per_class"]) == set(KEYPOINT_NAMES)
    assert set(report["per_class"]["left_wrist"]) == {"PCK@0.05", "PCK@0.1", "OKS"}
    assert len(report["per_sample"]) == 12  # 8 frames, 1 or 2 figures each
    assert all(0.0 <= sample["score"] <= 1.0 for sample in report["per_sample"])
    assert report["experiment_id"] == read_checkpoint(run / "best.pt")["extra"]["experiment_id"]
    for failure in report["failures"]:
        if failure["image"] is not None:
            assert cv2.imread(str(report_dir / failure["image"])) is not None


def test_predict_on_one_image_and_on_a_split(trained, tiny_val_split, tmp_path):
    run, _ = trained
    image = tiny_val_split / "coco" / "images" / "video1_000001.png"
    out = tmp_path / "one.json"
    drawn = tmp_path / "drawn.png"
    code = main(
        [
            *("predict", "--model", str(run / "best.pt"), "--image", str(image), "--box", "20,5,90,90"),
            *("--out", str(out), "--draw", str(drawn)),
        ]
    )
    assert code == 0
    people = json.loads(out.read_text())
    assert len(people) == 1 and list(people[0]["keypoints"]) == list(KEYPOINT_NAMES)
    assert cv2.imread(str(drawn)).shape == (120, 160, 3)

    results = tmp_path / "results.json"
    assert (
        main(
            ["predict", "--model", str(run / "best.pt"), "--data", str(tiny_val_split), "--out", str(results)]
        )
        == 0
    )
    keypoints = json.loads(results.read_text())
    assert len(keypoints) == 12 and len(keypoints[0]["keypoints"]) == 21


def test_training_on_the_blind_split_is_refused(tiny_split, tmp_path, walkout_home, capsys):
    blind = tmp_path / "blind"
    shutil.copytree(tiny_split, blind)
    manifest = json.loads((blind / "manifest.json").read_text())
    manifest.update(blind=True, split="blind")
    (blind / "manifest.json").write_text(json.dumps(manifest))
    assert main(["train", "--data", str(blind), "--out", str(tmp_path / "run")]) == 2
    assert "blind" in capsys.readouterr().err
    assert not (tmp_path / "run" / "best.pt").exists()


def test_evaluate_with_a_corrupt_checkpoint_exits_2(tiny_val_split, tmp_path, capsys):
    broken = tmp_path / "broken.pt"
    broken.write_bytes(b"not a checkpoint")
    code = main(
        [
            "evaluate",
            "--model",
            str(broken),
            "--data",
            str(tiny_val_split),
            "--report-dir",
            str(tmp_path / "r"),
        ]
    )
    assert code == 2
    err = capsys.readouterr().err
    assert "corrupt" in err and "weights_only" not in err
    assert not (tmp_path / "r" / "report.json").exists()


def test_evaluate_with_an_unknown_experiment_id_exits_2(tiny_val_split, tmp_path, walkout_home, capsys):
    code = main(
        [
            "evaluate",
            "--model",
            "offline-doesnotexist",
            "--data",
            str(tiny_val_split),
            "--report-dir",
            str(tmp_path),
        ]
    )
    assert code == 2
    assert "offline-doesnotexist" in capsys.readouterr().err


def test_evaluate_on_missing_data_exits_2(trained, tmp_path, capsys):
    run, _ = trained
    code = main(
        [
            "evaluate",
            "--model",
            str(run / "best.pt"),
            "--data",
            str(tmp_path / "nothing"),
            "--report-dir",
            str(tmp_path),
        ]
    )
    assert code == 2
    assert "no COCO keypoints file" in capsys.readouterr().err


def test_predict_box_outside_the_frame_exits_2(trained, tiny_val_split, tmp_path, capsys):
    run, _ = trained
    image = tiny_val_split / "coco" / "images" / "video1_000001.png"
    code = main(
        [
            *("predict", "--model", str(run / "best.pt"), "--image", str(image), "--box", "300,10,330,50"),
            *("--out", str(tmp_path / "o.json")),
        ]
    )
    assert code == 2
    assert "outside" in capsys.readouterr().err


def test_predict_with_detector_boxes_uses_only_confident_person_detections(trained, tiny_val_split, tmp_path):
    run, _ = trained
    coco = json.loads((tiny_val_split / "coco" / "keypoints.json").read_text())
    detections = [
        {"image_id": a["image_id"], "category_id": 1, "bbox": a["bbox"], "score": 0.9}
        for a in coco["annotations"]
    ]
    detections.append(
        {"image_id": 1, "category_id": 1, "bbox": [1, 1, 20, 20], "score": 0.1}
    )  # below threshold
    detections.append({"image_id": 1, "category_id": 2, "bbox": [1, 1, 20, 20], "score": 0.9})  # a product
    path = tmp_path / "detections.json"
    path.write_text(json.dumps(detections))
    out = tmp_path / "results.json"
    code = main(
        [
            *("predict", "--model", str(run / "best.pt"), "--data", str(tiny_val_split)),
            *("--detections", str(path), "--out", str(out)),
        ]
    )
    assert code == 0
    results = json.loads(out.read_text())
    assert len(results) == len(coco["annotations"])
    assert all(len(result["keypoint_confidences"]) == 7 for result in results)


def test_fine_tuning_starts_from_an_experiments_weights_and_inherits_its_training_data(
    trained, tiny_split, tiny_val_split, tmp_path, monkeypatch, capsys
):
    from walkout_ci import pins

    run, home = trained
    source_id = json.loads((run / "summary.json").read_text())["experiment_id"]
    monkeypatch.setenv("WALKOUT_HOME", str(home))
    monkeypatch.delenv("CLEARML_API_HOST", raising=False)
    # A learning rate of ~0 keeps the weights where they started: the source's, not a fresh init (of
    # another seed: the source's own seed would draw the source's initial weights again).
    config = {
        "model": TINY_CONFIG["model"],
        "train": {**TINY_CONFIG["train"], "learning_rate": 1e-7, "seed": 1},
    }
    (tmp_path / "tune.yaml").write_text(yaml.safe_dump(config))
    common = ["--data", str(tiny_split), "--val-data", str(tiny_val_split), "--epochs", "1", "--no-progress"]
    tune = [*common, "--config", str(tmp_path / "tune.yaml")]
    assert main(["train", *tune, "--out", str(tmp_path / "tuned"), "--init-from", source_id]) == 0
    assert main(["train", *tune, "--out", str(tmp_path / "scratch")]) == 0

    def first_conv(path):
        return next(value for value in read_checkpoint(path)["state_dict"].values() if value.dim() == 4)

    source = first_conv(run / "best.pt")  # the experiment's weights artifact is its best checkpoint
    assert torch.allclose(first_conv(tmp_path / "tuned" / "last.pt"), source, atol=1e-4)
    assert not torch.allclose(first_conv(tmp_path / "scratch" / "last.pt"), source, atol=1e-2)
    tuned_id = json.loads((tmp_path / "tuned" / "summary.json").read_text())["experiment_id"]
    record = pins.locate_experiment(tuned_id).record
    assert record["initialized_from"] == source_id
    assert len(record["training_data"]) == 2  # the source's data and this run's
    capsys.readouterr()

    # Another network shape, or a bare checkpoint: exit 2, naming the fix, before any experiment starts.
    wider = {"model": {**TINY_CONFIG["model"], "width": 16}, "train": TINY_CONFIG["train"]}
    (tmp_path / "wider.yaml").write_text(yaml.safe_dump(wider))
    cases = [
        (["--config", str(tmp_path / "wider.yaml"), "--init-from", source_id], "set the model section"),
        (["--config", str(tmp_path / "tune.yaml"), "--init-from", str(run / "best.pt")], "bare checkpoint"),
    ]
    for extra, message in cases:
        assert main(["train", *common, *extra, "--out", str(tmp_path / "bad")]) == 2
        assert message in capsys.readouterr().err
        assert not (tmp_path / "bad" / "best.pt").exists()
