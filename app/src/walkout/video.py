"""Reading videos frame by frame, failing loudly on missing, unreadable or truncated files."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np

from walkout.errors import VideoError
from walkout.groundtruth import VIDEO_FILENAME, read_seqinfo


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


def iterate_frames(path: str | os.PathLike) -> Iterator[tuple[int, np.ndarray]]:
    """Yield (frame number from 1, BGR uint8 image [H, W, 3]) for every frame of a video.

    Raises VideoError when the file cannot be opened, has no frames, or ends before the frame count
    its container (or seqinfo.ini) promises: a truncated video must not pass as a short one.
    """
    video_path = resolve_video(path)
    expected = expected_frame_count(video_path)
    capture = cv2.VideoCapture(str(video_path))
    if not capture.isOpened():
        capture.release()
        raise VideoError(
            f"cannot open video {video_path}: not a readable video file (corrupt or wrong format?)"
        )
    count = 0
    try:
        while True:
            ok, image = capture.read()
            if not ok or image is None:
                break
            count += 1
            yield count, image
    finally:
        capture.release()
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
