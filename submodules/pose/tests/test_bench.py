from __future__ import annotations

import numpy as np

from walkout_pose.bench import BOXES_PER_FRAME, persons_per_second, synthetic_frame
from walkout_pose.config import ModelConfig
from walkout_pose.model import build_model


def test_synthetic_frame_has_person_sized_boxes_inside_the_frame():
    frame, boxes = synthetic_frame(np.random.default_rng(0))
    assert frame.shape == (240, 320, 3) and boxes.shape == (BOXES_PER_FRAME, 4)
    assert (boxes[:, 2] > boxes[:, 0]).all() and (boxes[:, 0] < 320).all() and (boxes[:, 1] < 240).all()


def test_throughput_is_measured_for_a_batch():
    model = build_model(ModelConfig(input_height=32, input_width=32, width=8, deconv_channels=8)).eval()
    wall, cpu = persons_per_second(model, batch_size=4, seconds=0.05)
    assert wall > 0 and cpu > 0
