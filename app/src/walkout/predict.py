"""Prediction over a QC split's inputs: the system (models or oracle) on every video, in parallel.

This is the untrusted stage of the gate: it reads only the inputs folder (`walkout.gate_inputs`) and
the lock file, and writes `predictions.json` (`walkout.predictions`). Oracle mode (tests and
development only) also needs the split's ground truth, which the gate never passes.

Videos run in spawn worker processes. On SIGINT/SIGTERM (`walkout_ci.signals.Interrupted`) or any
other exit before the end, the workers are terminated and joined, so nothing outlives the command
(a leftover worker would keep running and hold the caller's output pipe open).
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import signal
import time
import traceback
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TypeVar

import cv2
from tqdm import tqdm

from walkout.engine import EngineConfig
from walkout.errors import VideoError, WalkoutError
from walkout.gate_inputs import VideoInput, read_inputs
from walkout.groundtruth import find_videos, load_video_ground_truth
from walkout.oracle import run_oracle
from walkout.predictions import PREDICTIONS_NAME, write_predictions
from walkout.results import VideoResult
from walkout.video import iterate_frames

Task = TypeVar("Task")
Outcome = TypeVar("Outcome")
WORKER_JOIN_S = 10.0  # how long a terminated worker may take to exit before it is killed


@dataclass(frozen=True)
class PredictTask:
    """One video to run (picklable): its inputs, and the models' lock file or the oracle's truth."""

    video: VideoInput
    refs_path: Path | None  # None: oracle mode
    truth_dir: Path | None  # oracle mode: the video's ground-truth folder in the split
    engine_config: EngineConfig | None  # None: the mode's default thresholds
    device: str = "cpu"
    observations_dir: Path | None = None  # model mode: also record the models' outputs here (replay)


@dataclass
class PredictOutcome:
    """What a worker sends back for one video: its result, or the error that stopped it."""

    video: str
    result: VideoResult | None = None
    error: str | None = None


def predict_video(task: PredictTask) -> PredictOutcome:
    """Run the oracle or the models on one input video; never raises (errors are returned)."""
    name = task.video.name
    try:
        # One thread per process: parallelism is across processes, and 2 cores are shared.
        cv2.setNumThreads(1)
        if task.refs_path is None:
            assert task.truth_dir is not None, "oracle mode needs the video's ground truth"
            truth = load_video_ground_truth(task.truth_dir)
            # The oracle reads no pixels, but a video QC cannot vouch for must still fail QC.
            expected = task.video.frames if task.video.frames is not None else truth.frame_count
            decoded = sum(
                1 for _ in iterate_frames(task.video.video, layout=truth.layout, expected_frames=expected)
            )
            if decoded != truth.frame_count:
                raise VideoError(
                    f"{task.video.video}: decoded {decoded} frames, ground truth has {truth.frame_count}"
                )
            result = run_oracle(task.truth_dir, config=task.engine_config, truth=truth)
        else:
            from walkout.pipeline import load_system

            system = load_system(
                task.refs_path, device=task.device, engine_config=task.engine_config, threads=1
            )
            recorder = None
            if task.observations_dir is not None:
                from walkout.recording import ObservationRecorder

                recorder = ObservationRecorder(system.detector.class_names)
            result = system.run_video(
                task.video.video,
                layout_path=task.video.layout,
                fps=task.video.fps,
                expected_frames=task.video.frames,
                recorder=recorder,
            )
            if recorder is not None:
                from walkout.recording import recording_path

                recorder.save(
                    recording_path(task.observations_dir, name),
                    video=name,
                    fps=task.video.fps,
                    meta=recording_meta(task.refs_path, system),
                )
        return PredictOutcome(video=name, result=replace(result, video=name))
    except WalkoutError as error:
        return PredictOutcome(video=name, error=f"{type(error).__name__}: {error}")
    except Exception as error:  # any crash is an error of this video, reported, never a pass
        detail = traceback.format_exception_only(type(error), error)[-1].strip()
        return PredictOutcome(video=name, error=f"unexpected {detail}")


def recording_meta(refs_path: Path, system) -> dict:
    """What a recording says about the run behind it: lock file hash and pins, the pipeline's thresholds."""
    from walkout.pipeline import sha256_file
    from walkout.refs import load_refs

    refs = load_refs(refs_path)
    return {
        "refs_sha256": sha256_file(refs_path),
        "experiments": {name: ref.experiment_id for name, ref in sorted(refs.components.items())},
        "person_min_score": system.person_min_score,
        "detection_min_score": system.detection_min_score,
    }


def _ignore_sigint() -> None:
    """Worker initializer: Ctrl-C reaches the whole process group; only the parent acts on it."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def _stop_workers(pool: ProcessPoolExecutor) -> None:
    """Terminate and join the pool's worker processes (then kill stragglers), and drop queued tasks."""
    # ProcessPoolExecutor has no public terminate before Python 3.14; its process table is the only
    # handle on the workers, and shutdown() alone would wait for every running video to finish.
    processes = list((getattr(pool, "_processes", None) or {}).values())
    for process in processes:
        if process.is_alive():
            process.terminate()
    for process in processes:
        process.join(WORKER_JOIN_S)
        if process.is_alive():
            process.kill()
            process.join(WORKER_JOIN_S)
    pool.shutdown(wait=True, cancel_futures=True)


def map_in_workers(
    function: Callable[[Task], Outcome], tasks: Iterable[Task], *, jobs: int
) -> Iterator[Outcome]:
    """`function` over `tasks` in `jobs` spawn processes, yielding outcomes in task order.

    `function` must be a module-level function that returns its errors instead of raising. When the
    caller stops early (an exception such as `Interrupted` unwinding through the loop, or closing the
    generator), the workers are terminated and joined before the exception goes on.
    """
    # spawn, not fork: a forked child inherits locks held by the parent's torch and ClearML threads
    # and can deadlock on them; spawned workers start clean.
    pool = ProcessPoolExecutor(
        max_workers=jobs, mp_context=multiprocessing.get_context("spawn"), initializer=_ignore_sigint
    )
    finished = False
    try:
        yield from pool.map(function, tasks)
        finished = True
    finally:
        if finished:
            pool.shutdown(wait=True)
        else:
            _stop_workers(pool)


@dataclass
class PredictRun:
    """The end of a prediction run: the results in input order, or the per-video errors."""

    results: list[VideoResult]
    errors: dict[str, str]
    jobs: int
    wall_seconds: float
    predictions_path: Path | None


def run_predict(
    inputs: str | os.PathLike,
    out: str | os.PathLike,
    *,
    refs_path: str | os.PathLike | None,
    data: str | os.PathLike | None = None,
    jobs: int = 2,
    engine_config: EngineConfig | None = None,
    device: str = "cpu",
    progress: bool = True,
    observations_dir: str | os.PathLike | None = None,
) -> PredictRun:
    """Predict every video of an inputs folder and write `<out>/predictions.json`.

    refs_path: the lock file (models), or None for oracle mode, which needs `data` (the split whose
    ground truth the oracle replays). Any video error: no predictions.json (a stale one is removed
    first) and the errors are returned. observations_dir (model mode): also write each video's model
    outputs there (`walkout.recording`), for `walkout replay`.
    """
    if (refs_path is None) != (data is not None):
        raise WalkoutError(
            "oracle mode needs --data (the split's ground truth) and model mode must not get it: "
            "pass either --model model_refs.yaml, or --oracle --data <split>"
        )
    if jobs < 1:
        raise WalkoutError(f"--jobs must be >= 1, got {jobs}")
    if observations_dir is not None and refs_path is None:
        raise WalkoutError("--save-observations records model outputs: it needs --refs, not --oracle")
    videos = read_inputs(inputs)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    (out / PREDICTIONS_NAME).unlink(missing_ok=True)
    refs = Path(refs_path) if refs_path is not None else None
    truth_dirs: dict[str, Path] = {}
    if refs is not None:
        # Fail fast, before starting workers, on refs that cannot work (bad file, unpinned, hash mismatch).
        from walkout.pipeline import verify_refs

        verify_refs(refs)
    else:
        truth_dirs = {d.name: d for d in find_videos(data)}
        missing = [v.name for v in videos if v.name not in truth_dirs]
        if missing:
            raise WalkoutError(f"--data {data} has no ground truth for input video(s) {', '.join(missing)}")
    tasks = [
        PredictTask(
            video=video,
            refs_path=refs,
            truth_dir=truth_dirs.get(video.name),
            engine_config=engine_config,
            device=device,
            observations_dir=Path(observations_dir).resolve() if observations_dir is not None else None,
        )
        for video in videos
    ]
    jobs = max(1, min(jobs, len(tasks)))
    start = time.perf_counter()
    outcomes: list[PredictOutcome] = []
    with contextlib.ExitStack() as stack:
        bar = stack.enter_context(tqdm(total=len(tasks), desc="predict", unit="video", disable=not progress))
        if jobs == 1:
            stream: Iterator[PredictOutcome] = map(predict_video, tasks)
        else:
            # closing: an exception raised here, outside the generator, must still stop the workers now
            stream = stack.enter_context(contextlib.closing(map_in_workers(predict_video, tasks, jobs=jobs)))
        for outcome in stream:
            outcomes.append(outcome)
            bar.update(1)
    wall = time.perf_counter() - start
    errors = {o.video: o.error for o in outcomes if o.error is not None}
    results = [o.result for o in outcomes if o.result is not None]
    if errors:
        return PredictRun(results=results, errors=errors, jobs=jobs, wall_seconds=wall, predictions_path=None)
    path = write_predictions(
        out, results, mode="oracle" if refs is None else "models", jobs=jobs, wall_seconds=wall
    )
    return PredictRun(results=results, errors={}, jobs=jobs, wall_seconds=wall, predictions_path=path)
