"""The pinned production model loads with no server: from the package's bundled export (this monorepo,
empty store) or by id from the org's store (an org clone, see conftest.pinned_experiment)."""

from __future__ import annotations

import numpy as np
import yaml

import walkout_pose
from walkout_pose.config import KEYPOINT_NAMES
from walkout_pose.model import file_sha256
from walkout_pose.predict import PACKAGE_DIR, resolve_weights


def test_the_pin_resolves_to_the_exported_experiment(walkout_home, pinned_experiment):
    pin = yaml.safe_load((PACKAGE_DIR / "model_ref.yaml").read_text())
    assert pin["component"] == "pose"
    weights = resolve_weights(PACKAGE_DIR / "model_ref.yaml")
    assert pinned_experiment in weights.parents
    assert file_sha256(weights) == pin["weights_sha256"]


def test_production_model_estimates_keypoints(walkout_home, pinned_experiment):
    model = walkout_pose.load_production_model()
    assert model.keypoint_names == KEYPOINT_NAMES
    frame = np.full((240, 320, 3), 120, dtype=np.uint8)
    keypoints = walkout_pose.estimate(model, frame, np.array([[100.0, 100.0, 131.0, 125.0]]))
    assert keypoints.shape == (1, 7, 3)
