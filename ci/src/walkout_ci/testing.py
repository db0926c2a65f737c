"""Builders of constructed evaluation reports, for tests of the gate and of anything that reads reports.

Test-support code: nothing in the gate itself uses it. A constructed report is a valid report
(it goes through `report.validate_report`), so a test that compares two of them exercises exactly the
code path a real evaluation would.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

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


# An `evaluate` section with the three stages, for tests that build gate configs in code.
MINIMAL_EVALUATE = {
    "prepare": ["x", "prepare", "{data}", "{inputs}"],
    "predict": ["x", "predict", "{model}", "{inputs}", "{predictions}"],
    "score": ["x", "score", "{data}", "{predictions}", "{report_dir}"],
    "timeout_s": 60,
}


# --- a fake component in a temporary git repository -------------------------------------------------

FAKE_COMPONENT_SCRIPT = '''"""Fake component for walkout-ci tests: prepare, predict and score.

weights JSON: {"scores": {"person": [...], "sku": [...]}, "exit_code": 0, "sleep_s": 0, "invalid": false}
prepare: writes inputs.json (the sample count is the model's business here) and no ground truth.
predict: writes predictions.json {"format": "fake-predictions", "version": 1, "scores": {...}}.
score: validates the predictions, multiplies them by the ground truth's `multiplier` (truth.json in the
dataset, when present) and writes the report contract with the provenance it is given.
"""

import argparse
import json
import math
import os
import sys
import time

from walkout_ci.report import dataset_hash, write_report

parser = argparse.ArgumentParser()
commands = parser.add_subparsers(dest="stage", required=True)
prepare = commands.add_parser("prepare")
prepare.add_argument("--data", required=True)
prepare.add_argument("--out", required=True)
predict = commands.add_parser("predict")
predict.add_argument("--model", required=True)
predict.add_argument("--inputs", required=True)
predict.add_argument("--out", required=True)
score = commands.add_parser("score")
for flag in ("--data", "--predictions", "--report-dir", "--model-ref", "--weights-sha256"):
    score.add_argument(flag, required=True)
score.add_argument("--experiment-id", default="")
score.add_argument("--code-commit", default="")
args = parser.parse_args()

if args.stage == "prepare":
    os.makedirs(args.out, exist_ok=True)
    with open(os.path.join(args.out, "inputs.json"), "w") as stream:
        json.dump({"format": "fake-inputs", "version": 1}, stream)
    sys.exit(0)

if args.stage == "predict":
    with open(os.path.join(args.inputs, "inputs.json")) as stream:
        assert json.load(stream)["format"] == "fake-inputs"
    with open(args.model, "rb") as stream:
        spec = json.loads(stream.read())
    time.sleep(spec.get("sleep_s", 0))
    if spec.get("exit_code", 0):
        print("fake prediction crashed on purpose", file=sys.stderr)
        sys.exit(spec["exit_code"])
    os.makedirs(args.out, exist_ok=True)
    scores = spec["scores"]
    if spec.get("invalid"):
        scores = {name: [float("nan")] * len(values) for name, values in scores.items()}
    with open(os.path.join(args.out, "predictions.json"), "w") as stream:
        json.dump({"format": "fake-predictions", "version": 1, "scores": scores}, stream)
    sys.exit(0)

path = os.path.join(args.predictions, "predictions.json")
try:
    with open(path) as stream:
        predictions = json.load(stream)
    assert predictions.get("format") == "fake-predictions" and predictions.get("version") == 1, "format"
    scores = predictions["scores"]
    assert isinstance(scores, dict) and scores, "scores"
    lengths = {len(values) for values in scores.values()}
    assert len(lengths) == 1 and lengths != {0}, "lengths"
    for name, values in scores.items():
        for value in values:
            assert isinstance(value, (int, float)) and math.isfinite(value) and 0 <= value <= 1, name
except (OSError, ValueError, KeyError, AssertionError) as error:
    print(f"{path}: invalid predictions ({error!r})", file=sys.stderr)
    sys.exit(2)
truth_path = os.path.join(args.data, "truth.json")
multiplier = 1.0
if os.path.exists(truth_path):
    with open(truth_path) as stream:
        multiplier = float(json.load(stream)["multiplier"])
names = sorted(scores)
count = len(scores[names[0]])
per_sample = []
for index in range(count):
    classes = {name: scores[name][index] * multiplier for name in names}
    per_sample.append({"id": f"frame_{index:04d}", "score": sum(classes.values()) / len(classes),
                       "classes": classes})
per_class = {name: {"AP50": sum(s["classes"][name] for s in per_sample) / count} for name in names}
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
    "experiment_id": args.experiment_id or None,
    "code_commit": args.code_commit or None,
    "model": {"ref": args.model_ref, "weights_sha256": args.weights_sha256},
    "dataset": {"id": "fake", "hash": dataset_hash(args.data)},
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
  prepare: ["{python}", "component.py", "prepare", "--data", "{data}", "--out", "{inputs}"]
  predict: ["{python}", "component.py", "predict", "--model", "{model}", "--inputs", "{inputs}",
            "--out", "{predictions}"]
  score: ["{python}", "component.py", "score", "--data", "{data}", "--predictions", "{predictions}",
          "--report-dir", "{report_dir}", "--model-ref", "{model_ref}", "--weights-sha256",
          "{weights_sha256}", "--experiment-id", "{experiment_id}", "--code-commit", "{commit}"]
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


def add_fake_truth(folder, *, token: str, multiplier: float = 1.0) -> str:
    """Give a fake dataset ground truth (`truth.json`: the scorer's multiplier and a secret `token`
    that only a process reading the ground truth can know), listed in its manifest; returns the new
    dataset hash."""
    import hashlib
    import json
    from pathlib import Path

    from walkout_ci.report import dataset_hash

    folder = Path(folder)
    truth = json.dumps({"multiplier": multiplier, "token": token}).encode()
    (folder / "truth.json").write_bytes(truth)
    manifest = json.loads((folder / "manifest.json").read_text())
    manifest["files"]["truth.json"] = hashlib.sha256(truth).hexdigest()
    (folder / "manifest.json").write_text(json.dumps(manifest))
    return dataset_hash(folder)


def make_fake_component_repo(root, baseline_scores: Mapping[str, list[float]], *, subdir: str = "comp"):
    """A git repository at `root` with branch `main` holding a component in `subdir` ("" = the
    repository itself, as a model repository of its own): gate.yaml, the fake component.py (prepare,
    predict, score), a pin of experiment `local-baseline` bundled under experiments/; then a branch
    `feature` checked out at the same commit. Returns the component folder."""
    import subprocess
    from pathlib import Path

    root = Path(root)
    component = root / subdir if subdir else root
    component.mkdir(parents=True, exist_ok=True)
    (component / "gate.yaml").write_text(FAKE_GATE_YAML)
    (component / "component.py").write_text(f"PNG_HEX = {TINY_PNG_HEX!r}\n" + FAKE_COMPONENT_SCRIPT)
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


def pinned_experiment_folder(package_root, outer_home: str | None, fresh_home) -> Path:
    """For a model package's tests: the folder its pinned experiment resolves from.

    The bundled export `<package_root>/experiments/<id>/` (this monorepo), else a copy of
    `<outer_home or ~/.walkout>/experiments/<id>/` put into the test's fresh store `fresh_home` (a
    clone of the package's own repository in an org: git carries only the id, CI points WALKOUT_HOME
    at the org's store; the copy is resolved by id and hash-checked, as in production).
    FileNotFoundError naming both places when it is in neither.
    """
    import shutil

    import yaml

    package_root = Path(package_root)
    experiment_id = yaml.safe_load((package_root / "model_ref.yaml").read_text())["experiment_id"]
    bundled = package_root / "experiments" / experiment_id
    if bundled.is_dir():
        return bundled
    outer = Path(outer_home or "~/.walkout").expanduser() / "experiments" / experiment_id
    if not outer.is_dir():
        raise FileNotFoundError(
            f"model_ref.yaml pins {experiment_id}, which is neither bundled ({bundled}) nor in the store "
            f"{outer.parent}: set WALKOUT_HOME to the org's store (walkout-ci org init: DIR/store)"
        )
    target = Path(fresh_home) / "experiments" / experiment_id
    shutil.copytree(outer, target)
    return target


def make_leakage_checked_component_repo(root, baseline_scores: Mapping[str, list[float]]) -> Path:
    """`make_fake_component_repo(root, ..., subdir="")` whose pinned baseline also recorded its
    training frames (none blind) on `main`, so gates on blind data can run its leakage check; the
    branch `feature` is checked out, up to date with `main`. Returns the component folder."""
    import subprocess

    component = make_fake_component_repo(root, baseline_scores, subdir="")
    (component / "experiments" / "local-baseline" / "training_data.json").write_text('{"content_hashes": []}')
    for args in (
        ("checkout", "-q", "main"),
        ("add", "-A"),
        ("commit", "-q", "-m", "baseline records its training data"),
        ("checkout", "-q", "feature"),
        ("merge", "-q", "main"),
    ):
        subprocess.run(["git", "-C", str(component), *args], check=True, capture_output=True)
    return component


def pin_fake_candidate(component, experiment_id: str, weights: bytes) -> None:
    """A change pins a new fake experiment (its training frames recorded, none blind); not committed."""
    component = Path(component)
    digest = write_fake_experiment(component / "experiments", experiment_id, weights)
    (component / "experiments" / experiment_id / "training_data.json").write_text('{"content_hashes": []}')
    (component / "model_ref.yaml").write_text(fake_pin_yaml(experiment_id, digest))
