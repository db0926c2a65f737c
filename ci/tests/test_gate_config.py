"""gate.yaml loading: defaults, typed values, errors that name the key and suggest the fix."""

from __future__ import annotations

import pytest
import yaml

from walkout_ci.errors import ConfigError
from walkout_ci.gate_config import load_gate_config, parse_gate_config

GATE_YAML = """
schema_version: 1
component: detection
evaluate:
  prepare: ["walkout-detection", "gate-inputs", "--data", "{data}", "--out", "{inputs}"]
  predict: ["walkout-detection", "gate-predict", "--model", "{model}", "--inputs", "{inputs}",
            "--out", "{predictions}"]
  score: ["walkout-detection", "gate-score", "--data", "{data}", "--predictions", "{predictions}",
          "--report-dir", "{report_dir}", "--weights-sha256", "{weights_sha256}"]
  timeout_s: 1800
primary_metric: {name: AP50, direction: higher}
metrics:
  AP50: {tolerance: 0.01, mode: absolute}
  AP: {tolerance: 0.02, mode: relative}
per_class:
  metric: AP50
  max_drop: 0.05
  floor: 0.80
paired:
  margin: 0.01
  confidence: 0.95
  resamples: 2000
  per_class: true
  broken_threshold: 0.5
"""


def with_change(path: list[str], value) -> str:
    data = yaml.safe_load(GATE_YAML)
    target = data
    for key in path[:-1]:
        target = target[key]
    if value is DELETE:
        del target[path[-1]]
    else:
        target[path[-1]] = value
    return yaml.safe_dump(data)


DELETE = object()


def test_the_architecture_example_loads(tmp_path):
    (tmp_path / "gate.yaml").write_text(GATE_YAML)
    config = load_gate_config(tmp_path)
    assert config.component == "detection"
    assert config.evaluate.predict[1] == "gate-predict" and config.evaluate.timeout_s == 1800
    assert config.metrics["AP"].mode == "relative" and config.metrics["AP50"].direction == "higher"
    assert config.per_class.floor == 0.8 and config.paired.per_class is True
    assert config.paired.seed == 0 and config.evaluate.workdir == "."
    assert config.model.kind == "pin" and config.model.path == "model_ref.yaml"
    assert config.evaluate.code_paths == (".",)
    assert len(config.rules_hash()) == 64


def test_rules_hash_changes_with_any_rule():
    base = parse_gate_config(GATE_YAML)
    assert base.rules_hash() == parse_gate_config(GATE_YAML).rules_hash()
    changed = parse_gate_config(with_change(["paired", "margin"], 0.02))
    assert changed.rules_hash() != base.rules_hash()


@pytest.mark.parametrize(
    ("path", "value", "expected"),
    [
        (["primary_metrc"], {"name": "AP50"}, "primary_metrc: unknown key (did you mean 'primary_metric'?)"),
        (["paired", "resample"], 10, "paired.resample: unknown key (did you mean 'resamples'?)"),
        (["metrics", "AP50", "tolerence"], 0.1, "AP50.tolerence: unknown key (did you mean 'tolerance'?)"),
        (["schema_version"], 2, "schema_version: expected 1, got 2"),
        (["evaluate", "timeout_s"], 0, "evaluate.timeout_s: expected a value > 0, got 0"),
        (
            ["evaluate", "score"],
            ["x", "{data}", "{predictions}"],
            "must contain the placeholder {report_dir}",
        ),
        (["evaluate", "predict"], ["x", "{modle}", "{inputs}", "{predictions}"], "did you mean {model}?"),
        (["evaluate", "predict"], "run.sh", "expected a non-empty list of strings"),
        # The untrusted stage never gets the ground truth or the report folder.
        (
            ["evaluate", "predict"],
            ["x", "{model}", "{inputs}", "{predictions}", "{data}"],
            "unknown placeholder",
        ),
        (["evaluate", "predict"], ["x", "{model}", "{inputs}", "{report_dir}"], "unknown placeholder"),
        (["evaluate", "prepare"], ["x", "{data}"], "must contain the placeholder {inputs}"),
        (
            ["evaluate", "command"],
            ["x", "{model}", "{data}", "{report_dir}"],
            "split it into evaluate.prepare",
        ),
        (["evaluate", "workdir"], "../elsewhere", "evaluate.workdir: must be relative"),
        (["metrics", "AP50", "mode"], "percent", "metrics.AP50.mode: expected one of absolute, relative"),
        (["metrics", "AP50", "tolerance"], -0.1, "metrics.AP50.tolerance: expected a value >= 0"),
        (["metrics"], {"AP": {"tolerance": 0.1}}, "primary_metric.name: 'AP50' is not listed under metrics"),
        (["metrics"], {}, "metrics: expected at least one"),
        (["primary_metric", "direction"], "up", "primary_metric.direction: expected one of higher, lower"),
        (["per_class", "max_drop"], DELETE, None),
        (["paired", "confidence"], 1.0, "paired.confidence: expected a value in (0.5, 1)"),
        (["paired", "confidence"], 0.5, "paired.confidence: expected a value > 0.5"),
        (["paired", "resamples"], 10, "paired.resamples: expected an integer >= 100, got 10"),
        (["paired", "resamples"], 2000.5, "paired.resamples: expected an integer"),
        (["paired", "per_class"], "yes", "paired.per_class: expected true or false"),
        (["paired", "broken_threshold"], 2, "paired.broken_threshold: expected a value <= 1"),
        (["component"], DELETE, "component: missing required key"),
        (["model"], {"kind": "lockfile"}, "model.kind: expected one of pin, file"),
        (["model"], {"pth": "x"}, "model.pth: unknown key (did you mean 'path'?)"),
        (["model"], {"kind": "file", "path": "/abs/refs.yaml"}, "model.path: expected a relative path"),
        (["model"], {"kind": "file", "path": "../model_refs.yaml"}, None),
        (["evaluate", "code_paths"], [], "evaluate.code_paths: expected a non-empty list"),
        (["evaluate", "code_paths"], [".", "../submodules"], None),
    ],
)
def test_bad_values_name_the_key(path, value, expected):
    text = with_change(path, value)
    if expected is None:
        parse_gate_config(text)  # the change is valid
        return
    with pytest.raises(ConfigError) as caught:
        parse_gate_config(text, source="comp/gate.yaml")
    assert expected in str(caught.value)
    assert str(caught.value).startswith("comp/gate.yaml: ")


def test_per_class_needs_a_rule():
    text = with_change(["per_class"], {"metric": "AP50"})
    with pytest.raises(ConfigError, match="set max_drop and/or floor"):
        parse_gate_config(text)


def test_missing_file_and_bad_yaml(tmp_path):
    with pytest.raises(ConfigError, match="no gate config at"):
        load_gate_config(tmp_path)
    (tmp_path / "gate.yaml").write_text("a: [")
    with pytest.raises(ConfigError, match="is not valid YAML"):
        load_gate_config(tmp_path / "gate.yaml")
    (tmp_path / "gate.yaml").write_text("- 1\n")
    with pytest.raises(ConfigError, match="expected a mapping"):
        load_gate_config(tmp_path / "gate.yaml")
