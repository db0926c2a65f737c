"""Reading videos frame by frame, failing loudly on missing, unreadable or truncated files."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np

from walkout.errors import VideoError
from walkout.groundtruth import VIDEO_FILENAME, read_seqinfo
from walkout.layout import StoreLayout


def resolve_video(path: str | os.PathLike) -> Path:
    """The video file for `path`: the file itself, or video.avi inside a simulator video folder."""
    path = Path(path)
    if path.is_dir():
        path = path / VIDEO_FILENAME
    if not path.is_file():
        raise VideoError(f"video {path} does not exist (pass a video file or a simulator video folder)")
    return path


def expected_frame_count(video_path: Path) -> int | None:
    """Frames the video should have: seqinfo.ini's seqLength beside it, else the container's count."""
    _, length = read_seqinfo(video_path.parent)
    if length is not None:
        return length
    capture = cv2.VideoCapture(str(video_path))
    try:
        count = int(capture.get(cv2.CAP_PROP_FRAME_COUNT)) if capture.isOpened() else 0
    finally:
        capture.release()
    return count if count > 0 else None


# Frame rates are stored as rationals in containers (AVI: a microsecond frame period): allow rounding.
FPS_TOLERANCE = 0.01


def check_video_format(capture: cv2.VideoCapture, video_path: Path, layout: StoreLayout) -> None:
    """Refuse a video whose frame size or frame rate differs from its layout's.

    The layout's slot rectangles and exit border are pixels of a `layout.width` x `layout.height`
    image at `layout.fps`: on a video of another size every slot and hand would be misplaced, and at
    another rate every time window (visits, exits, the event tolerance) would be wrong, silently.
    Raises VideoError naming the video, what was found and what the layout expects.
    """
    width = int(capture.get(cv2.CAP_PROP_FRAME_WIDTH))
    height = int(capture.get(cv2.CAP_PROP_FRAME_HEIGHT))
    fps = float(capture.get(cv2.CAP_PROP_FPS))
    size_ok = (width, height) == (layout.width, layout.height)
    fps_ok = abs(fps - layout.fps) <= FPS_TOLERANCE * max(layout.fps, 1.0)
    if not (size_ok and fps_ok):
        raise VideoError(
            f"video {video_path} is {width}x{height} @ {fps:g} fps, but its layout expects "
            f"{layout.width}x{layout.height} @ {layout.fps:g} fps (the store layout's floor size and the "
            "camera's frame rate): re-export the video, or pass the layout it was recorded with"
        )


def iterate_frames(
    path: str | os.PathLike,
    *,
    layout: StoreLayout | None = None,
    expected_frames: int | None = None,
) -> Iterator[tuple[int, np.ndarray]]:
    """Yield (frame number from 1, BGR uint8 image [H, W, 3]) for every frame of a video.

    layout: when given, the video's frame size and fps must equal the layout's (`check_video_format`).
    expected_frames: the frame count the video must reach; None: seqinfo.ini's seqLength beside the
    video, else the container's count.
    Raises VideoError when the file cannot be opened, has no frames, has the wrong size or fps, or ends
    before the expected frame count: a truncated video must not pass as a short one.
    """
    video_path = resolve_video(path)
    expected = expected_frames if expected_frames is not None else expected_frame_count(video_path)
    capture = open_capture(video_path)
    count = 0
    try:
        if layout is not None:
            check_video_format(capture, video_path, layout)
        while True:
            ok, image = capture.read()
            if not ok or image is None:
                break
            count += 1
            yield count, image
    finally:
        capture.release()
    check_decoded(video_path, count, expected)


def open_capture(video_path: Path) -> cv2.VideoCapture:
    """An opened capture of `video_path` (VideoError when it cannot be opened)."""
    capture = cv2.VideoCapture(str(video_path))
    if not capture.isOpened():
        capture.release()
        raise VideoError(
            f"cannot open video {video_path}: not a readable video file (corrupt or wrong format?)"
        )
    return capture


def check_decoded(video_path: Path, count: int, expected: int | None) -> None:
    """VideoError when `count` frames decoded are none, or fewer than `expected` (a truncated video
    must not pass as a short one)."""
    if count == 0:
        raise VideoError(f"video {video_path} has no readable frames (corrupt or empty file)")
    if expected is not None and count < expected:
        raise VideoError(
            f"video {video_path} is truncated: decoded {count} frames, expected {expected} "
            "(re-export or re-copy the file)"
        )


def read_frames(path: str | os.PathLike, wanted: set[int]) -> dict[int, np.ndarray]:
    """The frames numbered in `wanted` (1-based) as BGR images; frames past the end are left out."""
    frames = {}
    capture = cv2.VideoCapture(str(resolve_video(path)))
    try:
        number = 0
        last = max(wanted) if wanted else 0
        while number < last:
            ok, image = capture.read()
            if not ok:
                break
            number += 1
            if number in wanted:
                frames[number] = image
    finally:
        capture.release()
    return frames
