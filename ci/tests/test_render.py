"""Renderers: Markdown PR comment, self-contained HTML, JUnit XML, JSON verdict."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ElementTree

import numpy as np

from walkout_ci import render
from walkout_ci.gate import compare_reports, error_result
from walkout_ci.gate_config import gate_config_from_dict
from walkout_ci.testing import MINIMAL_EVALUATE, TINY_PNG_HEX, make_report

RULES = {
    "schema_version": 1,
    "component": "detection",
    "evaluate": MINIMAL_EVALUATE,
    "primary_metric": {"name": "AP50"},
    "metrics": {"AP50": {"tolerance": 0.01}},
    "per_class": {"metric": "AP50", "max_drop": 0.05},
    "paired": {"margin": 0.02, "resamples": 200, "per_class": True},
}


def failing_result(tmp_path, classes: int = 3, samples: int = 20):
    rng = np.random.default_rng(0)
    names = [f"sku_{index:03d}" for index in range(classes)]
    base_scores = {
        f"f{s:04d}": {name: float(rng.uniform(0.6, 1.0)) for name in names} for s in range(samples)
    }
    cand_scores = {sid: dict(values) for sid, values in base_scores.items()}
    for sid in list(cand_scores)[:5]:
        cand_scores[sid][names[0]] = 0.0  # class 0 collapses on five samples
    (tmp_path / "images").mkdir(exist_ok=True)
    (tmp_path / "images" / "f0000.png").write_bytes(bytes.fromhex(TINY_PNG_HEX))
    failures = [
        {
            "sample_id": "f0000",
            "class": names[0],
            "kind": "missed",
            "expected": [1, 2, 3, 4],
            "image": "images/f0000.png",
        }
    ]
    baseline = make_report(sample_scores=base_scores, experiment_id="exp-base")
    candidate = make_report(sample_scores=cand_scores, failures=failures, experiment_id="exp-cand")
    config = gate_config_from_dict(RULES)
    result = compare_reports(config, baseline, candidate, candidate_dir=tmp_path)
    result.baseline.link = "https://clearml.example/projects/x/experiments/exp-base"
    result.candidate.link = "/store/experiments/exp-cand"
    return result


def test_markdown_has_verdict_tables_intervals_and_links(tmp_path):
    result = failing_result(tmp_path)
    text = render.render_markdown(result)
    assert "walkout-ci gate: **FAIL**" in text
    assert "| ✅ | AP50 |" in text or "| ❌ | AP50 |" in text
    assert "[exp-base](https://clearml.example/projects/x/experiments/exp-base)" in text
    assert "`exp-cand` (store: `/store/experiments/exp-cand`)" in text
    assert "90% CI [" in text  # the paired test's interval
    lines = [line for line in text.splitlines() if line.startswith("| ❌ **sku_000**")]
    assert len(lines) == 1 and "drop" in lines[0]
    # Sorted by delta: the collapsed class is the first row of the per-class table.
    table = text.split("### Per class")[1].splitlines()
    assert table[4].startswith("| ❌ **sku_000**")


def test_markdown_stays_under_the_comment_limit(tmp_path):
    result = failing_result(tmp_path, classes=400, samples=30)
    text = render.render_markdown(result)
    assert len(text) < 60_000
    assert "passing classes not shown" in text
    assert text.rstrip().endswith("</details>")  # not cut mid-table
    # Too long with every rule listed: only the rules that did not pass are listed.
    shorter = render.render_markdown(result, limit=25_000)
    assert "Rules that did not pass" in shorter and shorter.rstrip().endswith("</details>")
    # Even a limit smaller than the content is honoured.
    assert len(render.render_markdown(result, limit=5_000)) <= 5_000


def test_html_is_self_contained_with_chart_and_gallery(tmp_path):
    html_text = render.render_html(failing_result(tmp_path))
    assert "<svg" in html_text and "per-class delta chart" in html_text
    assert html_text.count("data:image/png;base64,") == 1
    assert 'src="http' not in html_text and "<link" not in html_text and "<script" not in html_text


def test_junit_has_one_case_per_rule(tmp_path):
    result = failing_result(tmp_path)
    root = ElementTree.fromstring(render.render_junit(result))
    suite = root.find("testsuite")
    cases = suite.findall("testcase")
    assert len(cases) == len(result.rules) == int(suite.get("tests"))
    failed = [case.get("name") for case in cases if case.find("failure") is not None]
    assert "per_class.max_drop[sku_000]" in failed and int(suite.get("failures")) == len(failed)


def test_error_verdict_renders_everywhere(tmp_path):
    result = error_result(
        "missing baseline: no model_ref.yaml at the merge-base", component="pose", rule="baseline"
    )
    paths = render.write_outputs(result, tmp_path / "out")
    assert json.loads(paths["verdict"].read_text())["exit_code"] == 2
    root = ElementTree.fromstring(paths["junit"].read_text())
    assert root.find("testsuite").find("testcase").find("error") is not None
    assert "**ERROR**" in paths["markdown"].read_text()
    assert "missing baseline" in paths["html"].read_text()
