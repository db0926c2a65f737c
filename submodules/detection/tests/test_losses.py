from __future__ import annotations

import torch

from walkout_detection.losses import focal_loss, gather_cells, masked_l1


def test_focal_loss_rewards_the_right_peak() -> None:
    target = torch.zeros(1, 1, 8, 8)
    target[0, 0, 4, 4] = 1.0
    target[0, 0, 4, 5] = 0.6
    right = torch.full((1, 1, 8, 8), -8.0)
    right[0, 0, 4, 4] = 8.0
    wrong = torch.full((1, 1, 8, 8), -8.0)
    wrong[0, 0, 1, 1] = 8.0
    assert focal_loss(right, target) < 0.01
    assert focal_loss(wrong, target) > 5.0


def test_focal_loss_penalises_near_centre_negatives_less() -> None:
    target = torch.zeros(1, 1, 8, 8)
    target[0, 0, 4, 4] = 1.0
    target[0, 0, 4, 5] = 0.9
    base = torch.full((1, 1, 8, 8), -8.0)
    base[0, 0, 4, 4] = 8.0
    near, far = base.clone(), base.clone()
    near[0, 0, 4, 5] = 2.0
    far[0, 0, 0, 0] = 2.0
    assert focal_loss(near, target) < focal_loss(far, target)


def test_masked_l1_uses_only_real_objects() -> None:
    prediction = torch.zeros(1, 2, 4, 4)
    prediction[0, :, 1, 2] = torch.tensor([3.0, 5.0])
    index = torch.tensor([[1 * 4 + 2, 0]])
    assert gather_cells(prediction, index)[0, 0].tolist() == [3.0, 5.0]
    target = torch.tensor([[[3.0, 4.0], [100.0, 100.0]]])
    mask = torch.tensor([[1.0, 0.0]])
    assert masked_l1(prediction, index, target, mask).item() == 0.5
