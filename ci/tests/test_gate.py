"""The gate's rules on constructed reports: FAIL naming the class, PASS within tolerance, ERROR fail-closed."""

from __future__ import annotations

import copy

import numpy as np
import pytest

from walkout_ci.gate import ERROR, FAIL, PASS, compare_reports, decide, error_result
from walkout_ci.gate_config import gate_config_from_dict
from walkout_ci.testing import make_report

RULES = {
    "schema_version": 1,
    "component": "detection",
    "evaluate": {"command": ["{python}", "eval.py", "{model}", "{data}", "{report_dir}"], "timeout_s": 60},
    "primary_metric": {"name": "AP50", "direction": "higher"},
    "metrics": {"AP50": {"tolerance": 0.01, "mode": "absolute"}},
    "per_class": {"metric": "AP50", "max_drop": 0.05, "floor": 0.3},
}


def config(**changes):
    data = copy.deepcopy(RULES)
    for key, value in changes.items():
        if value is None:
            data.pop(key, None)
        else:
            data[key] = value
    return gate_config_from_dict(data, source="test gate.yaml")


def scores(classes: dict[str, list[float]]) -> dict[str, dict[str, float]]:
    """{class: [score per sample]} -> make_report's {sample id: {class: score}} (same samples for all)."""
    count = len(next(iter(classes.values())))
    return {f"s{index:03d}": {name: values[index] for name, values in classes.items()} for index in range(count)}


def rule(result, name):
    return next(item for item in result.rules if item.name == name)


def test_overall_better_but_one_class_collapses_fails_naming_the_class():
    baseline = make_report(
        metrics={"AP50": 0.80},
        per_class={"person": {"AP50": 0.80}, "sku_03": {"AP50": 0.90}, "sku_07": {"AP50": 0.70}},
    )
    candidate = make_report(
        metrics={"AP50": 0.85},
        per_class={"person": {"AP50": 0.95}, "sku_03": {"AP50": 0.20}, "sku_07": {"AP50": 0.90}},
    )
    result = compare_reports(config(), baseline, candidate)
    assert result.verdict == FAIL and result.exit_code == 1
    assert rule(result, "metric[AP50]").status == PASS
    assert rule(result, "per_class.max_drop[sku_03]").status == FAIL
    assert rule(result, "per_class.floor[sku_03]").status == FAIL
    assert "sku_03" in result.summary() and "person" not in result.summary()
    # The per-class table is sorted by delta, worst first, and marks the failing row.
    assert [row.name for row in result.classes] == ["sku_03", "person", "sku_07"]
    assert [row.failing for row in result.classes] == [True, False, False]


def test_a_drop_inside_the_tolerance_passes():
    baseline = make_report(metrics={"AP50": 0.900}, per_class={"person": {"AP50": 0.90}, "sku": {"AP50": 0.80}})
    candidate = make_report(metrics={"AP50": 0.895}, per_class={"person": {"AP50": 0.87}, "sku": {"AP50": 0.79}})
    result = compare_reports(config(), baseline, candidate)
    assert result.verdict == PASS and result.exit_code == 0, result.summary()
    assert rule(result, "metric[AP50]").delta == pytest.approx(-0.005)


def test_a_drop_beyond_the_tolerance_fails():
    baseline = make_report(metrics={"AP50": 0.90}, per_class={"person": {"AP50": 0.9}})
    candidate = make_report(metrics={"AP50": 0.88}, per_class={"person": {"AP50": 0.9}})
    result = compare_reports(config(), baseline, candidate)
    assert result.verdict == FAIL
    assert "AP50 got worse: 0.9000 -> 0.8800" in rule(result, "metric[AP50]").message


def test_relative_tolerance_and_lower_is_better():
    rules = config(
        primary_metric={"name": "IDSW", "direction": "lower"},
        metrics={"IDSW": {"tolerance": 0.10, "mode": "relative"}},
        per_class=None,
    )
    baseline = make_report(metrics={"IDSW": 20})
    assert compare_reports(rules, baseline, make_report(metrics={"IDSW": 21.9})).verdict == PASS
    assert compare_reports(rules, baseline, make_report(metrics={"IDSW": 22.5})).verdict == FAIL
    assert compare_reports(rules, baseline, make_report(metrics={"IDSW": 5})).verdict == PASS


@pytest.mark.parametrize("side", ["baseline", "candidate"])
def test_a_missing_metric_is_an_error_not_a_pass(side):
    complete = make_report(metrics={"AP50": 0.9}, per_class={"person": {"AP50": 0.9}})
    lacking = make_report(metrics={"AP": 0.9}, per_class={"person": {"AP50": 0.9}})
    pair = (lacking, complete) if side == "baseline" else (complete, lacking)
    result = compare_reports(config(), *pair)
    assert result.verdict == ERROR and result.exit_code == 2
    assert f"metric 'AP50' is missing from the {side} report" in rule(result, "metric[AP50]").message


def test_a_class_missing_from_the_candidate_is_an_error():
    baseline = make_report(metrics={"AP50": 0.9}, per_class={"person": {"AP50": 0.9}, "sku": {"AP50": 0.9}})
    candidate = make_report(metrics={"AP50": 0.95}, per_class={"person": {"AP50": 0.95}})
    result = compare_reports(config(), baseline, candidate)
    assert result.verdict == ERROR
    assert "class 'sku': the candidate report has no entry" in rule(result, "per_class[sku]").message


def test_error_wins_over_fail():
    baseline = make_report(metrics={"AP50": 0.9}, per_class={"person": {"AP50": 0.9}, "sku": {"AP50": 0.9}})
    candidate = make_report(metrics={"AP50": 0.1}, per_class={"person": {"AP50": 0.95}})
    assert compare_reports(config(), baseline, candidate).verdict == ERROR


def test_different_datasets_cannot_be_compared():
    sample_scores = scores({"person": [1.0, 0.0]})
    baseline = make_report(sample_scores=sample_scores, dataset_hash="1" * 64)
    candidate = make_report(sample_scores=sample_scores, dataset_hash="2" * 64)
    result = compare_reports(config(), baseline, candidate)
    assert result.verdict == ERROR and "different datasets" in rule(result, "comparable").message


def test_different_sample_sets_cannot_be_compared():
    baseline = make_report(sample_scores={"a": {"person": 1.0}, "b": {"person": 1.0}})
    candidate = make_report(sample_scores={"a": {"person": 1.0}, "c": {"person": 1.0}})
    result = compare_reports(config(), baseline, candidate)
    assert result.verdict == ERROR and "1 only in the baseline (b)" in rule(result, "comparable").message


def test_wrong_component_is_an_error():
    report = make_report(component="pose", metrics={"AP50": 0.9}, per_class={"p": {"AP50": 0.9}})
    result = compare_reports(config(), report, report)
    assert result.verdict == ERROR and "component 'pose'" in rule(result, "comparable").message


def test_no_rules_is_never_a_pass():
    assert decide([]) == ERROR
    assert error_result("baseline missing").exit_code == 2


PAIRED = {"margin": 0.02, "confidence": 0.95, "resamples": 1000, "per_class": True, "broken_threshold": 0.5}


def test_paired_per_class_test_fails_the_collapsed_class_only():
    rng = np.random.default_rng(0)
    count = 80
    person = rng.uniform(0.6, 1.0, count)
    sku = rng.uniform(0.6, 1.0, count)
    baseline = make_report(sample_scores=scores({"person": person.tolist(), "sku_03": sku.tolist()}))
    candidate_person = np.clip(person + 0.1, 0, 1)
    candidate_sku = sku.copy()
    candidate_sku[:30] = 0.0  # 30 samples of sku_03 collapse
    candidate = make_report(
        sample_scores=scores({"person": candidate_person.tolist(), "sku_03": candidate_sku.tolist()}),
        failures=[{"sample_id": "s000", "class": "sku_03", "kind": "missed", "image": "images/s000.png"}],
    )
    rules = config(per_class=None, metrics={"AP50": {"tolerance": 0.5}}, paired=PAIRED)
    result = compare_reports(rules, baseline, candidate, candidate_dir="/reports/cand")
    assert result.verdict == FAIL, result.summary()
    assert rule(result, "paired.per_class[person]").status == PASS
    assert rule(result, "paired.per_class[sku_03]").status == FAIL
    assert "Holm-adjusted p" in rule(result, "paired.per_class[sku_03]").message
    assert result.newly_broken == {"sku_03": [f"s{index:03d}" for index in range(30)]}
    assert result.newly_fixed == {}
    sku_row = next(row for row in result.classes if row.name == "sku_03")
    assert sku_row.failing and sku_row.paired_lower < -0.02 and sku_row.paired_n == count
    assert result.broken_failures[0]["image_path"] == "/reports/cand/images/s000.png"


def test_paired_test_passes_identical_models_and_lists_fixed_samples():
    baseline = make_report(sample_scores=scores({"person": [0.9, 0.2, 0.8, 0.7]}))
    candidate = make_report(sample_scores=scores({"person": [0.9, 0.9, 0.8, 0.7]}))
    rules = config(per_class=None, paired=PAIRED, metrics={"AP50": {"tolerance": 0.0}})
    result = compare_reports(rules, baseline, candidate)
    assert result.verdict == PASS, result.summary()
    assert result.newly_fixed == {"person": ["s001"]} and result.newly_broken == {}
    assert result.paired["passed"] and result.paired["n"] == 4


def test_paired_test_without_per_sample_scores_is_an_error():
    report = make_report(metrics={"AP50": 0.9}, per_class={"person": {"AP50": 0.9}})
    result = compare_reports(config(paired=PAIRED), report, report)
    assert result.verdict == ERROR
    assert "no per_sample scores" in rule(result, "paired[score]").message


def test_per_class_paired_without_class_scores_is_an_error():
    baseline = make_report(sample_scores={"a": {}, "b": {}})
    result = compare_reports(config(per_class=None, paired=PAIRED), baseline, baseline)
    assert result.verdict == ERROR and "carry no per-class scores" in rule(result, "paired.per_class").message


def test_verdict_json_is_plain_data():
    import json

    report = make_report(sample_scores=scores({"person": [0.9, 0.8]}))
    data = compare_reports(config(paired=PAIRED), report, report).to_dict()
    assert json.loads(json.dumps(data))["verdict"] == PASS and data["exit_code"] == 0
