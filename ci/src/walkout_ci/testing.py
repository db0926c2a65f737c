"""Builders of constructed evaluation reports, for tests of the gate and of anything that reads reports.

Test-support code: nothing in the gate itself uses it. A constructed report is a valid report
(it goes through `report.validate_report`), so a test that compares two of them exercises exactly the
code path a real evaluation would.
"""

from __future__ import annotations

from collections.abc import Mapping

from walkout_ci.report import SCHEMA_VERSION, validate_report

# Any 64-hex string is a valid weights digest; tests only need two different ones.
FAKE_WEIGHTS_SHA256 = "ab" * 32


def make_report(
    *,
    component: str = "detection",
    metrics: Mapping[str, float] | None = None,
    per_class: Mapping[str, Mapping[str, float]] | None = None,
    sample_scores: Mapping[str, Mapping[str, float]] | None = None,
    failures: list[dict] | None = None,
    experiment_id: str | None = None,
    model_ref: str = "weights.pt",
    weights_sha256: str = FAKE_WEIGHTS_SHA256,
    dataset_id: str = "val",
    dataset_hash: str = "0" * 64,
    total_s: float = 1.0,
) -> dict:
    """A valid schema-1 report.

    sample_scores: {sample id: {class: score in [0, 1]}}; each sample's primary `score` is the mean of
    its class scores (1.0 for a sample with no class). per_class defaults to the mean of each class's
    sample scores under the metric name "AP50"; metrics default to {"AP50": mean of samples' scores}.
    """
    sample_scores = sample_scores or {}
    per_sample = []
    for sample_id, classes in sample_scores.items():
        score = sum(classes.values()) / len(classes) if classes else 1.0
        per_sample.append({"id": sample_id, "score": score, "classes": dict(classes)})
    if per_class is None:
        by_class: dict[str, list[float]] = {}
        for classes in sample_scores.values():
            for name, value in classes.items():
                by_class.setdefault(name, []).append(value)
        per_class = {name: {"AP50": sum(values) / len(values)} for name, values in by_class.items()}
    if metrics is None:
        scores = [sample["score"] for sample in per_sample]
        metrics = {"AP50": sum(scores) / len(scores) if scores else 0.0}
    report = {
        "schema_version": SCHEMA_VERSION,
        "component": component,
        "experiment_id": experiment_id,
        "code_commit": None,
        "model": {"ref": model_ref, "weights_sha256": weights_sha256},
        "dataset": {"id": dataset_id, "hash": dataset_hash},
        "metrics": dict(metrics),
        "per_class": {name: dict(values) for name, values in per_class.items()},
        "per_sample": per_sample,
        "failures": list(failures or []),
        "timings": {"total_s": total_s, "samples_per_s": len(per_sample) / total_s if total_s else 0.0},
    }
    return validate_report(report, source="constructed report")
