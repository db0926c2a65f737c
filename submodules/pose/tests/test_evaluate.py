from __future__ import annotations

import json
import shutil

import cv2
import numpy as np
import pytest
import torch

from walkout_ci.report import read_report
from walkout_pose.config import KEYPOINT_NAMES, EvaluateConfig, load_config
from walkout_pose.data import load_keypoints_dataset
from walkout_pose.errors import EvaluationError
from walkout_pose.evaluate import compute_metrics, evaluate_model
from walkout_pose.model import build_model, save_checkpoint


@pytest.fixture()
def untrained(tmp_path):
    """A random tiny model and its checkpoint: its predictions are poor, so failures exist."""
    torch.manual_seed(0)
    config = load_config({"model": {"input_height": 32, "input_width": 32, "width": 8, "deconv_channels": 8}})
    model = build_model(config.model).eval()
    return model, save_checkpoint(tmp_path / "model.pt", model, config=config)


def test_perfect_predictions_score_one_everywhere(tiny_val_split):
    dataset = load_keypoints_dataset(tiny_val_split)
    persons = list(dataset.persons)
    perfect = np.stack([person.keypoints for person in persons]).astype(np.float32)
    perfect[..., 2] = 1.0
    figures = compute_metrics(dataset, persons, perfect, EvaluateConfig())
    for name in ("AP", "PCK@0.05", "PCK@0.1", "wrist_PCK@0.1", "mean_OKS"):
        assert figures["metrics"][name] == pytest.approx(1.0)
    assert all(sample["score"] == pytest.approx(1.0) for sample in figures["per_sample"])


def test_a_wrist_error_shows_up_only_in_the_wrist_classes(tiny_val_split):
    dataset = load_keypoints_dataset(tiny_val_split)
    persons = list(dataset.persons)
    predicted = np.stack([person.keypoints for person in persons]).astype(np.float32)
    predicted[..., 2] = 1.0
    # 5 px: outside PCK@0.05 of these 60-80 px figures (3-4 px), inside PCK@0.1 (6-8 px).
    predicted[:, 5:7, 0] += 5.0
    figures = compute_metrics(dataset, persons, predicted, EvaluateConfig())
    assert figures["per_class"]["head"]["OKS"] == pytest.approx(1.0)
    assert figures["per_class"]["left_wrist"]["OKS"] < 0.9
    assert figures["per_class"]["left_wrist"]["PCK@0.05"] < 1.0
    assert figures["per_class"]["left_wrist"]["PCK@0.1"] == pytest.approx(1.0)
    assert figures["metrics"]["AP"] < 1.0


def test_report_lists_worst_persons_first_with_debug_images(untrained, tiny_val_split, tmp_path):
    model, weights = untrained
    report_dir = tmp_path / "report"
    config = EvaluateConfig(max_failure_images=3, broken_oks=1.0)
    report = evaluate_model(
        model=model,
        weights_path=weights,
        model_ref=str(weights),
        experiment_id=None,
        data=tiny_val_split,
        report_dir=report_dir,
        config=config,
        progress=False,
    )
    assert read_report(report_dir) == json.loads((report_dir / "report.json").read_text())
    failures = report["failures"]
    assert len(failures) == len(report["per_sample"])  # broken_oks=1.0: every person is listed
    scores = {sample["id"]: sample["score"] for sample in report["per_sample"]}
    ordered = [scores[failure["sample_id"]] for failure in failures]
    assert ordered == sorted(ordered)
    with_images = [failure for failure in failures if failure["image"]]
    assert len(with_images) == 3
    for failure in with_images:
        image = cv2.imread(str(report_dir / failure["image"]))
        assert image is not None and image.shape[2] == 3
    assert failures[0]["class"] in KEYPOINT_NAMES
    assert report["dataset"]["hash"] and report["timings"]["samples_per_s"] > 0


def test_split_without_persons_fails_closed(untrained, tiny_val_split, tmp_path):
    model, weights = untrained
    split = tmp_path / "empty"
    shutil.copytree(tiny_val_split, split)
    path = split / "coco" / "keypoints.json"
    coco = json.loads(path.read_text())
    coco["annotations"] = []
    path.write_text(json.dumps(coco))
    with pytest.raises(EvaluationError, match="no person annotations"):
        evaluate_model(
            model=model,
            weights_path=weights,
            model_ref="x",
            experiment_id=None,
            data=split,
            report_dir=tmp_path / "report",
            config=EvaluateConfig(),
            progress=False,
        )
    assert not (tmp_path / "report" / "report.json").exists()
