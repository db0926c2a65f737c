"""The gate's prediction inputs: what the (untrusted) predictor may see of a QC split, and its index.

`prepare_inputs` (trusted code) copies from a simulator export only what the system needs to run:

```
<inputs>/
  inputs.json                     # the index below (written last: a complete index = complete inputs)
  layout.yaml                     # the split's base store layout, when the export has one
  videos/<video>/video.avi        # the camera video
  videos/<video>/layout.yaml      # the planogram this video was recorded with
```

and never events.json, receipts.json, gt/, annotations.json or seqinfo.ini (nothing that is scored).

`inputs.json`: ``{"format": "walkout-app-inputs", "version": 1, "layout": "layout.yaml" | null,
"videos": [{"name": str, "video": "videos/<name>/video.avi", "layout": "videos/<name>/layout.yaml",
"fps": float > 0, "frames": int >= 1 | null}]}`` with paths relative to the inputs folder; `fps` and
`frames` come from the video's seqinfo.ini (frames: null when unknown).
"""

from __future__ import annotations

import json
import math
import os
import shutil
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from walkout.errors import WalkoutError
from walkout.groundtruth import VIDEO_FILENAME, find_videos, read_seqinfo
from walkout.video import expected_frame_count
from walkout_ci.store import atomic_write_json

INPUTS_FORMAT = "walkout-app-inputs"
INPUTS_VERSION = 1
INDEX_NAME = "inputs.json"
LAYOUT_NAME = "layout.yaml"


class InputsError(WalkoutError):
    """A prediction inputs folder (or the split it is prepared from) is missing, stale or malformed."""


@dataclass(frozen=True)
class VideoInput:
    """One video to predict: absolute paths of its video and layout, its fps and frame count."""

    name: str
    video: Path
    layout: Path
    fps: float
    frames: int | None


def _copy(source: Path, target: Path, *, link: bool) -> None:
    """Copy (or, with `link`, hard-link when the filesystem allows) a file through a temp name."""
    target.parent.mkdir(parents=True, exist_ok=True)
    temporary = target.with_name(f".{target.name}.tmp")
    temporary.unlink(missing_ok=True)
    try:
        if link:
            try:
                os.link(source, temporary)
            except OSError:  # another filesystem, or links not allowed: copy
                shutil.copyfile(source, temporary)
        else:
            shutil.copyfile(source, temporary)
        os.replace(temporary, target)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise


def _root_layout(data: Path) -> Path | None:
    """The split's base layout.yaml: beside videos/ when `data` is the split root or its videos/ folder."""
    split_root = data.parent if data.name == "videos" else data
    candidate = split_root / LAYOUT_NAME
    return candidate if (split_root / "videos").is_dir() and candidate.is_file() else None


def prepare_inputs(data: str | os.PathLike, out: str | os.PathLike, *, link: bool = False) -> Path:
    """Write the prediction inputs of the split `data` into `out` (absent or empty); return inputs.json.

    link: hard-link the videos instead of copying them (for `walkout qc`'s private temp folder; the
    gate copies so that the predictor never shares a file with the dataset).
    """
    data, out = Path(data), Path(out)
    video_dirs = find_videos(data)
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise InputsError(f"--out {out} must be an empty folder or not exist (it holds files already)")
    out.mkdir(parents=True, exist_ok=True)
    root_layout = _root_layout(data)
    if root_layout is not None:
        _copy(root_layout, out / LAYOUT_NAME, link=False)
    videos = []
    for video_dir in video_dirs:
        name = video_dir.name
        layout = video_dir / LAYOUT_NAME
        if not layout.is_file():
            raise InputsError(f"{video_dir}: {LAYOUT_NAME} is missing (every simulator video folder has it)")
        fps, length = read_seqinfo(video_dir)
        frames = length if length is not None else expected_frame_count(video_dir / VIDEO_FILENAME)
        relative = PurePosixPath("videos") / name
        _copy(video_dir / VIDEO_FILENAME, out / relative / VIDEO_FILENAME, link=link)
        _copy(layout, out / relative / LAYOUT_NAME, link=False)
        videos.append(
            {
                "name": name,
                "video": str(relative / VIDEO_FILENAME),
                "layout": str(relative / LAYOUT_NAME),
                "fps": float(fps),
                "frames": frames,
            }
        )
    index = {
        "format": INPUTS_FORMAT,
        "version": INPUTS_VERSION,
        "layout": LAYOUT_NAME if root_layout is not None else None,
        "videos": videos,
    }
    return atomic_write_json(out / INDEX_NAME, index)


def _inside(root: Path, relative: object, where: str) -> Path:
    """`root / relative` for a relative POSIX path that stays inside `root`; InputsError otherwise."""
    if not isinstance(relative, str) or not relative:
        raise InputsError(f"{where}: must be a relative path string, got {relative!r}")
    pure = PurePosixPath(relative)
    if pure.is_absolute() or ".." in pure.parts:
        raise InputsError(f"{where}: {relative!r} must be relative and stay inside the inputs folder")
    path = root / pure
    if not path.is_file():
        raise InputsError(f"{where}: {path} does not exist")
    return path


def read_inputs(inputs: str | os.PathLike) -> list[VideoInput]:
    """Read and check `<inputs>/inputs.json`; return its videos in order (InputsError names the field)."""
    root = Path(inputs)
    path = root / INDEX_NAME
    if not path.is_file():
        raise InputsError(f"{path} does not exist: pass a folder written by `walkout gate-inputs`")
    try:
        index = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise InputsError(f"{path} is not valid JSON: {error}") from error
    if not isinstance(index, dict):
        raise InputsError(f"{path}: expected a mapping with format, version, layout, videos")
    if index.get("format") != INPUTS_FORMAT or index.get("version") != INPUTS_VERSION:
        raise InputsError(
            f"{path}: format/version {index.get('format')!r}/{index.get('version')!r}, "
            f"expected {INPUTS_FORMAT!r}/{INPUTS_VERSION}"
        )
    unknown = sorted(set(index) - {"format", "version", "layout", "videos"})
    if unknown:
        raise InputsError(f"{path}: unknown key(s) {unknown} (allowed: format, version, layout, videos)")
    videos = index.get("videos")
    if not isinstance(videos, list) or not videos:
        raise InputsError(f"{path}: videos must be a non-empty list")
    result: list[VideoInput] = []
    names: set[str] = set()
    for position, entry in enumerate(videos):
        where = f"{path}: videos[{position}]"
        if not isinstance(entry, dict) or set(entry) != {"name", "video", "layout", "fps", "frames"}:
            raise InputsError(f"{where}: expected exactly the keys name, video, layout, fps, frames")
        name = entry["name"]
        if not isinstance(name, str) or not name or "/" in name or name in names:
            raise InputsError(f"{where}.name: must be a unique folder name, got {name!r}")
        names.add(name)
        fps = entry["fps"]
        if isinstance(fps, bool) or not isinstance(fps, int | float) or not math.isfinite(fps) or fps <= 0:
            raise InputsError(f"{where}.fps: must be a number > 0, got {fps!r}")
        frames = entry["frames"]
        if frames is not None and (isinstance(frames, bool) or not isinstance(frames, int) or frames < 1):
            raise InputsError(f"{where}.frames: must be an integer >= 1 or null, got {frames!r}")
        result.append(
            VideoInput(
                name=name,
                video=_inside(root, entry["video"], f"{where}.video"),
                layout=_inside(root, entry["layout"], f"{where}.layout"),
                fps=float(fps),
                frames=frames,
            )
        )
    return result
