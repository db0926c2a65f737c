"""The video reader refuses videos whose frame size or frame rate differ from the store layout's."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest

from walkout.cli import main
from walkout.errors import VideoError
from walkout.layout import load_layout
from walkout.video import iterate_frames


def _write_video(path: Path, *, width: int, height: int, fps: float, frames: int = 5) -> None:
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), fps, (width, height))
    assert writer.isOpened()
    for index in range(frames):
        writer.write(np.full((height, width, 3), 40 * index, dtype=np.uint8))
    writer.release()


@pytest.fixture
def video_dir(tmp_path, rendered_scenarios) -> Path:
    """A copy of a rendered scenario video folder (320x240 @ 10 fps, its layout beside it)."""
    target = tmp_path / "single_pick"
    shutil.copytree(rendered_scenarios["single_pick"] / "videos" / "single_pick", target)
    return target


@pytest.mark.parametrize(
    ("width", "height", "fps", "found"),
    [(640, 480, 10.0, "640x480 @ 10 fps"), (320, 240, 15.0, "320x240 @ 15 fps")],
)
def test_a_video_unlike_its_layout_is_refused(video_dir, width, height, fps, found):
    layout = load_layout(video_dir / "layout.yaml", fps=10.0)
    _write_video(video_dir / "video.avi", width=width, height=height, fps=fps)
    with pytest.raises(
        VideoError, match=rf"single_pick/video\.avi is {found}, but its layout expects 320x240 @ 10"
    ):
        list(iterate_frames(video_dir, layout=layout, expected_frames=5))


def test_a_video_like_its_layout_is_read(video_dir):
    layout = load_layout(video_dir / "layout.yaml", fps=10.0)
    _write_video(video_dir / "video.avi", width=320, height=240, fps=10.0)
    assert [number for number, _ in iterate_frames(video_dir, layout=layout, expected_frames=5)] == [
        1,
        2,
        3,
        4,
        5,
    ]


def test_qc_names_the_video_of_the_wrong_size(video_dir, tmp_path, capsys):
    _write_video(video_dir / "video.avi", width=640, height=480, fps=10.0)
    report_dir = tmp_path / "report"
    code = main(
        ["qc", "--oracle", "--videos", str(video_dir), "--report-dir", str(report_dir), "--jobs", "1"]
    )
    assert code == 2
    errors = json.loads((report_dir / "errors.json").read_text())["errors"]
    assert list(errors) == ["single_pick"]
    assert "640x480 @ 10 fps, but its layout expects 320x240 @ 10 fps" in errors["single_pick"]
    assert "single_pick" in capsys.readouterr().err
