"""`walkout-ci dataset merge`: detection parts generated in parallel train as one set, and still record
their frames (the merge itself lives in walkout_ci.datasets)."""

from __future__ import annotations

import json
from pathlib import Path

from synthetic import make_dataset

from walkout_ci.cli import main as walkout_ci_main
from walkout_detection.data import dataset_root, find_coco_json, load_coco


def test_merged_parts_load_as_one_dataset_with_every_frame_hash(tmp_path: Path) -> None:
    first = make_dataset(tmp_path / "part0", images=5, seed=1)
    second = make_dataset(tmp_path / "part1", images=3, seed=2)
    out = tmp_path / "train"
    assert walkout_ci_main(["dataset", "merge", str(out), str(first), str(second)]) == 0

    merged = load_coco(out)  # every image path resolves from the merged JSON's folder
    parts = [load_coco(first), load_coco(second)]
    assert len(merged.images) == 8
    assert sum(len(r.boxes) for r in merged.images) == sum(len(r.boxes) for p in parts for r in p.images)
    data = json.loads((out / "detection.json").read_text())
    assert [image["id"] for image in data["images"]] == list(range(1, 9))
    assert len({a["id"] for a in data["annotations"]}) == len(data["annotations"])

    # training reads manifest.json next to the JSON: the joined hashes of both parts
    assert dataset_root(find_coco_json(out)) == out
    manifest = json.loads((out / "manifest.json").read_text())
    hashes = set()
    for part in (first, second):
        hashes |= set(json.loads((part / "manifest.json").read_text())["content_hashes"])
    assert manifest["split"] == "train" and manifest["blind"] is False
    assert set(manifest["content_hashes"]) == hashes and len(hashes) == 8


def test_a_blind_part_is_refused_and_nothing_is_written(tmp_path: Path) -> None:
    train = make_dataset(tmp_path / "part0", images=2, seed=1)
    blind = make_dataset(tmp_path / "blind", images=2, seed=2, blind=True)
    out = tmp_path / "train"
    assert walkout_ci_main(["dataset", "merge", str(out), str(train), str(blind)]) == 2
    assert not (out / "detection.json").exists() and not (out / "manifest.json").exists()
