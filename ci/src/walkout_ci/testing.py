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


# --- a fake component in a temporary git repository -------------------------------------------------

FAKE_EVALUATE_SCRIPT = '''"""Fake component evaluation for walkout-ci tests (weights = JSON of the outcome).

weights JSON: {"scores": {"person": [...], "sku": [...]}, "exit_code": 0, "sleep_s": 0, "invalid": false}
Every run appends a line to $WALKOUT_FAKE_COUNTER (when set), so tests can count evaluations.
"""

import argparse
import hashlib
import json
import os
import sys
import time

from walkout_ci.report import dataset_hash, write_report

parser = argparse.ArgumentParser()
parser.add_argument("--model")
parser.add_argument("--data")
parser.add_argument("--report-dir")
args = parser.parse_args()
counter = os.environ.get("WALKOUT_FAKE_COUNTER")
if counter:
    with open(counter, "a") as stream:
        stream.write(args.model + "\\n")
with open(args.model, "rb") as stream:
    raw = stream.read()
spec = json.loads(raw)
time.sleep(spec.get("sleep_s", 0))
if spec.get("exit_code", 0):
    print("fake evaluation crashed on purpose", file=sys.stderr)
    sys.exit(spec["exit_code"])
os.makedirs(args.report_dir, exist_ok=True)
if spec.get("invalid"):
    with open(os.path.join(args.report_dir, "report.json"), "w") as stream:
        stream.write('{"schema_version": 1, "metrics": {"AP50": NaN}}')
    sys.exit(0)
scores = spec["scores"]
names = sorted(scores)
count = len(scores[names[0]])
per_sample = []
for index in range(count):
    classes = {name: scores[name][index] for name in names}
    score = sum(classes.values()) / len(classes)
    per_sample.append({"id": f"frame_{index:04d}", "score": score, "classes": classes})
per_class = {name: {"AP50": sum(scores[name]) / count} for name in names}
failures = []
os.makedirs(os.path.join(args.report_dir, "images"), exist_ok=True)
for sample in per_sample:
    for name, value in sample["classes"].items():
        if value < 0.5:
            image = f"images/{sample['id']}_{name}.png"
            with open(os.path.join(args.report_dir, image), "wb") as stream:
                stream.write(bytes.fromhex(PNG_HEX))
            failures.append({"sample_id": sample["id"], "class": name, "kind": "missed",
                             "expected": name, "predicted": None, "image": image})
write_report(args.report_dir, {
    "schema_version": 1,
    "component": "fake",
    "experiment_id": None,
    "code_commit": os.environ.get("WALKOUT_EVAL_COMMIT"),
    "model": {"ref": args.model, "weights_sha256": hashlib.sha256(raw).hexdigest()},
    "dataset": {"id": args.data, "hash": dataset_hash(args.data)},
    "metrics": {"AP50": sum(s["score"] for s in per_sample) / count},
    "per_class": per_class,
    "per_sample": per_sample,
    "failures": failures,
    "timings": {"total_s": 0.01},
})
'''

# A 1x1 PNG, so debug images are real images the HTML gallery can embed.
TINY_PNG_HEX = (
    "89504e470d0a1a0a0000000d4948445200000001000000010806000000"
    "1f15c4890000000d49444154789c63f8cfc0f01f0005000201a5b0c5b90000000049454e44ae426082"
)

FAKE_GATE_YAML = """schema_version: 1
component: fake
evaluate:
  command: ["{python}", "evaluate.py", "--model", "{model}", "--data", "{data}",
            "--report-dir", "{report_dir}"]
  timeout_s: 60
primary_metric: {name: AP50, direction: higher}
metrics:
  AP50: {tolerance: 0.02, mode: absolute}
per_class:
  metric: AP50
  max_drop: 0.05
paired:
  margin: 0.02
  confidence: 0.95
  resamples: 500
  per_class: true
  broken_threshold: 0.5
"""


def fake_weights(scores: Mapping[str, list[float]], **behaviour) -> bytes:
    """The fake component's "weights": JSON of per-class per-sample scores plus behaviour switches
    (exit_code, sleep_s, invalid)."""
    import json

    return json.dumps(
        {"scores": {name: list(values) for name, values in scores.items()}, **behaviour}
    ).encode()


def write_fake_experiment(export_dir, experiment_id: str, weights: bytes) -> str:
    """A bundled experiment export `<export_dir>/<experiment_id>/` holding `weights`; returns its sha256.

    Only what `walkout_ci.pins` reads: experiment.json with the weights artifact and the file itself.
    """
    import hashlib
    import json
    from pathlib import Path

    folder = Path(export_dir) / experiment_id
    (folder / "artifacts" / "weights").mkdir(parents=True, exist_ok=True)
    (folder / "artifacts" / "weights" / "model.json").write_bytes(weights)
    digest = hashlib.sha256(weights).hexdigest()
    record = {
        "schema_version": 1,
        "id": experiment_id,
        "project": "walkout/fake",
        "name": "train",
        "mode": "local",
        "status": "completed",
        "params": {},
        "metrics": {},
        "artifacts": {
            "weights": {"path": "artifacts/weights/model.json", "sha256": digest, "size": len(weights)}
        },
        "training_data": [],
        "server": None,
        "clearml_session": None,
    }
    (folder / "experiment.json").write_text(json.dumps(record))
    return digest


def fake_pin_yaml(experiment_id: str, weights_sha256: str) -> str:
    """A model_ref.yaml (schema 1) pinning a fake experiment."""
    return (
        "schema_version: 1\ncomponent: fake\n"
        f"experiment_id: {experiment_id}\nartifact: weights\nweights_sha256: {weights_sha256}\n"
        "training_dataset: null\nblind_metrics: {}\n"
    )


def make_fake_dataset(folder) -> str:
    """A minimal dataset folder (just a manifest.json); returns its dataset hash."""
    import json
    from pathlib import Path

    from walkout_ci.report import dataset_hash

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    manifest = {
        "format_version": 1,
        "split": "val",
        "blind": False,
        "generator": {},
        "files": {},
        "content_hashes": [],
    }
    (folder / "manifest.json").write_text(json.dumps(manifest))
    return dataset_hash(folder)


def make_fake_component_repo(root, baseline_scores: Mapping[str, list[float]], *, subdir: str = "comp"):
    """A git repository at `root` with branch `main` holding a component in `subdir` ("" = the
    repository itself, as a model repository of its own): gate.yaml, the fake evaluate.py, a pin of
    experiment `local-baseline` bundled under experiments/; then a branch `feature` checked out at the
    same commit. Returns the component folder."""
    import subprocess
    from pathlib import Path

    root = Path(root)
    component = root / subdir if subdir else root
    component.mkdir(parents=True, exist_ok=True)
    (component / "gate.yaml").write_text(FAKE_GATE_YAML)
    (component / "evaluate.py").write_text(f"PNG_HEX = {TINY_PNG_HEX!r}\n" + FAKE_EVALUATE_SCRIPT)
    digest = write_fake_experiment(component / "experiments", "local-baseline", fake_weights(baseline_scores))
    (component / "model_ref.yaml").write_text(fake_pin_yaml("local-baseline", digest))

    def git(*args: str) -> None:
        subprocess.run(["git", "-C", str(root), *args], check=True, capture_output=True)

    git("init", "-q", "-b", "main")
    git("config", "user.email", "test@example.com")
    git("config", "user.name", "walkout-ci test")
    git("add", "-A")
    git("commit", "-q", "-m", "component with pinned baseline")
    git("checkout", "-q", "-b", "feature")
    return component
