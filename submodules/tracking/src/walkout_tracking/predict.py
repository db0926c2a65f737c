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


def experiment_id_of(ref: str) -> str | None:
    """The experiment behind a reference: the pin's id, the id itself, or None for a bare checkpoint."""
    from walkout_ci import pins

    return pins.experiment_id_of_ref(ref)


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
        ref, config, embedder, Path(weights), _sha256_file(Path(weights)), experiment_id_of(ref)
    )


def synthesis_seed(sequence_name: str) -> int:
    """The seed of a sequence's synthesised detections (fixed per name, so runs are reproducible)."""
    return DETECTION_SEED + int(hashlib.sha256(sequence_name.encode()).hexdigest()[:8], 16)


def detection_source(sequence: Sequence) -> str:
    """Where a sequence's detections come from: its det/det.txt path, or the synthesis seed."""
    if sequence.det_path is not None:
        return str(sequence.det_path)
    return f"ground truth + noise (seed {synthesis_seed(sequence.name)})"


def order_by_position(table: MotTable) -> MotTable:
    """The rows sorted by (frame, x, y, w, h, confidence): an order that says nothing about identity.

    Synthesised detections come out of gt.txt in (frame, track id) order, so the k-th box of every
    frame would mostly be the same person; the tracker (and a gate-predict run by a pull request)
    must see them in an order that carries no track ids.
    """
    x, y, w, h = table.boxes.T
    order = np.lexsort((table.confidences, h, w, y, x, table.frames))
    return MotTable(
        frames=table.frames[order],
        ids=table.ids[order],
        boxes=table.boxes[order],
        confidences=table.confidences[order],
        source=table.source,
    )


def detection_table(sequence: Sequence) -> MotTable:
    """The sequence's detections as a det.txt-like table (ids -1), in the order the tracker sees them.

    det/det.txt as written (frames checked against seqinfo.ini's seqLength), else ground-truth boxes
    with noise (`data.synthesize_detections`) in position order (see `order_by_position`).
    """
    if sequence.det_path is not None:
        return read_mot_file(sequence.det_path, num_frames=sequence.num_frames)
    table = synthesize_detections(read_ground_truth(sequence), seed=synthesis_seed(sequence.name))
    return order_by_position(table)


def sequence_detections(sequence: Sequence, num_frames: int) -> tuple[list[np.ndarray], str]:
    """Per-frame detections [N, 5] x1 y1 x2 y2 score for frames 1..num_frames and where they came from."""
    return detections_per_frame(detection_table(sequence), num_frames), detection_source(sequence)


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


def predict_inputs(
    model: LoadedModel, inputs_dir: str | Path, out_dir: str | Path, *, show_progress: bool = True
) -> Path:
    """Track every sequence of a gate-inputs folder; write `<out_dir>/predictions.json` (the format in
    `predictions.py`); returns its path. Reads nothing but the inputs folder (no ground truth)."""
    from walkout_tracking.inputs import read_inputs
    from walkout_tracking.predictions import write_predictions

    tables: dict[str, MotTable] = {}
    tracking_s = 0.0
    entries = read_inputs(inputs_dir)
    if model.embedder is not None and model.config.tracker.use_appearance:
        for entry in entries:
            if entry.video is None and entry.images is None:
                raise DataError(
                    f"sequence {entry.name} has no frames (the dataset has no video.avi or img1/ for it), "
                    f"but model {model.ref} tracks with appearance and needs them; evaluate it with "
                    "--model motion-only or give the sequence its video"
                )
    for entry in tqdm(entries, desc="sequences", disable=not show_progress):
        table, _, seconds = track_sequence(entry.as_sequence(), model)
        tables[entry.name] = table
        tracking_s += seconds
    return write_predictions(
        out_dir,
        tables,
        appearance=model.embedder is not None and model.config.tracker.use_appearance,
        tracker_config=model.config.to_dict()["tracker"],
        tracking_s=tracking_s,
    )
