"""Reading simulator video folders: layout, frames, receipts (with the simulator's missing ones rebuilt)."""

from __future__ import annotations

import json
import shutil

import pytest

from walkout.errors import GroundTruthError, LayoutError
from walkout.groundtruth import cart_from_events, find_videos, load_video_ground_truth, validate_events
from walkout.layout import load_layout


def test_video_folder_reads_into_engine_frames(rendered_scenarios):
    [video] = find_videos(rendered_scenarios["two_at_one_shelf"])
    truth = load_video_ground_truth(video)
    assert len(truth.frames) == truth.frame_count
    assert [f.frame for f in truth.frames] == list(range(1, truth.frame_count + 1))
    shopper = next(s for f in truth.frames for s in f.shoppers)
    assert shopper.keypoints.shape == (7, 3)
    assert set(shopper.keypoints[:, 2]) <= {0.0, 0.6, 1.0}
    assert set(truth.track_boxes) == {1, 2}
    assert truth.layout.exit_side == "right"
    assert len(truth.layout.slots) == 64
    assert truth.derived_receipts == ()


def test_receipt_missing_from_the_simulator_is_rebuilt_from_events(tmp_path, rendered_scenarios):
    source = rendered_scenarios["pick_then_put_back"] / "videos" / "pick_then_put_back"
    video = tmp_path / "pick_then_put_back"
    shutil.copytree(source, video)
    (video / "receipts.json").write_text("{}")
    truth = load_video_ground_truth(video)
    assert truth.derived_receipts == ("1",)
    assert truth.receipts == {"1": {}}  # picked, then put back


def test_cart_from_events():
    events = [
        {"type": "pick", "frame": 1, "shopper_id": 3, "sku": "cola"},
        {"type": "pick", "frame": 2, "shopper_id": 3, "sku": "tea"},
        {"type": "put_back", "frame": 3, "shopper_id": 3, "sku": "cola"},
        {"type": "pick", "frame": 4, "shopper_id": 4, "sku": "soap"},
    ]
    assert cart_from_events(events, 3) == {"tea": 1}


def test_broken_annotation_file_names_the_file(tmp_path, rendered_scenarios):
    source = rendered_scenarios["single_pick"] / "videos" / "single_pick"
    video = tmp_path / "single_pick"
    shutil.copytree(source, video)
    (video / "annotations.json").write_text("{not json")
    with pytest.raises(GroundTruthError, match=r"annotations\.json is not valid JSON"):
        load_video_ground_truth(video)


def test_layout_errors_name_the_field(tmp_path):
    path = tmp_path / "layout.yaml"
    path.write_text(
        json.dumps(
            {
                "slots": [{"id": "A1", "shelf": "A", "rect": [0, 0, -3, 5], "sku": "x"}],
                "entrance": {"rect": [0, 0, 5, 5]},
                "exit": {"rect": [10, 10, 5, 5]},
            }
        )
    )
    with pytest.raises(LayoutError, match=r"slots\[0\].rect: width and height must be > 0"):
        load_layout(path)
    with pytest.raises(LayoutError, match="does not exist"):
        load_layout(tmp_path / "missing.yaml")


SKUS = frozenset({"cola", "tea"})
GOOD_EVENT = {"type": "pick", "frame": 4, "shopper_id": 2, "sku": "cola", "shelf": "A", "slot": "A1"}


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ({"type": None}, r"events\[1\]\.type: unknown event type None"),
        ({"type": "steal"}, r"events\[1\]\.type: unknown event type 'steal'"),
        ({"frame": "4"}, r"events\[1\]\.frame: must be an integer"),
        ({"frame": 4.0}, r"events\[1\]\.frame: must be an integer"),
        ({"frame": 0}, r"events\[1\]\.frame: must be >= 1"),
        ({"shopper_id": True}, r"events\[1\]\.shopper_id: must be an integer"),
        ({"sku": "caviar"}, r"events\[1\]\.sku: unknown SKU 'caviar'"),
        ({"slot": None}, r"events\[1\]\.slot: must be a string"),
    ],
)
def test_malformed_event_names_file_record_and_field(change, expected):
    events = [GOOD_EVENT, {**GOOD_EVENT, "frame": 9, **change}]
    with pytest.raises(GroundTruthError, match=r"v/events\.json: " + expected):
        validate_events(events, source="v/events.json", known_skus=SKUS)


def test_event_without_type_and_duplicate_events_are_refused():
    missing = {k: v for k, v in GOOD_EVENT.items() if k != "type"}
    with pytest.raises(GroundTruthError, match=r"events\[0\]\.type: missing"):
        validate_events([missing], source="events.json", known_skus=SKUS)
    with pytest.raises(GroundTruthError, match=r"events\[1\]: duplicate of events\[0\]"):
        validate_events([GOOD_EVENT, dict(GOOD_EVENT)], source="events.json", known_skus=SKUS)
    assert validate_events([GOOD_EVENT], source="events.json", known_skus=SKUS) == [GOOD_EVENT]


def test_loading_a_video_checks_its_events_against_the_store(tmp_path, rendered_scenarios):
    source = rendered_scenarios["single_pick"] / "videos" / "single_pick"
    video = tmp_path / "single_pick"
    shutil.copytree(source, video)
    events = json.loads((video / "events.json").read_text())
    events[0]["sku"] = "caviar"
    (video / "events.json").write_text(json.dumps(events))
    with pytest.raises(GroundTruthError, match=r"single_pick/events\.json: events\[0\]\.sku: unknown SKU"):
        load_video_ground_truth(video)
