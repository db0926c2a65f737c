"""Cluster (video-level) bootstrap of the gate's paired tests (issue 15), against closed forms and scipy."""

from __future__ import annotations

import numpy as np
import pytest

from walkout_ci import stats
from walkout_ci.errors import GateError
from walkout_ci.gate import FAIL, PASS, compare_reports
from walkout_ci.gate_config import GateConfig, gate_config_from_dict
from walkout_ci.testing import MINIMAL_EVALUATE, make_report


@pytest.mark.parametrize(
    ("sample_id", "video"),
    [
        ("val_0003_000012", "val_0003"),  # detection: <video>_<frame:06d>
        ("val_0003_000012#17", "val_0003"),  # pose: <video>_<frame:06d>#<annotation>
        ("val_0003", "val_0003"),  # tracking sequence / app video
        ("TUD-Campus", "TUD-Campus"),
        ("single_pick", "single_pick"),
        ("shelf_12345", "shelf_12345"),  # not a 6-digit frame number: its own cluster
        ("000012", "000012"),  # a bare frame name has no video part
    ],
)
def test_cluster_of_reads_the_video_out_of_our_sample_ids(sample_id, video):
    assert stats.cluster_of(sample_id) == video


def _correlated_frames(videos: int, frames: int, seed: int) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """(video means [videos], frame differences [videos * frames], frame clusters): frames of one video
    are perfectly correlated (all equal to their video's value)."""
    rng = np.random.default_rng(seed)
    video_values = rng.normal(-0.01, 0.08, size=videos)
    differences = np.repeat(video_values, frames)
    clusters = [f"val_{v:04d}" for v in range(videos) for _ in range(frames)]
    return video_values, differences, clusters


def test_perfectly_correlated_frames_give_exactly_the_interval_of_the_video_means():
    video_values, differences, clusters = _correlated_frames(videos=12, frames=30, seed=4)
    by_video = stats.paired_bootstrap(video_values, margin=0.02, resamples=3000, seed=9)
    by_cluster = stats.paired_bootstrap(differences, margin=0.02, resamples=3000, seed=9, clusters=clusters)
    # Same draws of videos, and each resample's frame mean equals its video mean: identical results.
    assert by_cluster.lower == pytest.approx(by_video.lower, abs=1e-12)
    assert by_cluster.upper == pytest.approx(by_video.upper, abs=1e-12)
    assert by_cluster.p_value == by_video.p_value
    assert (by_cluster.n, by_cluster.clusters) == (360, 12)
    # Treating the 360 frames as independent (the old gate) makes the interval far too narrow.
    naive = stats.paired_bootstrap(differences, margin=0.02, resamples=3000, seed=9)
    assert naive.upper - naive.lower < 0.3 * (by_cluster.upper - by_cluster.lower)


def test_cluster_bound_matches_the_normal_approximation_over_video_means():
    # Many videos of equal size: the bootstrap bound converges to mean - z * s_video / sqrt(C).
    rng = np.random.default_rng(12)
    videos, frames = 600, 5
    video_effect = rng.normal(0.01, 0.2, size=videos)
    differences = np.repeat(video_effect, frames) + rng.normal(0, 0.05, size=videos * frames)
    clusters = [str(v) for v in range(videos) for _ in range(frames)]
    result = stats.paired_bootstrap(differences, margin=0.0, resamples=4000, seed=1, clusters=clusters)
    video_means = differences.reshape(videos, frames).mean(axis=1)
    standard_error = video_means.std(ddof=1) / np.sqrt(videos)
    z_95 = 1.6448536269514722
    assert result.lower == pytest.approx(differences.mean() - z_95 * standard_error, abs=0.1 * standard_error)
    assert result.upper == pytest.approx(differences.mean() + z_95 * standard_error, abs=0.1 * standard_error)


def test_unequal_cluster_sizes_agree_with_scipy_resampling_videos():
    # Reference: scipy.stats.bootstrap resampling (sum, count) pairs of videos, statistic sum/count.
    from scipy.stats import bootstrap

    rng = np.random.default_rng(8)
    sizes = rng.integers(1, 40, size=80)
    video_effect = rng.beta(2, 5, size=80) - 0.3
    differences = np.concatenate(
        [np.full(size, effect) for size, effect in zip(sizes, video_effect, strict=True)]
    )
    differences += rng.normal(0, 0.02, size=differences.size)
    clusters = [str(v) for v, size in enumerate(sizes) for _ in range(size)]
    ours = stats.paired_bootstrap(differences, margin=0.01, resamples=10000, seed=2, clusters=clusters)
    sums, counts = stats.cluster_totals(differences, clusters)
    reference = bootstrap(
        (sums, counts),
        lambda s, c, axis=-1: s.sum(axis=axis) / c.sum(axis=axis),
        paired=True,
        vectorized=True,
        confidence_level=0.90,
        method="percentile",
        n_resamples=10000,
        random_state=3,
    )
    width = reference.confidence_interval.high - reference.confidence_interval.low
    assert ours.lower == pytest.approx(reference.confidence_interval.low, abs=0.05 * width)
    assert ours.upper == pytest.approx(reference.confidence_interval.high, abs=0.05 * width)


def test_one_sample_per_video_is_the_ordinary_bootstrap():
    differences = np.linspace(-0.3, 0.4, 57)
    plain = stats.paired_bootstrap(differences, margin=0.05, resamples=900, seed=5)
    labelled = stats.paired_bootstrap(
        differences, margin=0.05, resamples=900, seed=5, clusters=[f"v{i}" for i in range(57)]
    )
    assert (labelled.lower, labelled.upper, labelled.p_value) == (plain.lower, plain.upper, plain.p_value)
    assert labelled.clusters == 57


def test_cluster_labels_must_match_the_samples():
    with pytest.raises(GateError, match="3 cluster labels for 2 differences"):
        stats.paired_bootstrap([0.1, 0.2], margin=0.01, clusters=["a", "a", "b"])


def test_resampled_totals_recompute_ratio_metrics_per_resample():
    # Every video has exact/judged = 3/4: every resample's ratio is 0.75, a degenerate interval.
    table = np.array([[3, 4], [6, 8], [0.75, 1], [30, 40]], dtype=float)
    totals = stats.resample_cluster_totals(table, resamples=500, seed=0)
    assert totals.shape == (500, 2)
    assert stats.percentile_interval(totals[:, 0] / totals[:, 1]) == pytest.approx((0.75, 0.75))
    # One good and one bad video: a resample drawing the bad one twice gives 0.
    two = stats.resample_cluster_totals(np.array([[5.0, 5.0], [0.0, 5.0]]), resamples=2000, seed=1)
    low, high = stats.percentile_interval(two[:, 0] / two[:, 1])
    assert (low, high) == (0.0, 1.0)


def test_percentile_interval_ignores_undefined_resamples_and_refuses_all_undefined():
    assert stats.percentile_interval(np.array([np.nan, 0.5, 0.5])) == (0.5, 0.5)
    with pytest.raises(GateError, match="no resample gave a defined value"):
        stats.percentile_interval(np.array([np.nan, np.nan]))
    with pytest.raises(GateError, match="resamples must be >= 1"):
        stats.resample_cluster_totals(np.ones((2, 2)), resamples=0, seed=0)


def _frames_report(scores_by_video: dict[str, list[float]]) -> dict:
    """A detection-style report: one sample per frame, ids `<video>_<frame:06d>`."""
    sample_scores = {
        f"{video}_{frame:06d}": {"person": score}
        for video, values in scores_by_video.items()
        for frame, score in enumerate(values, start=1)
    }
    return make_report(sample_scores=sample_scores)


def _paired_config() -> GateConfig:
    return gate_config_from_dict(
        {
            "schema_version": 1,
            "component": "detection",
            "evaluate": MINIMAL_EVALUATE,
            "primary_metric": {"name": "AP50"},
            "metrics": {"AP50": {"tolerance": 1.0}},
            "paired": {"margin": 0.02, "confidence": 0.95, "resamples": 1000, "per_class": True},
        },
        source="test gate.yaml",
    )


def test_the_gate_resamples_videos_not_frames():
    # 3 videos x 150 frames: the candidate is much better on one video and worse on two. Frames
    # resampled as independent would show a tight interval around the mean; by video it is wide.
    baseline = _frames_report({"val_0000": [0.8] * 150, "val_0001": [0.8] * 150, "val_0002": [0.8] * 150})
    candidate = _frames_report({"val_0000": [1.0] * 150, "val_0001": [0.75] * 150, "val_0002": [0.75] * 150})
    result = compare_reports(_paired_config(), baseline, candidate)
    paired = next(rule for rule in result.rules if rule.name == "paired[score]")
    # mean +0.0333 > -margin, but 2 of 3 videos regressed: the video bootstrap's lower bound is -0.05.
    assert paired.status == FAIL, paired.message
    assert "450 samples in 3 videos (resampled by video)" in paired.message
    assert result.paired["clusters"] == 3 and result.paired["lower"] == pytest.approx(-0.05)
    person = next(rule for rule in result.rules if rule.name == "paired.per_class[person]")
    assert person.status == FAIL and "in 3 videos" in person.message
    assert any("only 3 videos" in note for note in result.notes)
    # The same scores, one sample per video (the app's reports): clusters = samples, as before.
    per_video = compare_reports(
        _paired_config(),
        make_report(sample_scores={f"val_{v:04d}": {"person": 0.8} for v in range(20)}),
        make_report(sample_scores={f"val_{v:04d}": {"person": 0.8} for v in range(20)}),
    )
    rule = next(rule for rule in per_video.rules if rule.name == "paired[score]")
    assert rule.status == PASS and "on 20 samples:" in rule.message
    assert per_video.paired["clusters"] == 20
