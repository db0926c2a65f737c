"""The pinned production model resolves from the bundled export alone (fresh clone: empty store,
no server) and runs."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import yaml

from walkout_detection import load_production_model
from walkout_detection.predict import EXPERIMENTS_DIR, PIN_PATH


def test_pin_points_at_a_bundled_experiment() -> None:
    pin = yaml.safe_load(PIN_PATH.read_text())
    assert pin["component"] == "detection"
    assert (EXPERIMENTS_DIR / pin["experiment_id"] / "experiment.json").is_file()
    assert pin["blind_metrics"]["AP50"] >= 0.90


def test_production_model_loads_from_the_bundled_export(walkout_home: Path) -> None:
    # A fresh store: the pinned experiment can only come from the package's experiments/ folder.
    assert not list(walkout_home.glob("experiments/*"))
    detector = load_production_model(device="cpu")
    pin = yaml.safe_load(PIN_PATH.read_text())
    assert detector.experiment_id == pin["experiment_id"]
    assert detector.class_names[0] == "person" and len(detector.class_names) == 15
    frame = np.full((240, 320, 3), 180, dtype=np.uint8)
    (result,) = detector.detect([frame])
    assert result.boxes.shape[1] == 4 and len(result) <= detector.settings.max_detections
