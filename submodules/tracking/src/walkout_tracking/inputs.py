"""The gate's prediction inputs: what a tracker may see of a dataset, and nothing it is scored on.

`gate-inputs` (trusted code) writes them from a dataset; `gate-predict` (the pull request's code, no
ground truth) reads only them. Layout of an inputs folder:

    inputs.json                      # the index below
    <sequence>/det.txt               # detections, MOTChallenge det format: frame,-1,x,y,w,h,score
    <sequence>/video.avi             # the frames, when the sequence has a video
    <sequence>/img1/<name>.png|jpg   # or the frame images (sorted by name = frame order)

`inputs.json`:

    {"format": "walkout-tracking-inputs", "version": 1,
     "sequences": [{"name": "train_0000", "num_frames": 40, "width": 320, "height": 240,
                    "detections": "train_0000/det.txt", "video": "train_0000/video.avi",
                    "images": null}]}

Paths are relative to the inputs folder; width/height may be null (no seqinfo.ini). Detections are
the sequence's det/det.txt, or (a simulator export has no detector output) ground-truth boxes with
noise, without ids and in position order (`predict.detection_table`). Never written: gt.txt, track
ids, annotations.json, events, receipts, or the dataset's other files.
"""

from __future__ import annotations

import re
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from walkout_ci.store import atomic_write_json, atomic_write_text, read_json
from walkout_tracking.data import Sequence, find_sequences
from walkout_tracking.errors import DataError
from walkout_tracking.motchallenge import MotTable

INPUTS_FORMAT = "walkout-tracking-inputs"
INPUTS_VERSION = 1
INDEX_NAME = "inputs.json"
_NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
_ENTRY_KEYS = {"name", "num_frames", "width", "height", "detections", "video", "images"}
_IMAGE_SUFFIXES = (".jpg", ".png")


@dataclass(frozen=True)
class InputSequence:
    """One sequence of an inputs folder; paths are absolute (inside the folder) or None."""

    name: str
    num_frames: int
    width: int | None
    height: int | None
    detections: Path
    video: Path | None
    images: Path | None

    def as_sequence(self) -> Sequence:
        """The `data.Sequence` the tracking loop reads (no ground truth: gt_path is None)."""
        return Sequence(
            name=self.name,
            directory=self.detections.parent,
            gt_path=None,
            det_path=self.detections,
            video_path=self.video,
            image_dir=self.images,
            num_frames=self.num_frames,
            width=self.width,
            height=self.height,
        )


def scored_sequences(data_dir: str | Path) -> list[Sequence]:
    """The sequences of a dataset that have ground truth (the ones evaluated), sorted by name.

    Raises DataError when there are none or two share a name.
    """
    sequences = [s for s in find_sequences(data_dir) if s.gt_path is not None]
    if not sequences:
        raise DataError(f"{data_dir}: no sequence has gt/gt.txt, nothing to evaluate against")
    seen: dict[str, Path] = {}
    for sequence in sequences:
        if sequence.name in seen:
            raise DataError(
                f"{data_dir}: sequences {seen[sequence.name]} and {sequence.directory} are both named "
                f"{sequence.name!r} (seqinfo.ini name); sequence names must be unique"
            )
        seen[sequence.name] = sequence.directory
    return sequences


def format_detections(table: MotTable) -> str:
    """det.txt text, one `frame,-1,x,y,w,h,score` line per row in table order; floats are written with
    repr so they read back bit for bit (evaluate and the gate stages track the same numbers)."""
    lines = [
        f"{frame},-1,{x!r},{y!r},{w!r},{h!r},{score!r}"
        for frame, (x, y, w, h), score in zip(
            table.frames.tolist(), table.boxes.tolist(), table.confidences.tolist(), strict=True
        )
    ]
    return "\n".join(lines) + ("\n" if lines else "")


def _frame_images(directory: Path) -> list[Path]:
    """The frame images `data.iter_frames` reads, in its order (jpg then png, each sorted)."""
    return [path for suffix in _IMAGE_SUFFIXES for path in sorted(directory.glob(f"*{suffix}"))]


def _prepare_out(out_dir: Path) -> None:
    if out_dir.exists():
        if not out_dir.is_dir():
            raise DataError(f"--out {out_dir} exists and is not a folder")
        if any(out_dir.iterdir()):
            raise DataError(f"--out {out_dir} is not empty: give an empty or new folder for the inputs")
    out_dir.mkdir(parents=True, exist_ok=True)


def write_inputs(data_dir: str | Path, out_dir: str | Path) -> Path:
    """Write the prediction inputs of every scored sequence of `data_dir` into `out_dir` (empty or
    new); returns the folder. inputs.json is written last, so a folder with one is complete."""
    # Imported here: predict imports the tracker, and this module is also read by lighter tools.
    from walkout_tracking.predict import detection_table, sequence_length

    data_dir, out_dir = Path(data_dir), Path(out_dir)
    sequences = scored_sequences(data_dir)
    _prepare_out(out_dir)
    entries = []
    for sequence in sequences:
        if not _NAME_PATTERN.match(sequence.name):
            raise DataError(
                f"{sequence.directory}: sequence name {sequence.name!r} is not a plain folder name "
                "(letters, digits, '.', '_', '-')"
            )
        folder = out_dir / sequence.name
        folder.mkdir()
        num_frames = sequence_length(sequence)
        atomic_write_text(folder / "det.txt", format_detections(detection_table(sequence)))
        entry: dict[str, Any] = {
            "name": sequence.name,
            "num_frames": num_frames,
            "width": sequence.width,
            "height": sequence.height,
            "detections": f"{sequence.name}/det.txt",
            "video": None,
            "images": None,
        }
        if sequence.video_path is not None:
            shutil.copyfile(sequence.video_path, folder / "video.avi")
            entry["video"] = f"{sequence.name}/video.avi"
        elif sequence.image_dir is not None:
            (folder / "img1").mkdir()
            for image in _frame_images(sequence.image_dir):
                shutil.copyfile(image, folder / "img1" / image.name)
            entry["images"] = f"{sequence.name}/img1"
        entries.append(entry)
    atomic_write_json(
        out_dir / INDEX_NAME, {"format": INPUTS_FORMAT, "version": INPUTS_VERSION, "sequences": entries}
    )
    return out_dir


def _inside(root: Path, relative: Any, where: str, *, folder: bool) -> Path:
    """Resolve a relative path of the index, refusing anything outside the inputs folder."""
    if not isinstance(relative, str) or not relative:
        raise DataError(f"{where}: expected a relative path string, got {relative!r}")
    path = (root / relative).resolve()
    if root.resolve() not in path.parents:
        raise DataError(f"{where}: {relative!r} points outside the inputs folder")
    if folder and not path.is_dir():
        raise DataError(f"{where}: folder {relative!r} does not exist in the inputs folder")
    if not folder and not path.is_file():
        raise DataError(f"{where}: file {relative!r} does not exist in the inputs folder")
    return path


def _size(entry: dict, key: str, where: str) -> int | None:
    value = entry[key]
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise DataError(f"{where}.{key}: expected a positive integer or null, got {value!r}")
    return value


def read_inputs(inputs_dir: str | Path) -> list[InputSequence]:
    """Read and check `<inputs_dir>/inputs.json` (format above). Raises DataError naming the file,
    the sequence entry and the field for anything that does not follow the format."""
    root = Path(inputs_dir)
    index = root / INDEX_NAME
    if not index.is_file():
        raise DataError(f"{index} does not exist: --inputs must be a folder written by gate-inputs")
    try:
        data = read_json(index)
    except (OSError, ValueError) as error:
        raise DataError(f"{index} is not valid JSON: {error}") from error
    if not isinstance(data, dict) or set(data) != {"format", "version", "sequences"}:
        raise DataError(f"{index}: expected an object with keys format, version, sequences")
    if data["format"] != INPUTS_FORMAT or data["version"] != INPUTS_VERSION:
        raise DataError(
            f"{index}: format {data['format']!r} version {data['version']!r}; this code reads "
            f"{INPUTS_FORMAT!r} version {INPUTS_VERSION}"
        )
    if not isinstance(data["sequences"], list) or not data["sequences"]:
        raise DataError(f"{index}: sequences must be a non-empty list")
    out: list[InputSequence] = []
    names: set[str] = set()
    for position, entry in enumerate(data["sequences"]):
        where = f"{index}: sequences[{position}]"
        if not isinstance(entry, dict) or set(entry) != _ENTRY_KEYS:
            raise DataError(f"{where}: expected an object with keys {sorted(_ENTRY_KEYS)}")
        name = entry["name"]
        if not isinstance(name, str) or not _NAME_PATTERN.match(name) or name in names:
            raise DataError(f"{where}.name: {name!r} is not a unique plain sequence name")
        names.add(name)
        num_frames = _size(entry, "num_frames", where)
        if num_frames is None:
            raise DataError(f"{where}.num_frames: must be a positive integer, got null")
        video = entry["video"] and _inside(root, entry["video"], f"{where}.video", folder=False)
        images = entry["images"] and _inside(root, entry["images"], f"{where}.images", folder=True)
        out.append(
            InputSequence(
                name=name,
                num_frames=num_frames,
                width=_size(entry, "width", where),
                height=_size(entry, "height", where),
                detections=_inside(root, entry["detections"], f"{where}.detections", folder=False),
                video=video or None,
                images=images or None,
            )
        )
    return out
