"""The report contract: validator messages, atomic writer, reader."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest

from walkout_ci import report
from walkout_ci.errors import ReportError
from walkout_ci.testing import make_report


def valid_report() -> dict:
    return {
        "schema_version": 1,
        "component": "detection",
        "experiment_id": "abc123",
        "code_commit": None,
        "model": {"ref": "model_ref.yaml", "weights_sha256": "a" * 64},
        "dataset": {"id": "data/val", "hash": "b" * 64},
        "metrics": {"AP": 0.71, "AP50": 0.95},
        "per_class": {"person": {"AP50": 0.97, "AP": 0.8}, "sku_03": {"AP50": 0.91}},
        "per_sample": [{"id": "video1_000012", "score": 0.97, "classes": {"person": 1.0, "sku_03": 0.5}}],
        "failures": [
            {
                "sample_id": "video1_000012",
                "class": "sku_03",
                "kind": "missed",
                "expected": [1, 2, 3, 4],
                "predicted": None,
                "image": "images/video1_000012.png",
            }
        ],
        "timings": {"total_s": 12.3, "samples_per_s": 40.0},
    }


def problems_of(data) -> str:
    with pytest.raises(ReportError) as caught:
        report.validate_report(data, source="r.json")
    return str(caught.value)


def test_the_architecture_example_is_valid_and_round_trips(tmp_path):
    path = report.write_report(tmp_path / "out", valid_report())
    assert path == tmp_path / "out" / "report.json"
    assert report.read_report(tmp_path / "out") == valid_report()
    assert report.read_report(path) == valid_report()


def test_unknown_key_suggests_the_right_one():
    data = valid_report()
    data["per_samples"] = data.pop("per_sample")
    message = problems_of(data)
    assert "unknown key 'per_samples' (did you mean 'per_sample'?)" in message
    assert "missing required key 'per_sample'" in message


@pytest.mark.parametrize(
    ("mutate", "expected"),
    [
        (lambda d: d.update(schema_version=2), "schema_version: expected 1, got 2"),
        (lambda d: d.update(schema_version=True), "schema_version: expected 1, got True"),
        (lambda d: d.update(component="Detection!"), "component: expected a lowercase name"),
        (
            lambda d: d["model"].update(weights_sha256="xyz"),
            "weights_sha256: expected 64",
        ),
        (lambda d: d["metrics"].update(AP=float("nan")), "metrics.AP: expected a finite number, got nan"),
        (lambda d: d["metrics"].update(AP="0.7"), "metrics.AP: expected a finite number, got '0.7'"),
        (lambda d: d.update(metrics={}), "metrics: expected at least one overall metric"),
        (
            lambda d: d["per_class"]["sku_03"].update(AP50=None),
            "per_class.sku_03.AP50: expected",
        ),
        (lambda d: d["per_sample"][0].update(score=1.5), "per_sample[0].score: expected a number in [0, 1]"),
        (
            lambda d: d["per_sample"][0]["classes"].update(person=-0.1),
            "classes.person: expected a score",
        ),
        (lambda d: d["per_sample"].append(dict(d["per_sample"][0])), "per_sample[1].id: duplicate sample id"),
        (lambda d: d["failures"][0].update(sample_id="nope"), "failures[0].sample_id: 'nope' is not the id"),
        (
            lambda d: d["failures"][0].update(image="../x.png"),
            "image: '../x.png' must be relative",
        ),
        (
            lambda d: d["failures"][0].update(image="/abs.png"),
            "image: '/abs.png' must be relative",
        ),
        (lambda d: d["failures"][0].pop("kind"), "failures[0]: missing required key 'kind'"),
        (lambda d: d["timings"].pop("total_s"), "timings: missing required key 'total_s'"),
        (lambda d: d["timings"].update(total_s=-1), "timings.total_s: expected a finite number >= 0"),
        (lambda d: d["dataset"].update(hash=""), "dataset.hash: expected a non-empty string"),
        (lambda d: d.update(experiment_id=5), "experiment_id: expected a non-empty string or null"),
        (lambda d: d["model"].update(reff="x"), "unknown key 'reff' (did you mean 'ref'?)"),
    ],
)
def test_each_problem_names_its_path(mutate, expected):
    data = valid_report()
    mutate(data)
    assert expected in problems_of(data)


def test_all_problems_are_listed_at_once():
    data = valid_report()
    data["metrics"]["AP"] = "bad"
    data["per_sample"][0]["score"] = 2
    message = problems_of(data)
    assert "metrics.AP" in message and "per_sample[0].score" in message
    assert message.startswith("r.json does not follow the report contract")


def test_not_an_object_is_rejected():
    assert "expected a JSON object, got list" in problems_of([1, 2])


def test_numpy_scalars_are_written_as_plain_numbers(tmp_path):
    data = valid_report()
    data["metrics"]["AP"] = np.float32(0.5)
    data["per_sample"][0]["classes"]["person"] = np.float64(1.0)
    data["timings"]["total_s"] = np.int64(3)
    report.write_report(tmp_path, data)
    written = json.loads((tmp_path / "report.json").read_text())
    assert written["metrics"]["AP"] == 0.5 and written["timings"]["total_s"] == 3


def test_invalid_report_writes_nothing(tmp_path):
    data = valid_report()
    data["metrics"]["AP"] = float("inf")
    with pytest.raises(ReportError):
        report.write_report(tmp_path, data)
    assert os.listdir(tmp_path) == []


def test_rewrite_replaces_atomically_and_leaves_no_temporary_files(tmp_path):
    report.write_report(tmp_path, valid_report())
    second = valid_report()
    second["metrics"]["AP"] = 0.1
    report.write_report(tmp_path, second)
    assert os.listdir(tmp_path) == ["report.json"]
    assert report.read_report(tmp_path)["metrics"]["AP"] == 0.1


def test_read_missing_or_broken_report_is_a_clear_error(tmp_path):
    with pytest.raises(ReportError, match="no evaluation report at"):
        report.read_report(tmp_path)
    (tmp_path / "report.json").write_text('{"schema_version": 1,')
    with pytest.raises(ReportError, match="is not valid JSON"):
        report.read_report(tmp_path)
    (tmp_path / "report.json").write_text('{"metrics": {"AP": NaN}}')
    with pytest.raises(ReportError, match="NaN"):
        report.read_report(tmp_path)


def test_constructed_report_builder_is_valid():
    built = make_report(sample_scores={"a": {"person": 1.0, "sku": 0.0}, "b": {"person": 0.5}})
    assert built["per_class"]["person"]["AP50"] == 0.75
    assert built["per_sample"][0]["score"] == 0.5
    assert report.sample_class_scores(built) == {"person": {"a": 1.0, "b": 0.5}, "sku": {"a": 0.0}}


def test_sha256_of_file(tmp_path):
    path = tmp_path / "w.bin"
    path.write_bytes(b"abc")
    assert report.sha256_of_file(path) == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"


def test_written_report_is_readable_by_others(tmp_path):
    path = report.write_report(tmp_path, valid_report())
    assert path.stat().st_mode & 0o777 == 0o644
