"""Reading COCO detection datasets and turning boxes into CenterNet training targets.

Only standard formats are read: a COCO detection JSON (categories, images, annotations with
bbox = x, y, w, h in pixels) and the image files it names. A simulator export is a folder with
`coco/detection.json` and `coco/images/`, plus `manifest.json` at its root.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Collection
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import torch

from walkout_detection.errors import DataError
from walkout_detection.model import INPUT_MULTIPLE, OUTPUT_STRIDE

# Upper bound on objects per image in the size/offset target arrays (extra objects still get a heatmap peak).
MAX_OBJECTS = 128
# CenterNet's Gaussian radius guarantees a box with this IoU around any point inside the radius.
GAUSSIAN_MIN_OVERLAP = 0.7


@dataclass(frozen=True)
class ImageRecord:
    """One annotated image.

    boxes: float32 array [N, 4], x1 y1 x2 y2 in pixels; labels: int64 array [N], class indices;
    held: bool array [N], True for an object a person holds (the annotation has `held_by`), or None
    when built without that information.
    """

    image_id: int
    sample_id: str
    path: Path
    width: int
    height: int
    boxes: np.ndarray
    labels: np.ndarray
    held: np.ndarray | None = None


@dataclass(frozen=True)
class CocoDataset:
    """A parsed, validated COCO detection dataset.

    class_names[i] is the name of class index i; category_ids[i] its COCO category id.
    coco: the validated COCO JSON dict (what pycocotools evaluates against).
    """

    json_path: Path
    root: Path
    class_names: list[str]
    category_ids: list[int]
    images: list[ImageRecord]
    coco: dict[str, Any]

    def __len__(self) -> int:
        return len(self.images)


def find_coco_json(data: str | Path) -> Path:
    """Locate the COCO detection JSON of a dataset: a .json path, or a folder holding
    `coco/detection.json` (a simulator export) or `detection.json`."""
    data = Path(data)
    if data.is_file():
        return data
    for candidate in (data / "coco" / "detection.json", data / "detection.json"):
        if candidate.is_file():
            return candidate
    if not data.exists():
        raise DataError(f"dataset {data} does not exist")
    raise DataError(
        f"dataset {data} has no COCO detection JSON: expected {data / 'coco' / 'detection.json'} "
        f"(a walkout-sim export) or {data / 'detection.json'}, or pass the .json file itself"
    )


def dataset_root(json_path: Path) -> Path:
    """The folder that holds the dataset's manifest.json (the export root), else the JSON's folder."""
    for folder in (json_path.parent, json_path.parent.parent):
        if (folder / "manifest.json").is_file():
            return folder
    return json_path.parent


def dataset_hash(json_path: Path) -> str:
    """sha256 of the dataset's manifest.json when it has one, else of the COCO JSON itself."""
    manifest = dataset_root(json_path) / "manifest.json"
    target = manifest if manifest.is_file() else json_path
    return hashlib.sha256(target.read_bytes()).hexdigest()


def _require(condition: bool, json_path: Path, message: str) -> None:
    if not condition:
        raise DataError(f"malformed COCO JSON {json_path}: {message}")


def _resolve_image(json_path: Path, file_name: str) -> Path | None:
    for base in (json_path.parent, json_path.parent / "images", dataset_root(json_path)):
        candidate = base / file_name
        if candidate.is_file():
            return candidate
    return None


def _is_integer(value: Any) -> bool:
    """A JSON integer (bool is an int subclass in Python but not a COCO id)."""
    return isinstance(value, int) and not isinstance(value, bool)


def _is_finite_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _validated_images(images: list[Any], json_path: Path) -> dict[int, dict[str, Any]]:
    """The image records of a COCO JSON keyed by id.

    Each needs an integer `id` and a non-empty string `file_name`, both unique; `width` / `height`, when
    present, are non-negative integers. Raises DataError naming the file, the image and the field.
    """
    by_id: dict[int, dict[str, Any]] = {}
    file_names: dict[str, int] = {}
    for position, image in enumerate(images):
        _require(isinstance(image, dict), json_path, f"images[{position}] is not an object; got {image!r}")
        image_id = image.get("id")
        _require(
            _is_integer(image_id),
            json_path,
            f"images[{position}]: field 'id' must be an integer; got {image_id!r}",
        )
        _require(
            image_id not in by_id,
            json_path,
            f"image id {image_id} appears twice (field 'id' of images[{position}]); image ids must be unique",
        )
        file_name = image.get("file_name")
        _require(
            isinstance(file_name, str) and bool(file_name),
            json_path,
            f"image {image_id}: field 'file_name' must be a non-empty string; got {file_name!r}",
        )
        _require(
            file_name not in file_names,
            json_path,
            f"image {image_id}: field 'file_name' {file_name!r} is also the file of image "
            f"{file_names.get(file_name)}; each image needs its own file",
        )
        file_names[file_name] = image_id
        for key in ("width", "height"):
            if key in image:
                value = image[key]
                _require(
                    _is_integer(value) and value >= 0,
                    json_path,
                    f"image {image_id}: field {key!r} must be a non-negative integer; got {value!r}",
                )
        by_id[image_id] = image
    return by_id


def _check_annotation(
    annotation: Any,
    position: int,
    json_path: Path,
    images: dict[int, dict[str, Any]],
    names_by_id: dict[int, str],
    seen: set[int],
) -> None:
    """Validate one COCO annotation for `load_coco`; `seen` collects the annotation ids so far.

    Required: a unique integer `id`, an `image_id` of a known image, a `category_id` of a known
    category, and `bbox` = [x, y, w, h] of finite numbers with w, h >= 0. Raises DataError naming the
    file, the annotation id and the field.
    """
    _require(
        isinstance(annotation, dict),
        json_path,
        f"annotations[{position}] is not an object; got {annotation!r}",
    )
    annotation_id = annotation.get("id")
    _require(
        _is_integer(annotation_id),
        json_path,
        f"annotations[{position}]: field 'id' must be an integer; got {annotation_id!r}",
    )
    _require(
        annotation_id not in seen,
        json_path,
        f"annotation id {annotation_id} appears twice (field 'id' of annotations[{position}]); "
        "annotation ids must be unique",
    )
    seen.add(annotation_id)
    image_id = annotation.get("image_id")
    _require(
        _is_integer(image_id) and image_id in images,
        json_path,
        f"annotation {annotation_id}: field 'image_id' names unknown image_id {image_id!r}",
    )
    category_id = annotation.get("category_id")
    if not _is_integer(category_id) or category_id not in names_by_id:
        raise DataError(
            f"COCO JSON {json_path}: annotation {annotation_id} has unknown category_id {category_id!r} "
            f"(field 'category_id'); known categories: {sorted(names_by_id)}"
        )
    bbox = annotation.get("bbox")
    _require(
        isinstance(bbox, list) and len(bbox) == 4 and all(_is_finite_number(v) for v in bbox),
        json_path,
        f"annotation {annotation_id} needs bbox [x, y, w, h] of finite numbers (field 'bbox'); got {bbox!r}",
    )
    _require(
        bbox[2] >= 0 and bbox[3] >= 0,
        json_path,
        f"annotation {annotation_id}: field 'bbox' has a negative width or height {bbox[2:]!r}; "
        "w and h must be >= 0",
    )


def load_coco(
    data: str | Path,
    *,
    class_names: list[str] | None = None,
    check_images: bool = True,
    learn_crowd: Collection[str] = (),
) -> CocoDataset:
    """Read and validate a COCO detection dataset.

    class_names: the model's classes; when given, dataset categories are matched to them by name and a
    category the model does not know is an error. When None, classes are the dataset's categories
    sorted by id. learn_crowd: category names whose crowd annotations (`iscrowd` 1) become objects of
    the records (by default crowd regions are left out of the records; COCOeval sees them either way).

    Raises DataError (naming the file, the image / annotation id and the field) for a missing file,
    malformed JSON, duplicate image or annotation ids, an annotation whose image or category does not
    exist, a bbox with NaN/inf or a negative width/height, or (check_images) a missing image file.
    """
    json_path = find_coco_json(data)
    try:
        coco = json.loads(json_path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise DataError(f"malformed COCO JSON {json_path}: {error}") from error
    _require(isinstance(coco, dict), json_path, "the top level must be an object")
    for key in ("images", "annotations", "categories"):
        _require(isinstance(coco.get(key), list), json_path, f"missing list {key!r}")

    names_by_id: dict[int, str] = {}
    for position, category in enumerate(coco["categories"]):
        _require(
            isinstance(category, dict) and _is_integer(category.get("id")) and "name" in category,
            json_path,
            f"categories[{position}]: every category needs an integer 'id' and a 'name'; got {category!r}",
        )
        category_id, name = category["id"], str(category["name"])
        _require(
            category_id not in names_by_id,
            json_path,
            f"category id {category_id} appears twice (field 'id' of categories[{position}]); "
            "category ids are not unique",
        )
        _require(
            name not in names_by_id.values(),
            json_path,
            f"category name {name!r} appears twice (field 'name' of categories[{position}]); "
            "classes are matched by name, so names must be unique",
        )
        names_by_id[category_id] = name
    names_by_id = dict(sorted(names_by_id.items()))
    if class_names is None:
        class_names = [names_by_id[category_id] for category_id in names_by_id]
        category_ids = list(names_by_id)
    else:
        unknown = sorted(set(names_by_id.values()) - set(class_names))
        if unknown:
            raise DataError(
                f"dataset {json_path} has categories {unknown} that the model does not know "
                f"(model classes: {class_names}); evaluate a model trained on these categories"
            )
        id_by_name = {name: category_id for category_id, name in names_by_id.items()}
        # Model classes absent from the dataset get id -1: their detections are not evaluated.
        category_ids = [id_by_name.get(name, -1) for name in class_names]
    index_by_category = {
        category_id: index for index, category_id in enumerate(category_ids) if category_id >= 0
    }

    images = _validated_images(coco["images"], json_path)
    boxes: dict[int, list[list[float]]] = {image_id: [] for image_id in images}
    labels: dict[int, list[int]] = {image_id: [] for image_id in images}
    held: dict[int, list[bool]] = {image_id: [] for image_id in images}
    seen_annotations: set[int] = set()
    crowd_learned = {category_id for category_id, name in names_by_id.items() if name in learn_crowd}
    for position, annotation in enumerate(coco["annotations"]):
        _check_annotation(annotation, position, json_path, images, names_by_id, seen_annotations)
        x, y, w, h = (float(value) for value in annotation["bbox"])
        # Degenerate boxes cannot be learned as centres, nor crowd regions unless asked for (a sliver
        # of a person is still a person); COCOeval still sees them.
        crowd = annotation.get("iscrowd", 0) and annotation["category_id"] not in crowd_learned
        if crowd or w <= 0 or h <= 0:
            continue
        image_id = annotation["image_id"]
        boxes[image_id].append([x, y, x + w, y + h])
        labels[image_id].append(index_by_category[annotation["category_id"]])
        held[image_id].append(annotation.get("held_by") is not None)

    records = []
    missing = []
    for image_id, image in images.items():
        path = _resolve_image(json_path, image["file_name"])
        if path is None:
            missing.append(image["file_name"])
            path = json_path.parent / image["file_name"]
        records.append(
            ImageRecord(
                image_id=image_id,
                sample_id=Path(image["file_name"]).stem,
                path=path,
                width=int(image.get("width", 0)),
                height=int(image.get("height", 0)),
                boxes=np.asarray(boxes[image_id], dtype=np.float32).reshape(-1, 4),
                labels=np.asarray(labels[image_id], dtype=np.int64),
                held=np.asarray(held[image_id], dtype=bool),
            )
        )
    if check_images and missing:
        shown = ", ".join(missing[:5]) + (f" and {len(missing) - 5} more" if len(missing) > 5 else "")
        raise DataError(f"dataset {json_path}: {len(missing)} image file(s) not found: {shown}")
    return CocoDataset(
        json_path=json_path,
        root=dataset_root(json_path),
        class_names=list(class_names),
        category_ids=category_ids,
        images=records,
        coco=coco,
    )


def read_image_rgb(path: Path) -> np.ndarray:
    """Read an image file as a uint8 array [H, W, 3] in RGB order; DataError if unreadable."""
    image = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if image is None:
        raise DataError(f"image {path} is missing or cannot be decoded")
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


def gaussian_radius(height: float, width: float, min_overlap: float = GAUSSIAN_MIN_OVERLAP) -> float:
    """CenterNet's radius (units of height/width) within which a shifted box keeps `min_overlap` IoU."""
    a1 = 1
    b1 = height + width
    c1 = width * height * (1 - min_overlap) / (1 + min_overlap)
    r1 = (b1 + math.sqrt(b1**2 - 4 * a1 * c1)) / 2
    a2 = 4
    b2 = 2 * (height + width)
    c2 = (1 - min_overlap) * width * height
    r2 = (b2 + math.sqrt(b2**2 - 4 * a2 * c2)) / 2
    a3 = 4 * min_overlap
    b3 = -2 * min_overlap * (height + width)
    c3 = (min_overlap - 1) * width * height
    r3 = (b3 + math.sqrt(b3**2 - 4 * a3 * c3)) / 2
    return min(r1, r2, r3)


def draw_gaussian(heatmap: np.ndarray, centre_x: int, centre_y: int, radius: int) -> None:
    """Splat a Gaussian peak of value 1 at (centre_x, centre_y) into heatmap [h, w], keeping the max."""
    diameter = 2 * radius + 1
    sigma = diameter / 6
    offsets = np.arange(-radius, radius + 1, dtype=np.float32)
    kernel = np.exp(-(offsets[None, :] ** 2 + offsets[:, None] ** 2) / (2 * sigma * sigma))
    height, width = heatmap.shape
    left, right = min(centre_x, radius), min(width - centre_x, radius + 1)
    top, bottom = min(centre_y, radius), min(height - centre_y, radius + 1)
    region = heatmap[centre_y - top : centre_y + bottom, centre_x - left : centre_x + right]
    patch = kernel[radius - top : radius + bottom, radius - left : radius + right]
    np.maximum(region, patch, out=region)


def encode_targets(
    boxes: np.ndarray, labels: np.ndarray, *, num_classes: int, height: int, width: int
) -> dict[str, np.ndarray]:
    """CenterNet targets for one image of `height` x `width` pixels (multiples of the output stride).

    boxes: float array [N, 4], x1 y1 x2 y2 in pixels; labels: int array [N].
    Returns heatmap [C, h, w], index [K] (flat cell of each centre), size [K, 2] (w, h in cells),
    offset [K, 2] (sub-cell centre offset) and mask [K] (1 for real objects), K = MAX_OBJECTS.
    """
    out_h, out_w = height // OUTPUT_STRIDE, width // OUTPUT_STRIDE
    heatmap = np.zeros((num_classes, out_h, out_w), dtype=np.float32)
    index = np.zeros(MAX_OBJECTS, dtype=np.int64)
    size = np.zeros((MAX_OBJECTS, 2), dtype=np.float32)
    offset = np.zeros((MAX_OBJECTS, 2), dtype=np.float32)
    mask = np.zeros(MAX_OBJECTS, dtype=np.float32)
    count = 0
    for box, label in zip(boxes, labels, strict=True):
        x1, y1, x2, y2 = (float(value) / OUTPUT_STRIDE for value in box)
        box_w, box_h = x2 - x1, y2 - y1
        if box_w <= 0 or box_h <= 0:
            continue
        centre = np.array([(x1 + x2) / 2, (y1 + y2) / 2], dtype=np.float32)
        cell_x = min(max(int(centre[0]), 0), out_w - 1)
        cell_y = min(max(int(centre[1]), 0), out_h - 1)
        radius = max(0, int(gaussian_radius(math.ceil(box_h), math.ceil(box_w))))
        draw_gaussian(heatmap[label], cell_x, cell_y, radius)
        if count < MAX_OBJECTS:
            index[count] = cell_y * out_w + cell_x
            size[count] = (box_w, box_h)
            offset[count] = (centre[0] - cell_x, centre[1] - cell_y)
            mask[count] = 1.0
            count += 1
    return {"heatmap": heatmap, "index": index, "size": size, "offset": offset, "mask": mask}


def _rarest_class_weights(label_sets: list[np.ndarray], num_classes: int) -> tuple[np.ndarray, np.ndarray]:
    """For each image's set of class indices: the inverse frequency of its rarest class (frequency =
    number of images whose set holds the class), 0 for an empty set. Returns (weights float64 [N],
    frequency float64 [num_classes])."""
    frequency = np.zeros(num_classes, dtype=np.float64)
    for labels in label_sets:
        frequency[labels] += 1
    weights = np.array(
        [(1.0 / frequency[labels]).max() if len(labels) else 0.0 for labels in label_sets], dtype=np.float64
    )
    return weights, frequency


def balanced_sample_weights(records: list[ImageRecord], num_classes: int) -> np.ndarray:
    """Per-image sampling weights: the inverse frequency of the image's rarest class.

    Frequency = number of images that contain the class. Images without objects get the weight of
    the commonest class. Returns float64 array [N] summing to 1.
    """
    label_sets = [np.unique(record.labels) for record in records]
    weights, frequency = _rarest_class_weights(label_sets, num_classes)
    present = frequency[frequency > 0]
    if len(present) == 0:
        return np.full(len(records), 1.0 / max(len(records), 1))
    empty = np.array([len(labels) == 0 for labels in label_sets], dtype=bool)
    weights[empty] = 1.0 / present.max()
    return weights / weights.sum()


def held_sample_weights(records: list[ImageRecord], num_classes: int) -> np.ndarray:
    """Per-image sampling weights by held products: the inverse frequency of the image's rarest held
    class (frequency = number of images in which some person holds the class).

    Images with no held product (or no `held` information) weigh 0. Returns float64 array [N] summing
    to 1, or all zeros when no image has a held product.
    """
    label_sets = [
        np.unique(r.labels[r.held]) if r.held is not None else np.zeros(0, np.int64) for r in records
    ]
    weights, _ = _rarest_class_weights(label_sets, num_classes)
    total = weights.sum()
    return weights / total if total > 0 else weights


class DetectionTrainingSet(torch.utils.data.Dataset):
    """Images held in memory (uint8) with CenterNet targets computed on the fly.

    Each item: (image uint8 tensor [3, H, W] RGB padded to a multiple of 16, dict of target tensors).
    flip_probability: chance of a horizontal flip (the ceiling camera has no preferred left/right).
    """

    def __init__(self, *, dataset: CocoDataset, flip_probability: float, seed: int) -> None:
        self.dataset = dataset
        self.num_classes = len(dataset.class_names)
        self.flip_probability = flip_probability
        self.rng = np.random.default_rng(seed)
        self.images = [read_image_rgb(record.path) for record in dataset.images]

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, item: int) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        image = self.images[item]
        record = self.dataset.images[item]
        boxes = record.boxes.copy()
        height, width = image.shape[:2]
        if self.flip_probability > 0 and self.rng.random() < self.flip_probability:
            image = image[:, ::-1]
            boxes[:, [0, 2]] = width - boxes[:, [2, 0]]
        padded_h = height + (-height) % INPUT_MULTIPLE
        padded_w = width + (-width) % INPUT_MULTIPLE
        canvas = np.zeros((padded_h, padded_w, 3), dtype=np.uint8)
        canvas[:height, :width] = image
        targets = encode_targets(
            boxes, record.labels, num_classes=self.num_classes, height=padded_h, width=padded_w
        )
        tensor = torch.from_numpy(np.ascontiguousarray(canvas.transpose(2, 0, 1)))
        return tensor, {key: torch.from_numpy(value) for key, value in targets.items()}


def collate(
    batch: list[tuple[torch.Tensor, dict[str, torch.Tensor]]],
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """Stack items into (uint8 images [B, 3, H, W], targets of [B, ...]); all images must share a size."""
    shapes = {tuple(image.shape) for image, _ in batch}
    if len(shapes) > 1:
        raise DataError(f"training images must share one size to be batched; found sizes {sorted(shapes)}")
    images = torch.stack([image for image, _ in batch])
    targets = {key: torch.stack([target[key] for _, target in batch]) for key in batch[0][1]}
    return images, targets
