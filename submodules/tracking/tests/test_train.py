import json

import numpy as np
import pytest
import torch

from walkout_tracking.train import (
    augment,
    batch_hard_triplet_loss,
    rank1_accuracy,
    sample_pk_batch,
    sample_sequence_pk_batch,
)


def test_batch_hard_triplet_loss_golden():
    e = torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 0.0], [0.0, 1.0]])
    labels = torch.tensor([0, 0, 1, 1])
    # Anchor 0: hardest positive = sample 1 (distance 1), hardest negative = sample 2 (distance 0).
    # Every anchor has the same situation: loss = relu(1 - 0 + 0.3) = 1.3.
    assert batch_hard_triplet_loss(e, labels, 0.3).item() == pytest.approx(1.3)
    separated = torch.tensor([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0], [0.0, 1.0]])
    assert batch_hard_triplet_loss(separated, labels, 0.3).item() == pytest.approx(0.0)


def test_triplet_loss_with_groups_takes_negatives_from_the_anchors_own_group_only():
    # Identities 0 and 1 share video 0; identity 2 (video 1) looks exactly like identity 0.
    e = torch.tensor([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0], [0.0, 1.0], [1.0, 0.0], [1.0, 0.0]])
    labels = torch.tensor([0, 0, 1, 1, 2, 2])
    groups = torch.tensor([0, 0, 0, 0, 1, 1])
    # Without groups, identity 0's hardest negative is the look-alike of the other video (distance 0):
    # anchors of 0 and 2 lose 0.3 each, identity 1's anchors nothing.
    assert batch_hard_triplet_loss(e, labels, 0.3).item() == pytest.approx(4 * 0.3 / 6)
    # With groups, identity 0's only negative is identity 1 (distance 1) and identity 2 has no negative.
    assert batch_hard_triplet_loss(e, labels, 0.3, groups).item() == pytest.approx(0.0)


def test_sequence_pk_batches_take_whole_videos_first():
    by_label = [np.array([0, 1]), np.array([2, 3]), np.array([4]), np.array([5, 6]), np.array([7, 8, 9])]
    label_groups = np.array([0, 0, 0, 1, 1])
    for seed in range(10):
        batch = sample_sequence_pk_batch(by_label, label_groups, np.random.default_rng(seed), p=3, k=2)
        owners = [next(i for i, ids in enumerate(by_label) if b in ids) for b in batch]
        assert len(batch) == 6 and len(set(owners)) == 3
        # Video 0 first: its three identities; video 1 first: both of its, then one of video 0's.
        counts = sorted(np.bincount(label_groups[sorted(set(owners))], minlength=2).tolist())
        assert counts in ([0, 3], [1, 2])


def test_triplet_loss_without_positives_is_zero_but_differentiable():
    e = torch.nn.functional.normalize(torch.rand(3, 4, requires_grad=True), dim=1)
    loss = batch_hard_triplet_loss(e, torch.tensor([0, 1, 2]), 0.3)
    loss.backward()
    assert loss.item() == 0.0


def test_rank1_accuracy_golden_with_groups_and_frame_gap():
    e = np.array([[1.0, 0.0], [0.99, 0.14], [0.0, 1.0], [0.14, 0.99], [1.0, 0.0]])
    labels = np.array([0, 0, 1, 1, 7])
    groups = np.array([0, 0, 0, 0, 1])
    assert rank1_accuracy(e, labels, groups) == pytest.approx(1.0)
    wrong = np.array([0, 1, 0, 1, 7])
    assert rank1_accuracy(e, wrong, groups) == pytest.approx(0.0)
    frames = np.array([1, 2, 1, 30, 1])
    # With a 10-frame gap only (sample 2, sample 3) remain valid pairs: both correct.
    assert rank1_accuracy(e, labels, groups, frames, min_frame_gap=10) == pytest.approx(1.0)


def test_pk_batches_hold_p_identities_k_each():
    by_label = [np.array([0, 1, 2]), np.array([3]), np.array([4, 5, 6, 7]), np.array([8, 9])]
    rng = np.random.default_rng(0)
    batch = sample_pk_batch(by_label, rng, p=3, k=4)
    assert len(batch) == 12
    owners = [next(i for i, ids in enumerate(by_label) if b in ids) for b in batch]
    assert len(set(owners)) == 3 and all(owners.count(o) == 4 for o in set(owners))


def test_augment_keeps_shape_and_range():
    images = torch.rand(5, 3, 16, 16)
    out = augment(images, torch.Generator().manual_seed(0))
    assert out.shape == images.shape and out.min() >= 0 and out.max() <= 1


def test_training_refuses_the_blind_set(tmp_path, walkout_home):
    from walkout_tracking.cli import main

    blind = tmp_path / "blind"
    (blind / "videos").mkdir(parents=True)
    (blind / "manifest.json").write_text(json.dumps({"format_version": 1, "split": "blind", "blind": True}))
    assert main(["train", "--data", str(blind), "--out", str(tmp_path / "out"), "--quiet"]) == 2
