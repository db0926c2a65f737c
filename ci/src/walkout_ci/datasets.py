"""Merge simulator training exports generated in parallel into one training set.

A walkout-sim export is a split folder holding `manifest.json` (split, blind flag, every frame's
content hash) and `coco/<kind>.json` with `coco/images/`. Training a model on more data than one
process generates in time means generating parts in parallel (one seed each) and training on their
union; `merge_exports` writes that union without copying images:

    OUT/detection.json, OUT/keypoints.json   every COCO file all parts have, image and annotation ids
                                             renumbered, `file_name`s relative to OUT (into the parts)
    OUT/manifest.json                        the parts' content hashes joined, so the experiment still
                                             records every frame it trained on (the gate's leakage check)

Both model packages read such a folder directly (`--data OUT`). Only train splits merge: a blind or
validation part is refused before anything is written.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from walkout_ci.errors import ConfigError
from walkout_ci.store import atomic_write_json

COCO_FILES = ("detection.json", "keypoints.json")


def _read_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as error:
        raise ConfigError(f"{path}: cannot read JSON ({error})") from error
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a JSON object")
    return data


def merge_manifests(parts: list[Path]) -> dict[str, Any]:
    """One train manifest from the parts' manifests: content hashes joined, sources listed."""
    hashes: set[str] = set()
    sources = []
    for part in parts:
        path = part / "manifest.json"
        if not path.is_file():
            raise ConfigError(f"{path}: missing; every part must be a walkout-sim export folder")
        manifest = _read_json(path)
        if manifest.get("blind") is not False or manifest.get("split") != "train":
            raise ConfigError(
                f"{path}: split {manifest.get('split')!r}, blind {manifest.get('blind')!r}; "
                "only train splits may be merged into a training set"
            )
        hashes.update(manifest.get("content_hashes", []))
        sources.append({"manifest": part.name, "generator": manifest.get("generator")})
    return {
        "format_version": 1,
        "split": "train",
        "blind": False,
        "merged_from": sources,
        "content_hashes": sorted(hashes),
    }


def merge_coco(out_dir: Path, json_paths: list[Path]) -> dict[str, Any]:
    """One COCO dict from several; ids renumbered from 1, image paths made relative to `out_dir`.

    Every file's categories must equal the first's (same ids, names, keypoints).
    """
    merged: dict[str, Any] = {"images": [], "annotations": [], "categories": None}
    for json_path in json_paths:
        data = _read_json(json_path)
        if merged["categories"] is None:
            merged["categories"] = data.get("categories")
            merged["info"] = data.get("info", {})
        elif data.get("categories") != merged["categories"]:
            raise ConfigError(f"{json_path}: categories differ from those of {json_paths[0]}")
        image_base = json_path.parent / "images"
        id_map = {}
        for image in data.get("images", []):
            new_id = len(merged["images"]) + 1
            id_map[image["id"]] = new_id
            source = image_base / image["file_name"]
            if not source.is_file():
                source = json_path.parent / image["file_name"]
            merged["images"].append({**image, "id": new_id, "file_name": os.path.relpath(source, out_dir)})
        for annotation in data.get("annotations", []):
            if annotation["image_id"] not in id_map:
                raise ConfigError(
                    f"{json_path}: annotation {annotation.get('id')!r} names image_id "
                    f"{annotation['image_id']!r}, which is not among its images"
                )
            renumbered = {"id": len(merged["annotations"]) + 1, "image_id": id_map[annotation["image_id"]]}
            merged["annotations"].append({**annotation, **renumbered})
    return merged


def merge_exports(out_dir: str | os.PathLike, parts: list[str | os.PathLike]) -> dict[str, dict[str, int]]:
    """Merge walkout-sim train exports into `out_dir`; returns {file: {"images": n, "annotations": n}}.

    Merges every COCO file that all parts have (`COCO_FILES`); a file only some parts have is an
    error naming them. Validates everything before writing; each output is written atomically.
    """
    out = Path(out_dir).absolute()
    part_dirs = [Path(part).absolute() for part in parts]
    if not part_dirs:
        raise ConfigError("no parts to merge: give at least one walkout-sim train export folder")
    for part in part_dirs:
        if not part.is_dir():
            raise ConfigError(f"{part}: not a folder; parts are walkout-sim export folders")
    manifest = merge_manifests(part_dirs)
    merged: dict[str, dict[str, Any]] = {}
    for name in COCO_FILES:
        having = [part for part in part_dirs if (part / "coco" / name).is_file()]
        if not having:
            continue
        if len(having) != len(part_dirs):
            missing = sorted(str(part) for part in part_dirs if part not in having)
            raise ConfigError(f"coco/{name} is missing in {', '.join(missing)} (other parts have it)")
        merged[name] = merge_coco(out, [part / "coco" / name for part in part_dirs])
    if not merged:
        raise ConfigError(f"no part has any of coco/{', coco/'.join(COCO_FILES)}")
    out.mkdir(parents=True, exist_ok=True)
    for name, data in merged.items():
        atomic_write_json(out / name, data)
    # The manifest last: a folder with a manifest is a complete training set.
    atomic_write_json(out / "manifest.json", manifest)
    return {
        name: {"images": len(data["images"]), "annotations": len(data["annotations"])}
        for name, data in merged.items()
    }
