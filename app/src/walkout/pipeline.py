"""The model pipeline: video frames -> detection -> tracking (persons) -> pose (on tracked boxes) -> engine.

Models come from the app's lock file `model_refs.yaml`: each component's pinned experiment is
resolved to a local weights file through walkout-ci (configured server, local store, then the
submodule's bundled `experiments/` export), and its sha256 must equal the lock file's. Nothing is
downloaded at run time beyond what walkout-ci resolves; weights load with `weights_only=True`
inside the component packages.
"""

from __future__ import annotations

import hashlib
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from tqdm import tqdm

from walkout.doorway import DoorwayWatcher
from walkout.drawing import add_cart_panel, draw_observation
from walkout.engine import Engine, EngineConfig
from walkout.errors import RefsError, VideoError
from walkout.observations import FrameObservation, ShopperObservation
from walkout.recording import PERSON_CLASS, ObservationRecorder, products_from_detections
from walkout.refs import COMPONENTS, ModelRefs, check_against_pins, load_refs
from walkout.results import VideoResult
from walkout.video import iterate_frames, resolve_video

STAGES = ("decode", "detection", "tracking", "pose", "engine")

# Engine thresholds for model outputs (the defaults suit the simulator's ground truth): the pose
# model's wrist confidences are lower than ground-truth visibility, its wrists stop a little short of
# where the real ones go, and held products are detected with lower scores than shelf stock.
MODEL_ENGINE_CONFIG = EngineConfig(
    min_keypoint_visibility=0.05,
    item_visibility=0.2,
    reach_radius_px=9.0,
    near_slot_px=16.0,
    exit_border_px=6.0,
    # The detector loses a body leaving the image with ~9 px of it still in view (cross-validated
    # over five validation splits: 5 wrong end-of-video receipts instead of 7 with 6 px / 0.5 px).
    lost_sliver_px=9.0,
    min_exit_speed_px=1.5,
    min_product_score=0.3,
    product_duplicate_overlap=0.5,
    shared_wrist_px=3.0,
    end_doorway_box_slack_px=3,
    undo_neighbours_pick=True,
    # Judged on 36 recorded seeds (792 videos): 2 receipts fixed, none worse (thirtieth round).
    kept_back_sightings=1,
    # Judged on 36 recorded seeds: 4 wrong receipts fewer (3 videos better), none worse (thirty-first round).
    revived_tracks_return=True,
    # Judged on 8 recorded seeds (176 videos; 2590-2597): 1 receipt fixed (2593/val_0020), none
    # changed otherwise (thirty-fourth round).
    late_pick_seen_on_empty=True,
    # `loss_before_visit_sightings` keeps its default, 2: judged in oracle mode (48 recorded seeds: one
    # receipt fixed, none changed otherwise) and here (36 recorded seeds: one fixed, none worse).
)


def repository_root(refs_path: Path) -> Path:
    """The folder the lock file's submodule paths are relative to (the folder holding model_refs.yaml)."""
    return refs_path.resolve().parent


def sha256_file(path: str | os.PathLike) -> str:
    """sha256 hex digest of a file's bytes."""
    digest = hashlib.sha256()
    with open(path, "rb") as stream:
        for chunk in iter(lambda: stream.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def resolve_component(refs: ModelRefs, name: str, root: Path) -> Path:
    """The verified local weights file of one component of the lock file.

    Raises RefsError when the experiment is unknown, has no weights, or the file's sha256 differs
    from the lock file's `weights_sha256`.
    """
    from walkout_ci import pins
    from walkout_ci.errors import WalkoutCIError

    entry = refs.components[name]
    search = [root / entry.path / "experiments"]
    try:
        path = Path(pins.resolve_model_ref(str(entry.experiment_id), search=search))
    except WalkoutCIError as error:
        raise RefsError(
            f"{refs.source}: components.{name}.experiment_id {entry.experiment_id!r} "
            f"cannot be resolved: {error}"
        ) from error
    actual = sha256_file(path)
    if actual != entry.weights_sha256:
        raise RefsError(
            f"{refs.source}: components.{name}: weights {path} have sha256 {actual}, "
            f"but the lock file expects {entry.weights_sha256}; "
            "re-pin with `walkout lock` or restore the right weights"
        )
    return path


def verify_refs(refs_path: str | os.PathLike) -> dict[str, Path]:
    """Check the lock file completely (pinned, agrees with the submodule pins, weights resolve + hash).

    Returns {component: verified weights path}. Raises RefsError naming the first problem.
    """
    refs_path = Path(refs_path)
    refs = load_refs(refs_path)
    refs.require_pinned()
    root = repository_root(refs_path)
    problems = check_against_pins(refs, root)
    if problems:
        raise RefsError(f"{refs_path} disagrees with the submodule pins:\n  " + "\n  ".join(problems))
    return {name: resolve_component(refs, name, root) for name in COMPONENTS}


def select_device(name: str) -> str:
    """'auto' -> 'cuda' when available, else 'cpu'; anything else is passed through."""
    if name != "auto":
        return name
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


@dataclass
class System:
    """Loaded models plus settings; `run_video` processes one video end to end."""

    detector: Any
    pose_model: Any
    tracker_factory: Any  # () -> a fresh tracker with update(dets [N, 5], frame=...) -> [M, 5]
    engine_config: EngineConfig = MODEL_ENGINE_CONFIG
    person_min_score: float = 0.3
    detection_min_score: float = 0.2  # decoded detections below this never reach tracking or the engine

    def observe(
        self,
        frame_number: int,
        image: np.ndarray,
        tracker: Any,
        timings: dict[str, float],
        recorder: ObservationRecorder | None = None,
    ) -> FrameObservation:
        """One frame through detection, tracking and pose; adds each stage's seconds to `timings`.

        recorder: also keeps the frame's detections and shoppers (`walkout qc --save-observations`).
        """
        from walkout_pose import estimate

        start = time.perf_counter()
        detections = self.detector.detect([image], min_score=self.detection_min_score)[0]
        names = self.detector.class_names
        labels = [names[int(label)] for label in detections.labels]
        is_person = np.array([label == PERSON_CLASS for label in labels], dtype=bool)
        after_detection = time.perf_counter()
        person_rows = (
            np.column_stack([detections.boxes[is_person], detections.scores[is_person]])
            if is_person.any()
            else np.zeros((0, 5))
        )
        person_rows = (
            person_rows[person_rows[:, 4] >= self.person_min_score] if len(person_rows) else person_rows
        )
        tracks = tracker.update(person_rows, frame=image)
        after_tracking = time.perf_counter()
        boxes, track_ids = shopper_boxes(tracks, width=image.shape[1], height=image.shape[0])
        keypoints = (
            estimate(self.pose_model, image, boxes) if len(boxes) else np.zeros((0, 7, 3), dtype=np.float32)
        )
        after_pose = time.perf_counter()
        timings["detection"] += after_detection - start
        timings["tracking"] += after_tracking - after_detection
        timings["pose"] += after_pose - after_tracking
        shoppers = tuple(
            ShopperObservation(
                track_id=int(track_id),
                box=tuple(float(v) for v in box),
                keypoints=np.asarray(points, dtype=np.float64),
            )
            for track_id, box, points in zip(track_ids, boxes, keypoints, strict=True)
        )
        if recorder is not None:
            recorder.add(frame_number, labels, detections.boxes, detections.scores, shoppers)
        products = products_from_detections(labels, detections.boxes, detections.scores)
        return FrameObservation(frame=frame_number, shoppers=shoppers, products=products)

    def run_video(
        self,
        video: str | os.PathLike,
        *,
        layout_path: str | os.PathLike | None = None,
        preview: str | os.PathLike | None = None,
        progress: bool = False,
        fps: float | None = None,
        expected_frames: int | None = None,
        recorder: ObservationRecorder | None = None,
    ) -> VideoResult:
        """Process a whole video; the layout is the video folder's layout.yaml unless given.

        recorder: keeps every frame's model outputs (`walkout.recording`) for `walkout replay`.

        fps / expected_frames: the camera's frame rate and the video's frame count; None: from the
        seqinfo.ini beside the video (10 fps and the container's count without one). The video must
        have the layout's frame size and this fps (VideoError otherwise).
        """
        from walkout.groundtruth import read_seqinfo
        from walkout.layout import load_layout

        video_path = resolve_video(video)
        seqinfo_fps, length = read_seqinfo(video_path.parent)
        fps = seqinfo_fps if fps is None else fps
        length = length if expected_frames is None else expected_frames
        layout = load_layout(
            layout_path if layout_path is not None else video_path.parent / "layout.yaml", fps=fps
        )
        engine = Engine(layout=layout, config=self.engine_config)
        doorway = DoorwayWatcher(layout.exit_side if self.engine_config.end_doorway_frames > 0 else None)
        tracker = self.tracker_factory()
        timings = dict.fromkeys(STAGES, 0.0)
        writer = None
        start = time.perf_counter()
        count = 0
        recent: list[str] = []
        bar = tqdm(total=length, desc=video_path.parent.name, unit="frame", disable=not progress)
        try:
            decode_start = time.perf_counter()
            for frame_number, image in iterate_frames(video_path, layout=layout, expected_frames=length):
                timings["decode"] += time.perf_counter() - decode_start
                observation = self.observe(frame_number, image, tracker, timings, recorder)
                doorway.add(frame_number, image)
                engine_start = time.perf_counter()
                events = engine.step(observation)
                timings["engine"] += time.perf_counter() - engine_start
                count += 1
                if preview is not None:
                    recent += [f"f{e.frame} {e.shopper_id} {e.type} {e.sku}" for e in events]
                    shopper_of_track = {
                        s.track_id: engine.shopper_of_track(s.track_id) or s.track_id
                        for s in observation.shoppers
                    }
                    canvas = add_cart_panel(
                        draw_observation(image, observation, shopper_of_track=shopper_of_track),
                        engine.carts(),
                        recent,
                    )
                    if writer is None:
                        writer = _open_writer(Path(preview), fps, canvas.shape[1], canvas.shape[0])
                    writer.write(canvas)
                bar.update(1)
                decode_start = time.perf_counter()
        finally:
            bar.close()
            if writer is not None:
                writer.release()
        engine.finish(doorway=doorway.spans())
        return VideoResult(
            video=video_path.parent.name,
            events=[event.to_dict() for event in engine.events],
            receipts=engine.receipts_json(),
            review=engine.review_reasons(),
            trajectories=engine.trajectories,
            frames=count,
            seconds=time.perf_counter() - start,
            stage_seconds=timings,
        )


def shopper_boxes(tracks: Any, *, width: int, height: int) -> tuple[np.ndarray, np.ndarray]:
    """The tracker's output as the engine's shopper boxes.

    tracks: [M, 5] x1 y1 x2 y2 track_id. Returns boxes float [K, 4] clipped to the image and track
    ids int [K], dropping boxes under 2 px wide or tall after clipping (nothing to pose).
    """
    tracks = np.asarray(tracks, dtype=np.float64).reshape(-1, 5)
    boxes = tracks[:, :4].copy()
    boxes[:, [0, 2]] = boxes[:, [0, 2]].clip(0, width - 1)
    boxes[:, [1, 3]] = boxes[:, [1, 3]].clip(0, height - 1)
    valid = (boxes[:, 2] - boxes[:, 0] >= 2) & (boxes[:, 3] - boxes[:, 1] >= 2)
    return boxes[valid], tracks[valid, 4].astype(int)


def _open_writer(path: Path, fps: float, width: int, height: int) -> cv2.VideoWriter:
    path.parent.mkdir(parents=True, exist_ok=True)
    fourcc = cv2.VideoWriter_fourcc(*("mp4v" if path.suffix.lower() == ".mp4" else "MJPG"))
    writer = cv2.VideoWriter(str(path), fourcc, fps, (width, height))
    if not writer.isOpened():
        raise VideoError(f"cannot write preview video {path} (try a .avi file name)")
    return writer


def load_system(
    refs_path: str | os.PathLike,
    *,
    device: str = "auto",
    engine_config: EngineConfig | None = None,
    threads: int | None = None,
) -> System:
    """Verify the lock file and load the three pinned models."""
    import torch

    if threads is not None:
        torch.set_num_threads(threads)
    weights = verify_refs(refs_path)
    device = select_device(device)
    from walkout_detection.predict import load_detector
    from walkout_pose import load_model as load_pose_model

    detector = load_detector(weights["detection"], device=device)
    pose_model, _, _ = load_pose_model(weights["pose"], device=device)
    make_tracker = tracker_factory(weights["tracking"], device=device)
    return System(
        detector=detector,
        pose_model=pose_model,
        tracker_factory=make_tracker,
        engine_config=engine_config or MODEL_ENGINE_CONFIG,
    )


def tracker_factory(weights: Path, *, device: str) -> Any:
    """A function making a fresh tracker (with the pinned appearance model) for each video."""
    from walkout_tracking.predict import load_tracking_model

    model = load_tracking_model(str(weights), device=device)
    return model.make_tracker
