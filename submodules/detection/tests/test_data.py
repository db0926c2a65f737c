from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from walkout_detection.data import (
    DetectionTrainingSet,
    ImageRecord,
    balanced_sample_weights,
    collate,
    dataset_hash,
    encode_targets,
    find_coco_json,
    load_coco,
)
from walkout_detection.errors import DataError


def _copy(dataset: Path, tmp_path: Path) -> Path:
    target = tmp_path / "copy"
    shutil.copytree(dataset, target)
    return target


def _edit_json(root: Path, edit) -> None:
    path = root / "coco" / "detection.json"
    coco = json.loads(path.read_text())
    edit(coco)
    path.write_text(json.dumps(coco))


def test_load_sim_layout(small_dataset: Path) -> None:
    dataset = load_coco(small_dataset)
    assert dataset.class_names == ["person", "sku_red", "sku_blue"]
    assert dataset.category_ids == [1, 2, 3]
    assert len(dataset) == 24
    assert dataset.root == small_dataset
    record = dataset.images[0]
    assert record.sample_id == "synthetic_000001"
    assert record.boxes.shape[1] == 4 and (record.boxes[:, 2:] > record.boxes[:, :2]).all()
    assert (
        find_coco_json(small_dataset / "coco" / "detection.json") == small_dataset / "coco" / "detection.json"
    )
    assert (
        dataset_hash(dataset.json_path)
        == __import__("hashlib").sha256((small_dataset / "manifest.json").read_bytes()).hexdigest()
    )


def test_model_classes_are_matched_by_name(small_dataset: Path) -> None:
    dataset = load_coco(small_dataset, class_names=["sku_blue", "person", "sku_red", "sku_extra"])
    assert dataset.category_ids == [3, 1, 2, -1]
    first = load_coco(small_dataset).images[0]
    remapped = dataset.images[0]
    names_first = [["person", "sku_red", "sku_blue"][label] for label in first.labels]
    names_remapped = [["sku_blue", "person", "sku_red", "sku_extra"][label] for label in remapped.labels]
    assert names_first == names_remapped


def test_dataset_category_unknown_to_the_model_is_an_error(small_dataset: Path) -> None:
    with pytest.raises(DataError, match=r"categories \['sku_blue'\] that the model does not know"):
        load_coco(small_dataset, class_names=["person", "sku_red"])


def test_missing_dataset_and_json(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="does not exist"):
        load_coco(tmp_path / "nothing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match=r"no COCO detection JSON: expected .*coco/detection.json"):
        load_coco(tmp_path / "empty")


def test_missing_image_names_the_file(small_dataset: Path, tmp_path: Path) -> None:
    root = _copy(small_dataset, tmp_path)
    (root / "coco" / "images" / "synthetic_000005.png").unlink()
    with pytest.raises(DataError, match=r"1 image file\(s\) not found: synthetic_000005.png"):
        load_coco(root)


def test_malformed_json(small_dataset: Path, tmp_path: Path) -> None:
    root = _copy(small_dataset, tmp_path)
    path = root / "coco" / "detection.json"
    path.write_text('{"images": [')
    with pytest.raises(DataError, match=rf"malformed COCO JSON {path}"):
        load_coco(root)
    path.write_text('{"images": [], "categories": []}')
    with pytest.raises(DataError, match="missing list 'annotations'"):
        load_coco(root)


def test_bad_bbox_is_named(small_dataset: Path, tmp_path: Path) -> None:
    root = _copy(small_dataset, tmp_path)
    _edit_json(root, lambda coco: coco["annotations"][0].update(bbox=[1, 2, 3]))
    with pytest.raises(DataError, match=r"annotation 1 needs bbox \[x, y, w, h\]"):
        load_coco(root)


def test_unknown_category_is_an_error(small_dataset: Path, tmp_path: Path) -> None:
    root = _copy(small_dataset, tmp_path)
    _edit_json(root, lambda coco: coco["annotations"][2].update(category_id=42))
    with pytest.raises(
        DataError,
        match=r"annotation 3 has unknown category_id 42 \(field 'category_id'\); "
        r"known categories: \[1, 2, 3\]",
    ):
        load_coco(root)


def test_unknown_image_id_is_an_error(small_dataset: Path, tmp_path: Path) -> None:
    root = _copy(small_dataset, tmp_path)
    _edit_json(root, lambda coco: coco["annotations"][0].update(image_id=999))
    with pytest.raises(DataError, match="unknown image_id 999"):
        load_coco(root)


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        # duplicate image id: the second image takes the first one's id
        (
            lambda coco: coco["images"][1].update(id=coco["images"][0]["id"]),
            r"image id 1 appears twice \(field 'id' of images\[1\]\)",
        ),
        (
            lambda coco: coco["images"][1].update(file_name=coco["images"][0]["file_name"]),
            r"image 2: field 'file_name' 'synthetic_000001.png' is also the file of image 1",
        ),
        (lambda coco: coco["images"][0].update(id=True), r"images\[0\]: field 'id' must be an integer"),
        (lambda coco: coco["images"][0].update(width=-5), r"image 1: field 'width' must be a non-negative"),
        (
            lambda coco: coco["annotations"][1].update(id=coco["annotations"][0]["id"]),
            r"annotation id 1 appears twice \(field 'id' of annotations\[1\]\)",
        ),
        (lambda coco: coco["annotations"][0].pop("id"), r"annotations\[0\]: field 'id' must be an integer"),
        (
            lambda coco: coco["annotations"][0].update(image_id=999),
            r"annotation 1: field 'image_id' names unknown image_id 999",
        ),
        (
            lambda coco: coco["annotations"][0].update(bbox=[1, 2, float("nan"), 4]),
            r"annotation 1 needs bbox \[x, y, w, h\] of finite numbers \(field 'bbox'\)",
        ),
        (
            lambda coco: coco["annotations"][0].update(bbox=[1, 2, 3, float("inf")]),
            r"annotation 1 needs bbox .* of finite numbers",
        ),
        (
            lambda coco: coco["annotations"][0].update(bbox=[1, 2, -3, 4]),
            r"annotation 1: field 'bbox' has a negative width or height \[-3, 4\]",
        ),
        (
            lambda coco: coco["annotations"][0].update(bbox=[1, 2, True, 4]),
            r"annotation 1 needs bbox \[x, y, w, h\] of finite numbers",
        ),
        (
            lambda coco: coco["categories"][1].update(id=1),
            r"category id 1 appears twice \(field 'id' of categories\[1\]\)",
        ),
        (
            lambda coco: coco["categories"][1].update(name="person"),
            r"category name 'person' appears twice",
        ),
    ],
)
def test_malformed_records_name_the_file_record_and_field(
    small_dataset: Path, tmp_path: Path, edit, message: str
) -> None:
    root = _copy(small_dataset, tmp_path)
    _edit_json(root, edit)
    path = root / "coco" / "detection.json"
    with pytest.raises(DataError, match=rf"{path}: .*{message}"):
        load_coco(root)


def test_zero_size_boxes_are_allowed_but_not_learned(small_dataset: Path, tmp_path: Path) -> None:
    root = _copy(small_dataset, tmp_path)
    _edit_json(root, lambda coco: coco["annotations"][0].update(bbox=[1, 2, 0, 4]))
    image_id = json.loads((root / "coco" / "detection.json").read_text())["annotations"][0]["image_id"]
    before = next(r for r in load_coco(small_dataset).images if r.image_id == image_id)
    after = next(r for r in load_coco(root).images if r.image_id == image_id)
    assert len(after.labels) == len(before.labels) - 1


def test_held_products_are_read_from_held_by(small_dataset: Path, tmp_path: Path) -> None:
    root = _copy(small_dataset, tmp_path)
    _edit_json(root, lambda coco: coco["annotations"][1].update(held_by=3))
    image_id = json.loads((root / "coco" / "detection.json").read_text())["annotations"][1]["image_id"]
    records = load_coco(root).images
    held = next(r for r in records if r.image_id == image_id).held
    assert held.dtype == bool and held.sum() == 1
    assert sum(int(r.held.sum()) for r in records) == 1  # the others have no held_by


def test_crowd_annotations_are_background_unless_their_class_is_learned(
    small_dataset: Path, tmp_path: Path
) -> None:
    root = _copy(small_dataset, tmp_path)
    coco = json.loads((root / "coco" / "detection.json").read_text())
    names = {c["id"]: c["name"] for c in coco["categories"]}
    first = coco["annotations"][0]
    _edit_json(root, lambda data: data["annotations"][0].update(iscrowd=1))

    def count(**kwargs) -> int:
        record = next(r for r in load_coco(root, **kwargs).images if r.image_id == first["image_id"])
        return len(record.labels)

    as_before = next(r for r in load_coco(small_dataset).images if r.image_id == first["image_id"])
    assert count() == len(as_before.labels) - 1  # a crowd region is left out: background
    assert count(learn_crowd=(names[first["category_id"]],)) == len(as_before.labels)
    other = next(name for name in names.values() if name != names[first["category_id"]])
    assert count(learn_crowd=(other,)) == len(as_before.labels) - 1


def test_encode_targets_peaks_and_regression() -> None:
    boxes = np.array([[8.0, 8.0, 24.0, 40.0]], np.float32)
    targets = encode_targets(boxes, np.array([1]), num_classes=2, height=64, width=64)
    heatmap = targets["heatmap"]
    assert heatmap.shape == (2, 16, 16)
    assert heatmap[0].max() == 0.0
    assert heatmap[1, 6, 4] == 1.0 and (heatmap[1] == 1.0).sum() == 1
    assert 0 < heatmap[1, 5, 4] < 1
    assert targets["mask"].sum() == 1
    assert targets["index"][0] == 6 * 16 + 4
    np.testing.assert_allclose(targets["size"][0], [4.0, 8.0])
    np.testing.assert_allclose(targets["offset"][0], [0.0, 0.0])


def _record(labels: list[int]) -> ImageRecord:
    return ImageRecord(
        image_id=0,
        sample_id="x",
        path=Path("x.png"),
        width=1,
        height=1,
        boxes=np.zeros((len(labels), 4), np.float32),
        labels=np.array(labels, dtype=np.int64),
    )


def test_balanced_weights_follow_the_rarest_class() -> None:
    # class 0 in 4 images, class 1 in 1 image, class 2 in 2 images
    records = [_record([0]), _record([0, 2]), _record([0, 1]), _record([0, 2]), _record([])]
    weights = balanced_sample_weights(records, 3)
    expected = np.array([1 / 4, 1 / 2, 1 / 1, 1 / 2, 1 / 4])
    np.testing.assert_allclose(weights, expected / expected.sum())


def test_training_set_items_and_collate(small_dataset: Path) -> None:
    dataset = load_coco(small_dataset)
    training = DetectionTrainingSet(dataset=dataset, flip_probability=0.5, seed=0)
    images, targets = collate([training[0], training[1]])
    assert images.shape == (2, 3, 128, 160) and images.dtype == torch.uint8
    assert targets["heatmap"].shape == (2, 3, 32, 40)
    assert targets["mask"].sum() == len(dataset.images[0].labels) + len(dataset.images[1].labels)
