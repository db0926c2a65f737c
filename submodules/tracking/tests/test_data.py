import numpy as np
import pytest

from walkout_tracking.data import (
    crop_patches,
    extract_crops,
    find_sequences,
    iter_frames,
    jitter_boxes,
    read_ground_truth,
    synthesize_detections,
)
from walkout_tracking.errors import DataError


def test_simulator_export_is_read_as_mot_sequences(sim_train):
    sequences = find_sequences(sim_train)
    assert [s.name for s in sequences] == ["train_0000", "train_0001"]
    sequence = sequences[0]
    assert sequence.num_frames == 40 and sequence.width == 320 and sequence.height == 240
    gt = read_ground_truth(sequence)
    assert gt.num_frames == 40 and len(np.unique(gt.ids)) >= 1
    frames = list(iter_frames(sequence))
    assert len(frames) == 40 and frames[0].shape == (240, 320, 3)
    # A single sequence folder works as a dataset root too.
    assert [s.name for s in find_sequences(sequence.directory)] == ["train_0000"]


def test_missing_or_empty_dataset_is_a_clear_error(tmp_path):
    with pytest.raises(DataError, match="does not exist"):
        find_sequences(tmp_path / "nope")
    with pytest.raises(DataError, match="no sequences under"):
        find_sequences(tmp_path)


def test_synthesized_detections_are_deterministic_noisy_ground_truth(sim_train):
    gt = read_ground_truth(find_sequences(sim_train)[0])
    a = synthesize_detections(gt, seed=3)
    b = synthesize_detections(gt, seed=3)
    np.testing.assert_array_equal(a.boxes, b.boxes)
    assert 0.85 * len(gt) < len(a) < len(gt)
    assert np.all(a.boxes[:, 2:] > 0) and np.all((a.confidences > 0) & (a.confidences <= 1))
    assert np.all(a.ids == -1)


def test_crop_patches_clips_and_resizes():
    frame = np.zeros((20, 30, 3), np.uint8)
    frame[5:15, 10:20] = 200
    patches = crop_patches(
        frame, np.array([[10, 5, 20, 15], [-10, -10, -5, -5], [25, 15, 40, 30]]), height=8, width=4
    )
    assert patches.shape == (3, 8, 4, 3)
    assert patches[0].min() == 200 and patches[1].max() == 0


def test_jitter_boxes_moves_and_rescales_within_the_amount():
    boxes = np.array([[10.0, 20.0, 30.0, 60.0]] * 2000)
    jittered = jitter_boxes(boxes, 0.2, np.random.default_rng(0))
    size = jittered[:, 2:] - jittered[:, :2]
    shift = (jittered[:, :2] + jittered[:, 2:]) / 2 - np.array([20.0, 40.0])
    assert np.all(np.abs(shift) <= 0.2 * np.array([20.0, 40.0]) + 1e-9)
    ratio = size / np.array([20.0, 40.0])
    assert np.all((ratio >= np.exp(-0.2) - 1e-9) & (ratio <= np.exp(0.2) + 1e-9))
    # Spread over the whole range, and width and height scaled independently.
    assert ratio[:, 0].min() < 0.85 and ratio[:, 0].max() > 1.18
    assert abs(np.corrcoef(ratio[:, 0], ratio[:, 1])[0, 1]) < 0.1
    assert np.array_equal(jitter_boxes(boxes, 0.0, np.random.default_rng(0)), boxes)


def test_extract_crops_with_box_jitter_cuts_other_pixels_from_the_same_identities(sim_train):
    sequences = find_sequences(sim_train)
    args = {"height": 32, "width": 32, "max_per_identity": 5, "min_box_height": 5, "seed": 0}
    exact = extract_crops(sequences, **args)
    jittered = extract_crops(sequences, **args, box_jitter=0.2)
    assert np.array_equal(exact.labels, jittered.labels) and np.array_equal(exact.frames, jittered.frames)
    changed = np.abs(exact.images.astype(int) - jittered.images.astype(int)).mean(axis=(1, 2, 3)) > 1
    assert changed.mean() > 0.8


def test_extract_crops_labels_identities_per_sequence(sim_train):
    sequences = find_sequences(sim_train)
    crops = extract_crops(sequences, height=32, width=32, max_per_identity=5, min_box_height=5, seed=0)
    assert crops.images.shape[1:] == (32, 32, 3)
    assert set(crops.groups.tolist()) == {0, 1}
    # Labels of different sequences never collide.
    first = set(crops.labels[crops.groups == 0].tolist())
    second = set(crops.labels[crops.groups == 1].tolist())
    assert first.isdisjoint(second)
    assert np.bincount(crops.labels).max() <= 5
