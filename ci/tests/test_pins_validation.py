"""Pins: blind metrics must be finite numbers; every pin written is validated as it will be read."""

from __future__ import annotations

import json
import math
from dataclasses import replace
from pathlib import Path

import pytest

from walkout_ci import cli, pins
from walkout_ci.commands_experiment import parse_blind_metrics
from walkout_ci.errors import ConfigError, PinError
from walkout_ci.experiment import Experiment
from walkout_ci.store import Store


def make_experiment(store: Store, tmp_path: Path) -> str:
    """A completed store-only experiment with a weights artifact."""
    exp = Experiment(
        experiment_id="local-abc", project="walkout/test", name="t", mode="local", params={}, store=store
    )
    weights = tmp_path / "weights.pt"
    weights.write_bytes(b"weights")
    exp.upload_weights(weights)
    exp.close()
    return exp.id


PIN = pins.ModelPin(component="detection", experiment_id="local-abc", weights_sha256="a" * 64)


@pytest.mark.parametrize(
    ("text", "metric"),
    [
        ('{"AP50": NaN}', "'AP50'"),
        ('{"AP": 0.5, "AP50": Infinity}', "'AP50'"),
        ('{"AP50": -Infinity}', "'AP50'"),
        ('{"AP50": "0.9"}', "'AP50'"),
        ('{"AP50": true}', "'AP50'"),
        ('{"AP50": null}', "'AP50'"),
        ('{"AP50": [0.9]}', "'AP50'"),
        ('{"": 0.9}', "''"),
    ],
)
def test_blind_metrics_refuse_non_finite_and_non_numeric_values(text: str, metric: str) -> None:
    with pytest.raises(ConfigError, match="--blind-metrics") as caught:
        parse_blind_metrics(text)
    assert f"metric {metric}" in str(caught.value) or f"metric name {metric}" in str(caught.value)


def test_blind_metrics_from_a_report_with_nan_are_refused(tmp_path: Path) -> None:
    report = tmp_path / "report.json"
    report.write_text('{"schema_version": 1, "metrics": {"AP50": 0.9, "AP": NaN}}')
    with pytest.raises(ConfigError, match="metric 'AP' must be finite"):
        parse_blind_metrics(str(report))
    assert parse_blind_metrics('{"AP50": 1}') == {"AP50": 1.0}


@pytest.mark.parametrize("value", [math.nan, math.inf, "0.9", True])
def test_a_pin_file_with_a_bad_blind_metric_is_refused_on_read(tmp_path: Path, value) -> None:
    data = {**PIN.to_dict(), "blind_metrics": {"AP50": value}}
    with pytest.raises(PinError, match="metric 'AP50'"):
        pins.pin_from_dict(data, source="model_ref.yaml")


@pytest.mark.parametrize(
    "bad",
    [
        replace(PIN, blind_metrics={"AP50": math.nan}),
        replace(PIN, blind_metrics={"AP50": math.inf}),
        replace(PIN, weights_sha256="A" * 64),
        replace(PIN, experiment_id="../escape"),
        replace(PIN, training_dataset={"id": "x", "hash": 3}),
        replace(PIN, training_dataset={"id": "x", "extra": "y"}),
    ],
)
def test_write_pin_validates_what_it_would_write_and_writes_nothing_else(tmp_path: Path, bad) -> None:
    out = tmp_path / "model_ref.yaml"
    out.write_text("previous pin\n")
    with pytest.raises(PinError, match=r"model_ref\.yaml"):
        pins.write_pin(out, bad)
    assert out.read_text() == "previous pin\n"  # the old file is untouched
    assert [path.name for path in tmp_path.iterdir()] == ["model_ref.yaml"]  # no temp file left


def test_a_written_pin_reads_back_equal(tmp_path: Path) -> None:
    pin = replace(PIN, blind_metrics={"AP50": 0.93, "AP": 1}, created_at="2026-11-25T15:00:00+00:00")
    pins.write_pin(tmp_path / "model_ref.yaml", pin)
    assert pins.read_pin(tmp_path / "model_ref.yaml") == pin


def test_cli_pin_refuses_nan_blind_metrics_naming_the_metric(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    store = Store.open(tmp_path / "store")
    monkeypatch.setenv("WALKOUT_HOME", str(store.root))
    monkeypatch.delenv("CLEARML_API_HOST", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    experiment_id = make_experiment(store, tmp_path)
    report = tmp_path / "report.json"
    report.write_text(json.dumps({"schema_version": 1, "metrics": {"AP50": float("nan")}}))
    out = tmp_path / "pkg" / "model_ref.yaml"
    argv = ["pin", experiment_id, "--component", "detection", "--out", str(out)]
    assert cli.main([*argv, "--blind-metrics", str(report)]) == 2
    assert "metric 'AP50' must be finite" in capsys.readouterr().err and not out.exists()


def test_no_message_suggests_loading_without_weights_only() -> None:
    source = Path(pins.__file__).parent
    offenders = [
        path.name for path in source.rglob("*.py") if "weights_only=False" in path.read_text(encoding="utf-8")
    ]
    assert offenders == []
