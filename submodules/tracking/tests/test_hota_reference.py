"""HOTA cross-checked against TrackEval, a second implementation, and hand-derived multi-sequence cases.

TrackEval (the HOTA authors' reference code) is on PyPI as `trackeval` 1.3.0, but it is not installed
here: it requires `opencv-python`, which would be installed beside our `opencv-python-headless`
(both own the `cv2` package), and `tabulate`. So its numbers were produced once, on the files this
test reads, with `data/hota_reference/trackeval_run.py` (TrackEval 1.3.0 from `pip download`, run on
this venv's numpy/scipy/cv2) and stored in `data/hota_reference/trackeval_golden.json`:

- "tud": py-motmetrics' bundled TUD-Campus and TUD-Stadtmitte ground truth and tracker output (real
  pedestrians, a real tracker; MOT15 benchmark settings, no preprocessing);
- "crowd": two 30-frame sequences in the simulator's gt.txt form (class 1, rows with the MOTChallenge
  "consider" flag 0 for mostly hidden persons), with identity switches, fragments, misses, a false
  track and box jitter of several sizes (MOT17 settings: TrackEval drops the flag-0 rows, as our
  `read_mot_file(min_confidence=1)` does).

The package's metrics (`score_sequence` / `score_overall`, what `gate-score` reports) must equal those
numbers per sequence and combined; so must a second implementation written here from the paper's
definitions (Luiten et al., IJCV 2020, eqs. for DetA, AssA with TPA/FNA/FPA, and TrackEval's matching
score), in plain Python over dictionaries.
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path

import motmetrics
import numpy as np
import pytest
from scipy.optimize import linear_sum_assignment

from walkout_tracking.hota import ALPHAS, combine_hota, hota
from walkout_tracking.metrics import score_overall, score_sequence
from walkout_tracking.motchallenge import read_mot_file

DATA = Path(__file__).parent / "data" / "hota_reference"
GOLDEN = json.loads((DATA / "trackeval_golden.json").read_text())
MOTMETRICS_DATA = Path(os.path.dirname(motmetrics.__file__)) / "data"
EPS = np.finfo(float).eps
TOLERANCE = 1e-12  # the same arithmetic in a different order: equal up to rounding


def _case_files(case: str) -> dict[str, tuple[Path, Path]]:
    """{sequence: (gt.txt, tracker results)} of a golden case."""
    if case == "tud":
        return {
            s: (MOTMETRICS_DATA / s / "gt.txt", MOTMETRICS_DATA / s / "test.txt")
            for s in GOLDEN["tud"]["results"]
            if s != "COMBINED_SEQ"
        }
    names = [s for s in GOLDEN[case]["results"] if s != "COMBINED_SEQ"]
    return {s: (DATA / "gt" / s / "gt" / "gt.txt", DATA / "tracker" / f"{s}.txt") for s in names}


def _golden(case: str, sequence: str) -> dict:
    return GOLDEN[case]["results"][sequence]


@pytest.mark.parametrize("case", ["tud", "crowd"])
def test_package_hota_equals_trackeval_per_sequence_and_combined(case):
    scores = [
        score_sequence(name, read_mot_file(gt, min_confidence=1), read_mot_file(tracker))
        for name, (gt, tracker) in _case_files(case).items()
    ]
    for score in scores:
        golden = _golden(case, score.name)
        for ours, theirs in (("hota", "HOTA"), ("deta", "DetA"), ("assa", "AssA"), ("loca", "LocA")):
            assert score.metrics[ours] == pytest.approx(golden[theirs], abs=TOLERANCE), (score.name, ours)
        np.testing.assert_allclose(score.hota_result.hota_per_alpha, golden["HOTA_per_alpha"], atol=TOLERANCE)
    overall = score_overall(scores)
    golden = _golden(case, "COMBINED_SEQ")
    for ours, theirs in (("hota", "HOTA"), ("deta", "DetA"), ("assa", "AssA"), ("loca", "LocA")):
        assert overall[ours] == pytest.approx(golden[theirs], abs=TOLERANCE), ("combined", ours)


def test_the_golden_cases_are_not_trivial():
    """The files exercise what HOTA is about: neither perfect nor hopeless, association and detection
    errors both present, every sequence different."""
    for case in ("tud", "crowd"):
        values = [_golden(case, s) for s in _case_files(case)]
        assert all(0.3 < v["HOTA"] < 0.9 and v["AssA"] < 0.95 and v["DetA"] < 0.95 for v in values)
        assert len({round(v["HOTA"], 6) for v in values}) == len(values)


# ---- a second implementation, from the paper's definitions ------------------------------------------


def _iou(a: tuple[float, ...], b: tuple[float, ...]) -> float:
    """IoU of two x, y, w, h boxes."""
    ix = max(0.0, min(a[0] + a[2], b[0] + b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[1] + a[3], b[1] + b[3]) - max(a[1], b[1]))
    inter = ix * iy
    union = a[2] * a[3] + b[2] * b[3] - inter
    return inter / union if union > 0 else 0.0


def _frames(path: Path, *, min_confidence: float | None) -> dict[int, dict[int, tuple[float, ...]]]:
    """{frame: {id: (x, y, w, h)}} read with plain string splitting (not our MOT reader)."""
    frames: dict[int, dict[int, tuple[float, ...]]] = {}
    for line in path.read_text().splitlines():
        if not line.strip():
            continue
        values = [float(v) for v in line.split(",")[:7]]
        if min_confidence is not None and values[6] < min_confidence:
            continue
        frames.setdefault(int(values[0]), {})[int(values[1])] = tuple(values[2:6])
    return frames


def _paper_counts(gt_path: Path, tracker_path: Path) -> dict:
    """Per-alpha TP, FN, FP, sum of A(c) over TPs, sum of localisation over TPs, for one sequence."""
    gt = _frames(gt_path, min_confidence=1)
    tr = _frames(tracker_path, min_confidence=None)
    frames = sorted(set(gt) | set(tr))
    # Global alignment prior (TrackEval): soft co-occurrence of every (g, t) over the sequence.
    potential: dict[tuple[int, int], float] = {}
    gt_dets: dict[int, int] = {}
    tr_dets: dict[int, int] = {}
    for f in frames:
        g_items, t_items = list(gt.get(f, {}).items()), list(tr.get(f, {}).items())
        for g, _ in g_items:
            gt_dets[g] = gt_dets.get(g, 0) + 1
        for t, _ in t_items:
            tr_dets[t] = tr_dets.get(t, 0) + 1
        sim = {(g, t): _iou(gb, tb) for g, gb in g_items for t, tb in t_items}
        row = {g: sum(sim[(g, t)] for t, _ in t_items) for g, _ in g_items}
        col = {t: sum(sim[(g, t)] for g, _ in g_items) for t, _ in t_items}
        for (g, t), s in sim.items():
            denominator = row[g] + col[t] - s
            if denominator > EPS:
                potential[(g, t)] = potential.get((g, t), 0.0) + s / denominator
    alignment = {(g, t): p / max(gt_dets[g] + tr_dets[t] - p, EPS) for (g, t), p in potential.items()}
    counts = {a: {"tp": 0, "fn": 0, "fp": 0, "loc": 0.0, "pairs": {}} for a in range(len(ALPHAS))}
    for f in frames:
        g_items, t_items = list(gt.get(f, {}).items()), list(tr.get(f, {}).items())
        matched: list[tuple[int, int, float]] = []
        if g_items and t_items:
            sim = np.array([[_iou(gb, tb) for _, tb in t_items] for _, gb in g_items])
            score = np.array([[alignment.get((g, t), 0.0) for t, _ in t_items] for g, _ in g_items]) * sim
            rows, cols = linear_sum_assignment(-score)
            matched = [(g_items[r][0], t_items[c][0], sim[r, c]) for r, c in zip(rows, cols, strict=True)]
        for a, alpha in enumerate(ALPHAS):
            ok = [(g, t, s) for g, t, s in matched if s >= alpha - EPS]
            counts[a]["tp"] += len(ok)
            counts[a]["fn"] += len(g_items) - len(ok)
            counts[a]["fp"] += len(t_items) - len(ok)
            counts[a]["loc"] += sum(s for _, _, s in ok)
            for g, t, _ in ok:
                counts[a]["pairs"][(g, t)] = counts[a]["pairs"].get((g, t), 0) + 1
    for a in counts.values():
        # AssA's numerator: every TP c of pair (g, t) scores TPA / (TPA + FNA + FPA), where
        # FNA = gt dets of g not matched to t and FPA = tracker dets of t not matched to g.
        a["ass_sum"] = sum(
            n * n / (n + (gt_dets[g] - n) + (tr_dets[t] - n)) for (g, t), n in a["pairs"].items()
        )
    return counts


def _paper_scores(sequences: list[dict]) -> dict[str, float]:
    """HOTA, DetA, AssA, LocA over one or several sequences' counts (summed per alpha)."""
    per_alpha = {"HOTA": [], "DetA": [], "AssA": [], "LocA": []}
    for a in range(len(ALPHAS)):
        tp = sum(s[a]["tp"] for s in sequences)
        fn = sum(s[a]["fn"] for s in sequences)
        fp = sum(s[a]["fp"] for s in sequences)
        det = tp / max(1.0, tp + fn + fp)
        ass = sum(s[a]["ass_sum"] for s in sequences) / max(1.0, tp)
        per_alpha["DetA"].append(det)
        per_alpha["AssA"].append(ass)
        per_alpha["HOTA"].append(math.sqrt(det * ass))
        per_alpha["LocA"].append(max(1e-10, sum(s[a]["loc"] for s in sequences)) / max(1e-10, tp))
    return {key: float(np.mean(values)) for key, values in per_alpha.items()}


@pytest.mark.parametrize("case", ["tud", "crowd"])
def test_a_second_implementation_from_the_paper_agrees_with_trackeval(case):
    counts = {name: _paper_counts(gt, tracker) for name, (gt, tracker) in _case_files(case).items()}
    for name, sequence in counts.items():
        ours = _paper_scores([sequence])
        for key, value in ours.items():
            assert value == pytest.approx(_golden(case, name)[key], abs=1e-9), (name, key)
    combined = _paper_scores(list(counts.values()))
    for key, value in combined.items():
        assert value == pytest.approx(_golden(case, "COMBINED_SEQ")[key], abs=1e-9), ("combined", key)


# ---- multi-sequence HOTA, worked out by hand ----------------------------------------------------------

BOX = np.array([[0.0, 0.0, 10.0, 10.0]])


def _constant(track_ids: list[int], box: np.ndarray = BOX):
    """One ground-truth object (id 1) over len(track_ids) frames, tracked as track_ids (0: missed)."""
    frames = len(track_ids)
    gt_ids = [np.array([1])] * frames
    gt_boxes = [BOX] * frames
    tr_ids = [np.array([t]) if t else np.array([], dtype=int) for t in track_ids]
    tr_boxes = [box if t else np.zeros((0, 4)) for t in track_ids]
    return hota(gt_ids, gt_boxes, tr_ids, tr_boxes)


def test_combined_hota_weights_association_by_true_positives():
    # Perfect (4 TP, AssA 1) + an identity split in half (4 TP, AssA 1/2): DetA 1, AssA (4 + 2) / 8.
    combined = combine_hota([_constant([5, 5, 5, 5]), _constant([5, 5, 6, 6])])
    assert combined.deta == pytest.approx(1.0)
    assert combined.assa == pytest.approx(0.75)
    assert combined.hota == pytest.approx(math.sqrt(0.75))


def test_combined_hota_sums_detection_counts():
    # Half missed (2 TP, 2 FN, AssA 2 / (4 + 2 - 2)) + perfect (4 TP): DetA 6/8, AssA (2 * 1/2 + 4) / 6.
    combined = combine_hota([_constant([3, 3, 0, 0]), _constant([3, 3, 3, 3])])
    assert combined.deta == pytest.approx(0.75)
    assert combined.assa == pytest.approx(5 / 6)
    assert combined.hota == pytest.approx(math.sqrt(0.75 * 5 / 6))


def test_combined_hota_and_loca_are_per_alpha():
    # Sequence 1: IoU 0.62 in 3 frames (a match for the 12 alphas up to 0.60, else 3 FN + 3 FP).
    # Sequence 2: perfect, 3 frames. Up to alpha 0.60: DetA = AssA = 1, LocA (3 * 0.62 + 3) / 6;
    # above: DetA 3 / 9, AssA 1, LocA 1 (only sequence 2's matches).
    shifted = np.array([[0.0, 0.0, 10.0, 6.2]])
    combined = combine_hota([_constant([2, 2, 2], shifted), _constant([2, 2, 2])])
    assert combined.hota == pytest.approx((12 * 1.0 + 7 * math.sqrt(1 / 3)) / 19)
    assert combined.deta == pytest.approx((12 * 1.0 + 7 / 3) / 19)
    assert combined.loca == pytest.approx((12 * (3 * 0.62 + 3) / 6 + 7 * 1.0) / 19)


def test_a_sequence_without_ground_truth_or_tracks_does_not_move_the_combination():
    # Scored 1 on its own (nothing to get wrong; TrackEval reports 0 there), but with no TP it
    # carries no weight in the combination.
    empty = hota(
        [np.array([], dtype=int)] * 2,
        [np.zeros((0, 4))] * 2,
        [np.array([], dtype=int)] * 2,
        [np.zeros((0, 4))] * 2,
    )
    split = _constant([5, 5, 6, 6])
    combined = combine_hota([split, empty])
    assert combined.hota == pytest.approx(split.hota)
    assert combined.loca == pytest.approx(split.loca)
