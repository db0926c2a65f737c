"""Paired statistics of the gate: bootstrap non-inferiority and Holm's multiple-comparison control.

Non-inferiority framing. With d_i = candidate_i - baseline_i the per-sample score differences (higher
is better), the null hypothesis is "the candidate is worse by more than the margin" (mean d <= -margin).
The candidate is shown non-inferior when the one-sided lower confidence bound of mean d, from a
percentile bootstrap, is at least -margin; the gate fails when it is below -margin.

Clusters (issue 15). Frames of one video are not independent samples: neighbouring frames show the
same shoppers, shelves and lighting, so a model that fails on one video fails on most of its frames.
Resampling frames as if independent makes the interval far too narrow (450 frames of 3 videos gave
+/-0.002). So the bootstrap resamples whole clusters (videos) with replacement and recomputes the
per-sample mean of the resampled clusters (sum of their differences / number of their samples): the
cluster, or block, bootstrap. When every sample is its own cluster (one sample per video, as the app's
reports have) it is the ordinary bootstrap, draw for draw. `cluster_of` reads the video out of our
reports' sample ids, so no configuration is needed.

For per-class tests each class is one such hypothesis. Passing a class means rejecting "this class
regressed"; with many classes some regressions would slip through by chance, so the family-wise error
of those claims is controlled with Holm's step-down procedure on bootstrap p-values.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from walkout_ci.errors import GateError

# Resample in blocks so a large sample count never needs a [resamples, n] index matrix at once.
_BLOCK_ELEMENTS = 2_000_000
# A simulator export names frames `<video>_<frame:06d>` (ARCHITECTURE.md section 1).
_FRAME_SUFFIX = re.compile(r"^(?P<video>.+)_\d{6}$")


@dataclass(frozen=True)
class BootstrapResult:
    """Outcome of one paired bootstrap non-inferiority test.

    lower / upper: the (1 - confidence) and confidence quantiles of the bootstrap means, so `lower` is
    the one-sided lower bound at `confidence` and [lower, upper] the two-sided (2 confidence - 1)
    interval. p_value: fraction of bootstrap means below -margin (small = evidence of non-inferiority).
    """

    n: int
    mean_difference: float
    lower: float
    upper: float
    p_value: float
    margin: float
    confidence: float
    clusters: int = 0  # resampled units (videos); equal to n when every sample is its own cluster

    @property
    def passed(self) -> bool:
        """True when the lower confidence bound is at or above -margin (non-inferior)."""
        return self.lower >= -self.margin


def cluster_of(sample_id: str) -> str:
    """The video a report's sample id belongs to (the cluster the bootstrap resamples).

    Our components' ids: detection `<video>_<frame:06d>` (the export's image name), pose
    `<video>_<frame:06d>#<annotation id>`, tracking the sequence, the app the video. So: drop a
    `#...` suffix, then a trailing `_<6 digits>` frame number; anything else is its own cluster.
    """
    base = sample_id.split("#", 1)[0]
    match = _FRAME_SUFFIX.match(base)
    return match.group("video") if match else base


def clusters_of(sample_ids: Sequence[str]) -> list[str]:
    """`cluster_of` of each id, in order."""
    return [cluster_of(sample_id) for sample_id in sample_ids]


def paired_bootstrap(
    differences: Sequence[float] | np.ndarray,
    *,
    margin: float,
    confidence: float = 0.95,
    resamples: int = 2000,
    seed: int = 0,
    clusters: Sequence[str] | None = None,
) -> BootstrapResult:
    """Percentile bootstrap of the mean of paired differences (candidate - baseline).

    differences: float array [N], one per sample present in both reports, N >= 1.
    clusters: optional labels [N] (e.g. the video of each frame, `clusters_of(ids)`): whole clusters
    are resampled (`cluster_bootstrap_means`); None makes every sample its own cluster.
    margin: >= 0, the largest acceptable mean regression. confidence in (0.5, 1). The generator is
    seeded (`seed`) so the same inputs always give the same verdict.
    """
    values = np.asarray(differences, dtype=np.float64).reshape(-1)
    if values.size == 0:
        raise GateError("paired test: no samples are present in both the baseline and the candidate report")
    if not np.all(np.isfinite(values)):
        raise GateError("paired test: the per-sample score differences contain NaN or infinity")
    if not 0.5 < confidence < 1:
        raise GateError(f"paired test: confidence must be in (0.5, 1), got {confidence}")
    if margin < 0:
        raise GateError(f"paired test: margin must be >= 0, got {margin}")
    labels = list(range(values.size)) if clusters is None else list(clusters)
    if len(labels) != values.size:
        raise GateError(
            f"paired test: {len(labels)} cluster labels for {values.size} differences (one label per sample)"
        )
    means, count = cluster_bootstrap_means(values, labels, resamples=resamples, seed=seed)
    return BootstrapResult(
        n=int(values.size),
        mean_difference=float(values.mean()),
        lower=float(np.quantile(means, 1 - confidence)),
        upper=float(np.quantile(means, confidence)),
        p_value=float(np.mean(means < -margin)),
        margin=float(margin),
        confidence=float(confidence),
        clusters=count,
    )


def bootstrap_means(values: np.ndarray, *, resamples: int, seed: int) -> np.ndarray:
    """Means of `resamples` resamples with replacement of `values` (float array [N]) -> float array."""
    values = np.asarray(values, dtype=np.float64).reshape(-1)
    means, _ = cluster_bootstrap_means(values, list(range(values.size)), resamples=resamples, seed=seed)
    return means


def cluster_totals(values: np.ndarray, labels: Sequence[object]) -> tuple[np.ndarray, np.ndarray]:
    """Per-cluster (sums [C], sample counts [C]) of `values` [N], clusters in order of first appearance."""
    index: dict[object, int] = {}
    codes = np.fromiter((index.setdefault(label, len(index)) for label in labels), dtype=np.int64)
    sums = np.bincount(codes, weights=values, minlength=len(index))
    counts = np.bincount(codes, minlength=len(index)).astype(np.float64)
    return sums, counts


def cluster_bootstrap_means(
    values: np.ndarray, labels: Sequence[object], *, resamples: int, seed: int
) -> tuple[np.ndarray, int]:
    """(bootstrap means [resamples], number of clusters C) of the per-sample mean of `values` [N].

    Each resample draws C clusters with replacement and takes the mean over all samples of the drawn
    clusters: sum of their sums / sum of their counts (a cluster drawn twice counts twice).
    """
    sums, counts = cluster_totals(values, labels)
    totals = resample_cluster_totals(np.stack([sums, counts], axis=1), resamples=resamples, seed=seed)
    return totals[:, 0] / totals[:, 1], int(sums.size)


def resample_cluster_totals(table: np.ndarray, *, resamples: int, seed: int) -> np.ndarray:
    """Column totals of `resamples` cluster resamples of `table` [C, K] -> float array [resamples, K].

    table: one row per cluster (video) of additive quantities (counts, sums). Each resample draws C
    rows with replacement (seeded generator) and adds them up; ratio metrics are then recomputed from
    the totals, which is how a video-level bootstrap treats ratios such as receipts exact / judged.
    """
    table = np.asarray(table, dtype=np.float64)
    if table.ndim != 2 or table.shape[0] == 0:
        raise GateError(f"cluster bootstrap: expected a [clusters, quantities] table, got {table.shape}")
    if resamples < 1:
        raise GateError(f"cluster bootstrap: resamples must be >= 1, got {resamples}")
    rng = np.random.default_rng(seed)
    count = table.shape[0]
    block = max(1, _BLOCK_ELEMENTS // count)
    totals = np.empty((resamples, table.shape[1]), dtype=np.float64)
    for start in range(0, resamples, block):
        stop = min(resamples, start + block)
        indices = rng.integers(0, count, size=(stop - start, count))
        totals[start:stop] = table[indices].sum(axis=1)
    return totals


def percentile_interval(estimates: np.ndarray, confidence: float = 0.95) -> tuple[float, float]:
    """Two-sided percentile interval of bootstrap estimates [B] at `confidence` (NaN entries ignored).

    Raises GateError when no estimate is finite (e.g. every resample had a 0 denominator).
    """
    values = np.asarray(estimates, dtype=np.float64).reshape(-1)
    values = values[np.isfinite(values)]
    if values.size == 0:
        raise GateError("bootstrap interval: no resample gave a defined value")
    tail = (1.0 - confidence) / 2.0
    return float(np.quantile(values, tail)), float(np.quantile(values, 1.0 - tail))


def holm_adjust(p_values: Sequence[float]) -> list[float]:
    """Holm step-down adjusted p-values, in the input order.

    Sorted ascending p_(1) <= ... <= p_(m): adjusted p_(i) = max over j <= i of min(1, (m - j + 1) p_(j)).
    A hypothesis is rejected at family-wise level alpha exactly when its adjusted p-value <= alpha.
    """
    values = np.asarray(p_values, dtype=np.float64)
    count = values.size
    if count == 0:
        return []
    order = np.argsort(values, kind="stable")
    scaled = np.minimum(1.0, (count - np.arange(count)) * values[order])
    adjusted_sorted = np.maximum.accumulate(scaled)
    adjusted = np.empty(count, dtype=np.float64)
    adjusted[order] = adjusted_sorted
    return adjusted.tolist()


@dataclass(frozen=True)
class ClassTest:
    """One class's paired test after Holm correction; `passed` uses the adjusted p-value."""

    name: str
    result: BootstrapResult
    adjusted_p_value: float
    alpha: float

    @property
    def passed(self) -> bool:
        return self.adjusted_p_value <= self.alpha


def per_class_tests(
    differences_by_class: Mapping[str, Sequence[float] | np.ndarray],
    *,
    margin: float,
    confidence: float = 0.95,
    resamples: int = 2000,
    seed: int = 0,
    clusters_by_class: Mapping[str, Sequence[str]] | None = None,
) -> list[ClassTest]:
    """Paired bootstrap per class, Holm-corrected at family-wise level alpha = 1 - confidence.

    differences_by_class: {class: float array [N_class] of candidate - baseline per-sample scores}.
    clusters_by_class: optional {class: labels [N_class]} (see `paired_bootstrap`).
    Returns one ClassTest per class, in the input order.
    """
    names = list(differences_by_class)
    results = [
        paired_bootstrap(
            differences_by_class[name],
            margin=margin,
            confidence=confidence,
            resamples=resamples,
            seed=seed,
            clusters=None if clusters_by_class is None else clusters_by_class[name],
        )
        for name in names
    ]
    adjusted = holm_adjust([result.p_value for result in results])
    alpha = 1 - confidence
    return [
        ClassTest(name=name, result=result, adjusted_p_value=p, alpha=alpha)
        for name, result, p in zip(names, results, adjusted, strict=True)
    ]
