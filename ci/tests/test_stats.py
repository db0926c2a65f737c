"""Paired bootstrap and Holm correction against closed-form cases."""

from __future__ import annotations

import numpy as np
import pytest

from walkout_ci import stats
from walkout_ci.errors import GateError


def test_constant_differences_give_a_degenerate_interval():
    result = stats.paired_bootstrap(np.full(40, 0.25), margin=0.01, confidence=0.95, resamples=500)
    assert result.lower == pytest.approx(0.25) and result.upper == pytest.approx(0.25)
    assert result.mean_difference == pytest.approx(0.25)
    assert result.p_value == 0.0 and result.passed


def test_constant_regression_beyond_the_margin_fails():
    result = stats.paired_bootstrap(np.full(40, -0.05), margin=0.01, resamples=500)
    assert result.lower == pytest.approx(-0.05) and result.p_value == 1.0 and not result.passed


def test_large_sample_bound_matches_the_normal_approximation():
    rng = np.random.default_rng(7)
    differences = rng.normal(0.02, 0.3, size=4000)
    result = stats.paired_bootstrap(differences, margin=0.01, confidence=0.95, resamples=4000, seed=1)
    standard_error = differences.std(ddof=1) / np.sqrt(differences.size)
    z_95 = 1.6448536269514722
    expected_lower = differences.mean() - z_95 * standard_error
    expected_upper = differences.mean() + z_95 * standard_error
    # The percentile bootstrap converges to the normal bound; allow 10% of a standard error.
    assert result.lower == pytest.approx(expected_lower, abs=0.1 * standard_error)
    assert result.upper == pytest.approx(expected_upper, abs=0.1 * standard_error)


def test_decision_is_lower_bound_against_minus_margin():
    rng = np.random.default_rng(3)
    differences = rng.normal(-0.02, 0.1, size=200)
    tight = stats.paired_bootstrap(differences, margin=0.0, resamples=1000)
    loose = stats.paired_bootstrap(differences, margin=0.2, resamples=1000)
    assert not tight.passed and tight.lower < 0
    assert loose.passed and loose.lower >= -0.2
    assert loose.p_value < 0.05 < tight.p_value


def test_same_seed_same_result_and_blocking_does_not_change_it(monkeypatch):
    differences = np.linspace(-0.5, 0.6, 101)
    first = stats.paired_bootstrap(differences, margin=0.05, resamples=700, seed=11)
    monkeypatch.setattr(stats, "_BLOCK_ELEMENTS", 1000)
    assert stats.paired_bootstrap(differences, margin=0.05, resamples=700, seed=11) == first


@pytest.mark.parametrize(
    ("values", "message"),
    [([], "no samples"), ([0.1, float("nan")], "NaN")],
)
def test_bad_inputs_are_gate_errors(values, message):
    with pytest.raises(GateError, match=message):
        stats.paired_bootstrap(values, margin=0.01)


def test_holm_adjusted_p_values_closed_form():
    # sorted: 0.005*4=0.02, 0.01*3=0.03, 0.03*2=0.06, 0.04*1=0.04 -> running max 0.02, 0.03, 0.06, 0.06
    assert stats.holm_adjust([0.01, 0.04, 0.03, 0.005]) == pytest.approx([0.03, 0.06, 0.06, 0.02])
    assert stats.holm_adjust([0.5, 0.9]) == pytest.approx([1.0, 1.0])
    assert stats.holm_adjust([]) == []


def test_holm_lies_between_unadjusted_and_bonferroni():
    # 0.012*3=0.036, 0.02*2=0.04, 0.04*1=0.04: Holm keeps all three at 0.05, Bonferroni (x3) only one.
    p_values = [0.012, 0.02, 0.04]
    assert stats.holm_adjust(p_values) == pytest.approx([0.036, 0.04, 0.04])
    assert [p * 3 <= 0.05 for p in p_values] == [True, False, False]
    # One step later the chain breaks: 0.03*2=0.06 > 0.05 and the last one inherits the running max.
    assert stats.holm_adjust([0.012, 0.03, 0.04]) == pytest.approx([0.036, 0.06, 0.06])


def test_per_class_tests_apply_holm():
    rng = np.random.default_rng(0)
    by_class = {
        "person": np.full(30, 0.1),  # clearly non-inferior, p = 0
        "sku_a": rng.normal(0.0, 0.2, size=60),  # borderline: p somewhere in (0, 1)
        "sku_b": np.full(30, -0.3),  # collapsed, p = 1
    }
    tests = stats.per_class_tests(by_class, margin=0.05, confidence=0.95, resamples=1000)
    names = [test.name for test in tests]
    assert names == ["person", "sku_a", "sku_b"]
    raw = [test.result.p_value for test in tests]
    assert [test.adjusted_p_value for test in tests] == pytest.approx(stats.holm_adjust(raw))
    assert tests[0].passed and not tests[2].passed
    assert tests[1].adjusted_p_value >= raw[1]


def test_bound_agrees_with_scipy_percentile_bootstrap():
    # Reference implementation: scipy.stats.bootstrap (scipy comes with motmetrics, a dev requirement).
    from scipy.stats import bootstrap

    rng = np.random.default_rng(5)
    differences = rng.beta(2, 5, size=300) - 0.3  # skewed, so the percentile method matters
    ours = stats.paired_bootstrap(differences, margin=0.01, confidence=0.95, resamples=10000, seed=2)
    reference = bootstrap(
        (differences,), np.mean, confidence_level=0.90, method="percentile", n_resamples=10000, random_state=3
    )
    standard_error = differences.std(ddof=1) / np.sqrt(differences.size)
    # Same estimator, different random streams: equal within Monte Carlo error.
    assert ours.lower == pytest.approx(reference.confidence_interval.low, abs=0.1 * standard_error)
    assert ours.upper == pytest.approx(reference.confidence_interval.high, abs=0.1 * standard_error)


def test_non_inferiority_test_is_calibrated_at_the_margin():
    # True mean exactly -margin: the test should (wrongly) pass about alpha = 5% of the time.
    rng = np.random.default_rng(11)
    margin, trials = 0.05, 300
    passed = sum(
        stats.paired_bootstrap(
            rng.normal(-margin, 0.2, size=150), margin=margin, resamples=400, seed=int(trial)
        ).passed
        for trial in range(trials)
    )
    # Binomial(300, 0.05): mean 15, sd 3.8; the bootstrap is slightly liberal at small n.
    assert 3 <= passed <= 32, passed
