"""The gate on constructed reports (FAIL naming the class, PASS within tolerance, ERROR fail-closed)."""

from __future__ import annotations

import copy
import json
import os
import subprocess
import tempfile
import time
from pathlib import Path

import numpy as np
import pytest
import yaml

from walkout_ci.gate import ERROR, FAIL, PASS, compare_reports, decide, error_result
from walkout_ci.gate_config import gate_config_from_dict
from walkout_ci.testing import (
    MINIMAL_EVALUATE,
    fake_weights,
    make_fake_component_repo,
    make_fake_dataset,
    make_report,
)

RULES = {
    "schema_version": 1,
    "component": "detection",
    "evaluate": MINIMAL_EVALUATE,
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
    return {
        f"s{index:03d}": {name: values[index] for name, values in classes.items()} for index in range(count)
    }


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
    baseline = make_report(
        metrics={"AP50": 0.900}, per_class={"person": {"AP50": 0.90}, "sku": {"AP50": 0.80}}
    )
    candidate = make_report(
        metrics={"AP50": 0.895}, per_class={"person": {"AP50": 0.87}, "sku": {"AP50": 0.79}}
    )
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
    assert any("only 4 samples" in note for note in result.notes)


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


# --- the whole gate through the CLI, on a fake component in a temporary git repository ---------------

BASE_SCORES = {"person": [0.9, 0.8, 0.7, 0.9, 0.8, 0.9], "sku": [0.9, 0.9, 0.8, 0.9, 0.7, 0.8]}


@pytest.fixture
def repo(tmp_path, monkeypatch):
    monkeypatch.setenv("WALKOUT_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("WALKOUT_FAKE_COUNTER", str(tmp_path / "counter.txt"))
    monkeypatch.delenv("WALKOUT_BLIND_KEY", raising=False)
    component = make_fake_component_repo(tmp_path / "repo", BASE_SCORES)
    make_fake_dataset(tmp_path / "data")
    return component


def candidate_file(tmp_path, scores, **behaviour):
    path = tmp_path / "candidate.json"
    path.write_bytes(fake_weights(scores, **behaviour))
    return path


def run_gate_cli(component, candidate, tmp_path, *extra):
    from walkout_ci import cli

    out = tmp_path / "gate-out"
    argv = [
        "gate",
        "--component-dir",
        str(component),
        "--candidate",
        str(candidate),
        "--data",
        str(tmp_path / "data"),
    ]
    argv += [
        "--target-branch",
        "main",
        "--out",
        str(out),
        "--cache-dir",
        str(tmp_path / "cache"),
        "--no-track",
        *extra,
    ]
    code = cli.main(argv)
    verdict = json.loads((out / "verdict.json").read_text())
    assert verdict["exit_code"] == code
    for name in ("report.md", "report.html", "junit.xml"):
        assert (out / name).is_file()
    return code, verdict


def git_in(component, *args):
    subprocess.run(["git", "-C", str(component.parent), *args], check=True, capture_output=True)


def test_gate_passes_an_equal_candidate(repo, tmp_path, capsys):
    code, verdict = run_gate_cli(repo, candidate_file(tmp_path, BASE_SCORES), tmp_path)
    assert code == 0 and verdict["verdict"] == PASS, verdict["summary"]
    printed = capsys.readouterr().out
    assert "baseline experiment local-baseline:" in printed and "s): PASS" in printed
    assert verdict["baseline"]["experiment_id"] == "local-baseline"


def test_gate_fails_a_candidate_whose_class_collapses(repo, tmp_path):
    scores = {"person": [1.0] * 6, "sku": [0.9, 0.1, 0.1, 0.9, 0.1, 0.8]}
    code, verdict = run_gate_cli(repo, candidate_file(tmp_path, scores), tmp_path)
    assert code == 1 and verdict["verdict"] == FAIL
    assert "per_class.max_drop[sku]" in verdict["summary"]
    assert verdict["newly_broken"] == {"sku": ["frame_0001", "frame_0002", "frame_0004"]}
    html_text = (tmp_path / "gate-out" / "report.html").read_text()
    assert html_text.count("data:image/png;base64,") == 3  # the newly broken samples' debug images


def test_missing_baseline_pin_is_error_exit_2(repo, tmp_path):
    git_in(repo, "checkout", "-q", "main")
    git_in(repo, "rm", "-q", "comp/model_ref.yaml")
    git_in(repo, "commit", "-q", "-m", "unpin")
    git_in(repo, "checkout", "-q", "-B", "feature")
    code, verdict = run_gate_cli(repo, candidate_file(tmp_path, BASE_SCORES), tmp_path)
    assert code == 2 and verdict["verdict"] == ERROR
    assert "missing baseline" in verdict["summary"] and verdict["rules"][0]["name"] == "baseline"


def test_baseline_is_the_pin_at_the_merge_base_not_the_branch(repo, tmp_path):
    # The pull request pins a broken model on its own branch: the gate must still compare with main's.
    from walkout_ci.testing import fake_pin_yaml, write_fake_experiment

    broken = {"person": [0.0] * 6, "sku": [0.0] * 6}
    digest = write_fake_experiment(repo / "experiments", "local-broken", fake_weights(broken))
    (repo / "model_ref.yaml").write_text(fake_pin_yaml("local-broken", digest))
    (repo / "gate.yaml").write_text(
        (repo / "gate.yaml").read_text().replace("max_drop: 0.05", "max_drop: 1.0")
    )
    git_in(repo, "add", "-A")
    git_in(repo, "commit", "-q", "-m", "pin a worse model and relax the gate")
    scores = {"person": [1.0] * 6, "sku": [0.9, 0.1, 0.1, 0.9, 0.1, 0.8]}
    code, verdict = run_gate_cli(repo, candidate_file(tmp_path, scores), tmp_path)
    assert verdict["baseline"]["experiment_id"] == "local-baseline"
    assert code == 1 and "per_class.max_drop[sku]" in verdict["summary"]
    assert any("edits gate.yaml" in note for note in verdict["notes"])
    assert any("model code differs" in note for note in verdict["notes"])


@pytest.mark.parametrize("behaviour", [{"exit_code": 1}, {"invalid": True}])
def test_a_crashing_candidate_evaluation_is_error_never_pass(repo, tmp_path, behaviour):
    code, verdict = run_gate_cli(repo, candidate_file(tmp_path, BASE_SCORES, **behaviour), tmp_path)
    assert code == 2 and verdict["verdict"] == ERROR
    assert verdict["rules"][0]["name"] == "evaluate[candidate]"


def test_sealed_data_without_the_key_is_error(repo, tmp_path, monkeypatch):
    from walkout_ci import blind

    key = blind.generate_key()
    archive = blind.seal(tmp_path / "data", tmp_path / "blind.sealed", key=key)
    from walkout_ci import cli

    out = tmp_path / "sealed-out"
    # The candidate is the pin this change proposes (an experiment id, so the leakage check can run).
    argv = ["gate", "--component-dir", str(repo)]
    argv += ["--data", str(archive), "--out", str(out), "--cache-dir", str(tmp_path / "cache"), "--no-track"]
    assert cli.main(argv) == 2
    verdict = json.loads((out / "verdict.json").read_text())
    assert verdict["verdict"] == ERROR and "WALKOUT_BLIND_KEY" in verdict["summary"]
    monkeypatch.setenv("WALKOUT_BLIND_KEY", key)
    # A bare model file records no training experiment: on the blind set that is ERROR, not a pass.
    bare = ["--candidate", str(candidate_file(tmp_path, BASE_SCORES))]
    assert cli.main(argv + bare) == 2
    verdict = json.loads((out / "verdict.json").read_text())
    assert verdict["verdict"] == ERROR and "no recorded experiment" in verdict["summary"]
    # The pinned experiment recorded its training frames, none of them blind: the gate runs.
    (repo / "experiments" / "local-baseline" / "training_data.json").write_text('{"content_hashes": []}')
    git_in(repo, "add", "-A")
    git_in(repo, "commit", "-q", "-m", "record training data")
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(scratch))
    assert cli.main(argv) == 0, json.loads((out / "verdict.json").read_text())["summary"]
    # The evaluations read the decrypted copy; it is gone afterwards (and so are worktrees, staging).
    assert list(scratch.iterdir()) == []


def test_comparing_existing_reports(tmp_path):
    from walkout_ci import cli
    from walkout_ci.report import write_report

    rules_path = tmp_path / "gate.yaml"
    rules_path.write_text(yaml.safe_dump({**RULES, "component": "detection"}))
    baseline = make_report(metrics={"AP50": 0.9}, per_class={"sku": {"AP50": 0.9}})
    candidate = make_report(metrics={"AP50": 0.95}, per_class={"sku": {"AP50": 0.5}})
    write_report(tmp_path / "base", baseline)
    write_report(tmp_path / "cand", candidate)
    argv = ["gate", "--gate-config", str(rules_path), "--out", str(tmp_path / "out")]
    assert (
        cli.main(
            [*argv, "--baseline-report", str(tmp_path / "base"), "--candidate-report", str(tmp_path / "cand")]
        )
        == 1
    )
    assert (
        cli.main(
            [*argv, "--baseline-report", str(tmp_path / "base"), "--candidate-report", str(tmp_path / "base")]
        )
        == 0
    )
    # Missing baseline report: ERROR, exit 2, and the verdict file says so.
    missing = tmp_path / "nothing" / "report.json"
    assert (
        cli.main([*argv, "--baseline-report", str(missing), "--candidate-report", str(tmp_path / "cand")])
        == 2
    )
    verdict = json.loads((tmp_path / "out" / "verdict.json").read_text())
    assert verdict["verdict"] == ERROR and "no evaluation report at" in verdict["summary"]
    # Only one of the two reports: bad input, exit 2.
    assert cli.main([*argv, "--candidate-report", str(tmp_path / "cand")]) == 2


def test_planted_leakage_into_the_blind_set_is_error(repo, tmp_path):
    from walkout_ci.testing import write_fake_experiment

    manifest = json.loads((tmp_path / "data" / "manifest.json").read_text())
    manifest.update(split="blind", blind=True, content_hashes=["1" * 64, "2" * 64])
    (tmp_path / "data" / "manifest.json").write_text(json.dumps(manifest))
    exports = tmp_path / "exports"
    write_fake_experiment(exports, "local-leaky", fake_weights(BASE_SCORES))
    (exports / "local-leaky" / "training_data.json").write_text(json.dumps({"content_hashes": ["2" * 64]}))
    code, verdict = run_gate_cli(repo, "local-leaky", tmp_path, "--search", str(exports))
    assert code == 2 and verdict["rules"][0]["name"] == "leakage"
    assert "blind-set leakage: 1 frame(s)" in verdict["summary"]
    # Without the planted frame the same candidate passes, and the check is noted in the report.
    (exports / "local-leaky" / "training_data.json").write_text(json.dumps({"content_hashes": ["3" * 64]}))
    code, verdict = run_gate_cli(repo, "local-leaky", tmp_path, "--search", str(exports))
    assert code == 0 and any("leakage check passed" in note for note in verdict["notes"])


def test_a_drop_of_exactly_the_tolerance_passes_despite_float_rounding():
    rules = config(per_class={"metric": "AP50", "max_drop": 0.01, "floor": 0.89})
    baseline = make_report(metrics={"AP50": 0.9}, per_class={"sku": {"AP50": 0.9}})
    candidate = make_report(metrics={"AP50": 0.89}, per_class={"sku": {"AP50": 0.89}})
    assert 0.9 - 0.89 > 0.01  # the float trap this test is about
    assert compare_reports(rules, baseline, candidate).verdict == PASS


def test_tracked_gate_links_both_test_experiments_even_when_cached(repo, tmp_path, capsys):
    from walkout_ci import cli

    candidate = candidate_file(tmp_path, {"person": [1.0] * 6, "sku": [0.9] * 6})
    argv = [
        "gate",
        "--component-dir",
        str(repo),
        "--candidate",
        str(candidate),
        "--data",
        str(tmp_path / "data"),
    ]
    argv += ["--out", str(tmp_path / "out"), "--cache-dir", str(tmp_path / "cache")]
    assert cli.main(argv) == 0
    first = json.loads((tmp_path / "out" / "verdict.json").read_text())["evaluations"]
    assert first["baseline"]["experiment_id"] != first["candidate"]["experiment_id"]
    # Links are written for people: no machine path, the store named as $WALKOUT_HOME.
    home = Path(os.environ["WALKOUT_HOME"])
    for label in ("baseline", "candidate"):
        link = first[label]["experiment_link"]
        assert link.startswith("$WALKOUT_HOME/") and str(tmp_path) not in link
        assert (home / link.removeprefix("$WALKOUT_HOME/")).is_dir()
    assert cli.main(argv) == 0
    second = json.loads((tmp_path / "out" / "verdict.json").read_text())["evaluations"]
    assert second["candidate"]["from_cache"]
    assert second["candidate"]["experiment_link"] == first["candidate"]["experiment_link"]
    assert "test experiment: " + first["candidate"]["experiment_link"] in capsys.readouterr().out


@pytest.mark.parametrize(
    ("change", "stage", "message"),
    [
        ("unknown_candidate", "candidate", "unknown experiment id 'local-nope'"),
        ("no_target_branch", "git", "target branch 'release'"),
        ("no_data", "data", "does not exist"),
        ("no_gate_yaml", "gate.yaml", "no comp/gate.yaml at the merge-base"),
        ("tampered_baseline", "baseline", "has sha256"),
    ],
)
def test_every_missing_input_is_error_exit_2(repo, tmp_path, change, stage, message):
    from walkout_ci import cli

    candidate = str(candidate_file(tmp_path, BASE_SCORES))
    data, target = str(tmp_path / "data"), "main"
    if change == "unknown_candidate":
        candidate = "local-nope"
    elif change == "no_target_branch":
        target = "release"
    elif change == "no_data":
        data = str(tmp_path / "missing")
    elif change == "no_gate_yaml":
        git_in(repo, "checkout", "-q", "main")
        git_in(repo, "rm", "-q", "comp/gate.yaml")
        git_in(repo, "commit", "-q", "-m", "drop gate")
        git_in(repo, "checkout", "-q", "-B", "feature")
    elif change == "tampered_baseline":
        (repo / "experiments" / "local-baseline" / "artifacts" / "weights" / "model.json").write_text("{}")
    out = tmp_path / "out"
    argv = ["gate", "--component-dir", str(repo), "--candidate", candidate, "--data", data]
    argv += [
        "--target-branch",
        target,
        "--out",
        str(out),
        "--cache-dir",
        str(tmp_path / "cache"),
        "--no-track",
    ]
    assert cli.main(argv) == 2
    verdict = json.loads((out / "verdict.json").read_text())
    assert verdict["verdict"] == ERROR and verdict["rules"][0]["name"] == stage
    assert message in verdict["summary"]


def test_default_candidate_is_the_pin_proposed_by_the_change(repo, tmp_path):
    from walkout_ci import cli
    from walkout_ci.testing import fake_pin_yaml, write_fake_experiment

    better = {"person": [1.0] * 6, "sku": [1.0] * 6}
    digest = write_fake_experiment(repo / "experiments", "local-better", fake_weights(better))
    (repo / "model_ref.yaml").write_text(fake_pin_yaml("local-better", digest))
    git_in(repo, "add", "-A")
    git_in(repo, "commit", "-q", "-m", "pin a better model")
    out = tmp_path / "out"
    argv = [
        "gate",
        "--component-dir",
        str(repo),
        "--data",
        str(tmp_path / "data"),
        "--out",
        str(out),
        "--no-track",
    ]
    assert cli.main([*argv, "--cache-dir", str(tmp_path / "cache")]) == 0
    verdict = json.loads((out / "verdict.json").read_text())
    assert verdict["baseline"]["experiment_id"] == "local-baseline"
    assert verdict["candidate"]["experiment_id"] == "local-better"
    # Re-pinning (model_ref.yaml + experiments/) is not a change of the evaluation code.
    assert not any("evaluation code differs" in note for note in verdict["notes"])
    assert verdict["newly_fixed"] == {} and verdict["metrics"][0]["delta"] > 0


def test_a_timed_out_candidate_evaluation_is_error(repo, tmp_path):
    git_in(repo, "checkout", "-q", "main")
    (repo / "gate.yaml").write_text((repo / "gate.yaml").read_text().replace("timeout_s: 60", "timeout_s: 2"))
    git_in(repo, "commit", "-q", "-am", "short timeout")
    git_in(repo, "checkout", "-q", "-B", "feature")
    started = time.monotonic()
    code, verdict = run_gate_cli(repo, candidate_file(tmp_path, BASE_SCORES, sleep_s=600), tmp_path)
    assert code == 2 and verdict["rules"][0]["name"] == "evaluate[candidate]"
    assert "timed out after 2 s" in verdict["summary"]
    # The candidate sleeps 600 s: a gate that waited for it instead of stopping it at its 2 s timeout
    # would take that long. The bound only catches the wait (a loaded 2-core machine can take a
    # minute for the rest of the gate run), never a slow machine.
    assert time.monotonic() - started < 300


def test_a_lock_file_model_is_read_in_each_commits_worktree(repo, tmp_path):
    # The app's case: gate.yaml `model: {kind: file, path: ../lock.json}`, {model} is that file itself.
    git_in(repo, "checkout", "-q", "main")
    (repo.parent / "lock.json").write_bytes(fake_weights(BASE_SCORES))
    gate_yaml = (repo / "gate.yaml").read_text() + "model: {kind: file, path: ../lock.json}\n"
    (repo / "gate.yaml").write_text(gate_yaml.replace("timeout_s: 60", "timeout_s: 60\n  code_paths: ['.']"))
    git_in(repo, "add", "-A")
    git_in(repo, "commit", "-q", "-m", "lock file model")
    git_in(repo, "checkout", "-q", "-B", "feature")
    worse = {"person": BASE_SCORES["person"], "sku": [0.1] * 6}
    (repo.parent / "lock.json").write_bytes(fake_weights(worse))
    git_in(repo, "commit", "-q", "-am", "a worse lock")
    from walkout_ci import cli

    out = tmp_path / "out"
    argv = ["gate", "--component-dir", str(repo), "--data", str(tmp_path / "data"), "--out", str(out)]
    assert cli.main([*argv, "--cache-dir", str(tmp_path / "cache"), "--no-track"]) == 1
    verdict = json.loads((out / "verdict.json").read_text())
    assert verdict["baseline"]["model_ref"].startswith("lock.json@")
    assert verdict["candidate"]["model_ref"].startswith("lock.json@")
    assert verdict["baseline"]["model_ref"] != verdict["candidate"]["model_ref"]
    assert "per_class.max_drop[sku]" in verdict["summary"]
    # An uncommitted edit of the lock file is not what is evaluated, and the report says so.
    (repo.parent / "lock.json").write_bytes(fake_weights(BASE_SCORES))
    assert cli.main([*argv, "--cache-dir", str(tmp_path / "cache"), "--no-track"]) == 1
    notes = json.loads((out / "verdict.json").read_text())["notes"]
    assert any("lock.json has uncommitted changes" in note for note in notes)
    # An explicit candidate file is evaluated as given.
    assert (
        cli.main(
            [
                *argv,
                "--candidate",
                str(repo.parent / "lock.json"),
                "--cache-dir",
                str(tmp_path / "cache"),
                "--no-track",
            ]
        )
        == 0
    )


def test_a_component_that_is_its_own_repository(tmp_path, monkeypatch):
    # A model repository published on its own: --component-dir . and the remote-tracking target branch.
    from walkout_ci import cli

    monkeypatch.setenv("WALKOUT_HOME", str(tmp_path / "home"))
    component = make_fake_component_repo(tmp_path / "repo", BASE_SCORES, subdir="")
    make_fake_dataset(tmp_path / "data")
    for args in (["update-ref", "refs/remotes/origin/main", "main"], ["branch", "-q", "-D", "main"]):
        subprocess.run(["git", "-C", str(component), *args], check=True, capture_output=True)
    monkeypatch.chdir(component)
    out = tmp_path / "out"
    argv = [
        "gate",
        "--component-dir",
        ".",
        "--data",
        str(tmp_path / "data"),
        "--target-branch",
        "origin/main",
    ]
    assert cli.main([*argv, "--out", str(out), "--cache-dir", str(tmp_path / "cache"), "--no-track"]) == 0
    verdict = json.loads((out / "verdict.json").read_text())
    assert verdict["baseline"]["model_ref"].startswith("model_ref.yaml@")


def test_experiment_links_prefer_the_clearml_web_page(tmp_path, monkeypatch):
    from walkout_ci.gate_runner import experiment_link
    from walkout_ci.testing import write_fake_experiment

    monkeypatch.setenv("WALKOUT_HOME", str(tmp_path / "home"))
    write_fake_experiment(tmp_path, "local-a", b"{}")
    # An export folder is shown relative to the repository root, never as a machine path.
    assert experiment_link("local-a", [tmp_path], root=tmp_path) == "local-a"
    assert str(tmp_path) not in experiment_link("local-a", [tmp_path])
    record_path = tmp_path / "local-a" / "experiment.json"
    record = json.loads(record_path.read_text())
    record["server"] = {
        "api_host": "http://clearml:8008",
        "web_url": "http://clearml:8080/projects/p/experiments/a",
    }
    record_path.write_text(json.dumps(record))
    assert experiment_link("local-a", [tmp_path]) == "http://clearml:8080/projects/p/experiments/a"
    monkeypatch.setenv("CLEARML_WEB_HOST", "http://web.example")
    record["server"]["web_url"] = None
    record_path.write_text(json.dumps(record))
    assert (
        experiment_link("local-a", [tmp_path])
        == "http://web.example/projects/*/experiments/local-a/output/log"
    )
    assert experiment_link("local-unknown", [tmp_path]) is None
    assert experiment_link(None) is None
