from __future__ import annotations

import numpy as np
import torch

from walkout_detection.config import ModelConfig
from walkout_detection.data import encode_targets
from walkout_detection.model import CenterNet, decode, pad_to_multiple


def test_output_shapes_at_stride_4() -> None:
    model = CenterNet.from_config(
        ModelConfig(width=16, head_channels=16, blocks_stride16=1), num_classes=5
    ).eval()
    with torch.inference_mode():
        outputs = model(torch.rand(2, 3, 240, 320))
    assert outputs["heatmap"].shape == (2, 5, 60, 80)
    assert outputs["size"].shape == (2, 2, 60, 80)
    assert outputs["offset"].shape == (2, 2, 60, 80)
    assert (outputs["size"] >= 0).all()


def test_untrained_heatmap_starts_at_the_low_prior() -> None:
    model = CenterNet.from_config(ModelConfig(width=16), num_classes=3).eval()
    with torch.inference_mode():
        heat = torch.sigmoid(model(torch.rand(1, 3, 64, 64))["heatmap"])
    assert heat.mean() < 0.2


def test_pad_to_multiple_pads_bottom_right_only() -> None:
    images = torch.ones(1, 3, 30, 45)
    padded = pad_to_multiple(images, 16)
    assert padded.shape == (1, 3, 32, 48)
    assert padded[:, :, :30, :45].eq(1).all()
    assert padded[:, :, 30:, :].eq(0).all()


def _outputs_from_targets(
    boxes: np.ndarray, labels: np.ndarray, classes: int, height: int, width: int
) -> dict:
    """Perfect network outputs built from the training targets (logits +-10 at/away from centres)."""
    targets = encode_targets(boxes, labels, num_classes=classes, height=height, width=width)
    heat = np.where(targets["heatmap"] == 1.0, 10.0, -10.0).astype(np.float32)
    size = np.zeros((2, height // 4, width // 4), dtype=np.float32)
    offset = np.zeros_like(size)
    for index, cell, wh, off in zip(
        range(len(boxes)), targets["index"], targets["size"], targets["offset"], strict=False
    ):
        del index
        y, x = divmod(int(cell), width // 4)
        size[:, y, x] = wh
        offset[:, y, x] = off
    return {
        "heatmap": torch.from_numpy(heat)[None],
        "size": torch.from_numpy(size)[None],
        "offset": torch.from_numpy(offset)[None],
    }


def test_decode_inverts_target_encoding() -> None:
    boxes = np.array(
        [[10.0, 12.0, 24.5, 26.0], [50.0, 20.0, 80.0, 90.0], [100.2, 5.0, 112.0, 19.0]], np.float32
    )
    labels = np.array([1, 0, 2])
    outputs = _outputs_from_targets(boxes, labels, classes=3, height=96, width=128)
    (found,) = decode(outputs, max_detections=10, min_score=0.5, image_size=(96, 128))
    assert len(found) == 3
    order = np.argsort(found.boxes[:, 0])
    np.testing.assert_allclose(found.boxes[order], boxes, atol=1e-4)
    np.testing.assert_array_equal(found.labels[order], labels)


def test_decode_keeps_only_local_maxima() -> None:
    heat = torch.full((1, 1, 8, 8), -10.0)
    heat[0, 0, 3, 3] = 5.0
    heat[0, 0, 3, 4] = 4.0  # a neighbour of the peak: suppressed by the 3x3 max-pool
    heat[0, 0, 7, 7] = 3.0
    outputs = {"heatmap": heat, "size": torch.ones(1, 2, 8, 8), "offset": torch.zeros(1, 2, 8, 8)}
    (found,) = decode(outputs, max_detections=10, min_score=0.5)
    assert len(found) == 2
    np.testing.assert_allclose(found.boxes[0], [10.0, 10.0, 14.0, 14.0])
    assert found.scores[0] > found.scores[1]
