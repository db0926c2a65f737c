from __future__ import annotations

import numpy as np
import pytest
import torch

from walkout_pose.config import ModelConfig
from walkout_pose.errors import InputError
from walkout_pose.model import build_model
from walkout_pose.predict import estimate

FRAME = np.full((120, 160, 3), 80, dtype=np.uint8)


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    return build_model(ModelConfig(input_height=32, input_width=32, width=8, deconv_channels=8)).eval()


def test_estimate_returns_n_by_7_by_3_in_frame_pixels(model):
    boxes = np.array([[10, 10, 40, 50], [100.5, 60, 150, 119]])
    keypoints = estimate(model, FRAME, boxes)
    assert keypoints.shape == (2, 7, 3) and keypoints.dtype == np.float32
    # Keypoints are decoded inside each person's crop, so they lie near its box.
    for box, person in zip(boxes, keypoints, strict=True):
        width, height = box[2] - box[0], box[3] - box[1]
        assert (person[:, 0] >= box[0] - width).all() and (person[:, 0] <= box[2] + width).all()
        assert (person[:, 1] >= box[1] - height).all() and (person[:, 1] <= box[3] + height).all()
    assert ((keypoints[..., 2] >= 0) & (keypoints[..., 2] <= 1)).all()


def test_estimate_batches_give_the_same_answer_as_one_by_one(model):
    boxes = np.array([[10, 10, 40, 50], [60, 20, 90, 70], [100, 60, 150, 119]])
    together = estimate(model, FRAME, boxes, batch_size=32)
    apart = np.concatenate([estimate(model, FRAME, box[None], batch_size=1) for box in boxes])
    np.testing.assert_allclose(together, apart, atol=1e-4)


def test_no_boxes_gives_an_empty_result(model):
    assert estimate(model, FRAME, np.zeros((0, 4))).shape == (0, 7, 3)
    assert estimate(model, FRAME, []).shape == (0, 7, 3)


def test_box_outside_the_frame_names_the_box(model):
    with pytest.raises(InputError, match=r"box 1 .* entirely outside the 160x120 frame"):
        estimate(model, FRAME, np.array([[10, 10, 40, 50], [200, 10, 240, 50]]))


def test_a_box_partly_outside_the_frame_is_fine(model):
    assert estimate(model, FRAME, np.array([[-10, -5, 20, 30]])).shape == (1, 7, 3)


def test_inverted_box_hints_at_the_xyxy_format(model):
    with pytest.raises(InputError, match=r"not x y w h"):
        estimate(model, FRAME, np.array([[50, 50, 20, 30]]))


@pytest.mark.parametrize(
    ("frame", "message"),
    [
        (np.zeros((120, 160), np.uint8), r"shape \[H, W, 3\]"),
        (np.zeros((120, 160, 3), np.float32), "must be uint8"),
        ("frame.png", "numpy uint8 array"),
    ],
)
def test_bad_frames_are_clear_errors(model, frame, message):
    with pytest.raises(InputError, match=message):
        estimate(model, frame, np.array([[10, 10, 40, 50]]))


def test_bad_box_array_shape_is_a_clear_error(model):
    with pytest.raises(InputError, match=r"array \[N, 4\]"):
        estimate(model, FRAME, np.array([10, 10, 40, 50, 3]))
