"""Reading a simulator video folder: ground-truth frames (for oracle mode), events, receipts, layout.

A video folder (ARCHITECTURE.md section 1) holds video.avi, seqinfo.ini, gt/gt.txt, annotations.json
(COCO-style, every frame; persons carry track_id and keypoints, products carry category_id and
`held_by`), events.json, receipts.json and layout.yaml. `held_by` is never given to the engine: oracle
mode feeds exactly what perfect models would see (boxes, classes, ids, keypoints), so it tests the
fusion logic, not the simulator's bookkeeping.
"""

from __future__ import annotations

import configparser
import json
import os
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from walkout.errors import GroundTruthError, VideoError
from walkout.layout import StoreLayout, load_layout
from walkout.observations import FrameObservation, ProductObservation, ShopperObservation

VIDEO_FILENAME = "video.avi"
_FRAME_NAME = re.compile(r"(\d+)$")


@dataclass(frozen=True)
class VideoGroundTruth:
    """Everything the simulator knows about one video.

    frames: one FrameObservation per frame (ground-truth persons and products), frame numbers from 1.
    events: the simulator's events.json list; receipts: receipts.json ({shopper id: {sku: qty}}),
    completed by `derived_receipts`.
    track_boxes: {track id: {frame: [x1, y1, x2, y2]}} of every person.
    derived_receipts: ids of shoppers who walked out of view before the video ended but are missing
    from receipts.json (the simulator writes a receipt only once a shopper reaches a point outside
    the image, which some never do); their receipt is their cart from events.json.
    skus: every SKU of the store (annotations.json categories except person, plus the layout's slots).
    """

    name: str
    directory: Path
    frames: tuple[FrameObservation, ...]
    events: list[dict]
    receipts: dict[str, dict[str, int]]
    track_boxes: dict[int, dict[int, list[float]]]
    layout: StoreLayout
    fps: float
    frame_count: int
    derived_receipts: tuple[str, ...] = ()
    skus: frozenset[str] = frozenset()  # the store's SKUs: annotation categories + layout slots


def find_videos(root: str | os.PathLike) -> list[Path]:
    """Every video folder (one holding video.avi) under `root`: a split root, its videos/ or one video."""
    root = Path(root)
    if not root.is_dir():
        raise VideoError(
            f"video folder {root} does not exist (expected a simulator split or its videos/ folder)"
        )
    if (root / VIDEO_FILENAME).exists():
        return [root]
    base = root / "videos" if (root / "videos").is_dir() else root
    found = sorted(p for p in base.iterdir() if p.is_dir() and (p / VIDEO_FILENAME).exists())
    if not found:
        raise VideoError(f"no video folders (with {VIDEO_FILENAME}) under {root}")
    return found


def read_seqinfo(video_dir: Path) -> tuple[float, int | None]:
    """(frames per second, number of frames or None) from the MOTChallenge seqinfo.ini (10 fps if absent)."""
    path = video_dir / "seqinfo.ini"
    if not path.is_file():
        return 10.0, None
    parser = configparser.ConfigParser()
    try:
        parser.read(path)
        section = parser["Sequence"]
        fps = float(section.get("frameRate", "10"))
        length = section.get("seqLength")
        return fps, int(length) if length else None
    except (configparser.Error, KeyError, ValueError) as error:
        raise GroundTruthError(f"{path} is not a valid MOTChallenge seqinfo.ini: {error}") from error


def _read_json(path: Path) -> object:
    if not path.is_file():
        raise GroundTruthError(f"{path} is missing: every simulator video folder has it")
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise GroundTruthError(f"{path} is not valid JSON: {error}") from error


def frame_number(image: dict) -> int:
    """The 1-based frame number of a COCO image entry (its `frame` key, else the digits of file_name)."""
    if "frame" in image:
        return int(image["frame"])
    match = _FRAME_NAME.search(Path(str(image.get("file_name", ""))).stem)
    if not match:
        raise GroundTruthError(
            f"cannot tell the frame number of image {image!r} (file_name frame_000001 expected)"
        )
    return int(match.group(1))


def coco_visibility_to_confidence(visibility: np.ndarray) -> np.ndarray:
    """COCO keypoint flags (0 unlabelled, 1 labelled but hidden, 2 visible) on the engine's 0..1 scale.

    A hidden wrist still has an exact position (1 -> 0.6: usable for where the hand is) but what it
    holds cannot be seen (the engine reads a hand only from 0.8 up); 2 -> 1.0, 0 -> 0.0.
    """
    return np.select([visibility >= 2, visibility >= 1], [1.0, 0.6], default=0.0)


def _xywh_to_box(bbox: list[float]) -> tuple[float, float, float, float]:
    x, y, w, h = (float(v) for v in bbox)
    return (x, y, x + w, y + h)


EVENT_TYPES = ("pick", "put_back")
_EVENT_TEXT_FIELDS = ("sku", "shelf", "slot")


def _is_int(value: object) -> bool:
    """A JSON integer (bool is an int subclass in Python, but `true` is not a frame number)."""
    return isinstance(value, int) and not isinstance(value, bool)


def validate_events(events: object, *, source: str, known_skus: frozenset[str] | None = None) -> list[dict]:
    """Check the simulator's events list; return it unchanged.

    Every record is a mapping with `type` in EVENT_TYPES, integer `frame` >= 1 (frames count from 1),
    integer `shopper_id`, string `sku` (one of `known_skus` when given), `shelf` and `slot`; no two
    records are identical (a duplicated pick would charge the shopper twice in the rebuilt receipts and
    count as two ground-truth events). GroundTruthError names the file, the record and the field.
    """
    if not isinstance(events, list):
        raise GroundTruthError(f"{source}: expected a list of events, got {type(events).__name__}")
    seen: dict[tuple, int] = {}
    for index, event in enumerate(events):
        where = f"{source}: events[{index}]"
        if not isinstance(event, dict):
            raise GroundTruthError(f"{where}: expected a mapping, got {type(event).__name__}")
        if "type" not in event:
            raise GroundTruthError(f"{where}.type: missing (allowed: {', '.join(EVENT_TYPES)})")
        if event["type"] not in EVENT_TYPES:
            raise GroundTruthError(
                f"{where}.type: unknown event type {event['type']!r} (allowed: {', '.join(EVENT_TYPES)})"
            )
        for key in ("frame", "shopper_id"):
            if not _is_int(event.get(key)):
                raise GroundTruthError(f"{where}.{key}: must be an integer, got {event.get(key)!r}")
        if event["frame"] < 1:
            raise GroundTruthError(f"{where}.frame: must be >= 1 (frames count from 1), got {event['frame']}")
        for key in _EVENT_TEXT_FIELDS:
            if not isinstance(event.get(key), str):
                raise GroundTruthError(f"{where}.{key}: must be a string, got {event.get(key)!r}")
        if known_skus is not None and event["sku"] not in known_skus:
            raise GroundTruthError(
                f"{where}.sku: unknown SKU {event['sku']!r} (not in the layout or the annotation "
                f"categories; known: {', '.join(sorted(known_skus))})"
            )
        identity = tuple(sorted((key, repr(value)) for key, value in event.items()))
        if identity in seen:
            raise GroundTruthError(f"{where}: duplicate of events[{seen[identity]}] ({event})")
        seen[identity] = index
    return events


def read_events(video_dir: Path, *, known_skus: frozenset[str] | None = None) -> list[dict]:
    """The simulator's events.json: a validated list of pick / put_back events (`validate_events`)."""
    path = video_dir / "events.json"
    return validate_events(_read_json(path), source=str(path), known_skus=known_skus)


def read_receipts(video_dir: Path) -> dict[str, dict[str, int]]:
    """The simulator's receipts.json: {shopper id: {sku: quantity}}."""
    receipts = _read_json(video_dir / "receipts.json")
    if not isinstance(receipts, dict):
        raise GroundTruthError(f"{video_dir / 'receipts.json'}: expected a mapping shopper id -> items")
    return {str(k): {str(s): int(q) for s, q in v.items()} for k, v in receipts.items()}


def load_video_ground_truth(video_dir: str | os.PathLike) -> VideoGroundTruth:
    """Read a video folder's ground truth; GroundTruthError names the file and what is wrong."""
    video_dir = Path(video_dir)
    fps, length = read_seqinfo(video_dir)
    layout = load_layout(video_dir / "layout.yaml", fps=fps)
    data = _read_json(video_dir / "annotations.json")
    if not isinstance(data, dict) or not all(k in data for k in ("images", "annotations", "categories")):
        raise GroundTruthError(
            f"{video_dir / 'annotations.json'}: expected COCO keys images, annotations, categories"
        )
    names = {int(c["id"]): str(c["name"]) for c in data["categories"]}
    frame_of_image = {int(img["id"]): frame_number(img) for img in data["images"]}
    persons: dict[int, list[ShopperObservation]] = {f: [] for f in frame_of_image.values()}
    products: dict[int, list[ProductObservation]] = {f: [] for f in frame_of_image.values()}
    track_boxes: dict[int, dict[int, list[float]]] = {}
    for annotation in data["annotations"]:
        frame = frame_of_image.get(int(annotation["image_id"]))
        if frame is None:
            raise GroundTruthError(
                f"{video_dir / 'annotations.json'}: annotation {annotation.get('id')} has unknown image_id"
            )
        box = _xywh_to_box(annotation["bbox"])
        name = names.get(int(annotation["category_id"]))
        if name == "person":
            track_id = int(annotation["track_id"])
            keypoints = np.asarray(annotation.get("keypoints", [0.0] * 21), dtype=np.float64).reshape(-1, 3)
            keypoints[:, 2] = coco_visibility_to_confidence(keypoints[:, 2])
            persons[frame].append(ShopperObservation(track_id=track_id, box=box, keypoints=keypoints))
            track_boxes.setdefault(track_id, {})[frame] = list(box)
        elif name is not None:
            products[frame].append(ProductObservation(sku=name, box=box, score=1.0))
    frames = tuple(
        FrameObservation(
            frame=frame,
            shoppers=tuple(sorted(persons[frame], key=lambda s: s.track_id)),
            products=tuple(products[frame]),
        )
        for frame in sorted(persons)
    )
    frame_count = length if length is not None else len(frames)
    skus = frozenset(n for n in names.values() if n != "person") | {slot.sku for slot in layout.slots}
    events = read_events(video_dir, known_skus=skus)
    receipts = read_receipts(video_dir)
    derived = []
    for track_id, boxes in sorted(track_boxes.items()):
        if str(track_id) not in receipts and max(boxes) < frame_count:
            receipts[str(track_id)] = cart_from_events(events, track_id)
            derived.append(str(track_id))
    return VideoGroundTruth(
        name=video_dir.name,
        directory=video_dir,
        frames=frames,
        events=events,
        receipts=receipts,
        track_boxes=track_boxes,
        layout=layout,
        fps=fps,
        frame_count=frame_count,
        derived_receipts=tuple(derived),
        skus=skus,
    )


def cart_from_events(events: list[dict], shopper_id: int) -> dict[str, int]:
    """A shopper's cart according to the event log: picks minus put-backs, per SKU (positive only)."""
    cart: dict[str, int] = {}
    for event in events:
        if int(event["shopper_id"]) != shopper_id:
            continue
        change = 1 if event["type"] == "pick" else -1 if event["type"] == "put_back" else 0
        cart[event["sku"]] = cart.get(event["sku"], 0) + change
    return {sku: quantity for sku, quantity in sorted(cart.items()) if quantity > 0}
