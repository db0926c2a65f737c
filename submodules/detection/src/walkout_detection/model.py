"""A compact anchor-free CenterNet-style detector in plain PyTorch.

The network predicts, at stride 4, one centre heatmap per class, the box size (width, height in
stride-4 cells) and the sub-cell offset of the centre. Decoding keeps the local maxima of the
heatmaps (3x3 max-pool peak extraction), so no box NMS is needed.

Input: float tensor [B, 3, H, W], RGB in [0, 1], H and W multiples of 16 (use `pad_to_multiple`).
Output: dict with "heatmap" logits [B, C, H/4, W/4], "size" [B, 2, H/4, W/4], "offset" [B, 2, H/4, W/4].
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from walkout_detection.config import ModelConfig

OUTPUT_STRIDE = 4
INPUT_MULTIPLE = 16
# Prior probability of a centre at initialisation: a low prior keeps the focal loss stable early on.
HEATMAP_PRIOR_BIAS = -2.19


def conv_bn_relu(in_channels: int, out_channels: int, kernel_size: int = 3, stride: int = 1) -> nn.Sequential:
    """Convolution + batch norm + ReLU with 'same' padding."""
    return nn.Sequential(
        nn.Conv2d(in_channels, out_channels, kernel_size, stride, kernel_size // 2, bias=False),
        nn.BatchNorm2d(out_channels),
        nn.ReLU(inplace=True),
    )


class SeparableResidual(nn.Module):
    """Depthwise-separable residual block: cheap on CPU, and large kernels widen the receptive field."""

    def __init__(self, *, channels: int, kernel_size: int) -> None:
        super().__init__()
        self.depthwise = nn.Sequential(
            nn.Conv2d(channels, channels, kernel_size, 1, kernel_size // 2, groups=channels, bias=False),
            nn.BatchNorm2d(channels),
        )
        self.pointwise = conv_bn_relu(channels, channels, kernel_size=1)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return features + self.pointwise(self.depthwise(features))


class CenterNet(nn.Module):
    """Backbone to stride 16, a top-down path back to stride 4, and heatmap/size/offset heads."""

    def __init__(self, *, num_classes: int, width: int, head_channels: int, blocks_stride16: int) -> None:
        super().__init__()
        if num_classes < 1:
            raise ValueError(f"num_classes must be >= 1, got {num_classes}")
        self.num_classes = num_classes
        self.stage2 = conv_bn_relu(3, width // 2, stride=2)
        self.stage4 = nn.Sequential(
            conv_bn_relu(width // 2, width, stride=2), SeparableResidual(channels=width, kernel_size=3)
        )
        self.stage8 = nn.Sequential(
            conv_bn_relu(width, 2 * width, stride=2), SeparableResidual(channels=2 * width, kernel_size=5)
        )
        self.stage16 = nn.Sequential(
            conv_bn_relu(2 * width, 4 * width, stride=2),
            *[SeparableResidual(channels=4 * width, kernel_size=5) for _ in range(blocks_stride16)],
        )
        self.reduce16 = conv_bn_relu(4 * width, 2 * width, kernel_size=1)
        self.reduce8 = conv_bn_relu(2 * width, width, kernel_size=1)
        self.smooth4 = SeparableResidual(channels=width, kernel_size=3)
        self.head_trunk = nn.Sequential(
            nn.Conv2d(width, width, 3, 1, 1, groups=width, bias=False),
            nn.BatchNorm2d(width),
            conv_bn_relu(width, head_channels, kernel_size=1),
        )
        self.heatmap_head = nn.Conv2d(head_channels, num_classes, 1)
        self.size_head = nn.Conv2d(head_channels, 2, 1)
        self.offset_head = nn.Conv2d(head_channels, 2, 1)
        nn.init.constant_(self.heatmap_head.bias, HEATMAP_PRIOR_BIAS)
        self.register_buffer("mean", torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1), persistent=False)

    @classmethod
    def from_config(cls, config: ModelConfig, *, num_classes: int) -> CenterNet:
        """Build an untrained network (weights are never loaded implicitly)."""
        return cls(
            num_classes=num_classes,
            width=config.width,
            head_channels=config.head_channels,
            blocks_stride16=config.blocks_stride16,
        )

    def forward(self, images: torch.Tensor) -> dict[str, torch.Tensor]:
        """images: float [B, 3, H, W] RGB in [0, 1], H and W multiples of 16."""
        features = (images - self.mean) / self.std
        features4 = self.stage4(self.stage2(features))
        features8 = self.stage8(features4)
        features16 = self.stage16(features8)
        top8 = features8 + F.interpolate(self.reduce16(features16), scale_factor=2.0, mode="nearest")
        top4 = features4 + F.interpolate(self.reduce8(top8), scale_factor=2.0, mode="nearest")
        trunk = self.head_trunk(self.smooth4(top4))
        return {
            "heatmap": self.heatmap_head(trunk),
            # Sizes are positive; ReLU keeps the L1 regression in range without an exp blow-up.
            "size": F.relu(self.size_head(trunk)),
            "offset": self.offset_head(trunk),
        }


def pad_to_multiple(images: torch.Tensor, multiple: int = INPUT_MULTIPLE) -> torch.Tensor:
    """Zero-pad [B, 3, H, W] on the bottom/right so H and W are multiples of `multiple` (boxes unchanged)."""
    height, width = images.shape[-2:]
    pad_h = (-height) % multiple
    pad_w = (-width) % multiple
    if pad_h == 0 and pad_w == 0:
        return images
    return F.pad(images, (0, pad_w, 0, pad_h))


@dataclass
class Detections:
    """Detections of one image.

    boxes: float array [N, 4], x1 y1 x2 y2 in pixels; scores: float array [N] in [0, 1];
    labels: int array [N], indices into the model's class names. Sorted by decreasing score.
    """

    boxes: np.ndarray
    scores: np.ndarray
    labels: np.ndarray

    def __len__(self) -> int:
        return len(self.scores)


def decode(
    outputs: dict[str, torch.Tensor],
    *,
    max_detections: int,
    min_score: float,
    image_size: tuple[int, int] | None = None,
) -> list[Detections]:
    """Turn network outputs into boxes by 3x3 max-pool peak extraction on the class heatmaps.

    outputs: the network's dict (heatmap logits [B, C, h, w], size [B, 2, h, w], offset [B, 2, h, w]).
    image_size: (height, width) in pixels to clip boxes to (the unpadded image), or None.
    Returns one `Detections` per image with at most `max_detections` boxes scoring >= min_score.
    """
    heat = torch.sigmoid(outputs["heatmap"].float())
    peaks = F.max_pool2d(heat, kernel_size=3, stride=1, padding=1)
    heat = heat * (peaks == heat)
    batch, classes, height, width = heat.shape
    k = min(max_detections, classes * height * width)
    scores, flat = heat.reshape(batch, -1).topk(k)
    labels = flat // (height * width)
    cells = flat % (height * width)
    ys = (cells // width).float()
    xs = (cells % width).float()
    size = outputs["size"].float().reshape(batch, 2, -1)
    offset = outputs["offset"].float().reshape(batch, 2, -1)
    results = []
    for index in range(batch):
        keep = scores[index] >= min_score
        cell = cells[index][keep]
        centre_x = (xs[index][keep] + offset[index, 0, cell]) * OUTPUT_STRIDE
        centre_y = (ys[index][keep] + offset[index, 1, cell]) * OUTPUT_STRIDE
        half_w = size[index, 0, cell] * OUTPUT_STRIDE / 2
        half_h = size[index, 1, cell] * OUTPUT_STRIDE / 2
        boxes = torch.stack(
            [centre_x - half_w, centre_y - half_h, centre_x + half_w, centre_y + half_h], dim=1
        )
        if image_size is not None:
            boxes[:, 0::2] = boxes[:, 0::2].clamp(0, image_size[1])
            boxes[:, 1::2] = boxes[:, 1::2].clamp(0, image_size[0])
        results.append(
            Detections(
                boxes=boxes.cpu().numpy().astype(np.float32),
                scores=scores[index][keep].cpu().numpy().astype(np.float32),
                labels=labels[index][keep].cpu().numpy().astype(np.int64),
            )
        )
    return results
