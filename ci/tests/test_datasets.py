"""walkout_ci.datasets / `walkout-ci dataset merge`: parts generated in parallel train as one set."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from walkout_ci.cli import main
from walkout_ci.datasets import merge_exports
from walkout_ci.errors import ConfigError

PERSON = {"id": 1, "name": "person", "keypoints": ["head", "left_wrist"], "skeleton": []}
COLA = {"id": 2, "name": "cola"}


def _export(
    root: Path, *, images: int, seed: int, split: str = "train", kinds=("detection", "keypoints")
) -> Path:
    """A walkout-sim-shaped export: manifest.json, coco/<kind>.json, coco/images/*.png (empty files)."""
    (root / "coco" / "images").mkdir(parents=True)
    image_list = []
    for index in range(images):
        name = f"v{seed}_{index:04d}.png"
        (root / "coco" / "images" / name).write_bytes(b"")
        image_list.append({"id": 100 + index, "file_name": name, "width": 320, "height": 240})
    if "detection" in kinds:
        boxes = [
            {"id": 500 + i, "image_id": image["id"], "category_id": 1 + i % 2, "bbox": [1, 2, 10, 10]}
            for i, image in enumerate(image_list)
        ]
        data = {"images": image_list, "annotations": boxes, "categories": [PERSON, COLA]}
        (root / "coco" / "detection.json").write_text(json.dumps(data))
    if "keypoints" in kinds:
        persons = [
            {"id": 900 + i, "image_id": image["id"], "category_id": 1, "keypoints": [5, 5, 2, 7, 7, 2]}
            for i, image in enumerate(image_list)
        ]
        data = {"images": image_list, "annotations": persons, "categories": [PERSON]}
        (root / "coco" / "keypoints.json").write_text(json.dumps(data))
    hashes = [f"{seed:02d}{index:062d}" for index in range(images)]
    manifest = {
        "split": split,
        "blind": split == "blind",
        "content_hashes": hashes,
        "generator": {"seed": seed},
    }
    (root / "manifest.json").write_text(json.dumps(manifest))
    return root


def test_parts_merge_into_one_set_per_coco_file_with_every_frame_hash(tmp_path: Path) -> None:
    first = _export(tmp_path / "part-busy-1", images=3, seed=1)
    second = _export(tmp_path / "part-hard-2", images=2, seed=2)
    out = tmp_path / "train"

    assert main(["dataset", "merge", str(out), str(first), str(second)]) == 0

    for name in ("detection.json", "keypoints.json"):
        data = json.loads((out / name).read_text())
        assert [image["id"] for image in data["images"]] == [1, 2, 3, 4, 5]
        assert [a["id"] for a in data["annotations"]] == [1, 2, 3, 4, 5]
        # each annotation still points at its own frame, renumbered
        by_id = {image["id"]: image["file_name"] for image in data["images"]}
        assert [by_id[a["image_id"]] for a in data["annotations"]] == [
            os.path.join("..", part, "coco", "images", f"v{seed}_{i:04d}.png")
            for part, seed, count in (("part-busy-1", 1, 3), ("part-hard-2", 2, 2))
            for i in range(count)
        ]
        assert all((out / image["file_name"]).is_file() for image in data["images"])
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["split"] == "train" and manifest["blind"] is False
    assert len(manifest["content_hashes"]) == 5
    assert [source["manifest"] for source in manifest["merged_from"]] == ["part-busy-1", "part-hard-2"]


@pytest.mark.parametrize("split", ["blind", "val"])
def test_a_part_that_is_not_a_train_split_is_refused_and_nothing_is_written(
    tmp_path: Path, split, capsys
) -> None:
    train = _export(tmp_path / "part0", images=2, seed=1)
    other = _export(tmp_path / "other", images=2, seed=2, split=split)
    out = tmp_path / "train"

    assert main(["dataset", "merge", str(out), str(train), str(other)]) == 2

    assert "only train splits" in capsys.readouterr().err
    assert not out.exists()


def test_a_file_only_some_parts_have_is_an_error_naming_the_parts_without_it(tmp_path: Path) -> None:
    both = _export(tmp_path / "both", images=1, seed=1)
    boxes_only = _export(tmp_path / "boxes_only", images=1, seed=2, kinds=("detection",))

    with pytest.raises(ConfigError, match=r"coco/keypoints.json is missing in .*boxes_only"):
        merge_exports(tmp_path / "train", [both, boxes_only])
    assert not (tmp_path / "train").exists()


def test_parts_with_different_categories_are_refused(tmp_path: Path) -> None:
    first = _export(tmp_path / "a", images=1, seed=1, kinds=("detection",))
    second = _export(tmp_path / "b", images=1, seed=2, kinds=("detection",))
    data = json.loads((second / "coco" / "detection.json").read_text())
    data["categories"][1]["name"] = "cola_zero"
    (second / "coco" / "detection.json").write_text(json.dumps(data))

    with pytest.raises(ConfigError, match="categories differ"):
        merge_exports(tmp_path / "train", [first, second])


def test_a_missing_part_or_manifest_is_an_error_naming_it(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not a folder"):
        merge_exports(tmp_path / "train", [tmp_path / "nowhere"])
    (tmp_path / "bare").mkdir()
    with pytest.raises(ConfigError, match=r"bare/manifest.json: missing"):
        merge_exports(tmp_path / "train", [tmp_path / "bare"])
