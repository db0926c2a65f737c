"""The pinned production model, measured: MOTA / IDF1 / HOTA on a small simulator split generated here.

`test_production`-style checks load the pinned appearance model; the README's figures (blind MOTA
0.975, IDF1 0.980, HOTA 0.821 with synthesised detections) were measured elsewhere and written down.
This test measures the pinned model itself, through `walkout-tracking evaluate --model model_ref.yaml`
(the gate's three stages), on a fixed split that no model was trained or tuned on, and asserts floors
below the README figures with the margins stated next to them.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from walkout_tracking.cli import main

PIN_PATH = Path(__file__).resolve().parents[1] / "model_ref.yaml"
# Default store like the README's blind split (4 videos x 300 frames there): 2 videos x 150 frames.
# Not a training/validation/blind seed.
SEED = 1402
VIDEOS, FRAMES = 2, 150
# README (blind, synthesised detections, pinned appearance model): MOTA 0.975, IDF1 0.980, HOTA 0.821.
# Measured here (2026-11-26, this split): MOTA 0.975, IDF1 0.987, HOTA 0.828, 1 ID switch.
# Floors: README - 0.045 (MOTA), - 0.05 (IDF1: one long identity swap on 2 short videos costs
# ~0.03), - 0.05 (HOTA). The motion-only tracker on the README's blind split (IDF1 0.885) fails them.
FLOORS = {"MOTA": 0.93, "IDF1": 0.93, "HOTA": 0.77}


@pytest.fixture(scope="module")
def split(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from walkout_sim.config import GeneratorConfig, OutputConfig
    from walkout_sim.generate import generate_split

    out = tmp_path_factory.mktemp("measured") / "val"
    config = GeneratorConfig(output=OutputConfig(image_stride=1000))
    generate_split(out, split="val", videos=VIDEOS, frames=FRAMES, seed=SEED, config=config)
    return out


def test_pinned_model_meets_the_measured_floors(split: Path, pinned_experiment: Path, tmp_path: Path) -> None:
    report_dir = tmp_path / "report"
    argv = ["evaluate", "--model", str(PIN_PATH), "--data", str(split), "--report-dir", str(report_dir)]
    assert main([*argv, "--quiet"]) == 0
    report = json.loads((report_dir / "report.json").read_text())
    assert report["experiment_id"] == pinned_experiment.name
    metrics = report["metrics"]
    print(f"\n[tracking measured] {metrics}")
    for name, floor in FLOORS.items():
        assert metrics[name] >= floor, (name, metrics[name], floor)
