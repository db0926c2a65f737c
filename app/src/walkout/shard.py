"""System QC sharded over ClearML agent workers: `walkout qc --executor clearml --shards N`.

Only prediction leaves this machine; preparing the inputs and scoring stay here (trusted, with the
ground truth), exactly as in the gate (ARCHITECTURE.md section 5):

1. `gate-inputs` into a temp folder (walkout.gate_inputs.prepare_inputs).
2. `plan_shards`: the videos split into N shards balanced by frame count (deterministic);
   `write_shard_inputs`: each shard a complete inputs folder of its own (`inputs.json` listing only
   its videos, the files hard-linked when possible).
3. One ClearML prediction task per shard (walkout_ci.executors.clearml.launch_prediction), all
   enqueued at once; clearml-agent checks out the lock file's commit and runs the app's gate.yaml
   `evaluate.predict` (`walkout gate-predict`) on that shard only.
4. `wait_for_shards`: poll every task until all completed, or one failed / was lost / the single
   deadline passed; then the other tasks are stopped (fail closed: never a partial report).
5. `merge_predictions`: the shard files into one predictions.json, every video exactly once.
6. `walkout.qc.score_predictions`, the scorer `walkout qc` uses, so the report equals the local run's
   (timings and `extra.jobs` aside).

Agents need: the repository at the commit (the `origin` remote or WALKOUT_CLEARML_REPO_URL), and the
shard inputs on storage they mount (WALKOUT_CLEARML_INPUTS_ROOT, else this machine's temp folder).
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from walkout.errors import QCError
from walkout.gate_inputs import INDEX_NAME, LAYOUT_NAME, prepare_inputs, read_inputs
from walkout.groundtruth import find_videos
from walkout.predictions import PREDICTIONS_FORMAT, PREDICTIONS_NAME, PREDICTIONS_VERSION, PredictionsError
from walkout.qc import (
    QCOutcome,
    ReportIdentity,
    _clear_report_dir,
    _error_outcome,
    _model_fields,
    dataset_hash,
    score_predictions,
)
from walkout.results import write_json_atomic

APP_DIR = "app"  # the app's folder beside the lock file (holding gate.yaml)
COMPONENT = "app"


@dataclass(frozen=True)
class Shard:
    """One shard: its 1-based number, the count, and its videos' inputs.json entries (index order)."""

    number: int
    count: int
    entries: tuple[dict, ...]

    @property
    def label(self) -> str:
        return f"shard {self.number}/{self.count}"

    @property
    def videos(self) -> tuple[str, ...]:
        return tuple(entry["name"] for entry in self.entries)


def plan_shards(entries: list[dict], count: int) -> list[Shard]:
    """Split inputs.json `videos` entries into `count` shards with about equal frames each.

    Longest first onto the lightest shard (ties: the lower shard number), each shard keeping the
    index order; a video of unknown length counts as the longest known one. Never an empty shard:
    `count` is capped at the number of videos. QCError for count < 1.
    """
    if count < 1:
        raise QCError(f"--shards must be >= 1, got {count}")
    count = min(count, len(entries))
    known = [e["frames"] for e in entries if e["frames"] is not None]
    fallback = max(known, default=1)
    weight = {e["name"]: e["frames"] if e["frames"] is not None else fallback for e in entries}
    loads = [0] * count
    members: list[list[str]] = [[] for _ in range(count)]
    for entry in sorted(entries, key=lambda e: -weight[e["name"]]):
        lightest = min(range(count), key=lambda i: (loads[i], i))
        loads[lightest] += weight[entry["name"]]
        members[lightest].append(entry["name"])
    order = {e["name"]: i for i, e in enumerate(entries)}
    by_name = {e["name"]: e for e in entries}
    return [
        Shard(
            number=i + 1,
            count=count,
            entries=tuple(by_name[name] for name in sorted(names, key=order.__getitem__)),
        )
        for i, names in enumerate(members)
    ]


def _link_or_copy(source: Path, target: Path) -> None:
    """Hard-link `source` to `target` (a new file), or copy it across file systems."""
    target.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.link(source, target)
    except OSError:
        shutil.copyfile(source, target)


def write_shard_inputs(inputs: Path, shard: Shard, out: Path) -> Path:
    """Write `shard`'s inputs folder at `out` (must not exist) from the full `inputs` folder.

    Same layout and format as `walkout gate-inputs` (walkout.gate_inputs), listing only the shard's
    videos; inputs.json is written last. Returns `out`.
    """
    index = json.loads((inputs / INDEX_NAME).read_text(encoding="utf-8"))
    out.mkdir(parents=True)
    if index.get("layout"):
        _link_or_copy(inputs / index["layout"], out / LAYOUT_NAME)
    for entry in shard.entries:
        for key in ("video", "layout"):
            _link_or_copy(inputs / entry[key], out / entry[key])
    write_json_atomic(out / INDEX_NAME, {**index, "videos": list(shard.entries)})
    read_inputs(out)  # the shard must be an inputs folder gate-predict accepts
    return out


def _load_shard_file(path: Path) -> dict:
    """A shard's predictions.json as a mapping (no key given twice); PredictionsError naming the file."""

    def unique(pairs: list[tuple[str, Any]]) -> dict:
        keys = [key for key, _ in pairs]
        if len(set(keys)) != len(keys):
            raise PredictionsError(f"{path}: a JSON object lists a key twice")
        return dict(pairs)

    if not path.is_file():
        raise PredictionsError(f"{path} does not exist: the shard's task uploaded no {PREDICTIONS_NAME}")
    try:
        document = json.loads(path.read_text(encoding="utf-8"), object_pairs_hook=unique)
    except (json.JSONDecodeError, UnicodeDecodeError, RecursionError) as error:
        raise PredictionsError(f"{path} is not valid JSON: {error}") from error
    if not isinstance(document, dict):
        raise PredictionsError(f"{path}: expected a mapping with format, version, mode, jobs, videos")
    return document


def merge_predictions(parts: list[tuple[Shard, Path]], out: Path, *, wall_seconds: float) -> Path:
    """Merge the shards' predictions files into `out/predictions.json`; return its path.

    parts: (shard, its predictions.json). Each file must be format walkout-app-predictions version 1
    and list exactly its shard's videos, each once; all must have the same mode. The merged file has
    the videos in shard order, `jobs` = the sum of the shards' jobs (processes that ran), and
    `wall_seconds` as given (the sharded prediction's wall time measured here). The entries are
    copied as they are: `walkout.qc.score_predictions` then checks every field strictly.
    PredictionsError names the file and the record.
    """
    videos: list[dict] = []
    modes: set[str] = set()
    jobs = 0
    for shard, path in parts:
        document = _load_shard_file(path)
        if document.get("format") != PREDICTIONS_FORMAT or document.get("version") != PREDICTIONS_VERSION:
            raise PredictionsError(
                f"{path}: format/version {document.get('format')!r}/{document.get('version')!r}, "
                f"expected {PREDICTIONS_FORMAT!r}/{PREDICTIONS_VERSION}"
            )
        entries = document.get("videos")
        if not isinstance(entries, list):
            raise PredictionsError(f"{path}: videos must be a list with one entry per video of {shard.label}")
        seen: list[str] = []
        for index, entry in enumerate(entries):
            name = entry.get("video") if isinstance(entry, dict) else None
            if name not in shard.videos:
                raise PredictionsError(
                    f"{path}: videos[{index}].video {name!r} is not a video of {shard.label} "
                    f"(it has: {', '.join(shard.videos)})"
                )
            if name in seen:
                raise PredictionsError(f"{path}: videos[{index}].video {name!r} is listed twice")
            seen.append(name)
        missing = [name for name in shard.videos if name not in seen]
        if missing:
            raise PredictionsError(
                f"{path}: no predictions for video(s) {', '.join(missing)} of {shard.label}"
            )
        modes.add(str(document.get("mode")))
        raw_jobs = document.get("jobs")
        jobs += raw_jobs if isinstance(raw_jobs, int) and not isinstance(raw_jobs, bool) else 0
        videos.extend(entries)
    if len(modes) != 1:
        raise PredictionsError(f"the shards' predictions disagree on mode: {sorted(modes)}")
    merged = {
        "format": PREDICTIONS_FORMAT,
        "version": PREDICTIONS_VERSION,
        "mode": modes.pop(),
        "jobs": max(jobs, 1),
        "wall_seconds": wall_seconds,
        "videos": videos,
    }
    return write_json_atomic(out / PREDICTIONS_NAME, merged)


@dataclass(frozen=True)
class LockCheckout:
    """Where the agents find the lock file: repository root, commit, path relative to the root, the
    app folder relative to the root, and the sha256 of the lock file's bytes."""

    repo_root: Path
    commit: str
    lock_path: str
    app_dir: str
    lock_sha256: str


def locate_lock(refs_path: Path) -> LockCheckout:
    """The committed lock file the agents will check out; QCError when it is not committed as is.

    The agents run the repository at HEAD's commit, so the lock file here must be byte-identical to
    HEAD's (the agent checks the sha256 again, fail closed), and `app/gate.yaml` must sit beside it.
    """
    from walkout_ci import gitrepo
    from walkout_ci.errors import WalkoutCIError
    from walkout_ci.report import sha256_of_file

    refs = refs_path.resolve()
    if not refs.is_file():
        raise QCError(f"--refs {refs_path} does not exist")
    try:
        root = gitrepo.repo_root(refs)
        commit = gitrepo.resolve_commit(root, "HEAD")
        relative = gitrepo.relative_to_root(root, refs)
        committed = gitrepo.show_bytes(root, commit, relative)
    except WalkoutCIError as error:
        raise QCError(
            f"--refs {refs_path}: the clearml executor needs the lock file in a git repository the "
            f"agents can check out: {error}"
        ) from error
    if committed != refs.read_bytes():
        raise QCError(
            f"--refs {refs_path} differs from (or is missing in) commit {commit[:12]}, which is what the "
            "agents check out: commit the lock file first"
        )
    app = refs.parent / APP_DIR
    if not (app / "gate.yaml").is_file():
        raise QCError(f"{app / 'gate.yaml'} does not exist: the app folder must be beside the lock file")
    return LockCheckout(
        repo_root=root,
        commit=commit,
        lock_path=relative,
        app_dir=gitrepo.relative_to_root(root, app),
        lock_sha256=sha256_of_file(refs),
    )


def shard_request(checkout: LockCheckout, shard: Shard, inputs: Path, predictions: Path, *, refs_ref: str):
    """The PredictionRequest of one shard: the app's gate.yaml predict command on `inputs`."""
    from walkout_ci.executors import PredictionRequest
    from walkout_ci.gate_config import load_gate_config

    evaluate = load_gate_config(checkout.repo_root / checkout.app_dir).evaluate
    return PredictionRequest(
        repo_root=checkout.repo_root,
        component_dir=checkout.app_dir,
        component=COMPONENT,
        commit=checkout.commit,
        command=tuple(evaluate.predict),
        workdir=evaluate.workdir,
        timeout_s=evaluate.timeout_s,
        model_ref=refs_ref,
        weights_sha256=checkout.lock_sha256,
        inputs_dir=inputs,
        predictions_dir=predictions,
        model_in_worktree=checkout.lock_path,
        label=shard.label,
    )


def wait_for_shards(
    launched: list, *, timeout_s: float, poll_s: float, api_timeout_s: float
) -> dict[int, str]:
    """Poll every launched shard task until all are terminal, one is not `completed`, the server stops
    answering for `api_timeout_s`, or `timeout_s` passes (one deadline for all).

    Returns {shard index: why it failed} (empty: all completed). Does not stop anything: the caller
    stops what is left (walkout_ci.executors.clearml.stop_prediction).
    """
    from walkout_ci.errors import EvaluationError
    from walkout_ci.executors.clearml import TERMINAL_STATUSES, finish_prediction, poll_status

    deadline = time.monotonic() + timeout_s
    pending = set(range(len(launched)))
    last: dict[int, str | None] = {}
    unknown_since: dict[int, float] = {}
    while True:
        for index in sorted(pending):
            status = poll_status(launched[index].task, api_timeout_s)
            now = time.monotonic()
            if status is None:
                since = unknown_since.setdefault(index, now)
                if now - since > api_timeout_s:
                    return {index: f"the ClearML server gave no status for {now - since:.0f} s"}
                continue
            unknown_since.pop(index, None)
            last[index] = status
            if status in TERMINAL_STATUSES:
                pending.discard(index)
                if status != "completed":
                    try:
                        # terminal already: this returns at once with the status, reason and link
                        finish_prediction(launched[index])
                    except EvaluationError as error:
                        return {index: str(error)}
                    return {index: f"ended with status {status!r}"}
        if not pending:
            return {}
        if time.monotonic() >= deadline:
            return {
                index: f"ClearML task {launched[index].task.id} did not finish within {timeout_s:.0f} s "
                f"(last status {last.get(index)!r}): a lost or stuck worker?"
                for index in sorted(pending)
            }
        time.sleep(poll_s)


def _shard_errors(shards: list[Shard], failed: dict[int, str], launched: list) -> dict[str, str]:
    """errors.json entries: every video, with its shard's failure or the shard that stopped the run."""
    culprit = ", ".join(shards[i].label for i in sorted(failed))
    errors = {}
    for index, shard in enumerate(shards):
        task = f" (ClearML task {launched[index].task.id})" if index < len(launched) else ""
        message = (
            f"{shard.label}{task}: {failed[index]}"
            if index in failed
            else f"{shard.label}{task}: not scored, the run was stopped because {culprit} failed"
        )
        for video in shard.videos:
            errors[video] = message
    return errors


def run_sharded_qc(
    videos: str | os.PathLike,
    *,
    report_dir: str | os.PathLike,
    refs_path: str | os.PathLike,
    shards: int,
    options: Any = None,
    wait_timeout_s: float | None = None,
) -> QCOutcome:
    """`walkout qc --executor clearml --shards N` (module docstring). ERROR outcome (errors.json, no
    report.json) when any shard is lost, fails or times out; the other tasks are then stopped.

    options: walkout_ci ClearMLExecutorOptions (default: from WALKOUT_CLEARML_* variables);
    wait_timeout_s: one deadline for all shards (default: options.wait_timeout_s, else gate.yaml's
    timeout + 600 s).
    """
    from dataclasses import replace

    from walkout_ci.errors import EvaluationError
    from walkout_ci.executors.clearml import (
        ClearMLExecutorOptions,
        finish_prediction,
        launch_prediction,
        stop_prediction,
    )

    videos_root = Path(videos)
    report_dir = Path(report_dir)
    video_dirs = find_videos(videos_root)
    _clear_report_dir(report_dir)
    refs = Path(refs_path)
    checkout = locate_lock(refs)
    options = options or ClearMLExecutorOptions.from_env()
    with tempfile.TemporaryDirectory(prefix="walkout-qc-shards-") as temporary:
        work = Path(temporary)
        work.chmod(0o755)  # agents on this machine may run as another user
        inputs = work / "inputs"
        prepare_inputs(videos_root, inputs, link=True)
        index = json.loads((inputs / INDEX_NAME).read_text(encoding="utf-8"))
        plan = plan_shards(index["videos"], shards)
        requests = [
            shard_request(
                checkout,
                shard,
                write_shard_inputs(inputs, shard, work / f"shard-{shard.number}" / "inputs"),
                work / f"shard-{shard.number}" / "predictions",
                refs_ref=str(refs),
            )
            for shard in plan
        ]
        timeout_s = wait_timeout_s or options.wait_timeout_s or requests[0].timeout_s + 600.0
        # Each task's own wait is bounded by the one deadline too (finish_prediction downloads).
        options = replace(options, wait_timeout_s=timeout_s)
        launched: list = []
        failed: dict[int, str] = {}
        started = time.monotonic()
        try:
            for request in requests:
                try:
                    launched.append(launch_prediction(request, options))
                except EvaluationError as error:
                    failed = {len(launched): str(error)}
                    break
            if not failed:
                failed = wait_for_shards(
                    launched, timeout_s=timeout_s, poll_s=options.poll_s, api_timeout_s=options.api_timeout_s
                )
            if not failed:
                for position, item in enumerate(launched):
                    try:
                        finish_prediction(item)
                    except EvaluationError as error:
                        failed = {position: str(error)}
                        break
        finally:
            # Fail closed and leave nothing running: stop every task not known to have finished
            # (also on SIGTERM/SIGINT unwinding as Interrupted).
            for item in launched:
                stop_prediction(item, "walkout qc: another shard failed or the run was stopped")
        if failed:
            return _error_outcome(report_dir, _shard_errors(plan, failed, launched))
        wall = time.monotonic() - started
        merged = merge_predictions(
            [
                (shard, request.predictions_dir / PREDICTIONS_NAME)
                for shard, request in zip(plan, requests, strict=True)
            ],
            work / "predictions",
            wall_seconds=wall,
        )
        model, experiment_id, extra = _model_fields(refs)
        identity = ReportIdentity(
            model=model,
            experiment_id=experiment_id,
            code_commit=checkout.commit,
            dataset={"id": str(videos_root), "hash": dataset_hash(videos_root, video_dirs)},
            extra={**extra, "executor": "clearml", "shards": len(plan)},
        )
        return score_predictions(
            videos_root, merged, report_dir=report_dir, identity=identity, predict_seconds=wall
        )
