"""Recorded model outputs (`walkout.recording`): an exact round trip; malformed files refused by name."""

from __future__ import annotations

import io
import json

import numpy as np
import pytest

from walkout.observations import ShopperObservation
from walkout.recording import (
    ObservationRecorder,
    RecordingError,
    load_recording,
    products_from_detections,
    recording_path,
)

CLASSES = ("person", "apple", "soap")


def _shopper(track_id: int, x: float) -> ShopperObservation:
    keypoints = np.arange(21, dtype=np.float64).reshape(7, 3) / 7.0 + x
    return ShopperObservation(track_id=track_id, box=(x, 10.0, x + 20.0, 60.0), keypoints=keypoints)


def _recorded(tmp_path, frames: int = 4):
    recorder = ObservationRecorder(CLASSES)
    for frame in range(1, frames + 1):
        if frame == 2:  # a frame in which nothing was seen
            recorder.add(frame, [], np.zeros((0, 4)), np.zeros(0), [])
            continue
        labels = ["person", "apple", "soap"][: 1 + frame % 3]
        boxes = np.array([[frame, 1.0, frame + 5.5, 9.25]] * len(labels), dtype=np.float32)
        scores = np.linspace(0.9, 0.3, len(labels)).astype(np.float32)
        recorder.add(frame, labels, boxes, scores, [_shopper(7, float(frame)), _shopper(9, 50.0)])
    path = recorder.save(recording_path(tmp_path, "video_0001"), video="video_0001", fps=10.0, meta={"a": 1})
    return path


def test_a_recording_gives_back_exactly_what_was_recorded(tmp_path):
    recording = load_recording(_recorded(tmp_path))
    frames = list(recording.frames())
    assert [f.frame for f in frames] == [1, 2, 3, 4]
    assert recording.video == "video_0001" and recording.fps == 10.0 and recording.meta == {"a": 1}
    assert frames[1].labels == () and frames[1].shoppers == () and frames[1].products() == ()
    third = frames[2]
    assert third.labels == ("person",)
    assert third.products() == () and third.person_rows(0.5).shape == (1, 5)
    assert third.person_rows(0.95).shape == (0, 5)
    fourth = frames[3]
    assert fourth.labels == ("person", "apple")
    # float32 detector outputs survive exactly (stored as float64)
    assert fourth.boxes.tolist() == [[4.0, 1.0, 9.5, 9.25]] * 2
    assert fourth.products() == products_from_detections(
        ["person", "apple"], np.array([[4, 1, 9.5, 9.25]] * 2, dtype=np.float32), np.float32([0.9, 0.3])
    )
    assert [s.track_id for s in fourth.shoppers] == [7, 9]
    np.testing.assert_array_equal(fourth.shoppers[0].keypoints, _shopper(7, 4.0).keypoints)
    assert fourth.observation().frame == 4


def _rewrite(path, **changes):
    with np.load(path, allow_pickle=False) as data:
        arrays = {name: data[name] for name in data.files}
    arrays.update(changes)
    for name in [k for k, v in changes.items() if v is None]:
        del arrays[name]
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    path.write_bytes(buffer.getvalue())
    return path


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"shopper_box": None}, "missing field(s) shopper_box"),
        ({"version": np.array(2)}, "version 2, expected 'walkout-observations' version 1"),
        ({"det_score": np.array([np.nan, 0.5, 0.5, 0.5, 0.5])}, "field det_score holds NaN"),
        ({"det_frame": np.array([4, 1, 3, 4, 4])}, "det_frame must be sorted and within 1..4"),
        ({"shopper_frame": np.array([1, 1, 3, 3, 4, 9])}, "shopper_frame must be sorted and within 1..4"),
        ({"det_label": np.array([0, 0, 1, 0, 7])}, "det_label must index class_names (0..2)"),
        ({"det_score": np.array([0.5])}, "the det_* fields differ in length"),
        ({"shopper_keypoints": np.zeros((6, 5, 3))}, "shopper_keypoints must be [S, 7, 3]"),
        ({"meta": np.array("{not json")}, "field meta is not JSON"),
        ({"det_label": np.array(["a", "b", "c", "d", "e"])}, "field det_label has dtype <U1"),
    ],
)
def test_a_malformed_recording_is_refused_naming_the_field(tmp_path, changes, message):
    path = _rewrite(_recorded(tmp_path), **changes)
    with pytest.raises(RecordingError) as caught:
        load_recording(path)
    assert message in str(caught.value) and path.name in str(caught.value)


def test_a_missing_or_foreign_file_is_refused(tmp_path):
    with pytest.raises(RecordingError, match=r"no such recording .*--save-observations"):
        load_recording(tmp_path / "absent.npz")
    pickled = tmp_path / "pickled.npz"
    np.savez(pickled, format=np.array([{"x": 1}], dtype=object))
    with pytest.raises(RecordingError, match=r"not a readable \.npz recording"):
        load_recording(pickled)  # object arrays need pickles: never loaded
    (tmp_path / "text.npz").write_text(json.dumps({"format": "walkout-observations"}))
    with pytest.raises(RecordingError, match="not a readable"):
        load_recording(tmp_path / "text.npz")
    with pytest.raises(RecordingError, match="cannot name a recording file"):
        recording_path(tmp_path, "../escape")
