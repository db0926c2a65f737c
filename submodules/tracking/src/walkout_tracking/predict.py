"""Running the tracker over sequences: model loading, detections, MOTChallenge results.

`--model` references: an experiment id, a model_ref.yaml, or a checkpoint path (resolved by
`walkout_ci.pins.resolve_model_ref`); or `motion-only` for the tracker without appearance (no
checkpoint at all). Detections come from `<sequence>/det/det.txt` when present; otherwise (a
simulator export has no detector output) they are synthesised from the ground truth with jitter,
dropouts and low scores (`data.synthesize_detections`, seeded per sequence) and the run says so.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tqdm import tqdm

from walkout_tracking.config import TrackerConfig, TrackingConfig
from walkout_tracking.data import (
    Sequence,
    find_sequences,
    iter_frames,
    read_ground_truth,
    synthesize_detections,
)
from walkout_tracking.errors import DataError
from walkout_tracking.model import AppearanceEmbedder, load_checkpoint
from walkout_tracking.motchallenge import (
    MotTable,
    detections_per_frame,
    read_mot_file,
    tracks_to_table,
    write_mot_results,
)
from walkout_tracking.tracker import Tracker

MOTION_ONLY = "motion-only"
PACKAGE_DIR = Path(__file__).resolve().parents[2]
DETECTION_SEED = 12345


@dataclass
class LoadedModel:
    """What `load_tracking_model` returns. weights_path / embedder are None in motion-only mode;
    weights_sha256 is then the sha256 of the tracker config (the report contract needs a digest)."""

    ref: str
    config: TrackingConfig
    embedder: AppearanceEmbedder | None
    weights_path: Path | None
    weights_sha256: str
    experiment_id: str | None

    def make_tracker(self) -> Tracker:
        return Tracker(config=self.config.tracker, embedder=self.embedder)


def _sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as stream:
        for chunk in iter(lambda: stream.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _experiment_id_of(ref: str) -> str | None:
    """The experiment id behind a reference: the pin's id, the id itself, or None for a bare checkpoint."""
    from walkout_ci import pins

    path = Path(ref)
    if path.is_file():
        if path.suffix in (".yaml", ".yml"):
            return pins.read_pin(path).experiment_id
        return None
    return ref


def load_tracking_model(
    ref: str, *, tracker_config: TrackerConfig | None = None, device: str = "cpu"
) -> LoadedModel:
    """Resolve `ref` (see the module docstring) into a ready-to-use model.

    tracker_config overrides the association settings stored in the checkpoint. Raises
    CheckpointError / walkout_ci PinError (both exit code 2 in the CLI) for unusable references.
    """
    if ref == MOTION_ONLY:
        base = TrackingConfig()
        tracker = tracker_config if tracker_config is not None else base.tracker
        tracker = TrackerConfig(**{**tracker.__dict__, "use_appearance": False})
        config = TrackingConfig(tracker=tracker, model=base.model, train=base.train)
        digest = hashlib.sha256(json.dumps(config.to_dict(), sort_keys=True).encode()).hexdigest()
        return LoadedModel(ref, config, None, None, digest, None)
    from walkout_ci import pins

    weights = pins.resolve_model_ref(ref, search=[PACKAGE_DIR / "experiments"])
    model, config, _ = load_checkpoint(weights, device=device)
    if tracker_config is not None:
        config = TrackingConfig(tracker=tracker_config, model=config.model, train=config.train)
    embedder = AppearanceEmbedder(model=model, config=config.model, device=device)
    return LoadedModel(
        ref, config, embedder, Path(weights), _sha256_file(Path(weights)), _experiment_id_of(ref)
    )


def sequence_detections(sequence: Sequence, num_frames: int) -> tuple[list[np.ndarray], str]:
    """Per-frame detections [N, 5] x1 y1 x2 y2 score for frames 1..num_frames and where they came from."""
    if sequence.det_path is not None:
        return detections_per_frame(read_mot_file(sequence.det_path), num_frames), str(sequence.det_path)
    gt = read_ground_truth(sequence)
    seed = DETECTION_SEED + int(hashlib.sha256(sequence.name.encode()).hexdigest()[:8], 16)
    table = synthesize_detections(gt, seed=seed)
    return detections_per_frame(table, num_frames), f"ground truth + noise (seed {seed})"


def sequence_length(sequence: Sequence) -> int:
    """Number of frames: seqinfo.ini's seqLength, else the last frame of gt/det."""
    if sequence.num_frames:
        return sequence.num_frames
    last = 0
    for path in (sequence.gt_path, sequence.det_path):
        if path is not None:
            last = max(last, read_mot_file(path).num_frames)
    if last == 0:
        raise DataError(
            f"sequence {sequence.directory}: cannot tell its length (no seqinfo.ini, empty gt/det)"
        )
    return last


def _frames_or_none(sequence: Sequence, needed: bool) -> Iterator[np.ndarray | None]:
    if needed:
        yield from iter_frames(sequence)
    while True:
        yield None


def track_sequence(
    sequence: Sequence, model: LoadedModel, *, show_progress: bool = False
) -> tuple[MotTable, str, float]:
    """Run a fresh tracker over one sequence. Returns (tracks as a MotTable, detection source, seconds)."""
    num_frames = sequence_length(sequence)
    detections, source = sequence_detections(sequence, num_frames)
    tracker = model.make_tracker()
    needs_frames = model.embedder is not None and model.config.tracker.use_appearance
    frames = _frames_or_none(sequence, needs_frames)
    outputs = []
    started = time.perf_counter()
    for dets in tqdm(detections, desc=sequence.name, disable=not show_progress, leave=False):
        frame = next(frames)
        if needs_frames and frame is None:
            raise DataError(f"sequence {sequence.directory}: the video has fewer frames than {num_frames}")
        outputs.append(tracker.update(dets, frame=frame))
    elapsed = time.perf_counter() - started
    return tracks_to_table(outputs, source=sequence.name), source, elapsed


def predict(
    model: LoadedModel, data_dir: str | Path, out_dir: str | Path, *, show_progress: bool = True
) -> list[Path]:
    """Track every sequence under data_dir; write `<out_dir>/<sequence>.txt` (MOTChallenge results)."""
    written = []
    for sequence in tqdm(find_sequences(data_dir), desc="sequences", disable=not show_progress):
        table, _, _ = track_sequence(sequence, model)
        written.append(write_mot_results(Path(out_dir) / f"{sequence.name}.txt", table))
    return written
