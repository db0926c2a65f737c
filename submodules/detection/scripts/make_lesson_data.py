"""Build the long-tailed training set of the lesson run (balanced vs plain sampler).

The default store stocks every SKU on a shelf in every frame, so no class is rare by image count.
This script makes one rare: it renders most videos with a layout whose `--rare-sku` slots are
restocked with `--common-sku` (a look-alike), and a few frames with the default layout, then merges
both exports into one standard COCO dataset (coco/detection.json + coco/images + manifest.json).

    python submodules/detection/scripts/make_lesson_data.py --out out/lesson/train

Only standard outputs are read: the exports' layout.yaml, COCO JSON, images and manifest.json.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import yaml


def generate(out: Path, *, videos: int, frames: int, stride: int, seed: int, config: Path | None) -> None:
    command = [
        "walkout-sim", "generate", "--split", "train", "--videos", str(videos), "--frames", str(frames),
        "--image-stride", str(stride), "--seed", str(seed), "--out", str(out), "--force", "--quiet",
    ]  # fmt: skip
    if config is not None:
        command += ["--config", str(config)]
    subprocess.run(command, check=True)


def restocked_layout(layout_path: Path, *, rare: str, common: str) -> dict:
    """The export's layout with every slot of `rare` restocked with `common`."""
    layout = yaml.safe_load(layout_path.read_text())
    slots = [slot for slot in layout["slots"] if slot["sku"] == rare]
    if not slots:
        raise SystemExit(f"no slot of {rare!r} in {layout_path}; choose --rare-sku from its catalog")
    for slot in slots:
        slot["sku"] = common
    return layout


def merge(parts: list[Path], out: Path) -> dict[str, int]:
    """Merge COCO exports (same categories) into `out`; image files are copied under new unique names."""
    images_dir = out / "coco" / "images"
    images_dir.mkdir(parents=True)
    merged = {"images": [], "annotations": [], "categories": None}
    content_hashes: list[str] = []
    image_id = annotation_id = 0
    for part_index, part in enumerate(parts):
        coco = json.loads((part / "coco" / "detection.json").read_text())
        if merged["categories"] is None:
            merged["categories"] = coco["categories"]
        elif coco["categories"] != merged["categories"]:
            raise SystemExit(f"{part} has other categories than {parts[0]}: cannot merge")
        new_ids = {}
        for image in coco["images"]:
            image_id += 1
            new_ids[image["id"]] = image_id
            name = f"part{part_index}_{Path(image['file_name']).name}"
            shutil.copy2(part / "coco" / "images" / Path(image["file_name"]).name, images_dir / name)
            merged["images"].append({**image, "id": image_id, "file_name": name})
        for annotation in coco["annotations"]:
            annotation_id += 1
            merged["annotations"].append(
                {**annotation, "id": annotation_id, "image_id": new_ids[annotation["image_id"]]}
            )
        content_hashes += json.loads((part / "manifest.json").read_text()).get("content_hashes", [])
    (out / "coco" / "detection.json").write_text(json.dumps(merged))
    manifest = {
        "format_version": 1,
        "split": "train",
        "blind": False,
        "generator": {"lesson_parts": [str(part) for part in parts]},
        "files": {},
        "content_hashes": content_hashes,
    }
    (out / "manifest.json").write_text(json.dumps(manifest, indent=1))
    shutil.copy2(parts[0] / "layout.yaml", out / "layout.yaml")
    counts: dict[str, int] = {}
    names = {category["id"]: category["name"] for category in merged["categories"]}
    for image in merged["images"]:
        present = {names[a["category_id"]] for a in merged["annotations"] if a["image_id"] == image["id"]}
        for name in present:
            counts[name] = counts.get(name, 0) + 1
    return counts


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--out", type=Path, required=True, help="merged dataset folder (replaced)")
    parser.add_argument("--rare-sku", default="cola_zero", help="the SKU made rare (default cola_zero)")
    parser.add_argument("--common-sku", default="cola", help="its look-alike that restocks its slots")
    parser.add_argument("--videos", type=int, default=16, help="videos without the rare SKU")
    parser.add_argument("--frames", type=int, default=150)
    parser.add_argument("--stride", type=int, default=4, help="every n-th frame goes to the dataset")
    parser.add_argument("--rare-frames", type=int, default=24, help="frames of the one video with it")
    parser.add_argument("--rare-stride", type=int, default=6)
    parser.add_argument("--seed", type=int, default=21)
    args = parser.parse_args(argv)

    with tempfile.TemporaryDirectory(prefix="lesson_") as temporary:
        work = Path(temporary)
        rare_part = work / "with_rare"
        generate(
            rare_part, videos=1, frames=args.rare_frames, stride=args.rare_stride, seed=args.seed, config=None
        )
        layout = restocked_layout(rare_part / "layout.yaml", rare=args.rare_sku, common=args.common_sku)
        (work / "layout.yaml").write_text(yaml.safe_dump(layout, sort_keys=False))
        (work / "config.yaml").write_text(yaml.safe_dump({"layout": str(work / "layout.yaml")}))
        common_part = work / "without_rare"
        generate(
            common_part, videos=args.videos, frames=args.frames, stride=args.stride, seed=args.seed + 1,
            config=work / "config.yaml",
        )  # fmt: skip
        if args.out.exists():
            shutil.rmtree(args.out)
        staging = args.out.with_name(f".{args.out.name}.partial")
        if staging.exists():
            shutil.rmtree(staging)
        counts = merge([common_part, rare_part], staging)
        os.replace(staging, args.out)
    total = sum(1 for _ in (args.out / "coco" / "images").iterdir())
    print(f"wrote {args.out}: {total} images; images containing each class:")
    for name, count in sorted(counts.items(), key=lambda item: item[1]):
        print(f"  {name:12s} {count}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
