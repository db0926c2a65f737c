"""HOTA (Higher Order Tracking Accuracy), implemented from Luiten et al., IJCV 2020.

For each localisation threshold alpha in 0.05, 0.10, ..., 0.95:
  1. A global alignment score A(g, t) between every ground-truth id g and tracker id t is computed
     from soft (IoU-weighted) co-occurrence over the whole sequence.
  2. Per frame, ground truth and tracker boxes are matched with the Hungarian algorithm maximising
     A(g, t) * IoU, and a pair counts as a true positive when its IoU >= alpha.
  3. DetA = |TP| / (|TP| + |FN| + |FP|); AssA = mean over TPs c of
     |TPA(c)| / (|TPA(c)| + |FNA(c)| + |FPA(c)|); HOTA_alpha = sqrt(DetA * AssA).
HOTA is the mean of HOTA_alpha over the 19 thresholds (likewise DetA, AssA). This follows the
reference implementation in TrackEval (same matching score and the same epsilon tie handling).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.optimize import linear_sum_assignment

from walkout_tracking.boxes import iou_batch

ALPHAS = np.arange(0.05, 0.99, 0.05)
_EPS = np.finfo(float).eps


@dataclass(frozen=True)
class HotaResult:
    """Scores averaged over ALPHAS (each in [0, 1]) plus the per-alpha HOTA curve [19]."""

    hota: float
    deta: float
    assa: float
    loca: float
    hota_per_alpha: np.ndarray
    # Raw per-alpha counts [19] so several sequences can be combined (`combine_hota`).
    true_positives: np.ndarray
    false_negatives: np.ndarray
    false_positives: np.ndarray
    assa_per_alpha: np.ndarray
    # LocA per alpha [19]: combined sequences weight it by each alpha's true positives (TrackEval).
    loca_per_alpha: np.ndarray


def hota(
    gt_ids: list[np.ndarray],
    gt_boxes: list[np.ndarray],
    tracker_ids: list[np.ndarray],
    tracker_boxes: list[np.ndarray],
) -> HotaResult:
    """HOTA of one sequence.

    All four lists have one entry per frame: ids int array [N_f]; boxes float array [N_f, 4]
    x1 y1 x2 y2. Ids are any integers (remapped internally). A sequence with neither ground truth
    nor tracks scores 1 (nothing to get wrong); one side empty scores 0.
    """
    gt_map = {
        value: index for index, value in enumerate(np.unique(np.concatenate([*gt_ids, []])).astype(int))
    }
    tr_map = {
        value: index for index, value in enumerate(np.unique(np.concatenate([*tracker_ids, []])).astype(int))
    }
    gt_idx = [np.array([gt_map[int(i)] for i in ids], dtype=np.int64) for ids in gt_ids]
    tr_idx = [np.array([tr_map[int(i)] for i in ids], dtype=np.int64) for ids in tracker_ids]
    similarities = [iou_batch(g, t) for g, t in zip(gt_boxes, tracker_boxes, strict=True)]
    n_gt, n_tr = len(gt_map), len(tr_map)
    if n_gt == 0 and n_tr == 0:
        ones, zeros = np.ones(len(ALPHAS)), np.zeros(len(ALPHAS))
        return HotaResult(1.0, 1.0, 1.0, 1.0, ones, zeros, zeros, zeros, ones, ones)

    potential = np.zeros((n_gt, n_tr))
    gt_count = np.zeros((n_gt, 1))
    tr_count = np.zeros((1, n_tr))
    for g, t, sim in zip(gt_idx, tr_idx, similarities, strict=True):
        denominator = sim.sum(0)[None, :] + sim.sum(1)[:, None] - sim
        soft = np.zeros_like(sim)
        mask = denominator > _EPS
        soft[mask] = sim[mask] / denominator[mask]
        potential[g[:, None], t[None, :]] += soft
        gt_count[g] += 1
        tr_count[0, t] += 1
    alignment = potential / np.maximum(gt_count + tr_count - potential, _EPS)

    n_alpha = len(ALPHAS)
    tp = np.zeros(n_alpha)
    fn = np.zeros(n_alpha)
    fp = np.zeros(n_alpha)
    loc = np.zeros(n_alpha)
    match_counts = np.zeros((n_alpha, n_gt, n_tr))
    for g, t, sim in zip(gt_idx, tr_idx, similarities, strict=True):
        if len(g) == 0 or len(t) == 0:
            fp += len(t)
            fn += len(g)
            continue
        score = alignment[g[:, None], t[None, :]] * sim
        rows, cols = linear_sum_assignment(-score)
        for a, alpha in enumerate(ALPHAS):
            ok = sim[rows, cols] >= alpha - _EPS
            matched_rows, matched_cols = rows[ok], cols[ok]
            count = len(matched_rows)
            tp[a] += count
            fn[a] += len(g) - count
            fp[a] += len(t) - count
            if count:
                loc[a] += sim[matched_rows, matched_cols].sum()
                match_counts[a, g[matched_rows], t[matched_cols]] += 1

    assa = np.zeros(n_alpha)
    for a in range(n_alpha):
        matches = match_counts[a]
        per_pair = matches / np.maximum(1.0, gt_count + tr_count - matches)
        assa[a] = np.sum(matches * per_pair) / max(1.0, tp[a])
    deta = tp / np.maximum(1.0, tp + fn + fp)
    loca = np.maximum(1e-10, loc) / np.maximum(1e-10, tp)
    hota_alpha = np.sqrt(deta * assa)
    return HotaResult(
        hota=float(hota_alpha.mean()),
        deta=float(deta.mean()),
        assa=float(assa.mean()),
        loca=float(loca.mean()),
        hota_per_alpha=hota_alpha,
        true_positives=tp,
        false_negatives=fn,
        false_positives=fp,
        assa_per_alpha=assa,
        loca_per_alpha=loca,
    )


def combine_hota(results: list[HotaResult]) -> HotaResult:
    """Combine per-sequence results as TrackEval does: counts are summed, AssA and LocA are averaged
    weighted by each sequence's true positives, per alpha, then averaged over the alphas."""
    if not results:
        raise ValueError("combine_hota needs at least one sequence result")
    tp = np.sum([r.true_positives for r in results], axis=0)
    fn = np.sum([r.false_negatives for r in results], axis=0)
    fp = np.sum([r.false_positives for r in results], axis=0)
    assa = np.sum([r.assa_per_alpha * r.true_positives for r in results], axis=0) / np.maximum(1.0, tp)
    # Per alpha, as TrackEval's _combine_weighted_av: weighting the alpha-averaged LocA instead
    # disagreed with TrackEval (0.711 vs 0.732 on TUD-Campus + TUD-Stadtmitte).
    loca_weighted = np.sum([r.loca_per_alpha * r.true_positives for r in results], axis=0)
    loca = np.maximum(1e-10, loca_weighted) / np.maximum(1e-10, tp)
    deta = tp / np.maximum(1.0, tp + fn + fp)
    hota_alpha = np.sqrt(deta * assa)
    return HotaResult(
        hota=float(hota_alpha.mean()),
        deta=float(deta.mean()),
        assa=float(assa.mean()),
        loca=float(loca.mean()),
        hota_per_alpha=hota_alpha,
        true_positives=tp,
        false_negatives=fn,
        false_positives=fp,
        assa_per_alpha=assa,
        loca_per_alpha=loca,
    )
