from __future__ import annotations

import itertools

import pytest
import torch

from walkout_pose.data import load_keypoints_dataset
from walkout_pose.errors import ConfigError
from walkout_pose.train import heatmap_loss, learning_rate_factor, select_device, subset


def test_validation_subset_keeps_whole_frames_spread_over_the_split(tiny_split):
    dataset = load_keypoints_dataset(tiny_split)
    restricted, persons = subset(dataset, list(dataset.persons), max_persons=12)
    kept = {person.image_id for person in persons}
    assert 6 <= len(persons) <= 18
    assert {image["id"] for image in restricted.coco["images"]} == kept
    assert all(annotation["image_id"] in kept for annotation in restricted.coco["annotations"])
    # Every frame of a kept image is whole: all its persons are there.
    assert len(persons) == sum(1 for person in dataset.persons if person.image_id in kept)
    assert max(kept) > len(dataset.coco["images"]) // 2  # not just the first frames


def test_learning_rate_warms_up_then_decays_to_one_percent():
    factors = [learning_rate_factor(step, warmup=10, total=100) for step in range(101)]
    assert factors[0] == pytest.approx(0.1) and factors[9] == pytest.approx(1.0)
    assert all(a >= b for a, b in itertools.pairwise(factors[9:]))
    assert factors[100] == pytest.approx(0.01)


def test_loss_ignores_keypoints_with_zero_weight():
    target = torch.zeros(1, 2, 4, 4)
    predicted = torch.zeros(1, 2, 4, 4)
    predicted[0, 1] = 5.0
    assert heatmap_loss(predicted, target, torch.tensor([[1.0, 0.0]])) == 0.0
    assert heatmap_loss(predicted, target, torch.tensor([[1.0, 1.0]])) > 0.0


def test_auto_device_uses_cuda_only_when_present():
    if torch.cuda.is_available():
        assert select_device("auto").type == "cuda"
        return
    assert select_device("auto").type == "cpu"
    with pytest.raises(ConfigError, match="no CUDA device"):
        select_device("cuda")
