"""The evaluation-report contract (`report.json`, schema_version 1) and its validator / atomic writer.

Every component's `evaluate` writes one `report.json` through `write_report`; the gate reads it back
with `read_report`. The schema (ARCHITECTURE.md section 3):

    schema_version  int, == 1
    component       str, lowercase name (letters, digits, "_" or "-")
    experiment_id   str | null          ClearML task id of the evaluated model's training experiment
    code_commit     str | null          git sha of the evaluation code
    model           {"ref": str, "weights_sha256": 64 lowercase hex}
    dataset         {"id": str, "hash": str}
    metrics         {name: finite number}                   at least one
    per_class       {class: {metric name: finite number}}
    per_sample      [{"id": str (unique), "score": number in [0, 1], "classes": {class: number in [0, 1]}}]
    failures        [{"sample_id": str, "class": str, "kind": str,
                      "expected": any JSON, "predicted": any JSON, "image": relative path | null}]
    timings         {"total_s": number >= 0, other names: number >= 0}
    created_at      optional str (ISO 8601)
    extra           optional dict, free-form (anything a component wants to keep with the report)

Validation collects every problem and raises one `ReportError` listing them, each naming the JSON
path of the bad field and what would be valid. Unknown keys are errors that suggest the closest
known key: a misspelt "per_sample" must not silently disable the gate's paired tests.
"""

from __future__ import annotations

import difflib
import hashlib
import json
import math
import os
import re
import stat
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from walkout_ci.errors import DataError, ReportError

SCHEMA_VERSION = 1
REPORT_FILENAME = "report.json"

REQUIRED_KEYS = (
    "schema_version",
    "component",
    "experiment_id",
    "code_commit",
    "model",
    "dataset",
    "metrics",
    "per_class",
    "per_sample",
    "failures",
    "timings",
)
OPTIONAL_KEYS = ("created_at", "extra")
MODEL_KEYS = ("ref", "weights_sha256")
DATASET_KEYS = ("id", "hash")
SAMPLE_KEYS = ("id", "score", "classes")
FAILURE_REQUIRED_KEYS = ("sample_id", "class", "kind")
FAILURE_OPTIONAL_KEYS = ("expected", "predicted", "image")

_COMPONENT_PATTERN = re.compile(r"^[a-z0-9][a-z0-9_-]*$")
_SHA256_PATTERN = re.compile(r"^[0-9a-f]{64}$")
_FILE_MODE = 0o644
# Stop listing after this many problems: a report that is wrong everywhere is wrong for one reason.
_MAX_LISTED_PROBLEMS = 20


def validate_report(data: Any, *, source: str = "report") -> dict:
    """Check `data` against the report contract and return it with numpy scalars made plain.

    data: the decoded report (a dict). source: a name for messages (usually the file path).
    Returns a new dict that is plain JSON (numpy scalars converted to Python numbers).
    Raises ReportError listing every problem found, each with its JSON path.
    """
    plain = _to_plain(data)
    problems: list[str] = []
    _check_report(plain, problems)
    if problems:
        listed = problems[:_MAX_LISTED_PROBLEMS]
        more = len(problems) - len(listed)
        tail = f"\n  ... and {more} more" if more else ""
        raise ReportError(
            f"{source} does not follow the report contract (schema_version {SCHEMA_VERSION}, "
            f"ARCHITECTURE.md section 3):\n  " + "\n  ".join(listed) + tail
        )
    return plain


def write_report(report_dir: str | os.PathLike, data: Mapping) -> Path:
    """Validate `data` and write it to `report_dir/report.json` atomically; return that path.

    The folder is created if needed. The file is first written to a temporary file in the same
    folder and then renamed, so a reader never sees a half-written report. Nothing is written when
    validation fails (ReportError).
    """
    report_dir = Path(report_dir)
    plain = validate_report(data, source=str(report_dir / REPORT_FILENAME))
    report_dir.mkdir(parents=True, exist_ok=True)
    return atomic_write_text(
        report_dir / REPORT_FILENAME, json.dumps(plain, indent=2, allow_nan=False) + "\n"
    )


def discard_stale_report(report_dir: str | os.PathLike) -> None:
    """Remove `report_dir/report.json` left by an earlier run, first thing in an evaluation: a run
    that then fails must not leave the previous result looking like its own."""
    Path(report_dir, REPORT_FILENAME).unlink(missing_ok=True)


def read_report(path: str | os.PathLike) -> dict:
    """Read and validate a report; `path` is a report.json file or the folder holding it.

    Raises ReportError when the file is missing, is not JSON, or breaks the contract.
    """
    path = Path(path)
    if path.is_dir():
        path = path / REPORT_FILENAME
    if not path.is_file():
        raise ReportError(f"no evaluation report at {path}: the evaluation did not write one")
    try:
        data = json.loads(path.read_text(encoding="utf-8"), parse_constant=_reject_constant)
    except (json.JSONDecodeError, UnicodeDecodeError, ValueError) as error:
        raise ReportError(f"{path} is not valid JSON: {error}") from error
    return validate_report(data, source=str(path))


def atomic_write_text(path: str | os.PathLike, text: str) -> Path:
    """Write `text` to `path` through a temporary file in the same folder and a rename."""
    path = Path(path)
    handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        # mkstemp creates 0600; reports are meant to be read by CI and teammates.
        os.chmod(temporary, _FILE_MODE)
        with os.fdopen(handle, "w", encoding="utf-8") as stream:
            stream.write(text)
            stream.flush()
            os.fsync(stream.fileno())
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return path


def sample_class_scores(report: Mapping) -> dict[str, dict[str, float]]:
    """Per-class per-sample scores of a validated report: {class: {sample id: score}}."""
    scores: dict[str, dict[str, float]] = {}
    for sample in report["per_sample"]:
        for name, value in sample["classes"].items():
            scores.setdefault(name, {})[sample["id"]] = float(value)
    return scores


def _reject_constant(name: str) -> None:
    # json accepts NaN/Infinity by default; a NaN metric is an evaluation bug, never a number.
    raise ValueError(f"non-standard JSON constant {name} (NaN/Infinity are not allowed in a report)")


def _to_plain(value: Any) -> Any:
    """Recursively convert numpy scalars / tuples to plain JSON types; leave anything else as is."""
    if isinstance(value, Mapping):
        return {key: _to_plain(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_to_plain(item) for item in value]
    # numpy scalars have .item() and no len(); arrays are left as is and rejected by the checks.
    if type(value).__module__ == "numpy" and hasattr(value, "item") and getattr(value, "ndim", 1) == 0:
        return value.item()
    return value


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _describe(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _check_keys(
    mapping: dict, path: str, required: tuple[str, ...], optional: tuple[str, ...], problems: list[str]
) -> None:
    for key in required:
        if key not in mapping:
            problems.append(f"{path}: missing required key {key!r}")
    known = required + optional
    for key in mapping:
        if key not in known:
            suggestion = difflib.get_close_matches(str(key), known, n=1)
            hint = f" (did you mean {suggestion[0]!r}?)" if suggestion else f" (allowed: {', '.join(known)})"
            problems.append(f"{path}: unknown key {key!r}{hint}")


def _check_string(value: Any, path: str, problems: list[str], *, nullable: bool = False) -> None:
    if value is None and nullable:
        return
    if not isinstance(value, str) or not value:
        expected = "a non-empty string or null" if nullable else "a non-empty string"
        problems.append(f"{path}: expected {expected}, got {_describe(value)}")


def _check_number_map(value: Any, path: str, problems: list[str], *, unit_interval: bool = False) -> None:
    if not isinstance(value, dict):
        problems.append(f"{path}: expected an object of name -> number, got {_describe(value)}")
        return
    for name, number in value.items():
        if not _is_number(number):
            problems.append(f"{path}.{name}: expected a finite number, got {_describe(number)}")
        elif unit_interval and not 0.0 <= number <= 1.0:
            problems.append(f"{path}.{name}: expected a score in [0, 1], got {number}")


def _check_report(data: Any, problems: list[str]) -> None:
    if not isinstance(data, dict):
        problems.append(f"top level: expected a JSON object, got {type(data).__name__}")
        return
    _check_keys(data, "top level", REQUIRED_KEYS, OPTIONAL_KEYS, problems)

    version = data.get("schema_version")
    if "schema_version" in data and (isinstance(version, bool) or version != SCHEMA_VERSION):
        problems.append(
            f"schema_version: expected {SCHEMA_VERSION}, got {_describe(version)} "
            "(this walkout-ci reads schema_version 1 only)"
        )
    if "component" in data:
        component = data["component"]
        if not isinstance(component, str) or not _COMPONENT_PATTERN.match(component):
            problems.append(
                f"component: expected a lowercase name such as 'detection', got {_describe(component)}"
            )
    for key in ("experiment_id", "code_commit"):
        if key in data:
            _check_string(data[key], key, problems, nullable=True)

    if "model" in data:
        _check_model(data["model"], problems)
    if "dataset" in data:
        _check_dataset(data["dataset"], problems)
    if "metrics" in data:
        _check_number_map(data["metrics"], "metrics", problems)
        if isinstance(data["metrics"], dict) and not data["metrics"]:
            problems.append("metrics: expected at least one overall metric, got an empty object")
    if "per_class" in data:
        _check_per_class(data["per_class"], problems)
    sample_ids: set[str] = set()
    if "per_sample" in data:
        sample_ids = _check_per_sample(data["per_sample"], problems)
    if "failures" in data:
        _check_failures(data["failures"], sample_ids, problems)
    if "timings" in data:
        _check_timings(data["timings"], problems)
    if "created_at" in data:
        _check_string(data["created_at"], "created_at", problems)
    if "extra" in data and not isinstance(data["extra"], dict):
        problems.append(f"extra: expected an object, got {_describe(data['extra'])}")


def _check_model(model: Any, problems: list[str]) -> None:
    if not isinstance(model, dict):
        problems.append(f"model: expected an object with ref and weights_sha256, got {_describe(model)}")
        return
    _check_keys(model, "model", MODEL_KEYS, (), problems)
    if "ref" in model:
        _check_string(model["ref"], "model.ref", problems)
    if "weights_sha256" in model:
        digest = model["weights_sha256"]
        if not isinstance(digest, str) or not _SHA256_PATTERN.match(digest):
            problems.append(
                f"model.weights_sha256: expected 64 lowercase hex digits (hashlib.sha256(...).hexdigest()), "
                f"got {_describe(digest)}"
            )


def _check_dataset(dataset: Any, problems: list[str]) -> None:
    if not isinstance(dataset, dict):
        problems.append(f"dataset: expected an object with id and hash, got {_describe(dataset)}")
        return
    _check_keys(dataset, "dataset", DATASET_KEYS, (), problems)
    for key in DATASET_KEYS:
        if key in dataset:
            _check_string(dataset[key], f"dataset.{key}", problems)


def _check_per_class(per_class: Any, problems: list[str]) -> None:
    if not isinstance(per_class, dict):
        problems.append(
            f"per_class: expected an object of class -> {{metric: number}}, got {_describe(per_class)}"
        )
        return
    for name, metrics in per_class.items():
        _check_number_map(metrics, f"per_class.{name}", problems)


def _check_per_sample(per_sample: Any, problems: list[str]) -> set[str]:
    if not isinstance(per_sample, list):
        problems.append(f"per_sample: expected a list of samples, got {_describe(per_sample)}")
        return set()
    seen: set[str] = set()
    for index, sample in enumerate(per_sample):
        path = f"per_sample[{index}]"
        if not isinstance(sample, dict):
            problems.append(f"{path}: expected an object with id, score and classes, got {_describe(sample)}")
            continue
        _check_keys(sample, path, SAMPLE_KEYS, (), problems)
        sample_id = sample.get("id")
        if "id" in sample:
            _check_string(sample_id, f"{path}.id", problems)
            if isinstance(sample_id, str):
                if sample_id in seen:
                    problems.append(f"{path}.id: duplicate sample id {sample_id!r} (ids must be unique)")
                seen.add(sample_id)
        if "score" in sample:
            score = sample["score"]
            if not _is_number(score) or not 0.0 <= score <= 1.0:
                problems.append(f"{path}.score: expected a number in [0, 1], got {_describe(score)}")
        if "classes" in sample:
            _check_number_map(sample["classes"], f"{path}.classes", problems, unit_interval=True)
    return seen


def _check_failures(failures: Any, sample_ids: set[str], problems: list[str]) -> None:
    if not isinstance(failures, list):
        problems.append(f"failures: expected a list of failure cases, got {_describe(failures)}")
        return
    for index, failure in enumerate(failures):
        path = f"failures[{index}]"
        if not isinstance(failure, dict):
            problems.append(f"{path}: expected an object, got {_describe(failure)}")
            continue
        _check_keys(failure, path, FAILURE_REQUIRED_KEYS, FAILURE_OPTIONAL_KEYS, problems)
        for key in FAILURE_REQUIRED_KEYS:
            if key in failure:
                _check_string(failure[key], f"{path}.{key}", problems)
        sample_id = failure.get("sample_id")
        if sample_ids and isinstance(sample_id, str) and sample_id not in sample_ids:
            problems.append(f"{path}.sample_id: {sample_id!r} is not the id of any per_sample entry")
        image = failure.get("image")
        if image is not None:
            if not isinstance(image, str) or not image:
                problems.append(f"{path}.image: expected a relative path or null, got {_describe(image)}")
            else:
                relative = Path(image)
                if relative.is_absolute() or ".." in relative.parts:
                    problems.append(
                        f"{path}.image: {image!r} must be relative to the report folder and stay inside it"
                    )


def _check_timings(timings: Any, problems: list[str]) -> None:
    if not isinstance(timings, dict):
        problems.append(f"timings: expected an object such as {{'total_s': 12.3}}, got {_describe(timings)}")
        return
    if "total_s" not in timings:
        problems.append("timings: missing required key 'total_s' (wall-clock seconds of the evaluation)")
    for name, value in timings.items():
        if not _is_number(value) or value < 0:
            problems.append(f"timings.{name}: expected a finite number >= 0, got {_describe(value)}")


def sha256_of_file(path: str | os.PathLike, *, chunk_bytes: int = 1 << 20) -> str:
    """sha256 hex digest of a file's bytes (for `model.weights_sha256` and `dataset.hash`)."""
    digest = hashlib.sha256()
    with open(path, "rb") as stream:
        for chunk in iter(lambda: stream.read(chunk_bytes), b""):
            digest.update(chunk)
    return digest.hexdigest()


def dataset_hash(data_dir: str | os.PathLike) -> str:
    """`dataset.hash` of a simulator export: the sha256 of its manifest.json (ARCHITECTURE.md §1, §3)."""
    manifest = Path(data_dir) / "manifest.json"
    if not manifest.is_file():
        raise ReportError(
            f"{data_dir} has no manifest.json: pass a simulator export folder (ARCHITECTURE.md §1)"
        )
    return sha256_of_file(manifest)


def _manifest_files(manifest_path: Path) -> dict[str, str]:
    """The `files` map {relpath: sha256} of a manifest.json; DataError naming the field if malformed."""
    try:
        with open(manifest_path, encoding="utf-8") as stream:
            manifest = json.load(stream, parse_constant=_reject_constant)
    except (OSError, ValueError) as error:
        raise DataError(f"{manifest_path}: cannot read it as JSON ({error})") from error
    files = manifest.get("files") if isinstance(manifest, dict) else None
    if not isinstance(files, dict):
        raise DataError(
            f"{manifest_path}: field 'files' must be an object {{relpath: sha256}} (a walkout-sim export "
            "lists every file it wrote there); this folder cannot be verified"
        )
    for relpath, digest in files.items():
        parts = Path(relpath).parts
        if relpath.startswith("/") or not parts or ".." in parts or "\\" in relpath:
            raise DataError(
                f"{manifest_path}: files[{relpath!r}]: expected a relative path inside the folder"
            )
        if not isinstance(digest, str) or not _SHA256_PATTERN.match(digest):
            raise DataError(f"{manifest_path}: files[{relpath!r}]: expected 64 lowercase hex, got {digest!r}")
    return files


def verify_dataset(data_dir: str | os.PathLike) -> str:
    """Check a simulator export against its manifest.json; return its `dataset.hash`.

    What is covered: every file listed in the manifest's `files` ({relpath: sha256}; walkout-sim lists
    every file it writes: COCO JSON, PNG frames, videos, gt.txt, events, receipts, layouts) exists as
    a regular file with that sha256, and every file under the folder except manifest.json is listed;
    symlinks and special files are refused (they could point anywhere). Not covered: `content_hashes`
    (the pixel hashes of the frames, used for the blind-leakage check) are not recomputed: the frame
    files carrying those pixels are covered by `files`. Folders whose manifest has no `files` map
    (e.g. merged training sets) cannot be verified and are refused.
    The hash returned is `dataset_hash(data_dir)` (sha256 of manifest.json), so a verified folder is
    identified by its manifest. Raises DataError naming the file and the expected / actual sha256.
    """
    root = Path(data_dir)
    manifest_path = root / "manifest.json"
    if not manifest_path.is_file() or manifest_path.is_symlink():
        raise DataError(f"{root} has no manifest.json: pass a simulator export folder (ARCHITECTURE.md §1)")
    listed = _manifest_files(manifest_path)
    problems: list[str] = []
    present: set[str] = set()
    special: set[str] = set()
    for current, dirs, names in os.walk(root):
        for name in sorted([*dirs, *names]):
            path = Path(current) / name
            relpath = path.relative_to(root).as_posix()
            mode = path.lstat().st_mode
            if stat.S_ISDIR(mode):
                continue
            if not stat.S_ISREG(mode):
                special.add(relpath)
                problems.append(f"{relpath} is a symlink or special file (only regular files are allowed)")
            elif relpath != "manifest.json":
                present.add(relpath)
                if relpath not in listed:
                    problems.append(f"{relpath} is not listed in manifest.json 'files' (remove it)")
    for relpath, expected in sorted(listed.items()):
        path = root / relpath
        if relpath not in present:
            if relpath not in special:
                problems.append(f"{relpath} is listed in manifest.json (sha256 {expected}) but missing")
            continue
        actual = sha256_of_file(path)
        if actual != expected:
            problems.append(f"{relpath}: sha256 {actual}, but manifest.json lists {expected}")
    if problems:
        shown = "; ".join(problems[:_MAX_LISTED_PROBLEMS])
        more = (
            f" (+{len(problems) - _MAX_LISTED_PROBLEMS} more)" if len(problems) > _MAX_LISTED_PROBLEMS else ""
        )
        raise DataError(
            f"dataset {root} does not match its manifest.json: {shown}{more}; it was changed after export "
            "(re-export it or restore the originals)"
        )
    return dataset_hash(root)
