"""`report.verify_dataset`: a dataset folder must match its manifest.json file by file."""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
from pathlib import Path

import pytest

from walkout_ci.errors import DataError, ReportError
from walkout_ci.report import dataset_hash, verify_dataset


def make_split(root: Path) -> Path:
    """A tiny export shaped like walkout-sim's: COCO files, a frame, gt.txt and a manifest of all."""
    detection = {
        "images": [{"id": 1, "file_name": "v_000001.png", "width": 4, "height": 4}],
        "annotations": [{"id": 1, "image_id": 1, "category_id": 2, "bbox": [0, 0, 2, 2], "iscrowd": 0}],
        "categories": [{"id": 1, "name": "person"}, {"id": 2, "name": "sku_01"}],
    }
    files = {
        "coco/detection.json": json.dumps(detection),
        "coco/images/v_000001.png": "png-bytes",
        "videos/v/gt/gt.txt": "1,1,0,0,2,2,1,1,1\n",
        "layout.yaml": "shelves: []\n",
    }
    for relpath, text in files.items():
        (root / relpath).parent.mkdir(parents=True, exist_ok=True)
        (root / relpath).write_text(text)
    manifest = {
        "format_version": 1,
        "split": "val",
        "blind": False,
        "generator": {},
        "files": {relpath: hashlib.sha256(text.encode()).hexdigest() for relpath, text in files.items()},
        "content_hashes": ["f" * 64],
    }
    (root / "manifest.json").write_text(json.dumps(manifest, indent=1))
    return root


def test_an_untouched_split_verifies_and_gives_its_dataset_hash(tmp_path: Path) -> None:
    split = make_split(tmp_path / "val")
    assert verify_dataset(split) == dataset_hash(split)


def test_an_edited_copy_of_a_split_is_refused_naming_the_file(tmp_path: Path) -> None:
    split = make_split(tmp_path / "val")
    copy = tmp_path / "copy"
    shutil.copytree(split, copy)
    path = copy / "coco" / "detection.json"
    detection = json.loads(path.read_text())
    detection["annotations"][0]["category_id"] = 1  # one annotation changed
    path.write_text(json.dumps(detection))
    expected = json.loads((split / "manifest.json").read_text())["files"]["coco/detection.json"]
    actual = hashlib.sha256(path.read_bytes()).hexdigest()
    with pytest.raises(DataError) as caught:
        verify_dataset(copy)
    message = str(caught.value)
    assert "coco/detection.json" in message and expected in message and actual in message
    assert isinstance(caught.value, ReportError) and caught.value.exit_code == 2
    assert verify_dataset(split) == dataset_hash(split)  # the original still verifies


@pytest.mark.parametrize("change", ["unlisted", "missing", "symlink", "symlinked_dir", "fifo"])
def test_extra_missing_and_linked_files_are_refused(tmp_path: Path, change: str) -> None:
    split = make_split(tmp_path / "val")
    if change == "unlisted":
        (split / "coco" / "images" / "extra.png").write_bytes(b"planted")
        name = "coco/images/extra.png"
    elif change == "missing":
        (split / "videos" / "v" / "gt" / "gt.txt").unlink()
        name = "videos/v/gt/gt.txt"
    elif change == "symlink":
        (split / "layout.yaml").unlink()
        (split / "layout.yaml").symlink_to("/etc/passwd")
        name = "layout.yaml"
    elif change == "symlinked_dir":
        (split / "elsewhere").symlink_to(tmp_path, target_is_directory=True)
        name = "elsewhere"
    else:
        os.mkfifo(split / "coco" / "pipe")
        name = "coco/pipe"
    with pytest.raises(DataError, match=re.escape(name)):
        verify_dataset(split)


@pytest.mark.parametrize(
    ("files", "field"),
    [
        (None, "'files'"),
        ({"../outside.txt": "a" * 64}, "../outside.txt"),
        ({"/etc/passwd": "a" * 64}, "/etc/passwd"),
        ({"layout.yaml": "not-a-hash"}, "64 lowercase hex"),
    ],
)
def test_a_malformed_manifest_is_refused_naming_the_field(tmp_path: Path, files, field: str) -> None:
    split = make_split(tmp_path / "val")
    manifest = json.loads((split / "manifest.json").read_text())
    if files is None:
        del manifest["files"]
    else:
        manifest["files"] = files
    (split / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(DataError, match=r"manifest\.json") as caught:
        verify_dataset(split)
    assert field in str(caught.value)


def test_a_folder_without_manifest_is_refused(tmp_path: Path) -> None:
    with pytest.raises(DataError, match=r"no manifest\.json"):
        verify_dataset(tmp_path)
