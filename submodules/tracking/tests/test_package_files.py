"""The package's own files: gate.yaml is valid for walkout-ci and its metrics are ones evaluate writes."""

from pathlib import Path

from walkout_ci.gate_config import load_gate_config
from walkout_tracking.config import load_config
from walkout_tracking.evaluate import report_metrics

PACKAGE_DIR = Path(__file__).resolve().parents[1]


def test_gate_yaml_is_valid_and_names_reported_metrics():
    gate = load_gate_config(PACKAGE_DIR / "gate.yaml")
    assert gate.component == "tracking"
    overall = dict.fromkeys(
        [
            "mota",
            "idf1",
            "hota",
            "deta",
            "assa",
            "motp",
            "num_switches",
            "mostly_tracked",
            "mostly_lost",
            "num_false_positives",
            "num_misses",
            "num_unique_objects",
        ],
        0.5,
    )
    reported = report_metrics(overall, frames=10, seconds=1.0)
    assert gate.primary_metric.name in reported
    assert set(gate.metrics) <= set(reported)


def test_production_config_is_valid():
    config = load_config(PACKAGE_DIR / "configs" / "production.yaml")
    assert config.tracker.use_appearance


def test_production_model_loads_from_the_bundled_export_with_an_empty_store(walkout_home, pinned_experiment):
    """No ClearML server: the pinned model loads from experiments/ (monorepo, empty store) or by id from
    the org's store (an org clone, see conftest.pinned_experiment)."""
    import numpy as np

    from walkout_tracking import load_production_model

    model = load_production_model()
    assert model.embedder is not None and model.experiment_id.startswith(("offline-", "local-"))
    tracker = model.make_tracker()
    frame = np.zeros((240, 320, 3), np.uint8)
    tracks = tracker.update(np.array([[10.0, 10.0, 40.0, 40.0, 0.9]]), frame=frame)
    assert tracks.shape == (1, 5)


def test_gate_yaml_stages_are_commands_the_cli_runs(sim_train, tmp_path):
    """gate.yaml's three commands, placeholders filled as the gate does, run and give a report."""
    from walkout_ci.report import read_report
    from walkout_tracking.cli import main

    gate = load_gate_config(PACKAGE_DIR / "gate.yaml")
    values = {
        "python": "python",
        "data": str(sim_train),
        "inputs": str(tmp_path / "inputs"),
        "model": "motion-only",
        "predictions": str(tmp_path / "predictions"),
        "report_dir": str(tmp_path / "report"),
        "model_ref": "motion-only",
        "weights_sha256": "0" * 64,
        "experiment_id": "",
        "commit": "",
    }
    for stage in ("prepare", "predict", "score"):
        argv = [part.format(**values) for part in getattr(gate.evaluate, stage)]
        assert argv[:3] == ["python", "-m", "walkout_tracking.cli"], stage
        assert main(argv[3:]) == 0, stage
    assert read_report(tmp_path / "report")["model"]["ref"] == "motion-only"
