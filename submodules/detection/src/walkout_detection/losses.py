"""CenterNet losses: penalty-reduced focal loss on the heatmaps, masked L1 on size and offset."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def focal_loss(
    logits: torch.Tensor, target: torch.Tensor, *, alpha: float = 2.0, beta: float = 4.0
) -> torch.Tensor:
    """CenterNet's focal loss (Law & Deng), normalised by the number of centres.

    logits, target: float [B, C, h, w]; target is 1 at object centres and a Gaussian bump around them,
    whose (1 - target)^beta factor reduces the penalty for near-centre negatives.
    """
    logits = logits.float()
    probability = torch.sigmoid(logits)
    positive = target.eq(1).float()
    negative_weight = torch.pow(1 - target, beta) * (1 - positive)
    # logsigmoid avoids log(0) without clamping the probabilities.
    positive_loss = F.logsigmoid(logits) * torch.pow(1 - probability, alpha) * positive
    negative_loss = F.logsigmoid(-logits) * torch.pow(probability, alpha) * negative_weight
    count = positive.sum().clamp(min=1.0)
    return -(positive_loss.sum() + negative_loss.sum()) / count


def gather_cells(feature: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
    """feature [B, D, h, w], index [B, K] flat cells -> [B, K, D]."""
    batch, depth = feature.shape[:2]
    flat = feature.reshape(batch, depth, -1)
    return flat.gather(2, index.unsqueeze(1).expand(-1, depth, -1)).permute(0, 2, 1)


def masked_l1(
    prediction: torch.Tensor, index: torch.Tensor, target: torch.Tensor, mask: torch.Tensor
) -> torch.Tensor:
    """Mean L1 over real objects. prediction [B, 2, h, w], index [B, K], target [B, K, 2], mask [B, K]."""
    picked = gather_cells(prediction.float(), index)
    weight = mask.unsqueeze(-1)
    return (torch.abs(picked - target) * weight).sum() / (weight.sum() * 2).clamp(min=1.0)


def centernet_loss(
    outputs: dict[str, torch.Tensor],
    targets: dict[str, torch.Tensor],
    *,
    size_weight: float,
    offset_weight: float,
) -> dict[str, torch.Tensor]:
    """Total and component losses; targets as made by `walkout_detection.data.encode_targets`, batched."""
    heatmap = focal_loss(outputs["heatmap"], targets["heatmap"])
    size = masked_l1(outputs["size"], targets["index"], targets["size"], targets["mask"])
    offset = masked_l1(outputs["offset"], targets["index"], targets["offset"], targets["mask"])
    total = heatmap + size_weight * size + offset_weight * offset
    return {"loss": total, "heatmap": heatmap, "size": size, "offset": offset}
