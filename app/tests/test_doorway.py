"""The last frame's look at the exit border: what is there, on simulator video, and the same in replay."""

from __future__ import annotations

import dataclasses

import cv2
import numpy as np
import pytest

from walkout.doorway import DoorwayConfig, DoorwayWatcher, border_strip, occupied_spans, watch_video
from walkout.errors import VideoError
from walkout.groundtruth import load_video_ground_truth
from walkout.video import iterate_frames


def test_the_border_strip_runs_along_the_border_with_the_border_pixel_last():
    image = np.zeros((6, 8, 3), dtype=np.uint8)
    image[2, 7] = 255  # right border, row 2
    image[4, 0] = 200  # left border, row 4
    image[0, 5] = 150  # top border, column 5
    image[5, 1] = 100  # bottom border, column 1
    assert border_strip(image, "right", 2).shape == (6, 2, 3)
    assert border_strip(image, "right", 2)[2, -1, 0] == 255
    assert border_strip(image, "left", 2)[4, -1, 0] == 200
    assert border_strip(image, "top", 2).shape == (8, 2, 3)
    assert border_strip(image, "top", 2)[5, -1, 0] == 150
    assert border_strip(image, "bottom", 2)[1, -1, 0] == 100
    with pytest.raises(ValueError, match="side must be"):
        border_strip(image, "up", 2)


def _floor(rng, gain: float = 1.0) -> np.ndarray:
    """A 240-pixel border strip of the simulator's floor colour with camera noise (sigma 3)."""
    floor = np.array([178.0, 184.0, 188.0]) * gain
    return (floor + rng.normal(0.0, 3.0, size=(240, 3, 3))).astype(np.float32)


def test_a_sliver_of_a_body_is_found_under_a_brightness_drift_and_noise_is_not():
    rng = np.random.default_rng(0)
    background = [_floor(rng) for _ in range(40)]
    # two of the background samples caught a shopper walking out: the median ignores them
    for sample in background[:2]:
        sample[100:140] = (60.0, 80.0, 200.0)
    config = DoorwayConfig()
    last = _floor(rng, gain=1.1)  # the light drifted 10% brighter
    assert occupied_spans(last, background, config) == ()
    last[150:175] = (60.0, 80.0, 200.0)  # 3 px of a body at the border, 25 rows: in view
    last[60:90, 1:] = (60.0, 80.0, 200.0)  # a 2-px sliver: the simulator counts such a body gone
    last[30, :] = 0.0  # one dark row (too short a run to be a body)
    assert occupied_spans(last, background, config) == ((150, 174),)
    assert occupied_spans(last, [], config) == ()


def test_the_config_refuses_values_that_cannot_work():
    with pytest.raises(ValueError, match="sample_every"):
        DoorwayConfig(sample_every=0)
    with pytest.raises(ValueError, match="min_difference"):
        DoorwayConfig(min_difference=0.0)


@pytest.fixture
def walk_out(rendered_scenarios):
    """A rendered scenario's video folder whose shopper walks out through the right border."""
    video = rendered_scenarios["single_pick"] / "videos" / "single_pick"
    truth = load_video_ground_truth(video)
    assert truth.layout.exit_side == "right"
    return video, truth


def test_on_simulator_video_a_body_half_out_of_the_doorway_is_seen_and_a_gone_one_is_not(walk_out):
    video, truth = walk_out
    width = truth.layout.width
    # the frame where the shopper's ground-truth box shows only a few pixels at the exit border
    frame, box = next(
        (f.frame, s.box)
        for f in truth.frames
        for s in f.shoppers
        if s.box[2] >= width - 1 and s.box[0] >= width - 8
    )
    config = DoorwayConfig(sample_every=5)
    watcher = DoorwayWatcher("right", config)
    for number, image in iterate_frames(video):
        if number > frame:
            break
        watcher.add(number, image)
    spans = watcher.spans()
    assert spans and any(first <= box[3] and last >= box[1] for first, last in spans), (spans, box)
    # the whole video: the shopper walked out long before its end, the doorway is empty
    assert not any(s.box[2] >= width - 3 for s in truth.frames[-1].shoppers)
    assert watch_video(video, truth.layout, config) == ()


def test_the_replays_look_decodes_only_samples_and_gives_what_the_live_run_gave(walk_out, tmp_path):
    video, truth = walk_out
    config = DoorwayConfig(sample_every=7)
    frames = list(iterate_frames(video))
    cut = next(f.frame for f in truth.frames for s in f.shoppers if s.box[2] >= truth.layout.width - 1)
    live = DoorwayWatcher("right", config)
    for number, image in frames[:cut]:
        live.add(number, image)
    # the same video cut where the shopper is in the doorway, copied losslessly
    short = tmp_path / "cut"
    short.mkdir()
    writer = cv2.VideoWriter(str(short / "video.avi"), cv2.VideoWriter_fourcc(*"FFV1"), 10.0, (320, 240))
    for _, image in frames[:cut]:
        writer.write(image)
    writer.release()
    replayed = watch_video(short, truth.layout, config)
    assert replayed and replayed == live.spans()


def test_no_exit_border_means_no_look_and_a_truncated_video_is_an_error(walk_out, tmp_path):
    video, truth = walk_out
    assert DoorwayWatcher(None).spans() is None
    assert DoorwayWatcher("right").spans() is None  # no frame yet
    assert watch_video(video, dataclasses.replace(truth.layout, exit_side=None)) is None
    (tmp_path / "video.avi").write_bytes((video / "video.avi").read_bytes())
    (tmp_path / "seqinfo.ini").write_text("[Sequence]\nframeRate=10\nseqLength=100000\n")
    with pytest.raises(VideoError, match="truncated"):
        watch_video(tmp_path, truth.layout)
