"""Merge several walkout-sim exports (or COCO detection JSONs) into one training set.

    python merge_coco.py OUT_DIR PART_DIR [PART_DIR ...]

Writes OUT_DIR/detection.json whose image paths point into the parts (relative to OUT_DIR), with
image and annotation ids renumbered, and OUT_DIR/manifest.json joining the parts' manifests (their
frames' content hashes, so that training still records what it saw for the gate's blind-leakage
check). The parts' categories must be identical and no part may be blind. Lets data be generated in
parallel processes (one per part) and trained on as one set.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path


def merge(out_dir: Path, parts: list[Path]) -> dict:
    merged: dict = {"images": [], "annotations": [], "categories": None}
    for part in parts:
        json_path = part / "coco" / "detection.json" if part.is_dir() else part
        data = json.loads(json_path.read_text())
        if merged["categories"] is None:
            merged["categories"] = data["categories"]
            merged["info"] = data.get("info", {})
        elif data["categories"] != merged["categories"]:
            raise SystemExit(f"{json_path}: categories differ from the first part's")
        image_base = json_path.parent / "images"
        id_map = {}
        for image in data["images"]:
            new_id = len(merged["images"]) + 1
            id_map[image["id"]] = new_id
            source = image_base / image["file_name"]
            if not source.is_file():
                source = json_path.parent / image["file_name"]
            relative = os.path.relpath(source, out_dir)
            merged["images"].append({**image, "id": new_id, "file_name": relative})
        for annotation in data["annotations"]:
            merged["annotations"].append(
                {
                    **annotation,
                    "id": len(merged["annotations"]) + 1,
                    "image_id": id_map[annotation["image_id"]],
                }
            )
    return merged


def merge_manifests(parts: list[Path]) -> dict:
    """One training manifest from the parts' walkout-sim manifests (content hashes joined)."""
    hashes: set[str] = set()
    sources = []
    for part in parts:
        path = (part if part.is_dir() else part.parent.parent) / "manifest.json"
        if not path.is_file():
            raise SystemExit(f"{path}: missing; every part must be a walkout-sim export")
        manifest = json.loads(path.read_text())
        if manifest.get("blind") is True or manifest.get("split") != "train":
            raise SystemExit(f"{path}: split {manifest.get('split')!r}; only train splits may be merged")
        hashes.update(manifest.get("content_hashes", []))
        sources.append({"manifest": str(path), "generator": manifest.get("generator")})
    return {
        "format_version": 1,
        "split": "train",
        "blind": False,
        "merged_from": sources,
        "content_hashes": sorted(hashes),
    }


def _write_json(path: Path, data: dict) -> None:
    temporary = path.with_name(f".{path.name}.tmp")
    temporary.write_text(json.dumps(data))
    temporary.replace(path)


def main(argv: list[str]) -> int:
    if len(argv) < 2:
        print(__doc__.strip(), file=sys.stderr)
        return 2
    out_dir, parts = Path(argv[0]), [Path(p) for p in argv[1:]]
    out_dir.mkdir(parents=True, exist_ok=True)
    manifest = merge_manifests(parts)
    merged = merge(out_dir, parts)
    _write_json(out_dir / "manifest.json", manifest)
    _write_json(out_dir / "detection.json", merged)
    print(f"{out_dir / 'detection.json'}: {len(merged['images'])} images, {len(merged['annotations'])} boxes")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
