"""Writers of the export layout (ARCHITECTURE.md section 1): COCO, MOTChallenge, video, manifest.

Everything is written into a temporary folder beside the target and renamed at the end
(:func:`atomic_output_dir`), so an interrupted or failed run leaves nothing half-written.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import shutil
import socket
from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np

from walkout_sim.errors import OutputExistsError, SimError
from walkout_sim.layout import Layout
from walkout_sim.signals import raise_if_interrupted

FORMAT_VERSION = 1
KEYPOINT_NAMES = [
    "head",
    "left_shoulder",
    "right_shoulder",
    "left_elbow",
    "right_elbow",
    "left_wrist",
    "right_wrist",
]
# 1-based COCO skeleton: head to shoulders, shoulder line, upper arms, forearms.
SKELETON = [[1, 2], [1, 3], [2, 3], [2, 4], [3, 5], [4, 6], [5, 7]]


# Temp folders are named ".<out name>.tmp-<pid>" and hold this file ({"pid", "host", "start"}) while
# the run lives; a run killed with SIGKILL leaves both, and the next run in the same parent folder
# removes them (:func:`sweep_stale_temp_dirs`). The file never reaches the finished output.
PID_FILE = ".walkout-sim-run.json"
_TEMP_PATTERN = re.compile(r"^\..+\.tmp-\d+$")


def _process_start(pid: int) -> tuple[str, str] | None:
    """(state, start time in clock ticks since boot) of a process from /proc; None if unavailable."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # Fields after the parenthesised command name: state is field 3, starttime field 22 (proc(5)).
    fields = text[text.rindex(")") + 2 :].split()
    return (fields[0], fields[19]) if len(fields) > 19 else None


def _run_record() -> dict:
    """The pid file content of this process: pid, host name and (on Linux) its start time."""
    started = _process_start(os.getpid())
    return {"pid": os.getpid(), "host": socket.gethostname(), "start": started[1] if started else None}


def _owner_is_gone(record: object) -> bool:
    """True only when the run that wrote ``record`` is certainly dead (never for a foreign host)."""
    if not isinstance(record, dict) or not isinstance(record.get("pid"), int) or record["pid"] <= 0:
        return False  # not a file we wrote: leave the folder alone
    if record.get("host") != socket.gethostname():
        return False  # another machine sharing this folder: its pids mean nothing here
    pid = record["pid"]
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        pass  # alive, owned by someone else
    started = _process_start(pid)
    if started is None:
        return False  # no /proc (not Linux), or it exited a moment ago: the next run sweeps it
    state, start = started
    # A zombie is a finished run its parent has not reaped yet; another start time means the pid was
    # reused by an unrelated process after the run died.
    return state == "Z" or (record.get("start") is not None and record["start"] != start)


def sweep_stale_temp_dirs(parent: Path) -> list[Path]:
    """Remove the temp folders in ``parent`` left by walkout-sim runs that died (e.g. SIGKILL).

    Only folders named like ours (".<name>.tmp-<pid>") that hold our pid file naming a dead process
    of this host are removed; anything else, including live runs, is kept. Returns the removed paths.
    """
    removed = []
    try:
        candidates = sorted(parent.iterdir())
    except OSError:
        return removed
    for folder in candidates:
        if not _TEMP_PATTERN.match(folder.name) or not folder.is_dir() or folder.is_symlink():
            continue
        try:
            record = json.loads((folder / PID_FILE).read_text())
        except (OSError, ValueError):
            continue  # no (complete) pid file: a live run that is just starting, or not ours
        if _owner_is_gone(record):
            shutil.rmtree(folder, ignore_errors=True)
            removed.append(folder)
    return removed


@contextlib.contextmanager
def atomic_output_dir(out_dir: Path, force: bool) -> Iterator[Path]:
    """Yield a fresh temp folder beside ``out_dir``; it becomes ``out_dir`` on success, is removed on failure.

    Raises OutputExistsError if ``out_dir`` exists and ``force`` is False (checked before any work).
    First sweeps the stale temp folders of dead runs in the same parent folder. The temp folder holds
    :data:`PID_FILE` while the run lives (removed before the rename). An interrupt received while the
    run went on (see :mod:`walkout_sim.signals`) is raised before the rename, so a stopped run never
    commits its output.
    """
    out_dir = Path(out_dir)
    if out_dir.exists() and not force:
        raise OutputExistsError(f"{out_dir} already exists; pass --force (force=True) to replace it")
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    sweep_stale_temp_dirs(out_dir.parent)
    temp = out_dir.parent / f".{out_dir.name}.tmp-{os.getpid()}"
    if temp.exists():
        shutil.rmtree(temp)
    try:
        temp.mkdir()
        pid_file = temp / PID_FILE
        pid_file.with_name(PID_FILE + ".part").write_text(json.dumps(_run_record()))
        pid_file.with_name(PID_FILE + ".part").rename(pid_file)
        yield temp
        raise_if_interrupted()
        pid_file.unlink()
    except BaseException:
        shutil.rmtree(temp, ignore_errors=True)
        raise
    if out_dir.exists():
        trash = out_dir.parent / f".{out_dir.name}.old-{os.getpid()}"
        out_dir.rename(trash)
        temp.rename(out_dir)
        shutil.rmtree(trash, ignore_errors=True)
    else:
        temp.rename(out_dir)


def write_json(path: Path, data: object) -> None:
    """Compact, deterministic JSON (key order as built; no timestamps anywhere)."""
    path.write_text(json.dumps(data, separators=(",", ":")) + "\n")


def sha256_file(path: Path) -> str:
    """Hex sha256 of a file's bytes."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def frame_hash(image: np.ndarray) -> str:
    """Hex sha256 of a rendered frame's pixels (uint8 [H, W, 3], C order)."""
    return hashlib.sha256(np.ascontiguousarray(image).tobytes()).hexdigest()


def categories(layout: Layout, with_keypoints: bool) -> list[dict]:
    """COCO categories: person (id 1, optionally with keypoints + skeleton) then one per SKU (ids 2..)."""
    person = {"id": 1, "name": "person", "supercategory": "person"}
    if with_keypoints:
        person.update(keypoints=KEYPOINT_NAMES, skeleton=SKELETON)
    return [person] + [
        {"id": index + 2, "name": sku.id, "supercategory": "product"}
        for index, sku in enumerate(layout.catalog)
    ]


def annotation_records(truth: dict, image_id: int, next_id: int) -> tuple[list[dict], list[dict]]:
    """COCO annotations of one frame: (all objects, persons only with keypoints). Ids start at ``next_id``."""
    detection, keypoints = [], []
    for person in truth["persons"]:
        common = {
            "id": next_id,
            "image_id": image_id,
            "category_id": 1,
            "bbox": person["bbox"],
            "area": person["area"],
            "iscrowd": person["iscrowd"],
            "track_id": person["track_id"],
            "visibility": person["visibility"],
        }
        detection.append(common)
        keypoints.append(
            {**common, "keypoints": person["keypoints"], "num_keypoints": person["num_keypoints"]}
        )
        next_id += 1
    for product in truth["products"]:
        record = {
            "id": next_id,
            "image_id": image_id,
            "category_id": product["category_id"],
            "bbox": product["bbox"],
            "area": product["area"],
            "iscrowd": product["iscrowd"],
            "visibility": product["visibility"],
        }
        if "held_by" in product:
            record["held_by"] = product["held_by"]
        if "slot" in product:
            record["slot"] = product["slot"]
        detection.append(record)
        next_id += 1
    return detection, keypoints


class VideoWriter:
    """Writes one video folder: video.avi, seqinfo.ini, gt/gt.txt, annotations.json, ... (see module doc)."""

    def __init__(self, folder: Path, name: str, layout: Layout, fps: int, jpeg_quality: int) -> None:
        self.folder = folder
        self.name = name
        self.layout = layout
        self.fps = fps
        (folder / "gt").mkdir(parents=True)
        size = (layout.floor.width, layout.floor.height)
        # OpenCV's own MJPEG encoder: byte-deterministic output that cv2.VideoCapture reads back.
        self.video = cv2.VideoWriter(
            str(folder / "video.avi"),
            cv2.CAP_OPENCV_MJPEG,
            cv2.VideoWriter_fourcc(*"MJPG"),
            fps,
            size,
            [cv2.VIDEOWRITER_PROP_QUALITY, jpeg_quality],
        )
        if not self.video.isOpened():
            raise SimError(f"OpenCV cannot open an MJPG writer for {folder / 'video.avi'}")
        self.gt_lines: list[str] = []
        self.images: list[dict] = []
        self.annotations: list[dict] = []
        self.frames = 0

    def add(self, index: int, image: np.ndarray, truth: dict) -> None:
        """Append frame ``index`` (1-based) and its ground truth."""
        self.video.write(image)
        self.frames = index
        self.images.append(
            {
                "id": index,
                "file_name": f"frame_{index:06d}",
                "frame": index,
                "width": self.layout.floor.width,
                "height": self.layout.floor.height,
            }
        )
        detection, keypoints = annotation_records(truth, index, len(self.annotations) + 1)
        by_id = {record["id"]: record for record in keypoints}
        for record in detection:
            self.annotations.append(by_id.get(record["id"], record))
        for person in truth["persons"]:
            x, y, w, h = person["bbox"]
            # Same 0-based pixels as the COCO files (not MOTChallenge's 1-based MATLAB convention), so
            # boxes from a detector trained on the COCO export compare with gt.txt directly. Mostly
            # hidden persons (COCO crowd) get MOTChallenge's "not considered" flag 0 in column 7.
            considered = 0 if person["iscrowd"] else 1
            self.gt_lines.append(f"{index},{person['track_id']},{x},{y},{w},{h},{considered},1,1")

    def close(self, events: list[dict], receipts: dict, layout_text: str) -> None:
        """Finish the video file and write the per-video JSON/INI/TXT files."""
        self.video.release()
        (self.folder / "gt" / "gt.txt").write_text("".join(line + "\n" for line in self.gt_lines))
        (self.folder / "seqinfo.ini").write_text(
            "[Sequence]\n"
            f"name={self.name}\n"
            "imDir=../../coco/images\n"
            f"frameRate={self.fps}\n"
            f"seqLength={self.frames}\n"
            f"imWidth={self.layout.floor.width}\n"
            f"imHeight={self.layout.floor.height}\n"
            "imExt=.png\n"
            "video=video.avi\n"
        )
        write_json(
            self.folder / "annotations.json",
            {
                "info": {"description": f"walkout_sim ground truth of {self.name}", "fps": self.fps},
                "images": self.images,
                "annotations": self.annotations,
                "categories": categories(self.layout, with_keypoints=True),
            },
        )
        write_json(self.folder / "events.json", events)
        write_json(self.folder / "receipts.json", receipts)
        (self.folder / "layout.yaml").write_text(layout_text)


class CocoWriter:
    """Accumulates the split-level COCO files and writes their images as PNG."""

    def __init__(self, folder: Path, layout: Layout, png_compression: int) -> None:
        self.folder = folder
        self.images_dir = folder / "images"
        self.images_dir.mkdir(parents=True)
        self.layout = layout
        if png_compression == 0:
            self.png_params = [
                cv2.IMWRITE_PNG_COMPRESSION,
                0,
                cv2.IMWRITE_PNG_FILTER,
                cv2.IMWRITE_PNG_FILTER_NONE,
            ]
        else:
            # Sensor noise defeats zlib's LZ matching, so Huffman-only coding after the SUB filter is as
            # small as full deflate and 2-3x faster.
            self.png_params = [
                cv2.IMWRITE_PNG_COMPRESSION,
                png_compression,
                cv2.IMWRITE_PNG_STRATEGY,
                cv2.IMWRITE_PNG_STRATEGY_HUFFMAN_ONLY,
                cv2.IMWRITE_PNG_FILTER,
                cv2.IMWRITE_PNG_FILTER_SUB,
            ]
        self.images: list[dict] = []
        self.annotations = 0
        # Annotations stream to part files (hundreds of thousands per split would otherwise sit in
        # memory); close() assembles the JSON documents around them.
        self.parts = {
            name: open(folder / f".{name}.annotations.part", "w")  # noqa: SIM115 - closed in close()
            for name in ("detection", "keypoints")
        }
        self.written = {"detection": False, "keypoints": False}

    def add(self, video: str, index: int, image: np.ndarray, truth: dict) -> None:
        """Write one frame as ``images/<video>_<index:06d>.png`` and record its annotations."""
        file_name = f"{video}_{index:06d}.png"
        ok, encoded = cv2.imencode(".png", image, self.png_params)
        if not ok:
            raise SimError(f"OpenCV could not encode {file_name} as PNG")
        (self.images_dir / file_name).write_bytes(encoded.tobytes())
        image_id = len(self.images) + 1
        self.images.append(
            {
                "id": image_id,
                "file_name": file_name,
                "width": self.layout.floor.width,
                "height": self.layout.floor.height,
                "video": video,
                "frame": index,
            }
        )
        # Keypoint annotation ids mirror the detection ids (unique within keypoints.json too).
        detection, keypoints = annotation_records(truth, image_id, self.annotations + 1)
        for name, records in (("detection", detection), ("keypoints", keypoints)):
            if records:
                text = ",".join(json.dumps(record, separators=(",", ":")) for record in records)
                self.parts[name].write("," + text if self.written[name] else text)
                self.written[name] = True
        self.annotations += len(detection)

    def __enter__(self) -> CocoWriter:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.release()

    def release(self) -> None:
        """Close the part files (idempotent); a failed run calls this before its temp folder is removed."""
        for handle in self.parts.values():
            handle.close()

    def close(self, split: str) -> None:
        """Write detection.json and keypoints.json (compact JSON, same bytes as one json.dumps)."""
        info = {"description": f"walkout_sim {split} split", "version": str(FORMAT_VERSION)}
        for name, category_list in (
            ("detection", categories(self.layout, with_keypoints=False)),
            ("keypoints", categories(self.layout, with_keypoints=True)[:1]),
        ):
            part = self.folder / f".{name}.annotations.part"
            self.parts[name].close()
            head = {"info": info, "licenses": [], "images": self.images}
            with open(self.folder / f"{name}.json", "w") as out, open(part) as annotations:
                out.write(json.dumps(head, separators=(",", ":"))[:-1] + ',"annotations":[')
                shutil.copyfileobj(annotations, out)
                out.write('],"categories":' + json.dumps(category_list, separators=(",", ":")) + "}\n")
            part.unlink()


def write_manifest(root: Path, split: str, generator: dict, content_hashes: list[str]) -> None:
    """manifest.json with the sha256 of every file under ``root`` (sorted relative paths)."""
    files = {
        path.relative_to(root).as_posix(): sha256_file(path)
        for path in sorted(root.rglob("*"))
        if path.is_file() and path.name not in ("manifest.json", PID_FILE)
    }
    manifest = {
        "format_version": FORMAT_VERSION,
        "split": split,
        "blind": split == "blind",
        "generator": generator,
        "files": files,
        "content_hashes": content_hashes,
    }
    (root / "manifest.json").write_text(json.dumps(manifest, indent=1) + "\n")
