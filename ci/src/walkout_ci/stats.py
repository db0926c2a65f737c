"""Paired statistics of the gate: bootstrap non-inferiority and Holm's multiple-comparison control.

Non-inferiority framing. With d_i = candidate_i - baseline_i the per-sample score differences (higher
is better), the null hypothesis is "the candidate is worse by more than the margin" (mean d <= -margin).
The candidate is shown non-inferior when the one-sided lower confidence bound of mean d, from a
percentile bootstrap over samples, is at least -margin; the gate fails when it is below -margin.

For per-class tests each class is one such hypothesis. Passing a class means rejecting "this class
regressed"; with many classes some regressions would slip through by chance, so the family-wise error
of those claims is controlled with Holm's step-down procedure on bootstrap p-values.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from walkout_ci.errors import GateError

# Resample in blocks so a large sample count never needs a [resamples, n] index matrix at once.
_BLOCK_ELEMENTS = 2_000_000


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

    @property
    def passed(self) -> bool:
        """True when the lower confidence bound is at or above -margin (non-inferior)."""
        return self.lower >= -self.margin


def paired_bootstrap(
    differences: Sequence[float] | np.ndarray,
    *,
    margin: float,
    confidence: float = 0.95,
    resamples: int = 2000,
    seed: int = 0,
) -> BootstrapResult:
    """Percentile bootstrap of the mean of paired differences (candidate - baseline).

    differences: float array [N], one per sample present in both reports, N >= 1.
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
    means = bootstrap_means(values, resamples=resamples, seed=seed)
    return BootstrapResult(
        n=int(values.size),
        mean_difference=float(values.mean()),
        lower=float(np.quantile(means, 1 - confidence)),
        upper=float(np.quantile(means, confidence)),
        p_value=float(np.mean(means < -margin)),
        margin=float(margin),
        confidence=float(confidence),
    )


def bootstrap_means(values: np.ndarray, *, resamples: int, seed: int) -> np.ndarray:
    """Means of `resamples` resamples with replacement of `values` (float array [N]) -> float array."""
    rng = np.random.default_rng(seed)
    count = values.size
    block = max(1, _BLOCK_ELEMENTS // count)
    means = np.empty(resamples, dtype=np.float64)
    for start in range(0, resamples, block):
        stop = min(resamples, start + block)
        indices = rng.integers(0, count, size=(stop - start, count))
        means[start:stop] = values[indices].mean(axis=1)
    return means


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
) -> list[ClassTest]:
    """Paired bootstrap per class, Holm-corrected at family-wise level alpha = 1 - confidence.

    differences_by_class: {class: float array [N_class] of candidate - baseline per-sample scores}.
    Returns one ClassTest per class, in the input order.
    """
    names = list(differences_by_class)
    results = [
        paired_bootstrap(
            differences_by_class[name], margin=margin, confidence=confidence, resamples=resamples, seed=seed
        )
        for name in names
    ]
    adjusted = holm_adjust([result.p_value for result in results])
    alpha = 1 - confidence
    return [
        ClassTest(name=name, result=result, adjusted_p_value=p, alpha=alpha)
        for name, result, p in zip(names, results, adjusted, strict=True)
    ]
