"""Evaluation: track every sequence of a dataset, score it, write the walkout-ci report contract.

Three stages, as the gate runs them (each a CLI command): `inputs.write_inputs` (what the tracker may
see), `predict.predict_inputs` (tracking, writes predictions.json), `score` (checks the predictions
strictly and scores them against the ground truth). `evaluate` chains the three in one process.

Metrics (py-motmetrics, IoU distance threshold 0.5; HOTA from `hota.py`): MOTA, IDF1, HOTA, DetA,
AssA, MOTP, ID switches, mostly tracked / mostly lost (as fractions of ground-truth tracks), false
positives, misses, frames per second. Per sample = per sequence: `score` is the sequence's IDF1 (in
[0, 1]; MOTA can be negative), class `person`. Failures: one per identity switch, with a strip of the
frames around it (both tracks drawn) under `<report_dir>/failures/`.
"""

from __future__ import annotations

import hashlib
import math
import tempfile
import time
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from walkout_ci.gitrepo import code_commit
from walkout_ci.report import dataset_hash as ci_dataset_hash
from walkout_ci.report import write_report
from walkout_tracking.data import Sequence, iter_frames, read_ground_truth
from walkout_tracking.drawing import switch_strip
from walkout_tracking.errors import EvaluationError
from walkout_tracking.inputs import scored_sequences, write_inputs
from walkout_tracking.metrics import SequenceScores, SwitchEvent, score_overall, score_sequence
from walkout_tracking.model import COMPONENT
from walkout_tracking.motchallenge import MotTable, write_mot_results
from walkout_tracking.predict import LoadedModel, detection_source, predict_inputs, sequence_length
from walkout_tracking.predictions import read_predictions

MAX_FAILURE_IMAGES = 40
FRAMES_AROUND_SWITCH = 2  # frames drawn before and after each switch


def dataset_hash(data_dir: Path, sequences: list[Sequence]) -> str:
    """`walkout_ci.report.dataset_hash` (sha256 of manifest.json) for a simulator export; for plain
    MOTChallenge folders without a manifest, the sha256 of their gt/det files."""
    if (data_dir / "manifest.json").is_file():
        return ci_dataset_hash(data_dir)
    digest = hashlib.sha256()
    for sequence in sequences:
        for path in (sequence.gt_path, sequence.det_path):
            if path is not None:
                digest.update(path.read_bytes())
    return digest.hexdigest()


def _frames_for(sequence: Sequence, wanted: set[int]) -> dict[int, np.ndarray]:
    frames = {}
    if not wanted or (sequence.video_path is None and sequence.image_dir is None):
        return frames
    last = max(wanted)
    for number, frame in enumerate(iter_frames(sequence), start=1):
        if number in wanted:
            frames[number] = frame
        if number >= last:
            break
    return frames


def switch_failures(
    sequence: Sequence,
    gt: MotTable,
    tracks: MotTable,
    switches: list[SwitchEvent],
    report_dir: Path,
    budget: int,
) -> list[dict[str, Any]]:
    """One failure entry per switch; the first `budget` get a debug image (relative path)."""
    drawn = switches[:budget]
    wanted = {
        f
        for event in drawn
        for f in range(event.frame - FRAMES_AROUND_SWITCH, event.frame + FRAMES_AROUND_SWITCH + 1)
        if f >= 1
    }
    frames = _frames_for(sequence, wanted)
    failures = []
    for index, event in enumerate(switches):
        image_path = None
        if index < len(drawn):
            window = {
                f: frames[f]
                for f in range(event.frame - FRAMES_AROUND_SWITCH, event.frame + FRAMES_AROUND_SWITCH + 1)
                if f in frames
            }
            if window:
                strip = switch_strip(
                    window,
                    gt,
                    tracks,
                    gt_id=event.gt_id,
                    previous_track_id=event.previous_track_id,
                    track_id=event.track_id,
                    switch_frame=event.frame,
                )
                relative = Path("failures") / f"{sequence.name}_frame{event.frame:06d}_gt{event.gt_id}.png"
                target = report_dir / relative
                target.parent.mkdir(parents=True, exist_ok=True)
                temp = target.with_name(f".{target.name}.tmp.png")
                if not cv2.imwrite(str(temp), strip):
                    raise EvaluationError(f"could not write failure image {target}")
                temp.replace(target)
                image_path = relative.as_posix()
        failures.append(
            {
                "sample_id": sequence.name,
                "class": "person",
                "kind": "id_switch",
                "expected": {"gt_id": event.gt_id, "track_id": event.previous_track_id, "frame": event.frame},
                "predicted": {"track_id": event.track_id, "frame": event.frame},
                "image": image_path,
            }
        )
    return failures


def _finite(metrics: dict[str, float]) -> dict[str, float]:
    bad = [key for key, value in metrics.items() if not math.isfinite(value)]
    if bad:
        raise EvaluationError(f"metrics {bad} are not finite: the evaluation cannot be trusted")
    return metrics


def report_metrics(overall: dict[str, float], frames: int, seconds: float) -> dict[str, float]:
    """The report's `metrics` block from py-motmetrics' overall row + HOTA."""
    unique = max(overall["num_unique_objects"], 1.0)
    return _finite(
        {
            "MOTA": overall["mota"],
            "IDF1": overall["idf1"],
            "HOTA": overall["hota"],
            "DetA": overall["deta"],
            "AssA": overall["assa"],
            "MOTP_iou": 1.0 - overall["motp"],
            "IDSW": overall["num_switches"],
            "MT": overall["mostly_tracked"] / unique,
            "ML": overall["mostly_lost"] / unique,
            "FP": overall["num_false_positives"],
            "FN": overall["num_misses"],
            "frames_per_s": frames / max(seconds, 1e-9),
        }
    )


def score(
    data_dir: str | Path,
    predictions_path: str | Path,
    report_dir: str | Path,
    *,
    model_ref: str,
    weights_sha256: str,
    experiment_id: str | None,
    code_commit: str | None,
    write_results: bool = True,
    started: float | None = None,
) -> dict[str, Any]:
    """Score a predictions.json (the format in `predictions.py`, checked strictly) against the ground
    truth of every sequence of `data_dir`; write `<report_dir>/report.json` (+ failures/ debug images,
    results/<sequence>.txt); return the report dict.

    model_ref / weights_sha256 / experiment_id / code_commit are written to the report as given (the
    gate knows them; nothing here loads a model). `started`: time.perf_counter() at the start of the
    whole evaluation, for timings.total_s (default: now). Fails closed: data that cannot be read or
    scored and bad predictions raise (DataError / PredictionsError / EvaluationError) and nothing is
    written as a pass.
    """
    started = time.perf_counter() if started is None else started
    data_dir = Path(data_dir)
    report_dir = Path(report_dir)
    sequences = scored_sequences(data_dir)
    lengths = {sequence.name: sequence_length(sequence) for sequence in sequences}
    predictions = read_predictions(predictions_path, lengths)
    scores: list[SequenceScores] = []
    failures: list[dict[str, Any]] = []
    for sequence in sequences:
        gt = read_ground_truth(sequence)
        tracks = predictions.tables[sequence.name]
        if write_results:
            write_mot_results(report_dir / "results" / f"{sequence.name}.txt", tracks)
        sequence_scores = score_sequence(sequence.name, gt, tracks)
        scores.append(sequence_scores)
        failures += switch_failures(
            sequence, gt, tracks, sequence_scores.switches, report_dir, MAX_FAILURE_IMAGES - len(failures)
        )
    overall = score_overall(scores)
    metrics = report_metrics(overall, sum(lengths.values()), predictions.tracking_s)
    per_sample = []
    for s in scores:
        idf1 = s.metrics["idf1"]
        if not math.isfinite(idf1):
            raise EvaluationError(
                f"sequence {s.name}: IDF1 is not finite (empty ground truth and no tracks?)"
            )
        per_sample.append(
            {"id": s.name, "score": float(np.clip(idf1, 0.0, 1.0)), "classes": {"person": idf1}}
        )
    report = {
        "schema_version": 1,
        "component": COMPONENT,
        "experiment_id": experiment_id,
        "code_commit": code_commit,
        "model": {"ref": model_ref, "weights_sha256": weights_sha256},
        "dataset": {"id": str(data_dir), "hash": dataset_hash(data_dir, sequences)},
        "metrics": metrics,
        "per_class": {"person": {"IDF1": metrics["IDF1"], "MOTA": metrics["MOTA"], "HOTA": metrics["HOTA"]}},
        "per_sample": per_sample,
        "failures": failures,
        "timings": {
            "total_s": time.perf_counter() - started,
            "tracking_s": predictions.tracking_s,
            "frames_per_s": metrics["frames_per_s"],
        },
        "extra": {
            "per_sequence": {s.name: {k: float(v) for k, v in s.metrics.items()} for s in scores},
            "detections": {sequence.name: detection_source(sequence) for sequence in sequences},
            # As reported by the predictor (gate-predict runs the pull request's code).
            "appearance": predictions.appearance,
            "tracker_config": predictions.tracker_config,
        },
    }
    write_report(report_dir, report)
    return report


def evaluate(
    model: LoadedModel,
    data_dir: str | Path,
    report_dir: str | Path,
    *,
    write_results: bool = True,
    show_progress: bool = True,
) -> dict[str, Any]:
    """Evaluate `model` on every sequence with ground truth under `data_dir`: the gate's three stages
    in one process (gate-inputs into a temp folder, predict on them, score), so humans and the gate
    get the same numbers from one code path. Writes `<report_dir>/report.json` (+ failures/,
    results/); returns the report dict. The temp folder is removed also on errors and on
    SIGTERM/SIGINT (walkout_ci.signals.Interrupted unwinds through here).
    """
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="walkout-tracking-evaluate-") as temp:
        inputs_dir = write_inputs(data_dir, Path(temp) / "inputs")
        predictions = predict_inputs(
            model, inputs_dir, Path(temp) / "predictions", show_progress=show_progress
        )
        return score(
            data_dir,
            predictions,
            report_dir,
            model_ref=model.ref,
            weights_sha256=model.weights_sha256,
            experiment_id=model.experiment_id,
            code_commit=code_commit(Path(__file__).parent),
            write_results=write_results,
            started=started,
        )
