"""`walkout replay`: where wrong receipts come from, by re-running the engine on recorded model outputs.

`walkout qc --refs ... --save-observations DIR` records every video's detections, tracks and poses
(`walkout.recording`). Replay feeds them through the engine again, each time with one part swapped
for the simulator's ground truth, and scores every variant like QC does:

| variant | shoppers (ids, boxes, wrists) | products |
|---|---|---|
| `models` | recorded | recorded (must reproduce the QC run's receipts) |
| `true_products` | recorded | ground truth |
| `true_identities` | recorded boxes and wrists, ids of the ground-truth person each box matches | recorded |
| `true_wrists` | recorded ids and boxes, keypoints of the matched ground-truth person | recorded |
| `true_shoppers` | ground truth | recorded |
| `oracle` | ground truth | ground truth |
| `retracked` | the tracker (`--retrack`, `--tracker-set`) re-run on recorded detections | recorded |

A recorded box matches the ground-truth person it overlaps most (Hungarian on IoU, at least
`match_iou`); an unmatched box keeps its track, under an id no person has. Each wrong receipt of
`models` is then charged to the first stage whose ground truth alone makes it right, in the order
detection (products), tracking (identities), pose (wrists), then all person outputs together, then
everything together; a receipt wrong even on ground truth is the engine's. `retracked` is not part
of that attribution: it is how a tracker change is tried without re-running detection and pose (a
re-tracked box reuses the keypoints of the recorded box it overlaps most, IoU >= 0.5, else none).
Its own wrong receipts are listed apart (`retracked_wrong_receipts`), and the tracker it re-ran is
named (`retracked_with`), which `walkout compare` shows for that variant.
Variants with the models' shoppers look at the exit border in the video's last frame, as QC did
(`walkout.doorway`: the video file must be beside its ground truth); `true_shoppers` and `oracle` do
not, as QC's oracle mode does not.
A whole receipt issued to, or withheld from, a shopper boxed at the exit's border in the video's last
frames is also marked `at_video_end` (`walkout.evaluate.doorway_at_end`, the same definition QC
reports use): the video ended while they walked out.

Only the engine runs per variant (plus the tracker for `retracked`), so a whole split replays in
seconds to minutes instead of the models' hour. Where the re-run tracker gives back exactly the
recorded shoppers (`same_observations`), `retracked` takes the `models` run instead of running the
engine again, and the report says in how many videos a tracker setting changed the tracks at all
(`videos_as_recorded`).

replay.json also keeps every variant's per-video counts (`per_video`, the counts QC reports carry) and
a hash of the replayed splits (`dataset.hash`), so `walkout compare` can pair two replays, say one
with `--engine-set` against one without (`walkout compare --baseline A/replay.json --candidate
B/replay.json#retracked`).
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import itertools
import json
import os
import time
import traceback
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
from scipy.optimize import linear_sum_assignment
from tqdm import tqdm

from walkout.doorway import watch_video
from walkout.engine import EngineConfig
from walkout.errors import ConfigError, GroundTruthError, WalkoutError
from walkout.evaluate import (
    COUNT_NAMES,
    VideoScore,
    WrongReceipt,
    confidence_intervals,
    count_table,
    paired_differences,
    review_flag_figures,
    score_video,
    split_labels,
    summarize,
    video_end_figures,
)
from walkout.groundtruth import VideoGroundTruth, find_videos, load_video_ground_truth
from walkout.metrics import UNMATCHED_PREFIX, box_iou
from walkout.observations import FrameObservation, ShopperObservation
from walkout.oracle import run_engine
from walkout.qc import dataset_hash
from walkout.recording import RecordedVideo, RecordingError, load_recording, recording_path
from walkout.results import VideoResult
from walkout_ci.store import atomic_write_bytes

VARIANTS: dict[str, str] = {
    "models": "nothing (the recorded run)",
    "true_products": "product detections",
    "true_identities": "track identities",
    "true_wrists": "keypoints (wrists)",
    "true_shoppers": "persons: boxes, identities and keypoints",
    "oracle": "everything",
    "retracked": "nothing; the tracker re-run on recorded detections",
}
# Their boxes follow a body until the simulator counts it gone, so, like QC's oracle mode, they do not
# look at the exit border in the last frame (`walkout.doorway`); the other variants do, as QC did.
GROUND_TRUTH_SHOPPERS = frozenset({"true_shoppers", "oracle"})
DEFAULT_VARIANTS = ("models", "true_products", "true_identities", "true_wrists", "true_shoppers", "oracle")
# Which stage a wrong receipt is charged to: the first variant (in this order) that makes it right.
ATTRIBUTION = (
    ("true_products", "detection: products"),
    ("true_identities", "tracking: identities"),
    ("true_wrists", "pose: wrists"),
    ("true_shoppers", "persons: boxes, ids and wrists together"),
    ("oracle", "several models together"),
)
ENGINE_STAGE = "engine (wrong on ground truth too)"
UNATTRIBUTED = "not fixed by any replayed variant"
MATCH_IOU = 0.3  # a recorded box and a ground-truth person overlapping less than this are not one person
KEYPOINT_REUSE_IOU = 0.5  # retracked: a re-tracked box takes the keypoints of a recorded box this close
UNMATCHED_ID_BASE = 1_000_000  # true_identities: ids for boxes no person matches (no collision with truth)


class ReplayError(WalkoutError):
    """Replay could not run: missing or mismatched recordings, ground truth or options."""


def match_boxes(
    boxes_a: Sequence[Sequence[float]], boxes_b: Sequence[Sequence[float]], min_iou: float
) -> dict[int, int]:
    """One-to-one matching of two box lists (x1 y1 x2 y2 px) maximising IoU: {index in a: index in b}.

    Pairs overlapping less than `min_iou` are never matched.
    """
    if not len(boxes_a) or not len(boxes_b):
        return {}
    iou = np.array([[box_iou(a, b) for b in boxes_b] for a in boxes_a], dtype=np.float64)
    rows, cols = linear_sum_assignment(-iou)
    return {int(r): int(c) for r, c in zip(rows, cols, strict=True) if iou[r, c] >= min_iou}


def _true_person_of(
    shoppers: Sequence[ShopperObservation], truth: Sequence[ShopperObservation], min_iou: float
) -> dict[int, ShopperObservation]:
    """{index of a recorded shopper: the ground-truth person its box matches}."""
    matches = match_boxes([s.box for s in shoppers], [t.box for t in truth], min_iou)
    return {index: truth[match] for index, match in matches.items()}


def with_true_identities(
    frame: FrameObservation, truth: FrameObservation, min_iou: float
) -> FrameObservation:
    """The recorded shoppers under the ids of the ground-truth persons they match (boxes, wrists kept)."""
    person = _true_person_of(frame.shoppers, truth.shoppers, min_iou)
    shoppers = tuple(
        replace(
            shopper,
            track_id=person[i].track_id if i in person else UNMATCHED_ID_BASE + shopper.track_id,
        )
        for i, shopper in enumerate(frame.shoppers)
    )
    return replace(frame, shoppers=shoppers)


def with_true_wrists(frame: FrameObservation, truth: FrameObservation, min_iou: float) -> FrameObservation:
    """The recorded shoppers with the keypoints of the ground-truth persons they match (ids, boxes kept)."""
    person = _true_person_of(frame.shoppers, truth.shoppers, min_iou)
    shoppers = tuple(
        replace(shopper, keypoints=np.asarray(person[i].keypoints, dtype=np.float64))
        if i in person
        else shopper
        for i, shopper in enumerate(frame.shoppers)
    )
    return replace(frame, shoppers=shoppers)


def variant_frames(
    variant: str, recording: RecordedVideo, truth: VideoGroundTruth, *, min_iou: float = MATCH_IOU
) -> Iterator[FrameObservation]:
    """The engine's input for one variant (not `retracked`, see `retracked_frames`), frame by frame."""
    if recording.frame_count != truth.frame_count:
        raise ReplayError(
            f"{recording.path.name}: {recording.frame_count} frames recorded, the video's ground truth "
            f"has {truth.frame_count} (recorded from another split?)"
        )
    for record, true in zip(recording.frames(), truth.frames, strict=True):
        if true.frame != record.frame:
            raise GroundTruthError(
                f"{truth.name}: ground-truth frame {true.frame} where {record.frame} was expected"
            )
        model = record.observation()
        if variant == "models":
            yield model
        elif variant == "true_products":
            yield replace(model, products=true.products)
        elif variant == "true_identities":
            yield with_true_identities(model, true, min_iou)
        elif variant == "true_wrists":
            yield with_true_wrists(model, true, min_iou)
        elif variant == "true_shoppers":
            yield replace(model, shoppers=true.shoppers)
        elif variant == "oracle":
            yield true
        else:
            raise ReplayError(f"unknown variant {variant!r}; known: {', '.join(VARIANTS)}")


def appearance_features(
    recording: RecordedVideo, truth: VideoGroundTruth, model, *, person_min_score: float, cache: Path
) -> list[np.ndarray]:
    """The appearance model's features of every frame's tracker input: [P_f, D] per frame, in row order.

    They depend only on the recording, the video and the appearance weights, not on the tracker's
    settings, so they are computed once (decoding the video) and kept in `cache` (an .npz beside the
    recordings); a setting sweep then costs the tracker's arithmetic alone.
    """
    frames = list(recording.frames())
    counts = [len(record.person_rows(person_min_score)) for record in frames]
    starts = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
    if cache.is_file():
        with np.load(cache, allow_pickle=False) as data:
            features, cached_starts = data["features"], data["starts"]
        if np.array_equal(cached_starts, starts):
            return [features[starts[i] : starts[i + 1]] for i in range(len(frames))]
    from walkout.video import iterate_frames

    video = truth.directory / "video.avi"
    images = iterate_frames(video, layout=truth.layout, expected_frames=truth.frame_count)
    rows = []
    for record, (number, image) in zip(frames, images, strict=True):
        assert number == record.frame, (number, record.frame)
        boxes = record.person_rows(person_min_score)[:, :4]
        rows.append(np.asarray(model.embedder.embed(image, boxes), dtype=np.float32))  # [P_f, D], P_f >= 0
    features = np.concatenate(rows) if rows else np.zeros((0, 1), dtype=np.float32)
    buffer = io.BytesIO()
    np.savez(buffer, features=features, starts=starts)
    atomic_write_bytes(cache, buffer.getvalue())
    return rows


def retracked_frames(
    recording: RecordedVideo,
    tracker,
    features: Sequence[np.ndarray] | None,
    *,
    width: int,
    height: int,
    person_min_score: float,
    stats: dict,
) -> Iterator[FrameObservation]:
    """The recorded frames with shoppers from `tracker` re-run on the recorded person detections.

    tracker: a fresh tracker (`update(dets [N, 5], embeddings=[N, D]) -> [M, 5]`); features: each
    frame's appearance features of those detections (None: motion only). stats gets `boxes` and
    `keypoints_reused` counts.
    """
    from walkout.pipeline import shopper_boxes

    for index, record in enumerate(recording.frames()):
        rows = record.person_rows(person_min_score)
        embeddings = features[index] if features is not None else None
        tracks = tracker.update(rows, embeddings=embeddings)
        boxes, ids = shopper_boxes(tracks, width=width, height=height)
        reuse = match_boxes(boxes.tolist(), [s.box for s in record.shoppers], KEYPOINT_REUSE_IOU)
        shoppers = tuple(
            ShopperObservation(
                track_id=int(track_id),
                box=tuple(float(v) for v in box),
                keypoints=(
                    np.asarray(record.shoppers[reuse[i]].keypoints, dtype=np.float64)
                    if i in reuse
                    else np.zeros((7, 3), dtype=np.float64)
                ),
            )
            for i, (box, track_id) in enumerate(zip(boxes, ids, strict=True))
        )
        stats["boxes"] = stats.get("boxes", 0) + len(shoppers)
        stats["keypoints_reused"] = stats.get("keypoints_reused", 0) + len(reuse)
        yield FrameObservation(frame=record.frame, shoppers=shoppers, products=record.products())


def with_tracking_time(result: VideoResult, seconds: float) -> VideoResult:
    """`result` with the tracker's re-run time added (`retracked`: its speed is tracker + engine)."""
    return replace(
        result, seconds=result.seconds + seconds, stage_seconds={**result.stage_seconds, "tracking": seconds}
    )


def same_observations(a: Iterable[FrameObservation], b: Iterable[FrameObservation]) -> bool:
    """Whether two runs told the engine exactly the same thing, frame by frame: frame numbers,
    shoppers (track id, box, keypoints [7, 3]) and products, all equal."""
    for first, second in itertools.zip_longest(a, b):
        if first is None or second is None:
            return False
        if first.frame != second.frame or first.products != second.products:
            return False
        if len(first.shoppers) != len(second.shoppers):
            return False
        for one, other in zip(first.shoppers, second.shoppers, strict=True):
            if one.track_id != other.track_id or tuple(one.box) != tuple(other.box):
                return False
            if not np.array_equal(one.keypoints, other.keypoints):
                return False
    return True


def engine_config_with(base: EngineConfig, overrides: dict[str, object]) -> EngineConfig:
    """`base` with some thresholds changed ({EngineConfig field: value}); a key the engine does not
    know (with the closest known one suggested), a value of the wrong type or out of range is a
    ReplayError naming it."""
    import dataclasses

    from walkout.config_util import check_keys

    kinds = {f.name: f.type for f in dataclasses.fields(EngineConfig)}
    check_keys(overrides, set(kinds), where="--engine-set", error=ReplayError)
    values: dict[str, object] = {}
    for key, value in overrides.items():
        whole = isinstance(value, int) and not isinstance(value, bool)
        if kinds[key] == "int" and not whole:
            raise ReplayError(f"--engine-set {key}={value!r}: expected a whole number")
        if kinds[key] == "float" and not (whole or isinstance(value, float)):
            raise ReplayError(f"--engine-set {key}={value!r}: expected a number")
        values[key] = float(value) if kinds[key] == "float" else value
    try:
        return replace(base, **values)
    except ConfigError as error:
        raise ReplayError(f"--engine-set: {error}") from error


def check_tracker_overrides(overrides: dict[str, object]) -> None:
    """Refuse tracker settings the tracking package does not know (its error suggests the right key)."""
    from walkout_tracking.config import load_config
    from walkout_tracking.errors import ConfigError

    try:
        load_config({"tracker": dict(overrides)})
    except ConfigError as error:
        raise ReplayError(f"--tracker-set: {error}") from error


def load_tracker_model(weights: Path, overrides: dict[str, object]):
    """The tracking model at `weights` (walkout_tracking LoadedModel), its stored settings changed."""
    from walkout_tracking.config import TrackerConfig
    from walkout_tracking.predict import load_tracking_model

    model = load_tracking_model(str(weights), device="cpu")
    if overrides:
        # the weights are loaded once; only the association settings change
        tracker = TrackerConfig(**{**model.config.tracker.__dict__, **overrides})
        model = replace(model, config=replace(model.config, tracker=tracker))
    return model


@dataclass(frozen=True)
class ReplayTask:
    """One video to replay (picklable)."""

    recording: Path
    truth_dir: Path
    variants: tuple[str, ...]
    engine_config: EngineConfig
    tracking_weights: Path | None = None  # retracked: the tracking model to re-run
    tracker_overrides: tuple[tuple[str, object], ...] = ()  # retracked: tracker settings to change
    split: int = 0  # index of the split (recordings + videos) it belongs to
    label: str = ""  # the video's name in reports ("<split>/<video>" when several splits replay)


@dataclass
class ReplayVideo:
    """One video's replay: a score per variant, or the error that stopped it."""

    video: str
    split: int = 0
    name: str = ""  # the video's own name (`video` is qualified by its split when there are several)
    scores: dict[str, VideoScore] = field(default_factory=dict)
    results: dict[str, VideoResult] = field(default_factory=dict)
    meta: dict = field(default_factory=dict)
    retrack_stats: dict = field(default_factory=dict)
    error: str | None = None


def replay_video(task: ReplayTask) -> ReplayVideo:
    """Replay one video in every requested variant and score each; never raises (errors are returned)."""
    outcome = ReplayVideo(video=task.label or task.truth_dir.name, split=task.split, name=task.truth_dir.name)
    try:
        if task.tracking_weights is not None:
            # One thread per process, as in QC: parallelism is across videos, and 2 cores are shared
            # (two workers with torch's default threads each ran many times slower here).
            import cv2
            import torch

            cv2.setNumThreads(1)
            torch.set_num_threads(1)
        recording = load_recording(task.recording)
        truth = load_video_ground_truth(task.truth_dir)
        outcome.meta = recording.meta
        if recording.video != truth.name:
            raise ReplayError(f"{task.recording.name} records video {recording.video!r}, not {truth.name!r}")
        # QC looked at the exit border in the video's last frame: so does the replay, from the same
        # video, in every variant whose shoppers come from the models
        looks = task.engine_config.end_doorway_frames > 0 and any(
            v not in GROUND_TRUTH_SHOPPERS for v in task.variants
        )
        doorway = watch_video(task.truth_dir, truth.layout) if looks else None
        for variant in task.variants:
            tracking_seconds = 0.0
            if variant == "retracked":
                if task.tracking_weights is None:
                    raise ReplayError("variant retracked needs --retrack LOCKFILE (the tracker to re-run)")
                model = load_tracker_model(task.tracking_weights, dict(task.tracker_overrides))
                person_min_score = float(recording.meta.get("person_min_score", 0.3))
                features = None
                if model.config.tracker.use_appearance and model.embedder is not None:
                    digest = model.weights_sha256[:16]
                    cache = task.recording.parent / "appearance" / digest / task.recording.name
                    features = appearance_features(
                        recording, truth, model, person_min_score=person_min_score, cache=cache
                    )
                started = time.perf_counter()
                frames: Iterable[FrameObservation] = list(
                    retracked_frames(
                        recording,
                        model.make_tracker(),
                        features,
                        width=truth.layout.width,
                        height=truth.layout.height,
                        person_min_score=person_min_score,
                        stats=outcome.retrack_stats,
                    )
                )
                tracking_seconds = time.perf_counter() - started
                if "models" in outcome.results and same_observations(frames, recording.observations()):
                    # The re-run tracker gave back exactly the recorded shoppers, so the engine would
                    # repeat the `models` run: a setting sweep pays the engine only where tracks change.
                    result = with_tracking_time(outcome.results["models"], tracking_seconds)
                    outcome.results[variant] = result
                    outcome.scores[variant] = score_video(result, truth)
                    stats = outcome.retrack_stats
                    stats["videos_as_recorded"] = stats.get("videos_as_recorded", 0) + 1
                    continue
            else:
                frames = variant_frames(variant, recording, truth)
            result = run_engine(
                frames,
                layout=truth.layout,
                video=truth.name,
                config=task.engine_config,
                doorway=None if variant in GROUND_TRUTH_SHOPPERS else doorway,
            )
            if tracking_seconds:
                result = with_tracking_time(result, tracking_seconds)
            outcome.results[variant] = result
            outcome.scores[variant] = score_video(result, truth)
    except WalkoutError as error:
        outcome.error = f"{type(error).__name__}: {error}"
    except Exception as error:  # a crash is this video's error, reported
        outcome.error = "unexpected " + traceback.format_exception_only(type(error), error)[-1].strip()
    return outcome


@dataclass
class Attribution:
    """One wrong receipt of the recorded run and the stage whose ground truth fixes it."""

    video: str
    receipt: WrongReceipt
    stage: str
    fixed_by: list[str]

    @property
    def at_video_end(self) -> bool:
        """A whole receipt issued to, or withheld from, a shopper walking out as the video ended (the
        scoring's mark, `walkout.evaluate.doorway_at_end`)."""
        return self.receipt.at_video_end


def attribute(
    video: str,
    wrong_by_variant: dict[str, dict[str, WrongReceipt]],
) -> list[Attribution]:
    """Charge each wrong receipt of `models` to a stage (see ATTRIBUTION; the module docstring says how).

    wrong_by_variant: {variant: {receipt key (ground-truth shopper id or unmatched:<id>): WrongReceipt}};
    must hold `models`; variants left out are simply not considered. A receipt scoring marked
    `at_video_end` (a whole receipt too many or too few of a shopper walking out as the video ended,
    `walkout.evaluate.score_video`) stays marked.
    """
    attributions = []
    for key, receipt in sorted(wrong_by_variant["models"].items()):
        fixed_by = [v for v, wrong in wrong_by_variant.items() if v != "models" and key not in wrong]
        stage = next((name for variant, name in ATTRIBUTION if variant in fixed_by), None)
        if stage is None:
            stage = ENGINE_STAGE if "oracle" in wrong_by_variant else UNATTRIBUTED
        attributions.append(
            Attribution(
                video=video,
                receipt=receipt,
                stage=stage,
                fixed_by=fixed_by,
            )
        )
    return attributions


@dataclass
class ReplayOutcome:
    """A whole replay: metrics per variant, attributions, per-video errors."""

    variants: tuple[str, ...]
    metrics: dict[str, dict[str, float]]
    intervals: dict[str, dict]  # per variant: evaluate.confidence_intervals
    attributions: list[Attribution]
    introduced: dict[str, int]  # per variant: receipts right in `models` but wrong there
    reproduces_qc: bool | None  # models variant == the QC run's receipts (None: no predictions given)
    tracker_overrides: dict[str, object]
    engine_overrides: dict[str, object]
    meta: dict
    retrack_stats: dict
    errors: dict[str, str]
    videos: int
    seconds: float
    splits: list[dict] = field(default_factory=list)  # per split: name, videos, {variant: judged, wrong}
    paired: dict[str, dict] = field(default_factory=dict)  # per variant: paired_differences vs models
    # variant -> video -> counts (`VideoScore.counts`): what `walkout compare` pairs two replays by
    per_video: dict[str, dict[str, dict[str, int]]] = field(default_factory=dict)
    dataset_hash: str = ""  # sha256 over the splits' `qc.dataset_hash`, in order
    # `retracked`: the tracking model re-run ({"experiment_id", "weights_sha256"}); empty without it
    retracked_with: dict[str, str] = field(default_factory=dict)
    # `retracked`: its own wrong receipts (video, receipt), which attribution (of `models`) does not list
    retracked_wrong: list[tuple[str, WrongReceipt]] = field(default_factory=list)
    # per variant: the review flags' figures and the video end's part, as QC reports carry them in
    # `extra.review_flags` / `extra.video_end` (scripts/first_look.py reads both the same way)
    review_flags: dict[str, dict] = field(default_factory=dict)
    video_end: dict[str, dict] = field(default_factory=dict)


def _pool_stream(tasks: list[ReplayTask], jobs: int, stack: contextlib.ExitStack) -> Iterator[ReplayVideo]:
    if jobs == 1:
        return map(replay_video, tasks)
    from walkout.predict import map_in_workers

    return stack.enter_context(contextlib.closing(map_in_workers(replay_video, tasks, jobs=jobs)))


def _as_list(value: str | os.PathLike | Sequence[str | os.PathLike]) -> list[Path]:
    if isinstance(value, (str, os.PathLike)):
        return [Path(value)]
    return [Path(v) for v in value]


def split_names(videos: Sequence[Path]) -> list[str]:
    """Report names of the replayed splits (`split_labels` of their resolved folders)."""
    return split_labels([path.resolve().as_posix() for path in videos])


def _split_counts(scores: Sequence[VideoScore]) -> dict[str, int]:
    """Receipts judged, wrong receipts and false-charged items of some videos."""
    totals = dict(zip(COUNT_NAMES, count_table(list(scores)).sum(axis=0).astype(int).tolist(), strict=True))
    return {
        "judged": totals["receipts_judged"],
        "wrong": totals["receipts_judged"] - totals["receipts_exact"],
        "false_charges": totals["false_charges"],
    }


def run_replay(
    observations: str | os.PathLike | Sequence[str | os.PathLike],
    videos: str | os.PathLike | Sequence[str | os.PathLike],
    *,
    variants: Sequence[str] = DEFAULT_VARIANTS,
    engine_config: EngineConfig | None = None,
    retrack_refs: str | os.PathLike | None = None,
    tracker_overrides: dict[str, object] | None = None,
    engine_overrides: dict[str, object] | None = None,
    predictions: str | os.PathLike | None = None,
    jobs: int = 2,
    progress: bool = True,
) -> ReplayOutcome:
    """Replay every recorded video of a split (see the module docstring).

    observations: the folder `walkout qc --save-observations` wrote; videos: the split (ground truth).
    Several splits replay together when both are lists (paired by position): metrics, intervals and
    the paired comparison then pool every video, and the reports name videos "<split>/<video>".
    retrack_refs: the lock file whose tracker `retracked` re-runs, its settings changed by
    tracker_overrides ({TrackerConfig field: value}); engine_overrides ({EngineConfig field: value})
    change the engine's thresholds in every variant (the `models` variant then no longer reproduces
    the QC run, so that check is skipped).
    predictions: the QC run's predictions.json, to check that `models` reproduces it (default: the one
    `walkout qc --save-observations` left beside the recordings, if any; with several splits, each
    split's own).
    """
    from walkout.pipeline import MODEL_ENGINE_CONFIG

    unknown = [v for v in variants if v not in VARIANTS]
    if unknown:
        raise ReplayError(f"unknown variant(s) {', '.join(unknown)}; known: {', '.join(VARIANTS)}")
    variants = tuple(dict.fromkeys(["models", *variants]))  # attribution needs the recorded run
    if jobs < 1:
        raise ReplayError(f"--jobs must be >= 1, got {jobs}")
    observation_dirs, split_dirs = _as_list(observations), _as_list(videos)
    if len(observation_dirs) != len(split_dirs) or not split_dirs:
        raise ReplayError(
            f"give one --videos split per --observations folder (got {len(observation_dirs)} --observations "
            f"and {len(split_dirs)} --videos)"
        )
    if predictions is not None and len(split_dirs) > 1:
        raise ReplayError(
            "--predictions checks one split; with several splits each folder's own predictions.json is used"
        )
    for folder in observation_dirs:
        if not folder.is_dir():
            raise RecordingError(f"{folder}: no such folder (record with `walkout qc --save-observations`)")
    tracking_weights = None
    retracked_with: dict[str, str] = {}
    if "retracked" in variants and retrack_refs is None:
        raise ReplayError("variant retracked needs --retrack LOCKFILE (the tracker to re-run)")
    if retrack_refs is not None:
        from walkout.pipeline import verify_refs
        from walkout.refs import load_refs

        variants = tuple(dict.fromkeys([*variants, "retracked"]))
        tracking_weights = verify_refs(retrack_refs)["tracking"]
        # which tracker `retracked` ran: reports and `walkout compare` name it, not the recorded one
        pin = load_refs(retrack_refs).components["tracking"]
        retracked_with = {"experiment_id": str(pin.experiment_id), "weights_sha256": str(pin.weights_sha256)}
    if tracker_overrides:
        if tracking_weights is None:
            raise ReplayError("--tracker-set changes the re-run tracker: it needs --retrack LOCKFILE")
        check_tracker_overrides(tracker_overrides)
    config = engine_config_with(engine_config or MODEL_ENGINE_CONFIG, dict(engine_overrides or {}))
    names = split_names(split_dirs)
    several = len(split_dirs) > 1
    tasks: list[ReplayTask] = []
    # What `walkout compare` checks before it pairs two replays: the splits' QC dataset hashes, in order.
    splits_digest = hashlib.sha256()
    for index, (folder, split) in enumerate(zip(observation_dirs, split_dirs, strict=True)):
        video_dirs = find_videos(split)
        splits_digest.update(dataset_hash(split, video_dirs).encode())
        missing = [d.name for d in video_dirs if not recording_path(folder, d.name).is_file()]
        if missing:
            raise RecordingError(
                f"{folder}: no recording for {len(missing)} of {len(video_dirs)} video(s) of {split} "
                f"({', '.join(missing[:5])}{' ...' if len(missing) > 5 else ''}); record that split with "
                "`walkout qc --save-observations`"
            )
        tasks += [
            ReplayTask(
                recording=recording_path(folder, d.name),
                truth_dir=d,
                variants=variants,
                engine_config=config,
                tracking_weights=tracking_weights,
                tracker_overrides=tuple(sorted((tracker_overrides or {}).items())),
                split=index,
                label=f"{names[index]}/{d.name}" if several else d.name,
            )
            for d in video_dirs
        ]
    start = time.perf_counter()
    outcomes: list[ReplayVideo] = []
    with contextlib.ExitStack() as stack:
        bar = stack.enter_context(tqdm(total=len(tasks), desc="replay", unit="video", disable=not progress))
        for outcome in _pool_stream(tasks, max(1, min(jobs, len(tasks))), stack):
            outcomes.append(outcome)
            bar.update(1)
    errors = {o.video: o.error for o in outcomes if o.error is not None}
    done = [o for o in outcomes if o.error is None]
    metrics: dict[str, dict[str, float]] = {}
    intervals: dict[str, dict] = {}
    review_flags: dict[str, dict] = {}
    video_end: dict[str, dict] = {}
    introduced: dict[str, int] = {}
    attributions: list[Attribution] = []
    retrack_stats: dict[str, int] = {}
    retracked_wrong: list[tuple[str, WrongReceipt]] = []
    if done and not errors:
        for variant in variants:
            scores = [o.scores[variant] for o in done]
            metrics[variant], _ = summarize(scores)
            intervals[variant] = confidence_intervals(scores)
            review_flags[variant] = review_flag_figures(scores)
            video_end[variant] = video_end_figures(scores)
        for o in done:
            wrong = {v: {w.shopper: w for w in o.scores[v].wrong} for v in variants}
            attributions += attribute(o.video, wrong)
            for v in variants:
                introduced[v] = introduced.get(v, 0) + sum(
                    1 for key in wrong[v] if key not in wrong["models"]
                )
            for name, count in o.retrack_stats.items():
                retrack_stats[name] = retrack_stats.get(name, 0) + count
            if "retracked" in variants:
                retracked_wrong += [(o.video, w) for w in o.scores["retracked"].wrong]
    reproduces = None
    if done and not errors and not engine_overrides:
        checks = []
        for index, folder in enumerate(observation_dirs):
            recorded = predictions if predictions is not None else folder / "predictions.json"
            if predictions is None and not recorded.is_file():
                continue  # `walkout qc --save-observations` writes it there; older recordings lack it
            mine = {o.name: o.results["models"] for o in done if o.split == index}
            checks.append(_reproduces(recorded, mine))
        reproduces = all(checks) if checks else None
    splits = []
    paired: dict[str, dict] = {}
    per_video: dict[str, dict[str, dict[str, int]]] = {}
    if done and not errors:
        per_video = {v: {o.video: o.scores[v].counts() for o in done} for v in variants}
        split_of = {o.video: o.split for o in done}
        for index, name in enumerate(names):
            mine = [o for o in done if o.split == index]
            splits.append(
                {
                    "name": name,
                    "videos": len(mine),
                    "variants": {v: _split_counts([o.scores[v] for o in mine]) for v in variants},
                    "stages": stage_counts([a for a in attributions if split_of[a.video] == index]),
                }
            )
        for variant in variants:
            if variant != "models":
                paired[variant] = paired_differences(
                    [o.scores["models"] for o in done], [o.scores[variant] for o in done]
                )
                paired[variant]["fixed"] = sum(
                    1
                    for o in done
                    for key in {w.shopper for w in o.scores["models"].wrong}
                    - {w.shopper for w in o.scores[variant].wrong}
                )
    return ReplayOutcome(
        variants=variants,
        metrics=metrics,
        intervals=intervals,
        attributions=attributions,
        introduced=introduced,
        reproduces_qc=reproduces,
        tracker_overrides=dict(tracker_overrides or {}),
        engine_overrides=dict(engine_overrides or {}),
        meta=done[0].meta if done else {},
        retrack_stats=retrack_stats,
        errors=errors,
        videos=len(tasks),
        seconds=time.perf_counter() - start,
        splits=splits,
        paired=paired,
        per_video=per_video,
        dataset_hash=splits_digest.hexdigest(),
        retracked_with=retracked_with,
        retracked_wrong=retracked_wrong,
        review_flags=review_flags,
        video_end=video_end,
    )


def _reproduces(predictions: str | os.PathLike, results: dict[str, VideoResult]) -> bool:
    """True when every video's replayed receipts, events and review reasons equal the QC run's."""
    path = Path(predictions)
    if path.is_dir():
        path = path / "predictions.json"
    try:
        recorded = {v["video"]: v for v in json.loads(path.read_text(encoding="utf-8"))["videos"]}
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise ReplayError(f"{path}: cannot read the QC run's predictions ({error})") from error
    for name, result in results.items():
        original = recorded.get(name)
        if original is None:
            return False
        replayed = json.loads(json.dumps(result.output_json()))
        for key in ("receipts", "review", "events"):
            if replayed[key] != original[key]:
                return False
    return True


STAGE_ORDER = (*(name for _, name in ATTRIBUTION), ENGINE_STAGE, UNATTRIBUTED)
SHOWN_METRICS = (
    ("receipt_exact_match", "exact-match", "{:.3f}"),
    ("false_charges_per_100", "false charges /100", "{:.2f}"),
    ("missed_items_per_100", "missed /100", "{:.2f}"),
    ("item_f1", "item F1", "{:.3f}"),
)


def _receipt_json(video: str, r: WrongReceipt) -> dict:
    """A wrong receipt in replay.json: where, whose, what was expected and predicted, and its frames."""
    return {
        "video": video,
        "shopper": r.shopper,
        "kind": r.kind,
        "skus": r.skus,
        "expected": r.expected,
        "predicted": r.predicted,
        "frames": r.frames,
        "flagged": bool(r.review),
    }


def outcome_json(outcome: ReplayOutcome) -> dict:
    """The replay as JSON (replay.json): metrics and intervals per variant, every attribution."""
    return {
        "format": "walkout-replay",
        "version": 1,
        "videos": outcome.videos,
        "variants": {v: VARIANTS[v] for v in outcome.variants},
        "metrics": outcome.metrics,
        "confidence_intervals": outcome.intervals,
        "review_flags": outcome.review_flags,
        "video_end": outcome.video_end,
        "stages": stage_counts(outcome.attributions),
        "introduced": outcome.introduced,
        "reproduces_qc": outcome.reproduces_qc,
        "recorded_with": outcome.meta,
        "retracked_keypoints": outcome.retrack_stats,
        "retracked_with": outcome.retracked_with,
        "tracker_overrides": outcome.tracker_overrides,
        "engine_overrides": outcome.engine_overrides,
        "splits": outcome.splits,
        "paired_with_models": outcome.paired,
        "dataset": {"splits": [s["name"] for s in outcome.splits], "hash": outcome.dataset_hash},
        "per_video": outcome.per_video,
        "wrong_receipts": [
            {
                **_receipt_json(a.video, a.receipt),
                "stage": a.stage,
                "fixed_by": a.fixed_by,
                "at_video_end": a.at_video_end,
            }
            for a in outcome.attributions
        ],
        "retracked_wrong_receipts": [_receipt_json(video, w) for video, w in outcome.retracked_wrong],
        "errors": outcome.errors,
        "seconds": round(outcome.seconds, 2),
    }


REPLAY_FILENAME = "replay.json"


def read_replay(path: str | os.PathLike) -> dict:
    """A `walkout replay` output (its folder or its replay.json) as written by `outcome_json`.

    ReplayError naming the file when it cannot be read or is not a replay's output.
    """
    path = Path(path)
    if path.is_dir():
        path = path / REPLAY_FILENAME
    try:
        replay = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        raise ReplayError(f"{path}: cannot read the replay ({error})") from error
    if not isinstance(replay, dict) or replay.get("format") != "walkout-replay":
        raise ReplayError(f"{path} is not a `walkout replay` output (format walkout-replay)")
    return replay


def stage_counts(attributions: Sequence[Attribution]) -> dict[str, dict[str, int]]:
    """{stage: {wrong, false_charge, missed_item, false_charge_and_missed_item, flagged, at_video_end}}
    in stage order."""
    counts: dict[str, dict[str, int]] = {}
    for stage in STAGE_ORDER:
        mine = [a for a in attributions if a.stage == stage]
        if not mine:
            continue
        row = {"wrong": len(mine), "false_charge": 0, "missed_item": 0, "false_charge_and_missed_item": 0}
        for a in mine:
            row[a.receipt.kind] += 1
        row["flagged"] = sum(1 for a in mine if a.receipt.review)
        row["at_video_end"] = sum(1 for a in mine if a.at_video_end)
        counts[stage] = row
    return counts


def _receipt_cells(r: WrongReceipt, *, at_video_end: bool = False) -> str:
    """The shopper, kind, SKUs and frames cells of a wrong receipt's row in replay.md (escaped)."""
    from walkout_ci.render import md_escape

    skus = ", ".join(f"{md_escape(s)} {r.expected.get(s, 0)}->{r.predicted.get(s, 0)}" for s in r.skus)
    frames = ", ".join(str(f) for f in r.frames[:6]) + (" ..." if len(r.frames) > 6 else "")
    shopper = md_escape(r.shopper.replace(UNMATCHED_PREFIX, "phantom "))
    kind = r.kind.replace("_", " ") + (" (end)" if at_video_end else "")
    return f"{shopper} | {kind} | {skus} | {frames}"


def render_markdown(outcome: ReplayOutcome, *, title: str) -> str:
    """replay.md: what a person reads (no machine paths; quoted names escaped)."""
    from walkout_ci.render import md_escape

    lines = [f"# Replay: where wrong receipts come from ({md_escape(title)})", ""]
    experiments = outcome.meta.get("experiments", {})
    if experiments:
        pinned = ", ".join(f"{md_escape(c)} `{md_escape(e)}`" for c, e in sorted(experiments.items()))
        lines += [f"Recorded with: {pinned}.", ""]
    if outcome.retracked_with:
        lines += [f"`retracked` re-ran tracking `{md_escape(outcome.retracked_with['experiment_id'])}`.", ""]
    models = outcome.metrics.get("models", {})
    lines += [
        f"{outcome.videos} videos, {int(models.get('receipts_judged', 0))} receipts judged. "
        "Each variant re-runs the engine with one part swapped for ground truth; intervals are "
        "video-level bootstrap 95%.",
        "",
    ]
    if outcome.reproduces_qc is not None:
        lines += [
            "The `models` variant "
            + ("reproduces" if outcome.reproduces_qc else "**does not reproduce**")
            + " the QC run's receipts, events and review reasons.",
            "",
        ]
    header = "| variant | ground truth for | wrong receipts | new wrong | " + " | ".join(
        label for _, label, _ in SHOWN_METRICS
    )
    lines += [header + " |", "|" + "---|" * (4 + len(SHOWN_METRICS))]
    for variant in outcome.variants:
        m = outcome.metrics.get(variant)
        if not m:
            continue
        wrong = int(m["receipts_judged"] - round(m["receipt_exact_match"] * m["receipts_judged"]))
        cells = []
        for key, _, fmt in SHOWN_METRICS:
            interval = outcome.intervals.get(variant, {}).get("metrics", {}).get(key)
            bounds = (
                f" [{fmt.format(interval['lower'])}, {fmt.format(interval['upper'])}]" if interval else ""
            )
            cells.append(fmt.format(m[key]) + bounds)
        lines.append(
            f"| `{variant}` | {VARIANTS[variant]} | {wrong} | {outcome.introduced.get(variant, 0)} | "
            + " | ".join(cells)
            + " |"
        )
    if outcome.paired:
        lines += [
            "",
            "## Each variant against the recorded run, video by video",
            "",
            "Differences are variant minus `models`, with a paired video-level bootstrap 95% interval "
            "(the same videos drawn for both): an interval that excludes 0 is a difference these videos "
            "can show.",
            "",
            "| variant | receipts fixed | newly wrong | "
            + " | ".join(f"{label} change" for _, label, _ in SHOWN_METRICS)
            + " |",
            "|" + "---|" * (3 + len(SHOWN_METRICS)),
        ]
        for variant, paired in outcome.paired.items():
            cells = []
            for key, _, fmt in SHOWN_METRICS:
                d = paired["metrics"].get(key)
                signed = "{:+" + fmt[2:]  # "{:.3f}" -> "{:+.3f}"
                values = [signed.format(d[k]) for k in ("estimate", "lower", "upper")] if d else []
                cells.append(f"{values[0]} [{values[1]}, {values[2]}]" if d else "-")
            lines.append(
                f"| `{variant}` | {paired['fixed']} | {outcome.introduced.get(variant, 0)} | "
                + " | ".join(cells)
                + " |"
            )
    if len(outcome.splits) > 1:
        shown = list(outcome.variants)
        lines += [
            "",
            "## Per split",
            "",
            "Wrong receipts (false-charged items) of each variant.",
            "",
            "| split | videos | receipts judged | " + " | ".join(f"`{v}`" for v in shown) + " |",
            "|" + "---|" * (3 + len(shown)),
        ]
        for split in outcome.splits:
            counts = split["variants"]
            cells = [f"{counts[v]['wrong']} ({counts[v]['false_charges']})" for v in shown]
            lines.append(
                f"| {md_escape(split['name'])} | {split['videos']} | {counts['models']['judged']} | "
                + " | ".join(cells)
                + " |"
            )
    lines += [
        "",
        "## Wrong receipts of the models, by the stage whose ground truth fixes them",
        "",
        "| stage | wrong receipts | false charge | missed item | both | flagged for review | "
        "in the exit doorway as the video ends |",
        "|---|---|---|---|---|---|---|",
    ]
    if not outcome.attributions:
        lines.append("| (no wrong receipt) | 0 | 0 | 0 | 0 | 0 | 0 |")
    overall = stage_counts(outcome.attributions)
    for stage, row in overall.items():
        lines.append(
            f"| {stage} | {row['wrong']} | {row['false_charge']} | {row['missed_item']} | "
            f"{row['false_charge_and_missed_item']} | {row['flagged']} | {row['at_video_end']} |"
        )
    at_end = sum(1 for a in outcome.attributions if a.at_video_end)
    if at_end:
        lines += [
            "",
            f"{at_end} of {len(outcome.attributions)} wrong receipts are whole receipts issued to, or "
            "withheld from, shoppers at the exit's border in the video's last frames "
            "(`walkout.evaluate.doorway_at_end`): the video ended while they walked out, and whether "
            "they had left turned on the last pixels of a body (the simulator's 5%-in-view rule), not on "
            "what they took. They are marked (end) below.",
        ]
    stages = list(overall)  # the stages with a wrong receipt, in stage order
    if len(outcome.splits) > 1 and stages:
        lines += [
            "",
            "Per split: wrong receipts (with a false charge), by stage.",
            "",
            "| split | " + " | ".join(stages) + " |",
            "|" + "---|" * (1 + len(stages)),
        ]
        for split in outcome.splits:
            cells = []
            for stage in stages:
                row = split["stages"].get(stage)
                charged = row["false_charge"] + row["false_charge_and_missed_item"] if row else 0
                cells.append(f"{row['wrong']} ({charged})" if row else "0")
            lines.append(f"| {md_escape(split['name'])} | " + " | ".join(cells) + " |")
    if outcome.attributions:
        lines += [
            "",
            "## Each wrong receipt",
            "",
            "| video | shopper | kind | SKUs (expected -> predicted) | frames | stage | also fixed by |",
            "|---|---|---|---|---|---|---|",
        ]
        for a in outcome.attributions:
            cells = _receipt_cells(a.receipt, at_video_end=a.at_video_end)
            lines.append(f"| {md_escape(a.video)} | {cells} | {a.stage} | {', '.join(a.fixed_by) or '-'} |")
    if outcome.retracked_wrong:
        lines += [
            "",
            "## Each wrong receipt of `retracked`",
            "",
            "The re-run tracker's own wrong receipts (not attributed to a stage: only `models` is).",
            "",
            "| video | shopper | kind | SKUs (expected -> predicted) | frames | flagged |",
            "|---|---|---|---|---|---|",
        ]
        for video, r in outcome.retracked_wrong:
            lines.append(f"| {md_escape(video)} | {_receipt_cells(r)} | {'yes' if r.review else 'no'} |")
    if outcome.retrack_stats:
        boxes = outcome.retrack_stats.get("boxes", 0)
        reused = outcome.retrack_stats.get("keypoints_reused", 0)
        lines += [
            "",
            f"`retracked`: {reused} of {boxes} re-tracked boxes took recorded keypoints; the rest none.",
        ]
        as_recorded = outcome.retrack_stats.get("videos_as_recorded", 0)
        lines.append(
            f"{as_recorded} of {outcome.videos} videos were re-tracked exactly as recorded (the engine's "
            f"`models` run stands for `retracked` there); the re-run tracker changed the shoppers of "
            f"{outcome.videos - as_recorded}."
        )
    if outcome.engine_overrides:
        changed = ", ".join(f"{key}={value}" for key, value in sorted(outcome.engine_overrides.items()))
        lines += [
            "",
            f"Every variant ran the engine with {md_escape(changed)} (so `models` is not the QC run).",
        ]
    if outcome.tracker_overrides:
        changed = ", ".join(f"{key}={value}" for key, value in sorted(outcome.tracker_overrides.items()))
        lines += ["", f"`retracked` ran the tracker with {md_escape(changed)}."]
    return "\n".join(lines) + "\n"
