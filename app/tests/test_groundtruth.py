"""Reading simulator video folders: layout, frames, receipts (with the simulator's missing ones rebuilt)."""

from __future__ import annotations

import json
import shutil

import pytest

from walkout.errors import GroundTruthError, LayoutError
from walkout.groundtruth import cart_from_events, find_videos, load_video_ground_truth
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
