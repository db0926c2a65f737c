import numpy as np
import pytest

from walkout_tracking.association import (
    INFEASIBLE,
    cosine_distance,
    fused_cost,
    iou_cost,
    linear_assignment,
    look_alike_tracks,
    reachable_pairs,
    saving_assignment,
    within_tolerance,
)


def test_linear_assignment_golden_prefers_global_minimum():
    cost = np.array([[0.1, 0.2], [0.15, 0.9]])
    # Greedy would pair (0, 0) then (1, 1) = 1.0; the optimum is (0, 1) + (1, 0) = 0.35.
    matches, tracks, dets = linear_assignment(cost, max_cost=1.0)
    assert matches.tolist() == [[0, 1], [1, 0]]
    assert tracks.tolist() == [] and dets.tolist() == []


def test_linear_assignment_drops_gated_pairs():
    cost = np.array([[0.2, INFEASIBLE], [INFEASIBLE, INFEASIBLE], [0.3, 0.4]])
    matches, tracks, dets = linear_assignment(cost, max_cost=1.0)
    assert sorted(map(tuple, matches.tolist())) == [(0, 0), (2, 1)]
    assert tracks.tolist() == [1]
    assert dets.tolist() == []


def test_linear_assignment_empty_sides():
    matches, tracks, dets = linear_assignment(np.zeros((0, 3)), max_cost=1.0)
    assert matches.shape == (0, 2) and tracks.tolist() == [] and dets.tolist() == [0, 1, 2]


def test_iou_cost_gates_low_overlap():
    cost = iou_cost(np.array([[0.9, 0.2]]), min_iou=0.3)
    assert cost[0, 0] == pytest.approx(0.1)
    assert cost[0, 1] == INFEASIBLE


def test_cosine_distance_golden():
    d = cosine_distance(np.array([[1.0, 0.0]]), np.array([[2.0, 0.0], [0.0, 1.0], [-1.0, 0.0]]))
    np.testing.assert_allclose(d, [[0.0, 1.0, 2.0]])


# The gates of the fused-cost tests below.
GATES = dict(min_iou=0.3, max_appearance_distance=0.4, reid_appearance_distance=0.1, appearance_weight=0.5)


def test_fused_cost_gates_and_reidentifies():
    iou = np.array([[0.8, 0.0, 0.8]])
    distance = np.array([[0.1, 0.05, 0.9]])
    cost = fused_cost(iou, distance, **GATES)
    assert cost[0, 0] == pytest.approx(0.15)
    # No overlap but nearly identical appearance: allowed (re-identification after occlusion).
    assert cost[0, 1] == pytest.approx(0.525)
    # Overlaps but looks like someone else: gated out.
    assert cost[0, 2] == INFEASIBLE


def test_saving_assignment_keeps_the_close_pair_rather_than_two_poorer_ones():
    # Track 0 sits on detection 0 (cost 0.05); track 1, just back from hiding, could only take
    # detection 0. Matching as many pairs as possible trades the boxes (0.27 + 0.20 = 0.47).
    cost = np.array([[0.05, 0.27], [0.20, INFEASIBLE]])
    assert linear_assignment(cost, max_cost=1.0)[0].tolist() == [[0, 1], [1, 0]]
    matches, tracks, dets = saving_assignment(cost, cost_limit=0.4)
    assert matches.tolist() == [[0, 0]]
    assert tracks.tolist() == [1] and dets.tolist() == [1]
    # A limit above the difference (0.47 - 0.05 = 0.42) buys the second match again.
    assert saving_assignment(cost, cost_limit=0.5)[0].tolist() == [[0, 1], [1, 0]]


def test_saving_assignment_never_matches_a_pair_at_or_above_the_limit():
    cost = np.array([[0.3, 0.5], [0.45, 0.1]])
    matches, tracks, dets = saving_assignment(cost, cost_limit=0.45)
    assert sorted(map(tuple, matches.tolist())) == [(0, 0), (1, 1)]
    matches, tracks, dets = saving_assignment(np.array([[0.5, 0.6]]), cost_limit=0.45)
    assert matches.shape == (0, 2) and tracks.tolist() == [0] and dets.tolist() == [0, 1]


def test_saving_assignment_empty_sides():
    matches, tracks, dets = saving_assignment(np.zeros((2, 0)), cost_limit=0.5)
    assert matches.shape == (0, 2) and tracks.tolist() == [0, 1] and dets.tolist() == []


def test_within_tolerance_flattens_each_rows_near_best_distances():
    distance = np.array([[0.06, 0.11, 0.50], [0.02, 0.04, 0.30]])
    assert within_tolerance(distance, 0.1).tolist() == [[0.06, 0.06, 0.50], [0.02, 0.02, 0.30]]
    assert within_tolerance(distance, 0.0).tolist() == distance.tolist()  # off
    assert within_tolerance(np.zeros((0, 3)), 0.1).shape == (0, 3)
    rows = np.array([False, True])
    assert within_tolerance(distance, 0.1, rows).tolist() == [[0.06, 0.11, 0.50], [0.02, 0.02, 0.30]]


def test_look_alike_tracks_are_those_near_another_track():
    def unit(degrees):
        return np.array([np.cos(np.radians(degrees)), np.sin(np.radians(degrees))])

    features = np.stack([unit(0), unit(15), unit(90)])  # 0 and 15 degrees: distance 0.034
    assert look_alike_tracks(features, 0.1).tolist() == [True, True, False]
    assert look_alike_tracks(features, 0.01).tolist() == [False, False, False]
    assert look_alike_tracks(features, 0.0).tolist() == [False, False, False]  # off
    assert look_alike_tracks(features[:1], 0.1).tolist() == [False]


def test_fused_cost_gates_on_the_distance_itself_not_the_tolerant_one():
    iou = np.array([[0.8, 0.0]])
    distance = np.array([[0.05, 0.18]])  # the far box looks almost as close: within the tolerance
    cost = fused_cost(
        iou,
        distance,
        min_iou=0.3,
        max_appearance_distance=0.6,
        reid_appearance_distance=0.15,
        appearance_weight=0.7,
        appearance_tolerance=0.2,
    )
    assert cost[0, 0] == pytest.approx(0.7 * 0.05 + 0.3 * 0.2)
    assert cost[0, 1] == INFEASIBLE  # 0.18 is above the re-id distance: no overlap, no match


def test_reachable_pairs_grow_with_the_frames_lost_in_box_heights():
    last = np.array([[0.0, 0.0, 10.0, 20.0]])  # centre (5, 10), 20 px tall
    dets = np.array([[30.0, 0.0, 40.0, 20.0], [70.0, 0.0, 80.0, 20.0]])  # centres 30 and 70 px away
    # (1 + 0.25 * 1) * 20 = 25 px: neither; (1 + 0.25 * 10) * 20 = 70 px: both (70 on the limit).
    assert reachable_pairs(last, np.array([1]), dets, 0.25).tolist() == [[False, False]]
    assert reachable_pairs(last, np.array([10]), dets, 0.25).tolist() == [[True, True]]
    assert reachable_pairs(last, np.array([5]), dets, 0.25).tolist() == [[True, False]]
    assert reachable_pairs(last, np.array([1]), dets, 0.0) is None  # 0: no limit


def test_fused_cost_reidentifies_only_where_the_track_could_have_walked():
    iou = np.array([[0.0, 0.0, 0.8]])
    distance = np.array([[0.05, 0.05, 0.05]])
    reachable = np.array([[True, False, False]])
    cost = fused_cost(iou, distance, **GATES, reachable=reachable)
    assert cost[0, 0] < INFEASIBLE
    assert cost[0, 1] == INFEASIBLE  # looks the same, but out of reach: no re-identification
    assert cost[0, 2] < INFEASIBLE  # overlap matches as before: the limit is on re-identification only
