"""Reading COCO keypoints data (a simulator export or any COCO keypoints JSON + images) and making
training crops from it.

A data folder is a split root holding `coco/keypoints.json` and `coco/images/`, a folder holding
`keypoints.json` directly, or the JSON file itself. Image `file_name`s are resolved against the JSON's
folder, then its `images/` subfolder.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import torch
from torch.utils.data import Dataset

from walkout_pose.config import KEYPOINT_NAMES, ModelConfig, TrainConfig
from walkout_pose.errors import DataError
from walkout_pose.transforms import (
    FLIP_PAIRS,
    apply_affine,
    box_to_crop_region,
    crop_matrix,
    crop_to_heatmap,
    gaussian_targets,
    warp_crop,
)


@dataclass(frozen=True)
class Person:
    """One annotated person.

    box_xyxy: float [4] x1 y1 x2 y2 in frame pixels. keypoints: float [K, 3] x y visibility
    (COCO: 0 unlabelled, 1 labelled but occluded, 2 visible). area: the COCO `area` used by OKS.
    """

    annotation_id: int
    image_id: int
    image_path: Path
    box_xyxy: np.ndarray
    keypoints: np.ndarray
    area: float

    @property
    def sample_id(self) -> str:
        """Stable per-person id for reports: `<image file stem>#<annotation id>`."""
        return f"{self.image_path.stem}#{self.annotation_id}"


@dataclass(frozen=True)
class KeypointDataset:
    """A validated COCO keypoints file: its raw dict (for pycocotools) and the persons in it."""

    annotation_path: Path
    root: Path
    coco: dict[str, Any]
    persons: tuple[Person, ...]
    image_paths: dict[int, Path]


def find_annotation_file(data: str | os.PathLike) -> Path:
    """The keypoints JSON of a data folder (split root, coco folder, or the file itself)."""
    path = Path(data)
    for candidate in (path, path / "coco" / "keypoints.json", path / "keypoints.json"):
        if candidate.is_file():
            return candidate
    raise DataError(
        f"no COCO keypoints file at {path}: expected {path}/coco/keypoints.json (a walkout-sim export), "
        f"{path}/keypoints.json, or a path to the JSON file itself"
    )


def split_root(annotation_path: Path) -> Path:
    """The split folder an annotation file belongs to (where manifest.json lives, if any)."""
    if annotation_path.parent.name == "coco":
        return annotation_path.parent.parent
    return annotation_path.parent


def _resolve_image(annotation_path: Path, file_name: str) -> Path:
    base = annotation_path.parent
    for candidate in (base / file_name, base / "images" / file_name):
        if candidate.is_file():
            return candidate
    raise DataError(
        f"{annotation_path}: image {file_name!r} not found (looked in {base} and {base / 'images'}); "
        "the export is incomplete: regenerate it"
    )


def _person_category(coco: dict, annotation_path: Path) -> int:
    categories = coco.get("categories")
    if not isinstance(categories, list):
        raise DataError(f"{annotation_path}: no 'categories' list; this is not a COCO keypoints file")
    with_keypoints = [c for c in categories if isinstance(c, dict) and "keypoints" in c]
    if not with_keypoints:
        raise DataError(
            f"{annotation_path}: no category has a 'keypoints' list; this is a COCO detection file, "
            "pass the keypoints file (coco/keypoints.json)"
        )
    category = with_keypoints[0]
    if list(category["keypoints"]) != list(KEYPOINT_NAMES):
        raise DataError(
            f"{annotation_path}: category {category.get('name')!r} has keypoints {category['keypoints']}; "
            f"walkout-pose expects exactly {list(KEYPOINT_NAMES)} in that order"
        )
    return category["id"]


def _numbers(value: Any, length: int) -> np.ndarray | None:
    """`value` as float64 [length] if it is a list of `length` numbers (bools are not numbers), else None."""
    if not isinstance(value, list) or len(value) != length:
        return None
    if not all(isinstance(item, int | float) and not isinstance(item, bool) for item in value):
        return None
    return np.asarray(value, dtype=np.float64)


def _parse_person(annotation: dict, where: str, image: dict, image_path: Path) -> Person:
    """One validated person annotation; `where` names the file and the record for error messages."""
    size = 3 * len(KEYPOINT_NAMES)
    if "keypoints" not in annotation:
        raise DataError(
            f"{where} has no 'keypoints'; every person annotation needs {len(KEYPOINT_NAMES)} x 3 "
            "values (x, y, visibility; visibility 0 for unlabelled keypoints)"
        )
    values = _numbers(annotation["keypoints"], size)
    if values is None:
        raw = annotation["keypoints"]
        found = f"{len(raw)} values" if isinstance(raw, list) else f"a {type(raw).__name__}"
        raise DataError(
            f"{where} field 'keypoints' holds {found}; expected a list of {size} numbers "
            f"(x, y, visibility for each of {', '.join(KEYPOINT_NAMES)})"
        )
    if not np.isfinite(values).all():
        index = int(np.flatnonzero(~np.isfinite(values))[0])
        raise DataError(
            f"{where} field 'keypoints[{index}]' is {values[index]}; every keypoint value must be finite"
        )
    keypoints_array = values.reshape(len(KEYPOINT_NAMES), 3)
    if not np.isin(keypoints_array[:, 2], (0, 1, 2)).all():
        raise DataError(
            f"{where} field 'keypoints': visibilities must be 0, 1 or 2; got {keypoints_array[:, 2].tolist()}"
        )
    bbox = _numbers(annotation.get("bbox"), 4)
    if bbox is None or not np.isfinite(bbox).all() or (bbox < 0).any() or bbox[2] <= 0 or bbox[3] <= 0:
        raise DataError(
            f"{where} field 'bbox' is {annotation.get('bbox')!r}; expected [x, y, width, height] of finite "
            "numbers in 0-based frame pixels with x, y >= 0 and width, height > 0"
        )
    x, y, width, height = bbox
    frame_width, frame_height = image.get("width"), image.get("height")
    if (
        isinstance(frame_width, int | float)
        and isinstance(frame_height, int | float)
        and (x >= frame_width or y >= frame_height or x + width <= 0 or y + height <= 0)
    ):
        raise DataError(
            f"{where} field 'bbox' {bbox.tolist()} lies entirely outside its {frame_width}x{frame_height} "
            "frame; fix or drop the annotation"
        )
    area = annotation.get("area", float(width * height))
    if isinstance(area, bool) or not isinstance(area, int | float) or not np.isfinite(area) or area <= 0:
        raise DataError(f"{where} field 'area' is {area!r}; expected a finite number > 0 (OKS divides by it)")
    return Person(
        annotation_id=int(annotation["id"]),
        image_id=int(annotation["image_id"]),
        image_path=image_path,
        box_xyxy=np.array([x, y, x + width, y + height]),
        keypoints=keypoints_array,
        area=float(area),
    )


def _check_id(record: Any, field: str, where: str) -> int:
    """The integer `field` of a COCO record; DataError naming `where` when it is missing or not an int."""
    value = record.get(field) if isinstance(record, dict) else None
    if isinstance(value, bool) or not isinstance(value, int):
        raise DataError(f"{where} field {field!r} is {value!r}; expected an integer id")
    return value


def load_keypoints_dataset(data: str | os.PathLike) -> KeypointDataset:
    """Read and validate a COCO keypoints file and locate its images.

    Raises DataError naming the file, the record (`images[i]` / `annotations[i]` with its id) and the
    field for: a missing file, bad JSON, no keypoints category, keypoint names other than
    KEYPOINT_NAMES, duplicate image or annotation ids, an annotation without keypoints or with a
    keypoint list of the wrong length or non-finite values, a NaN / negative / empty or out-of-frame
    box, a non-positive area, a missing image.
    """
    annotation_path = find_annotation_file(data)
    try:
        coco = json.loads(annotation_path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise DataError(f"{annotation_path} is not readable JSON: {error}") from error
    if (
        not isinstance(coco, dict)
        or not isinstance(coco.get("images"), list)
        or not isinstance(coco.get("annotations"), list)
    ):
        raise DataError(f"{annotation_path}: a COCO file needs 'images' and 'annotations' lists")
    category_id = _person_category(coco, annotation_path)
    images: dict[int, dict] = {}
    image_index: dict[int, int] = {}
    image_paths: dict[int, Path] = {}
    for index, image in enumerate(coco["images"]):
        where = f"{annotation_path}: images[{index}]"
        image_id = _check_id(image, "id", where)
        if not isinstance(image.get("file_name"), str) or not image["file_name"]:
            raise DataError(
                f"{where} (id {image_id}) field 'file_name' is missing; expected the image file name"
            )
        if image_id in images:
            raise DataError(
                f"{where} (id {image_id}) field 'id': duplicate image id "
                f"(also images[{image_index[image_id]}]); image ids must be unique"
            )
        image_index[image_id] = index
        images[image_id] = image
        image_paths[image_id] = _resolve_image(annotation_path, image["file_name"])
    persons = []
    seen: dict[int, int] = {}
    for index, annotation in enumerate(coco["annotations"]):
        where = f"{annotation_path}: annotations[{index}]"
        annotation_id = _check_id(annotation, "id", where)
        where = f"{annotation_path}: annotation id {annotation_id} (annotations[{index}])"
        if annotation_id in seen:
            raise DataError(
                f"{where} field 'id': duplicate annotation id (also annotations[{seen[annotation_id]}]); "
                "annotation ids must be unique"
            )
        seen[annotation_id] = index
        if annotation.get("category_id") != category_id:
            continue
        image = images.get(annotation.get("image_id"))
        if image is None:
            raise DataError(
                f"{where} field 'image_id' refers to unknown image {annotation.get('image_id')!r}"
            )
        persons.append(_parse_person(annotation, where, image, image_paths[image["id"]]))
    return KeypointDataset(
        annotation_path=annotation_path,
        root=split_root(annotation_path),
        coco=coco,
        persons=tuple(persons),
        image_paths=image_paths,
    )


def read_image(path: Path) -> np.ndarray:
    """A frame as uint8 BGR [H, W, 3]; DataError when it cannot be decoded."""
    image = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if image is None:
        raise DataError(f"image {path} cannot be decoded; the file is missing or corrupt")
    return image


def crop_to_tensor(crop_bgr: np.ndarray) -> torch.Tensor:
    """uint8 [H, W, 3] BGR -> float32 tensor [3, H, W] in [0, 1]."""
    return torch.from_numpy(np.ascontiguousarray(crop_bgr.transpose(2, 0, 1))).float().div_(255.0)


def video_of(person: Person) -> str:
    """The video a simulator frame belongs to (`<video>_<frame:06d>.png` -> `<video>`)."""
    stem = person.image_path.stem
    head, _, tail = stem.rpartition("_")
    return head if head and tail.isdigit() else stem


def split_by_video(
    persons: tuple[Person, ...], fraction: float, seed: int
) -> tuple[list[Person], list[Person]]:
    """Hold out whole videos (consecutive frames are near-duplicates) for validation.

    Returns (train persons, validation persons). With a single video, frames are split by image id
    instead. `fraction` is the share of videos (or images) held out; at least one when fraction > 0.
    """
    if fraction <= 0:
        return list(persons), []
    groups = sorted({video_of(person) for person in persons})
    key = video_of
    if len(groups) < 2:
        groups = sorted({person.image_id for person in persons})
        key = lambda person: person.image_id  # noqa: E731 -- a one-line key selector
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(groups))
    held = {groups[index] for index in order[: max(1, round(fraction * len(groups)))]}
    if len(held) == len(groups):
        raise DataError(
            f"cannot hold out {fraction:.0%} for validation: only {len(groups)} video(s)/image(s)"
        )
    train = [person for person in persons if key(person) not in held]
    val = [person for person in persons if key(person) in held]
    return train, val


def trainable(persons: list[Person] | tuple[Person, ...]) -> list[Person]:
    """Persons with at least one labelled keypoint (the others carry no training signal)."""
    return [person for person in persons if (person.keypoints[:, 2] > 0).any()]


class PersonCrops(Dataset):
    """Augmented (or plain) person crops with their target heatmaps, for training.

    item -> (crop float [3, H, W] in [0, 1], heatmaps float [K, h, w], weights float [K]).
    """

    def __init__(
        self,
        *,
        persons: list[Person],
        model_config: ModelConfig,
        train_config: TrainConfig,
        augment: bool,
        seed: int = 0,
    ) -> None:
        self.persons = persons
        self.model_config = model_config
        self.train_config = train_config
        self.augment = augment
        self.rng = np.random.default_rng(seed)
        # Decoded frames, kept per process (a DataLoader worker has its own copy): PNG decoding costs
        # more than the rest of the augmentation. A 320x240 frame is 230 kB; the few thousand frames
        # of a training split fit comfortably in memory.
        self.frames: dict[Path, np.ndarray] = {}

    def __len__(self) -> int:
        return len(self.persons)

    def _augmentation(self) -> tuple[float, float, np.ndarray, bool]:
        config = self.train_config
        if not self.augment:
            return 1.0, 0.0, np.zeros(2), False
        scale = 1.0 + self.rng.uniform(-config.scale_jitter, config.scale_jitter)
        rotation = (
            self.rng.uniform(-config.rotation_degrees, config.rotation_degrees)
            if self.rng.random() < 0.5
            else 0.0
        )
        shift = self.rng.uniform(-config.shift_fraction, config.shift_fraction, size=2)
        flip = bool(self.rng.random() < config.flip_probability)
        return scale, rotation, shift, flip

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        person = self.persons[index]
        model = self.model_config
        output_size = (model.input_width, model.input_height)
        center, size = box_to_crop_region(
            person.box_xyxy, aspect=model.input_width / model.input_height, margin=model.box_margin
        )
        scale, rotation, shift, flip = self._augmentation()
        center = center + shift * size
        matrix = crop_matrix(center, size * scale, output_size, rotation_degrees=rotation, flip=flip)
        frame = self.frames.get(person.image_path)
        if frame is None:
            frame = self.frames[person.image_path] = read_image(person.image_path)
        crop = warp_crop(frame, matrix, output_size)
        keypoints = person.keypoints.copy()
        points = apply_affine(keypoints[:, :2], matrix)
        valid = keypoints[:, 2] > 0
        if flip:
            for left, right in FLIP_PAIRS:
                points[[left, right]] = points[[right, left]]
                valid[[left, right]] = valid[[right, left]]
        heatmap_points = crop_to_heatmap(points, model.heatmap_stride)
        heatmap_size = (model.input_height // model.heatmap_stride, model.input_width // model.heatmap_stride)
        heatmaps, weights = gaussian_targets(
            heatmap_points, valid, heatmap_size, self.train_config.heatmap_sigma
        )
        tensor = crop_to_tensor(crop)
        if self.augment and self.train_config.color_jitter > 0:
            jitter = self.train_config.color_jitter
            gain = 1.0 + self.rng.uniform(-jitter, jitter, size=(3, 1, 1))
            bias = self.rng.uniform(-jitter, jitter) * 0.5
            tensor = (tensor * torch.from_numpy(gain).float() + bias).clamp_(0.0, 1.0)
        return tensor, torch.from_numpy(heatmaps), torch.from_numpy(weights)


def sample_count(persons: int, config: TrainConfig) -> int:
    """Persons drawn per epoch."""
    return persons if config.max_persons_per_epoch == 0 else min(persons, config.max_persons_per_epoch)
