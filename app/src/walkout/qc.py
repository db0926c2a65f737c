"""System QC: score the system's predictions on a split against its ground truth; the report contract.

QC is two stages with a file between them (ARCHITECTURE.md, issue 11): `walkout.predict` runs the
system on the split's inputs and writes predictions.json; `score_predictions` (trusted: it holds the
ground truth) checks that file strictly, scores every video, draws contact sheets of the wrong
receipts from the split's videos and writes report.json. `run_qc` (`walkout qc`) is exactly
gate-inputs + predict + score in a temporary folder.

A video that cannot be predicted or scored is an error of that video, and any error makes the whole
QC an ERROR: no report.json is written (a stale one is removed first), `errors.json` lists what failed,
and the CLI exits 2. The gate therefore never sees a partial report that could pass.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
import time
import traceback
from dataclasses import dataclass, field, replace
from pathlib import Path

import cv2

from walkout.drawing import contact_sheet, draw_observation
from walkout.engine import EngineConfig
from walkout.errors import QCError, WalkoutError
from walkout.evaluate import (
    VideoScore,
    WrongReceipt,
    confidence_intervals,
    review_flag_figures,
    score_video,
    summarize,
    video_end_figures,
)
from walkout.gate_inputs import prepare_inputs
from walkout.groundtruth import VideoGroundTruth, find_videos, load_video_ground_truth
from walkout.predictions import VideoExpectation, read_predictions
from walkout.results import VideoResult, write_json_atomic
from walkout.video import read_frames
from walkout_ci.gitrepo import code_commit
from walkout_ci.store import atomic_copy

COMPONENT = "app"
ORACLE_REF = "oracle"
IMAGES_DIR = "images"
SHEET_FRAMES_AROUND = 6  # frames before and after a wrong event shown on its contact sheet
SHEET_MAX_TILES = 12


@dataclass
class VideoOutcome:
    """How one video was scored: its score and result, or the error that stopped it."""

    video: str
    score: VideoScore | None = None
    result: VideoResult | None = None
    sheets: dict[str, str] = field(default_factory=dict)  # wrong-receipt shopper -> image path (relative)
    derived_receipts: tuple[str, ...] = ()  # ground-truth receipts rebuilt from events (see groundtruth)
    error: str | None = None


def _sheet_for(
    truth: VideoGroundTruth, wrong: WrongReceipt, report_dir: Path, result: VideoResult
) -> str | None:
    """Write the contact sheet of the frames around a wrong receipt's events; return its relative path."""
    centers = wrong.frames or [truth.frame_count]
    wanted: list[int] = []
    for center in centers:
        for frame in range(center - SHEET_FRAMES_AROUND, center + SHEET_FRAMES_AROUND + 1, 2):
            if 1 <= frame <= truth.frame_count and frame not in wanted:
                wanted.append(frame)
    wanted = sorted(wanted)[:SHEET_MAX_TILES]
    images = read_frames(truth.directory, set(wanted))
    observations = {f.frame: f for f in truth.frames}
    predicted_frames = {int(e["frame"]) for e in result.events}
    tiles = []
    for frame in wanted:
        if frame not in images:
            continue
        image = images[frame]
        if frame in observations:
            image = draw_observation(image, observations[frame])
        marker = " *event" if frame in predicted_frames else ""
        tiles.append((f"frame {frame}{marker}", image))
    if not tiles:
        return None
    title = f"{truth.name} shopper {wrong.shopper}: expected {wrong.expected} got {wrong.predicted}"
    sheet = contact_sheet(tiles, title=title, columns=4, scale=2.0)
    safe_shopper = wrong.shopper.replace(":", "-")
    relative = f"{IMAGES_DIR}/{truth.name}_shopper{safe_shopper}.png"
    target = report_dir / relative
    target.parent.mkdir(parents=True, exist_ok=True)
    temporary = target.with_name(f".{target.name}.tmp.png")
    if not cv2.imwrite(str(temporary), sheet):
        raise QCError(f"could not write contact sheet {target}")
    os.replace(temporary, target)
    return relative


def score_one(result: VideoResult, truth: VideoGroundTruth, report_dir: Path) -> VideoOutcome:
    """Score one video's checked predictions, draw its contact sheets, write videos/<name>.json."""
    name = truth.name
    try:
        score = score_video(result, truth)
        sheets = {}
        for wrong in score.wrong:
            path = _sheet_for(truth, wrong, report_dir, result)
            if path is not None:
                sheets[wrong.shopper] = path
        write_json_atomic(report_dir / "videos" / f"{name}.json", result.output_json())
        return VideoOutcome(
            video=name, score=score, result=result, sheets=sheets, derived_receipts=truth.derived_receipts
        )
    except WalkoutError as error:
        return VideoOutcome(video=name, error=f"{type(error).__name__}: {error}")
    except Exception as error:  # any crash is an error of this video, reported, never a pass
        detail = traceback.format_exception_only(type(error), error)[-1].strip()
        return VideoOutcome(video=name, error=f"unexpected {detail}")


def _load_truths(video_dirs: list[Path]) -> tuple[dict[str, VideoGroundTruth], dict[str, str]]:
    """Ground truth of every video folder: ({name: truth}, {name: error} for those that cannot be read)."""
    truths: dict[str, VideoGroundTruth] = {}
    errors: dict[str, str] = {}
    for video_dir in video_dirs:
        try:
            truths[video_dir.name] = load_video_ground_truth(video_dir)
        except WalkoutError as error:
            errors[video_dir.name] = f"{type(error).__name__}: {error}"
    return truths, errors


def dataset_hash(videos_root: Path, video_dirs: list[Path]) -> str:
    """sha256 of the split's manifest.json when there is one, else of the video files' bytes."""
    for candidate in (videos_root / "manifest.json", videos_root.parent / "manifest.json"):
        if candidate.is_file():
            return hashlib.sha256(candidate.read_bytes()).hexdigest()
    digest = hashlib.sha256()
    for video_dir in video_dirs:
        digest.update(video_dir.name.encode())
        for name in ("video.avi", "annotations.json", "receipts.json"):
            path = video_dir / name
            if path.is_file():
                digest.update(hashlib.sha256(path.read_bytes()).digest())
    return digest.hexdigest()


def _model_fields(refs_path: Path | None) -> tuple[dict, str | None, dict]:
    """(report `model`, experiment_id, extra) for the models used (or the oracle)."""
    if refs_path is None:
        digest = hashlib.sha256(ORACLE_REF.encode()).hexdigest()
        return {"ref": ORACLE_REF, "weights_sha256": digest}, None, {"mode": "oracle"}
    from walkout.refs import COMPONENTS, load_refs

    refs = load_refs(refs_path)
    components = {name: refs.components[name].to_mapping() for name in COMPONENTS}
    experiment = ",".join(f"{name}={refs.components[name].experiment_id}" for name in COMPONENTS)
    return (
        {"ref": str(refs_path), "weights_sha256": refs.combined_sha256()},
        experiment,
        {"mode": "models", "components": components},
    )


def build_report(
    outcomes: list[VideoOutcome],
    *,
    identity: ReportIdentity,
    total_seconds: float,
    jobs: int,
) -> dict:
    """The report contract (schema_version 1) from complete, error-free outcomes.

    Raises QCError when nothing could be judged (see `walkout.evaluate.summarize`).
    """
    scores = [o.score for o in outcomes if o.score is not None]
    metrics, per_class = summarize(scores)
    failures = []
    for outcome in outcomes:
        assert outcome.score is not None
        for wrong in outcome.score.wrong:
            failures.append(
                {
                    "sample_id": outcome.video,
                    "class": wrong.skus[0] if wrong.skus else "receipt",
                    "kind": wrong.kind,
                    "expected": {"shopper": wrong.shopper, "receipt": wrong.expected},
                    "predicted": {
                        "shopper": wrong.shopper,
                        "receipt": wrong.predicted,
                        "review": wrong.review,
                    },
                    "image": outcome.sheets.get(wrong.shopper),
                }
            )
    stage_totals: dict[str, float] = {}
    frames = 0
    for score in scores:
        frames += score.frames
        for stage, seconds in score.stage_seconds.items():
            stage_totals[stage] = stage_totals.get(stage, 0.0) + seconds
    timings = {
        "total_s": total_seconds,
        "samples_per_s": len(scores) / total_seconds if total_seconds > 0 else 0.0,
        "frames_per_s_wall": frames / total_seconds if total_seconds > 0 else 0.0,
    }
    for stage, seconds in sorted(stage_totals.items()):
        timings[f"{stage}_ms_per_frame"] = 1000.0 * seconds / frames if frames else 0.0
    extra = dict(identity.extra)
    extra.update(
        {
            "jobs": jobs,
            "per_video": {
                o.video: {
                    "receipt_exact_match": o.score.comparison.exact_match_rate,
                    "shoppers": o.score.comparison.shoppers,
                    "wrong_receipts": len(o.score.wrong),
                    "event_f1": o.score.events.f1,
                    "review_flags": o.score.receipts_flagged,
                    "derived_receipts": list(o.derived_receipts),
                    "counts": o.score.counts(),
                }
                for o in outcomes
                if o.score is not None
            },
            "review": {
                o.video: o.result.review
                for o in outcomes
                if o.result is not None and any(o.result.review.values())
            },
            "confidence_intervals": confidence_intervals(scores),
            "review_flags": review_flag_figures(scores),
            "video_end": video_end_figures(scores),
        }
    )
    return {
        "schema_version": 1,
        "component": COMPONENT,
        "experiment_id": identity.experiment_id,
        "code_commit": identity.code_commit,
        "model": dict(identity.model),
        "dataset": dict(identity.dataset),
        "metrics": metrics,
        "per_class": per_class,
        "per_sample": [o.score.sample() for o in outcomes if o.score is not None],
        "failures": failures,
        "timings": timings,
        "extra": extra,
    }


@dataclass(frozen=True)
class ReportIdentity:
    """What the report says was evaluated: `model` {ref, weights_sha256}, experiment id, code commit,
    `dataset` {id, hash}, and `extra` (mode, components...). Given by the caller, never derived from
    the predictions (the gate passes the lock file's sha256; `walkout qc` reads the lock file)."""

    model: dict
    experiment_id: str | None
    code_commit: str | None
    dataset: dict
    extra: dict = field(default_factory=dict)


@dataclass
class QCOutcome:
    """The end of a QC run: the report path (complete run) or the per-video errors (ERROR verdict).

    metrics: what `walkout qc` / `walkout gate-score` print, one `name: value` line each: the report's
    metrics, then (`printed_figures`) each interval's bounds and the review-flag figures.
    """

    report_path: Path | None
    errors: dict[str, str]
    metrics: dict[str, float]


def printed_figures(report: dict) -> dict[str, float]:
    """The report's metrics followed by `<metric>_ci95_lower/upper`, the review-flag figures and how
    much of the metrics the video's end is.

    Bounds come from `extra.confidence_intervals` (the suffix names its confidence, e.g. ci95); review
    figures from `extra.review_flags` (`review_` prefix); the video's end from `extra.video_end`
    (`video_end_` prefix). Undefined figures are left out.
    """
    figures = {name: float(value) for name, value in report["metrics"].items()}
    extra = report.get("extra", {})
    intervals = extra.get("confidence_intervals")
    if intervals:
        suffix = f"ci{round(100 * intervals['confidence'])}"
        for name, entry in intervals["metrics"].items():
            if entry is not None:
                figures[f"{name}_{suffix}_lower"] = float(entry["lower"])
                figures[f"{name}_{suffix}_upper"] = float(entry["upper"])
    for prefix, key in (("review", "review_flags"), ("video_end", "video_end")):
        for name, value in extra.get(key, {}).items():
            if value is not None:
                figures[f"{prefix}_{name}"] = float(value)
    return figures


def _clear_report_dir(report_dir: Path) -> None:
    """Create the report folder and remove a report or error list of an earlier run.

    A report from an earlier run must not survive a run that ends in ERROR.
    """
    report_dir.mkdir(parents=True, exist_ok=True)
    (report_dir / "report.json").unlink(missing_ok=True)
    (report_dir / "errors.json").unlink(missing_ok=True)


def _error_outcome(report_dir: Path, errors: dict[str, str]) -> QCOutcome:
    write_json_atomic(report_dir / "errors.json", {"verdict": "ERROR", "errors": errors})
    return QCOutcome(report_path=None, errors=errors, metrics={})


def score_predictions(
    data: str | os.PathLike,
    predictions: str | os.PathLike,
    *,
    report_dir: str | os.PathLike,
    identity: ReportIdentity,
    predict_seconds: float | None = None,
) -> QCOutcome:
    """Score a predictions file (or the folder holding it) against the split `data`; write the report.

    The predictions are checked strictly first (`walkout.predictions.read_predictions`: any problem
    raises PredictionsError, exit 2). Videos whose ground truth cannot be read or whose scoring fails
    make the run an ERROR (errors.json, no report). `timings.total_s` is the predictor's wall time
    (`predict_seconds`, else the file's `wall_seconds`) plus the scoring time.
    """
    from walkout_ci.report import write_report

    start = time.perf_counter()
    report_dir = Path(report_dir)
    video_dirs = find_videos(data)
    _clear_report_dir(report_dir)
    truths, errors = _load_truths(video_dirs)
    if errors:
        return _error_outcome(report_dir, errors)
    expected = {
        name: VideoExpectation(
            frames=truth.frame_count,
            skus=truth.skus,
            slots=frozenset(slot.key for slot in truth.layout.slots),
        )
        for name, truth in truths.items()
    }
    checked = read_predictions(predictions, expected)
    outcomes = [score_one(checked.results[d.name], truths[d.name], report_dir) for d in video_dirs]
    errors = {o.video: o.error for o in outcomes if o.error is not None}
    if errors:
        return _error_outcome(report_dir, errors)
    wall = checked.wall_seconds if predict_seconds is None else predict_seconds
    extra = {**identity.extra, "mode": identity.extra.get("mode", checked.mode)}
    report = build_report(
        outcomes,
        identity=replace(identity, extra=extra),
        total_seconds=wall + time.perf_counter() - start,
        jobs=checked.jobs,
    )
    path = write_report(report_dir, report)
    return QCOutcome(report_path=path, errors={}, metrics=printed_figures(report))


def run_qc(
    videos: str | os.PathLike,
    *,
    report_dir: str | os.PathLike,
    refs_path: str | os.PathLike | None,
    jobs: int = 2,
    engine_config: EngineConfig | None = None,
    device: str = "cpu",
    progress: bool = True,
    observations_dir: str | os.PathLike | None = None,
) -> QCOutcome:
    """`walkout qc`: gate-inputs, predict (oracle mode when `refs_path` is None) and score, in a temp folder.

    observations_dir: also record every video's model outputs there, for `walkout replay`.

    The same code as the gate's three stages, so `walkout qc` and the gate report the same numbers.
    """
    from walkout.predict import run_predict

    videos_root = Path(videos)
    report_dir = Path(report_dir)
    video_dirs = find_videos(videos_root)
    _clear_report_dir(report_dir)
    refs = Path(refs_path) if refs_path is not None else None
    if observations_dir is not None:
        # a failed run must not leave an older run's predictions beside its new recordings
        (Path(observations_dir) / "predictions.json").unlink(missing_ok=True)
    with tempfile.TemporaryDirectory(prefix="walkout-qc-") as temporary:
        inputs = Path(temporary) / "inputs"
        prepare_inputs(videos_root, inputs, link=True)
        run = run_predict(
            inputs,
            Path(temporary) / "predictions",
            refs_path=refs,
            data=videos_root if refs is None else None,
            jobs=jobs,
            engine_config=engine_config,
            device=device,
            progress=progress,
            observations_dir=observations_dir,
        )
        if run.errors:
            return _error_outcome(report_dir, run.errors)
        assert run.predictions_path is not None
        if observations_dir is not None:
            # beside the recordings: `walkout replay` checks that its `models` variant reproduces them
            atomic_copy(run.predictions_path, Path(observations_dir) / run.predictions_path.name)
        model, experiment_id, extra = _model_fields(refs)
        identity = ReportIdentity(
            model=model,
            experiment_id=experiment_id,
            code_commit=code_commit(Path(__file__).parent),
            dataset={"id": str(videos_root), "hash": dataset_hash(videos_root, video_dirs)},
            extra=extra,
        )
        return score_predictions(
            videos_root,
            run.predictions_path,
            report_dir=report_dir,
            identity=identity,
            predict_seconds=run.wall_seconds,
        )
