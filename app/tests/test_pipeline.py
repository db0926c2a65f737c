"""The model pipeline's plumbing with stand-in components: detection -> tracking -> pose -> engine."""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest

from walkout.engine import EngineConfig
from walkout.errors import VideoError
from walkout.groundtruth import load_video_ground_truth
from walkout.pipeline import STAGES, System
from walkout_detection.model import Detections


class TruthDetector:
    """Answers with the ground-truth boxes of a video (persons and products), as a perfect detector would."""

    def __init__(self, truth) -> None:
        self.frames = {f.frame: f for f in truth.frames}
        skus = sorted(
            {slot.sku for slot in truth.layout.slots} | {p.sku for f in truth.frames for p in f.products}
        )
        self.class_names = ["person", *skus]
        self.frame = 0

    def detect(self, images, *, min_score=None):
        self.frame += 1
        observation = self.frames[self.frame]
        boxes = [s.box for s in observation.shoppers] + [p.box for p in observation.products]
        labels = [0] * len(observation.shoppers) + [
            self.class_names.index(p.sku) for p in observation.products
        ]
        return [
            Detections(
                boxes=np.array(boxes, dtype=np.float64).reshape(-1, 4),
                scores=np.full(len(boxes), 0.9),
                labels=np.array(labels, dtype=int),
            )
        ]


class TruthPose:
    """Stands in for the pose model: returns ground-truth keypoints of the person under each box."""

    def __init__(self, truth, detector) -> None:
        self.frames = {f.frame: f for f in truth.frames}
        self.detector = detector

    def __call__(self, model, frame_bgr, boxes):
        shoppers = self.frames[self.detector.frame].shoppers
        out = []
        for box in boxes:
            nearest = min(shoppers, key=lambda s: float(np.abs(np.array(s.box) - box).sum()))
            out.append(nearest.keypoints)
        return np.array(out, dtype=np.float32).reshape(-1, 7, 3)


class IdentityTracker:
    """Keeps detection order as ids: fine for a test where boxes come in a stable order."""

    def __init__(self, truth, detector) -> None:
        self.frames = {f.frame: f for f in truth.frames}
        self.detector = detector

    def update(self, detections, frame=None):
        shoppers = self.frames[self.detector.frame].shoppers
        return np.array([[*s.box, s.track_id] for s in shoppers], dtype=np.float64).reshape(-1, 5)


@pytest.fixture
def perfect_system(rendered_scenarios, monkeypatch):
    video = rendered_scenarios["two_at_one_shelf"] / "videos" / "two_at_one_shelf"
    truth = load_video_ground_truth(video)
    detector = TruthDetector(truth)
    monkeypatch.setattr("walkout_pose.estimate", TruthPose(truth, detector))
    # Ground-truth stand-ins: the engine gets the thresholds for ground-truth keypoint visibility.
    system = System(
        detector=detector,
        pose_model=object(),
        tracker_factory=lambda: IdentityTracker(truth, detector),
        engine_config=EngineConfig(),
    )
    return system, video, truth


def test_perfect_components_give_the_true_receipts(perfect_system, tmp_path):
    system, video, truth = perfect_system
    preview = tmp_path / "preview.avi"
    result = system.run_video(video, preview=preview)
    assert result.receipts == truth.receipts, result.events
    assert result.frames == truth.frame_count
    assert set(result.stage_seconds) == set(STAGES)
    capture = cv2.VideoCapture(str(preview))
    ok, image = capture.read()
    capture.release()
    assert ok and image.shape[1] > 320  # the frame plus the cart panel
    json.dumps(result.output_json())


def test_a_truncated_video_stops_the_run(perfect_system, tmp_path):
    system, video, _ = perfect_system
    broken = tmp_path / "video"
    broken.mkdir()
    for name in ("layout.yaml", "seqinfo.ini"):
        (broken / name).write_bytes((video / name).read_bytes())
    data = (video / "video.avi").read_bytes()
    (broken / "video.avi").write_bytes(data[: len(data) // 3])
    with pytest.raises(VideoError, match="truncated"):
        system.run_video(broken)
