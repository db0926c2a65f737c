"""Tracking metrics: CLEAR-MOT and identity metrics through py-motmetrics, HOTA from `hota.py`.

Matching follows the MOTChallenge convention used by py-motmetrics: a ground-truth box and a
tracker box can be paired when their IoU distance (1 - IoU) is at most `max_iou_distance` (0.5).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import motmetrics
import numpy as np

from walkout_tracking._motmetrics_compat import ensure_motmetrics_compat
from walkout_tracking.hota import HotaResult, combine_hota, hota
from walkout_tracking.motchallenge import MotTable, xywh_to_xyxy

MOTMETRICS_NAMES = [
    "mota",
    "motp",
    "idf1",
    "idp",
    "idr",
    "num_switches",
    "mostly_tracked",
    "partially_tracked",
    "mostly_lost",
    "num_false_positives",
    "num_misses",
    "num_objects",
    "num_unique_objects",
    "num_frames",
]


@dataclass(frozen=True)
class SwitchEvent:
    """One identity switch: ground-truth object `gt_id` was tracked as `previous_track_id` and, at
    `frame`, is matched to `track_id` instead."""

    frame: int
    gt_id: int
    previous_track_id: int
    track_id: int


@dataclass
class SequenceScores:
    """Scores of one sequence. `metrics` holds MOTMETRICS_NAMES plus hota/deta/assa/loca."""

    name: str
    metrics: dict[str, float]
    switches: list[SwitchEvent] = field(default_factory=list)
    accumulator: motmetrics.MOTAccumulator | None = None
    hota_result: HotaResult | None = None


def _rows_by_frame(table: MotTable, num_frames: int) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Per frame 1..num_frames: (ids int [N], boxes float [N, 4] x y w h)."""
    starts = np.searchsorted(table.frames, np.arange(1, num_frames + 2))
    ids = [table.ids[starts[f] : starts[f + 1]] for f in range(num_frames)]
    boxes = [table.boxes[starts[f] : starts[f + 1]] for f in range(num_frames)]
    return ids, boxes


def accumulate(
    gt: MotTable, hypotheses: MotTable, *, max_iou_distance: float = 0.5
) -> motmetrics.MOTAccumulator:
    """Build a py-motmetrics accumulator over frames 1..max(last gt frame, last hypothesis frame).

    gt / hypotheses: tables sorted by frame (as `read_mot_file` and `tracks_to_table` return them).
    """
    ensure_motmetrics_compat()
    num_frames = max(gt.num_frames, hypotheses.num_frames)
    gt_ids, gt_boxes = _rows_by_frame(gt, num_frames)
    hyp_ids, hyp_boxes = _rows_by_frame(hypotheses, num_frames)
    accumulator = motmetrics.MOTAccumulator(auto_id=False)
    for frame in range(num_frames):
        distances = motmetrics.distances.iou_matrix(
            gt_boxes[frame], hyp_boxes[frame], max_iou=max_iou_distance
        )
        accumulator.update(gt_ids[frame], hyp_ids[frame], distances, frameid=frame + 1)
    return accumulator


def switch_events(accumulator: motmetrics.MOTAccumulator) -> list[SwitchEvent]:
    """Every identity switch in an accumulator, with the track id the object had before."""
    events = accumulator.mot_events
    last_track: dict[int, int] = {}
    out = []
    for (frame, _event), row in events.iterrows():
        if row["Type"] not in ("MATCH", "SWITCH"):
            continue
        gt_id, track_id = int(row["OId"]), int(row["HId"])
        if row["Type"] == "SWITCH":
            out.append(SwitchEvent(int(frame), gt_id, last_track.get(gt_id, -1), track_id))
        last_track[gt_id] = track_id
    return out


def sequence_hota(gt: MotTable, hypotheses: MotTable) -> HotaResult:
    """HOTA of one sequence from two MOT tables."""
    num_frames = max(gt.num_frames, hypotheses.num_frames)
    gt_ids, gt_boxes = _rows_by_frame(gt, num_frames)
    hyp_ids, hyp_boxes = _rows_by_frame(hypotheses, num_frames)
    return hota(
        gt_ids,
        [xywh_to_xyxy(b) for b in gt_boxes],
        hyp_ids,
        [xywh_to_xyxy(b) for b in hyp_boxes],
    )


def score_sequence(
    name: str, gt: MotTable, hypotheses: MotTable, *, max_iou_distance: float = 0.5
) -> SequenceScores:
    """MOTA, IDF1, ID switches, mostly tracked/lost (py-motmetrics) and HOTA of one sequence."""
    accumulator = accumulate(gt, hypotheses, max_iou_distance=max_iou_distance)
    host = motmetrics.metrics.create()
    summary = host.compute(accumulator, metrics=MOTMETRICS_NAMES, name=name)
    metrics = {key: float(summary[key].iloc[0]) for key in MOTMETRICS_NAMES}
    result = sequence_hota(gt, hypotheses)
    metrics.update(hota=result.hota, deta=result.deta, assa=result.assa, loca=result.loca)
    return SequenceScores(
        name=name,
        metrics=metrics,
        switches=switch_events(accumulator),
        accumulator=accumulator,
        hota_result=result,
    )


def score_overall(sequences: list[SequenceScores]) -> dict[str, float]:
    """Metrics over all sequences together (py-motmetrics' overall row; HOTA combined as in TrackEval)."""
    if not sequences:
        raise ValueError("score_overall needs at least one sequence")
    ensure_motmetrics_compat()
    host = motmetrics.metrics.create()
    summary = host.compute_many(
        [s.accumulator for s in sequences],
        metrics=MOTMETRICS_NAMES,
        names=[s.name for s in sequences],
        generate_overall=True,
    )
    overall = {key: float(summary.loc["OVERALL", key]) for key in MOTMETRICS_NAMES}
    combined = combine_hota([s.hota_result for s in sequences])
    overall.update(hota=combined.hota, deta=combined.deta, assa=combined.assa, loca=combined.loca)
    return overall
