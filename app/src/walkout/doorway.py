"""Is a body still in the exit doorway when the video ends? One look at the exit's image border.

The tracker loses a body leaving the image with about 10 px of it still in view, and how long the
rest lingers in the doorway (0 to 30 frames) cannot be told from the last box and speed (app README,
twelfth round). A receipt issued while its shopper is still in the doorway is a false charge by the
ground truth's count, and one withheld from a shopper who has gone is a missed one. The camera is
fixed and the doorway's floor is empty most of the time, so the per-pixel median of the border strip
over frames sampled through the video is its background; where the last frame's strip differs from
it, a body (or part of one) is still there.

Spans are positions along the exit's border in image pixels: rows (y) for a left or right exit,
columns (x) for a top or bottom one; (first, last), both inclusive.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np

from walkout.layout import StoreLayout
from walkout.video import check_decoded, expected_frame_count, open_capture, resolve_video

Span = tuple[int, int]


@dataclass(frozen=True)
class DoorwayConfig:
    """How the last frame's border strip is compared with its background.

    depth_px: the look is at the pixel this far in from the border (1: the border's own pixel). A
    body the simulator no longer counts (under 5% in view) still leaves a sliver 1-2 px wide there;
    looking 3 px in, a body counts only with at least 3 px of it in view.
    sample_every: every this many frames the strip is kept for the background (40 samples in a
    600-frame video).
    min_difference: the largest per-channel difference from the background at that pixel, in 0-255
    levels, that counts as a body (camera noise sigma is 3; a body against the floor differs by
    30-170).
    min_run_px: so many positions in a row must differ (JPEG ringing and noise give single pixels).
    """

    depth_px: int = 3
    sample_every: int = 15
    min_difference: float = 20.0
    min_run_px: int = 3

    def __post_init__(self) -> None:
        for name in ("depth_px", "sample_every", "min_run_px"):
            if getattr(self, name) < 1:
                raise ValueError(f"DoorwayConfig.{name} must be >= 1, got {getattr(self, name)}")
        if self.min_difference <= 0:
            raise ValueError(f"DoorwayConfig.min_difference must be > 0, got {self.min_difference}")


def border_strip(image: np.ndarray, side: str, strip_px: int) -> np.ndarray:
    """The `strip_px` pixels of `image` (BGR uint8 [H, W, 3]) along its `side` border, as float32
    [L, strip_px, 3]: L positions along the border (H rows for left/right, W columns for top/bottom),
    index 0 of the second axis the pixel farthest from the border."""
    if side == "left":
        strip = image[:, :strip_px][:, ::-1]
    elif side == "right":
        strip = image[:, -strip_px:]
    elif side == "top":
        strip = image[:strip_px][::-1].transpose(1, 0, 2)
    elif side == "bottom":
        strip = image[-strip_px:].transpose(1, 0, 2)
    else:
        raise ValueError(f"side must be left, right, top or bottom, got {side!r}")
    return strip.astype(np.float32)


def occupied_spans(last: np.ndarray, background: list[np.ndarray], config: DoorwayConfig) -> tuple[Span, ...]:
    """Runs of border positions where `last` differs from the median of `background`.

    last, background[i]: strips from `border_strip`, float [L, S, 3]. The background is scaled per
    channel to the last strip's median first: the camera's brightness drifts through a video, and a
    body covers a small part of the border, so the strip's median follows the light, not the body.
    """
    if not background:
        return ()
    reference = np.median(np.stack(background), axis=0)
    level = np.median(reference.reshape(-1, 3), axis=0)
    gain = np.median(last.reshape(-1, 3), axis=0) / np.maximum(level, 1.0)
    # the strip's pixel farthest from the border: a sliver narrower than the strip is not a body in view
    difference = np.abs(last[:, 0] - reference[:, 0] * gain).max(axis=1)  # [L]
    hot = np.concatenate([difference > config.min_difference, [False]])
    spans: list[Span] = []
    start = None
    for position, is_hot in enumerate(hot):
        if is_hot and start is None:
            start = position
        elif not is_hot and start is not None:
            if position - start >= config.min_run_px:
                spans.append((start, position - 1))
            start = None
    return tuple(spans)


class DoorwayWatcher:
    """Fed every frame (`add`), tells where the last frame shows something at the exit's border."""

    def __init__(self, side: str | None, config: DoorwayConfig | None = None) -> None:
        self.side = side
        self.config = config or DoorwayConfig()
        self._background: list[np.ndarray] = []
        self._last: np.ndarray | None = None

    def wants(self, frame_number: int) -> bool:
        """Whether frame `frame_number` (from 1) is a background sample."""
        return self.side is not None and frame_number % self.config.sample_every == 1

    def add(self, frame_number: int, image: np.ndarray, *, last: bool = True) -> None:
        """Look at frame `frame_number`'s border. last: it may be the video's last frame (replay
        passes False for sampled frames it knows are not)."""
        if self.side is None:
            return
        strip = None
        if self.wants(frame_number):
            strip = border_strip(image, self.side, self.config.depth_px)
            self._background.append(strip)
        if last:
            self._last = strip if strip is not None else border_strip(image, self.side, self.config.depth_px)

    def spans(self) -> tuple[Span, ...] | None:
        """Occupied spans along the border in the last frame added; None when there is no exit border
        to look at or no frame was added."""
        if self.side is None or self._last is None:
            return None
        return occupied_spans(self._last, self._background, self.config)


def watch_video(
    path: str | os.PathLike, layout: StoreLayout, config: DoorwayConfig | None = None
) -> tuple[Span, ...] | None:
    """`DoorwayWatcher.spans` of a whole video, decoding only the sampled frames and the last one.

    Gives what `walkout qc` gave while running the models on every frame (the same frames, the same
    decoder), so a replay reproduces QC's receipts. Raises VideoError when the video cannot be read.
    """
    watcher = DoorwayWatcher(layout.exit_side, config)
    if watcher.side is None:
        return None
    video_path = resolve_video(path)
    count = expected_frame_count(video_path)
    capture = open_capture(video_path)
    try:
        frame_number = 0
        while capture.grab():
            frame_number += 1
            # the frame count is known, but a container may hold more frames than it says
            may_be_last = count is None or frame_number >= count
            if watcher.wants(frame_number) or may_be_last:
                ok, image = capture.retrieve()
                if not ok:
                    break
                watcher.add(frame_number, image, last=may_be_last)
    finally:
        capture.release()
    check_decoded(video_path, frame_number, count)
    return watcher.spans()
