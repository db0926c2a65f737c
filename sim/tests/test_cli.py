"""The walkout-sim CLI, called in-process: generate, scenario, show, and its exit codes."""

from __future__ import annotations

import json

import cv2
import pytest

from walkout_sim.cli import main


def test_generate_writes_the_export_layout(tmp_path, capsys):
    out = tmp_path / "val"
    assert (
        main(
            [
                "generate",
                "--split",
                "val",
                "--videos",
                "1",
                "--frames",
                "6",
                "--seed",
                "3",
                "--out",
                str(out),
                "--quiet",
            ]
        )
        == 0
    )
    for relative in (
        "manifest.json",
        "layout.yaml",
        "coco/detection.json",
        "coco/keypoints.json",
        "coco/images/val_0000_000001.png",
        "videos/val_0000/video.avi",
        "videos/val_0000/seqinfo.ini",
        "videos/val_0000/gt/gt.txt",
        "videos/val_0000/annotations.json",
        "videos/val_0000/events.json",
        "videos/val_0000/receipts.json",
        "videos/val_0000/layout.yaml",
    ):
        assert (out / relative).is_file(), relative
    assert json.loads((out / "manifest.json").read_text())["split"] == "val"
    assert "wrote" in capsys.readouterr().out


def test_generate_refuses_to_overwrite_without_force(tmp_path, capsys):
    out = tmp_path / "train"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    args = ["generate", "--split", "train", "--videos", "1", "--frames", "2", "--out", str(out), "--quiet"]
    assert main(args) == 2
    assert "--force" in capsys.readouterr().err
    assert (out / "keep.txt").read_text() == "mine"
    assert main([*args, "--force"]) == 0
    assert not (out / "keep.txt").exists() and (out / "manifest.json").exists()


def test_blind_without_secret_exits_2_with_a_clear_message(tmp_path, capsys, monkeypatch):
    monkeypatch.delenv("WALKOUT_BLIND_SEED", raising=False)
    assert (
        main(["generate", "--split", "blind", "--videos", "1", "--frames", "2", "--out", str(tmp_path / "b")])
        == 2
    )
    assert "WALKOUT_BLIND_SEED" in capsys.readouterr().err


def test_image_stride_thins_the_coco_images(tmp_path):
    out = tmp_path / "s"
    assert (
        main(
            [
                "generate",
                "--split",
                "train",
                "--videos",
                "1",
                "--frames",
                "10",
                "--image-stride",
                "5",
                "--out",
                str(out),
                "--quiet",
            ]
        )
        == 0
    )
    images = json.loads((out / "coco" / "detection.json").read_text())["images"]
    assert [image["frame"] for image in images] == [1, 6]
    annotations = json.loads((out / "videos" / "train_0000" / "annotations.json").read_text())
    assert len(annotations["images"]) == 10  # the per-video ground truth keeps every frame


def test_scenario_list_and_render(tmp_path, capsys):
    assert main(["scenario", "--list"]) == 0
    names = capsys.readouterr().out.split()
    assert "single_pick" in names
    fast = tmp_path / "fast.yaml"
    fast.write_text("output: {image_stride: 50, png_compression: 0}\n")
    assert (
        main(["scenario", "single_pick", "--out", str(tmp_path / "one"), "--quiet", "--config", str(fast)])
        == 0
    )
    assert json.loads((tmp_path / "one" / "manifest.json").read_text())["split"] == "scenario"


@pytest.mark.parametrize("suffix", [".png", ".avi"])
def test_show_writes_a_readable_preview(train_split, tmp_path, suffix):
    out = tmp_path / f"preview{suffix}"
    assert main(["show", str(train_split[0]), "--out", str(out), "--frames", "4"]) == 0
    if suffix == ".png":
        sheet = cv2.imread(str(out))
        assert sheet is not None and sheet.shape == (2 * 240, 4 * 2 * 320, 3)
    else:
        capture = cv2.VideoCapture(str(out))
        ok, frame = capture.read()
        count = 1
        while capture.read()[0]:
            count += 1
        capture.release()
        assert ok and frame.shape == (2 * 240, 2 * 320, 3) and count == 40


def test_show_rejects_a_folder_without_an_export(tmp_path, capsys):
    assert main(["show", str(tmp_path), "--out", str(tmp_path / "x.png")]) == 2
    assert "annotations.json" in capsys.readouterr().err


def test_scenario_whose_events_differ_from_the_script_exits_1(tmp_path, capsys):
    """Four scripted picks from one slot holding three units: one hand comes back empty."""
    import yaml

    shoppers = [
        {"id": i, "start": start, "leave": False, "actions": [{"do": "pick", "slot": "W-01"}] * 2}
        for i, start in ((1, [33, 36]), (2, [60, 40]))
    ]
    path = tmp_path / "race.yaml"
    path.write_text(yaml.safe_dump({"name": "race", "frames": 200, "shoppers": shoppers}))
    fast = tmp_path / "fast.yaml"
    fast.write_text("output: {image_stride: 50, png_compression: 0}\n")
    assert (
        main(["scenario", str(path), "--out", str(tmp_path / "race"), "--quiet", "--config", str(fast)]) == 1
    )
    assert "events differ from the script" in capsys.readouterr().err
    events = json.loads((tmp_path / "race" / "videos" / "race" / "events.json").read_text())
    assert [e["slot"] for e in events] == ["W-01"] * 3
