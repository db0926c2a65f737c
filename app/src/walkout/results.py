"""What one run over one video produced: events, receipts, trajectories, timings."""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path


@dataclass
class VideoResult:
    """The outcome of running the system (models or oracle) over one video.

    events: engine events as dicts (events.json keys plus confidence / review).
    receipts: {"<shopper_id>": {sku: qty}} for every shopper the engine saw leave.
    review: {"<shopper_id>": [reasons]} for those receipts (empty list: no review needed).
    trajectories: {shopper id: {frame: [x1, y1, x2, y2]}} of the engine's shoppers.
    frames: frames processed; seconds: wall-clock seconds of the whole run over the video;
    stage_seconds: seconds per stage (decode, detection, pose, tracking, engine).
    """

    video: str
    events: list[dict]
    receipts: dict[str, dict[str, int]]
    review: dict[str, list[str]]
    trajectories: dict[int, dict[int, list[float]]]
    frames: int
    seconds: float
    stage_seconds: dict[str, float] = field(default_factory=dict)

    def output_json(self) -> dict:
        """The `walkout run --out` document: receipts, events and review reasons."""
        return {
            "video": self.video,
            "receipts": self.receipts,
            "review": self.review,
            "events": self.events,
            "frames": self.frames,
            "seconds": round(self.seconds, 3),
            "stage_seconds": {k: round(v, 3) for k, v in self.stage_seconds.items()},
        }

    def to_dict(self) -> dict:
        """Everything, JSON-ready (trajectory keys become strings)."""
        data = asdict(self)
        data["trajectories"] = {
            str(k): {str(f): b for f, b in frames.items()} for k, frames in self.trajectories.items()
        }
        return data


def write_json_atomic(path: str | os.PathLike, data: object) -> Path:
    """Write JSON to `path` through a temporary file in the same folder and a rename."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as stream:
            json.dump(data, stream, indent=2, allow_nan=False)
            stream.write("\n")
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return path
