"""System QC: run the whole system on every video of a (blind) split and write the report contract.

Each video is processed in its own task, in parallel across processes. A video that cannot be read
or scored is an error of that video, and any error makes the whole QC an ERROR: no report.json is
written (a stale one is removed first), `errors.json` lists what failed, and the CLI exits 2. The gate
therefore never sees a partial report that could pass.
"""

from __future__ import annotations

import hashlib
import multiprocessing
import os
import time
import traceback
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import cv2
from tqdm import tqdm

from walkout.drawing import contact_sheet, draw_observation
from walkout.engine import EngineConfig
from walkout.errors import QCError, VideoError, WalkoutError
from walkout.evaluate import VideoScore, WrongReceipt, score_video, summarize
from walkout.groundtruth import VideoGroundTruth, find_videos, load_video_ground_truth
from walkout.oracle import run_oracle
from walkout.results import VideoResult, write_json_atomic
from walkout.video import iterate_frames, read_frames
from walkout_ci.gitrepo import code_commit

COMPONENT = "app"
ORACLE_REF = "oracle"
IMAGES_DIR = "images"
SHEET_FRAMES_AROUND = 6  # frames before and after a wrong event shown on its contact sheet
SHEET_MAX_TILES = 12


@dataclass(frozen=True)
class QCTask:
    """One video to process (picklable)."""

    video_dir: Path
    report_dir: Path
    refs_path: Path | None  # None: oracle mode
    engine_config: EngineConfig | None  # None: the mode's default (ground-truth or model thresholds)
    device: str = "cpu"


@dataclass
class VideoOutcome:
    """What a worker sends back for one video: its score and result, or the error that stopped it."""

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


def process_video(task: QCTask) -> VideoOutcome:
    """Run oracle or models on one video, score it, draw contact sheets; never raises (errors returned)."""
    name = task.video_dir.name
    try:
        # One thread per process: QC parallelism is across processes, and 2 cores are shared.
        cv2.setNumThreads(1)
        truth = load_video_ground_truth(task.video_dir)
        if task.refs_path is None:
            # The oracle reads no pixels, but a video QC cannot vouch for must still fail QC.
            decoded = sum(1 for _ in iterate_frames(task.video_dir))
            if decoded != truth.frame_count:
                raise VideoError(
                    f"{task.video_dir}: decoded {decoded} frames, ground truth has {truth.frame_count}"
                )
            result = run_oracle(task.video_dir, config=task.engine_config, truth=truth)
        else:
            from walkout.pipeline import load_system

            system = load_system(
                task.refs_path, device=task.device, engine_config=task.engine_config, threads=1
            )
            result = system.run_video(task.video_dir)
        score = score_video(result, truth)
        sheets = {}
        for wrong in score.wrong:
            path = _sheet_for(truth, wrong, task.report_dir, result)
            if path is not None:
                sheets[wrong.shopper] = path
        write_json_atomic(task.report_dir / "videos" / f"{name}.json", result.output_json())
        return VideoOutcome(
            video=name, score=score, result=result, sheets=sheets, derived_receipts=truth.derived_receipts
        )
    except WalkoutError as error:
        return VideoOutcome(video=name, error=f"{type(error).__name__}: {error}")
    except Exception as error:  # any crash is an error of this video, reported, never a pass
        detail = traceback.format_exception_only(type(error), error)[-1].strip()
        return VideoOutcome(video=name, error=f"unexpected {detail}")


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
    videos_root: Path,
    video_dirs: list[Path],
    refs_path: Path | None,
    total_seconds: float,
    jobs: int,
) -> dict:
    """The report contract (schema_version 1) from complete, error-free outcomes."""
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
                    "predicted": {"shopper": wrong.shopper, "receipt": wrong.predicted},
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
    model, experiment_id, extra = _model_fields(refs_path)
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
                }
                for o in outcomes
                if o.score is not None
            },
            "review": {
                o.video: o.result.review
                for o in outcomes
                if o.result is not None and any(o.result.review.values())
            },
        }
    )
    return {
        "schema_version": 1,
        "component": COMPONENT,
        "experiment_id": experiment_id,
        "code_commit": code_commit(Path(__file__).parent),
        "model": model,
        "dataset": {"id": str(videos_root), "hash": dataset_hash(videos_root, video_dirs)},
        "metrics": metrics,
        "per_class": per_class,
        "per_sample": [o.score.sample() for o in outcomes if o.score is not None],
        "failures": failures,
        "timings": timings,
        "extra": extra,
    }


@dataclass
class QCOutcome:
    """The end of a QC run: the report path (complete run) or the per-video errors (ERROR verdict)."""

    report_path: Path | None
    errors: dict[str, str]
    metrics: dict[str, float]


def run_qc(
    videos: str | os.PathLike,
    *,
    report_dir: str | os.PathLike,
    refs_path: str | os.PathLike | None,
    jobs: int = 2,
    engine_config: EngineConfig | None = None,
    device: str = "cpu",
    progress: bool = True,
) -> QCOutcome:
    """Process every video under `videos` (oracle mode when `refs_path` is None) and write the report."""
    from walkout_ci.report import write_report

    videos_root = Path(videos)
    report_dir = Path(report_dir)
    video_dirs = find_videos(videos_root)
    report_dir.mkdir(parents=True, exist_ok=True)
    # A report from an earlier run must not survive a run that ends in ERROR.
    (report_dir / "report.json").unlink(missing_ok=True)
    (report_dir / "errors.json").unlink(missing_ok=True)
    refs = Path(refs_path) if refs_path is not None else None
    if refs is not None:
        # Fail fast, before forking workers, on refs that cannot work (bad file, unpinned, hash mismatch).
        from walkout.pipeline import verify_refs

        verify_refs(refs)
    config = engine_config
    tasks = [
        QCTask(video_dir=d, report_dir=report_dir, refs_path=refs, engine_config=config, device=device)
        for d in video_dirs
    ]
    start = time.perf_counter()
    outcomes: list[VideoOutcome] = []
    jobs = max(1, min(jobs, len(tasks)))
    bar = tqdm(total=len(tasks), desc="qc", unit="video", disable=not progress)
    if jobs == 1:
        for task in tasks:
            outcomes.append(process_video(task))
            bar.update(1)
    else:
        # spawn, not fork: a forked child inherits locks held by the parent's torch and ClearML threads
        # and can deadlock on them; spawned workers start clean.
        with ProcessPoolExecutor(max_workers=jobs, mp_context=multiprocessing.get_context("spawn")) as pool:
            for outcome in pool.map(process_video, tasks):
                outcomes.append(outcome)
                bar.update(1)
    bar.close()
    total = time.perf_counter() - start
    errors = {o.video: o.error for o in outcomes if o.error is not None}
    if errors:
        write_json_atomic(report_dir / "errors.json", {"verdict": "ERROR", "errors": errors})
        return QCOutcome(report_path=None, errors=errors, metrics={})
    report = build_report(
        outcomes,
        videos_root=videos_root,
        video_dirs=video_dirs,
        refs_path=refs,
        total_seconds=total,
        jobs=jobs,
    )
    path = write_report(report_dir, report)
    return QCOutcome(report_path=path, errors={}, metrics=report["metrics"])
