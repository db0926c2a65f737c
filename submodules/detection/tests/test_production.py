"""The pinned production model resolves with no server (this monorepo: from the bundled export with an
empty store; an org clone: by id from the org's store, see conftest.pinned_experiment) and runs."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import yaml

from walkout_detection import load_production_model
from walkout_detection.predict import EXPERIMENTS_DIR, PIN_PATH


def test_pin_points_at_a_bundled_or_stored_experiment(pinned_experiment: Path) -> None:
    pin = yaml.safe_load(PIN_PATH.read_text())
    assert pin["component"] == "detection"
    assert pinned_experiment.name == pin["experiment_id"]
    assert (pinned_experiment / "experiment.json").is_file()


def test_pinned_blind_metrics_meet_the_floor() -> None:
    pin = yaml.safe_load(PIN_PATH.read_text())
    if not pin.get("blind_metrics"):
        # Valid on a branch: only CI holds the blind key, and its verdict carries the blind metrics.
        pytest.skip("the pin has no blind metrics yet (a branch pin; CI's verdict measures them)")
    assert pin["blind_metrics"]["AP50"] >= 0.90


def test_production_model_loads_from_the_bundled_export(walkout_home: Path, pinned_experiment: Path) -> None:
    # A fresh store holding at most the pinned experiment (org clone): nothing else can be loaded.
    stored = list(walkout_home.glob("experiments/*"))
    assert stored in ([], [pinned_experiment])
    assert stored or pinned_experiment.parent == EXPERIMENTS_DIR
    detector = load_production_model(device="cpu")
    pin = yaml.safe_load(PIN_PATH.read_text())
    assert detector.experiment_id == pin["experiment_id"]
    assert detector.class_names[0] == "person" and len(detector.class_names) == 15
    frame = np.full((240, 320, 3), 180, dtype=np.uint8)
    (result,) = detector.detect([frame])
    assert result.boxes.shape[1] == 4 and len(result) <= detector.settings.max_detections
