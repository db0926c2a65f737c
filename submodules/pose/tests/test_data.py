from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from walkout_pose.config import ModelConfig, TrainConfig
from walkout_pose.data import PersonCrops, load_keypoints_dataset, split_by_video, trainable
from walkout_pose.errors import DataError
from walkout_pose.predict import crop_persons
from walkout_pose.transforms import decode_heatmaps, heatmap_to_crop


def copy_split(source, tmp_path):
    target = tmp_path / "split"
    shutil.copytree(source, target)
    return target


def edit_annotations(split, change):
    path = split / "coco" / "keypoints.json"
    coco = json.loads(path.read_text())
    change(coco)
    path.write_text(json.dumps(coco))


def test_loads_a_split_from_its_root_its_coco_folder_or_the_file(tiny_split):
    for source in (tiny_split, tiny_split / "coco", tiny_split / "coco" / "keypoints.json"):
        dataset = load_keypoints_dataset(source)
        assert len(dataset.persons) == 36
        assert dataset.root == tiny_split
    person = dataset.persons[0]
    assert person.keypoints.shape == (7, 3)
    assert person.sample_id == f"{person.image_path.stem}#{person.annotation_id}"


def test_missing_folder_names_the_expected_file(tmp_path):
    with pytest.raises(DataError, match=r"coco/keypoints\.json"):
        load_keypoints_dataset(tmp_path)


def test_annotation_without_keypoints_is_a_clear_error(tiny_split, tmp_path):
    split = copy_split(tiny_split, tmp_path)
    edit_annotations(split, lambda coco: coco["annotations"][2].pop("keypoints"))
    with pytest.raises(DataError, match=r"annotation id 3 \(annotations\[2\]\) has no 'keypoints'"):
        load_keypoints_dataset(split)


def test_wrong_number_of_keypoints_is_a_clear_error(tiny_split, tmp_path):
    split = copy_split(tiny_split, tmp_path)
    edit_annotations(split, lambda coco: coco["annotations"][0].update(keypoints=[1, 2, 2] * 5))
    with pytest.raises(
        DataError, match=r"annotation id 1 .*field 'keypoints' holds 15 values; expected a list of 21"
    ):
        load_keypoints_dataset(split)


def test_duplicate_image_id_is_named(tiny_split, tmp_path):
    split = copy_split(tiny_split, tmp_path)
    edit_annotations(split, lambda coco: coco["images"][3].update(id=coco["images"][1]["id"]))
    with pytest.raises(
        DataError, match=r"keypoints\.json: images\[3\] \(id 2\) field 'id': duplicate image id"
    ):
        load_keypoints_dataset(split)


def test_duplicate_annotation_id_is_named(tiny_split, tmp_path):
    split = copy_split(tiny_split, tmp_path)
    edit_annotations(split, lambda coco: coco["annotations"][4].update(id=1))
    with pytest.raises(
        DataError, match=r"annotation id 1 \(annotations\[4\]\) field 'id': duplicate annotation id"
    ):
        load_keypoints_dataset(split)


@pytest.mark.parametrize(
    "bbox",
    [[float("nan"), 10, 20, 30], [10, 10, -20, 30], [-5, 10, 20, 30], [10, 10, 20]],
    ids=["nan", "negative-width", "negative-x", "three-numbers"],
)
def test_nan_negative_or_short_boxes_are_named(tiny_split, tmp_path, bbox):
    split = copy_split(tiny_split, tmp_path)
    edit_annotations(split, lambda coco: coco["annotations"][2].update(bbox=bbox))
    with pytest.raises(
        DataError, match=r"keypoints\.json: annotation id 3 \(annotations\[2\]\) field 'bbox'"
    ):
        load_keypoints_dataset(split)


def test_nan_keypoint_value_is_named(tiny_split, tmp_path):
    split = copy_split(tiny_split, tmp_path)
    edit_annotations(split, lambda coco: coco["annotations"][0]["keypoints"].__setitem__(4, float("nan")))
    with pytest.raises(DataError, match=r"field 'keypoints\[4\]' is nan"):
        load_keypoints_dataset(split)


def test_box_outside_the_frame_is_a_clear_error(tiny_split, tmp_path):
    split = copy_split(tiny_split, tmp_path)
    edit_annotations(split, lambda coco: coco["annotations"][1].update(bbox=[500, 10, 20, 30]))
    with pytest.raises(DataError, match="entirely outside its 160x120 frame"):
        load_keypoints_dataset(split)


def test_other_keypoint_names_are_refused(tiny_split, tmp_path):
    split = copy_split(tiny_split, tmp_path)
    edit_annotations(split, lambda coco: coco["categories"][0].update(keypoints=["nose"] * 7))
    with pytest.raises(DataError, match="expects exactly"):
        load_keypoints_dataset(split)


def test_a_detection_file_is_refused_with_a_hint(tiny_split, tmp_path):
    split = copy_split(tiny_split, tmp_path)
    edit_annotations(split, lambda coco: coco["categories"][0].pop("keypoints"))
    with pytest.raises(DataError, match="pass the keypoints file"):
        load_keypoints_dataset(split)


def test_missing_image_is_named(tiny_split, tmp_path):
    split = copy_split(tiny_split, tmp_path)
    (split / "coco" / "images" / "video1_000001.png").unlink()
    with pytest.raises(DataError, match=r"video1_000001\.png"):
        load_keypoints_dataset(split)


def test_validation_split_holds_out_whole_videos(tiny_split):
    dataset = load_keypoints_dataset(tiny_split)
    train, val = split_by_video(dataset.persons, 0.5, seed=0)
    train_videos = {p.image_path.stem.split("_")[0] for p in train}
    val_videos = {p.image_path.stem.split("_")[0] for p in val}
    assert train and val and not train_videos & val_videos
    assert len(train) + len(val) == len(dataset.persons)


def test_trainable_drops_persons_without_labelled_keypoints(tiny_split):
    dataset = load_keypoints_dataset(tiny_split)
    unlabelled = dataset.persons[0].keypoints.copy()
    unlabelled[:, 2] = 0
    first = dataset.persons[0]
    persons = [type(first)(**{**first.__dict__, "keypoints": unlabelled}), *dataset.persons[1:]]
    assert len(trainable(persons)) == len(dataset.persons) - 1


@pytest.mark.parametrize("flip", [0.0, 1.0])
def test_training_targets_point_back_to_the_annotated_keypoints(tiny_split, flip):
    dataset = load_keypoints_dataset(tiny_split)
    model_config = ModelConfig()
    train_config = TrainConfig(
        scale_jitter=0.0, rotation_degrees=0.0, shift_fraction=0.0, flip_probability=flip, color_jitter=0.0
    )
    crops = PersonCrops(
        persons=list(dataset.persons[:3]), model_config=model_config, train_config=train_config, augment=True
    )
    image, heatmaps, weights = crops[0]
    assert image.shape == (3, 64, 64) and heatmaps.shape == (7, 32, 32) and weights.shape == (7,)
    assert float(image.min()) >= 0.0 and float(image.max()) <= 1.0
    points, _ = decode_heatmaps(heatmaps.numpy()[None])
    crop_points = heatmap_to_crop(points[0], model_config.heatmap_stride)
    # Expected: the annotation mapped through the un-augmented crop; a flip mirrors it and swaps sides.
    _, matrices = crop_persons(
        np.zeros((120, 160, 3), np.uint8), dataset.persons[0].box_xyxy[None], model_config
    )
    expected = dataset.persons[0].keypoints[:, :2] @ matrices[0][:, :2].T + matrices[0][:, 2]
    if flip:
        expected[:, 0] = model_config.input_width - 1 - expected[:, 0]
        expected[[1, 2, 3, 4, 5, 6]] = expected[[2, 1, 4, 3, 6, 5]]
    visible = weights.numpy() > 0
    np.testing.assert_allclose(crop_points[visible], expected[visible], atol=0.1)
