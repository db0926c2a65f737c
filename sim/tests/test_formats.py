"""The exports are read by the real readers: pycocotools, py-motmetrics, cv2.VideoCapture."""

from __future__ import annotations

import configparser
import contextlib
import io
import json
from collections import Counter

import cv2
import numpy as np
import pytest
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

from walkout_sim.layout import load_layout

KEYPOINT_SIGMAS = np.array([0.079, 0.079, 0.079, 0.072, 0.072, 0.062, 0.062])


def _gt_as_predictions(coco: COCO, with_keypoints: bool) -> list[dict]:
    predictions = []
    for annotation in coco.dataset["annotations"]:
        if annotation["iscrowd"]:
            continue
        prediction = {
            "image_id": annotation["image_id"],
            "category_id": annotation["category_id"],
            "bbox": annotation["bbox"],
            "score": 1.0,
        }
        if with_keypoints:
            prediction["keypoints"] = annotation["keypoints"]
        predictions.append(prediction)
    return predictions


def _evaluate(coco: COCO, predictions: list[dict], kind: str) -> COCOeval:
    with contextlib.redirect_stdout(io.StringIO()):
        evaluation = COCOeval(coco, coco.loadRes(predictions), kind)
        if kind == "keypoints":
            evaluation.params.kpt_oks_sigmas = KEYPOINT_SIGMAS
        evaluation.evaluate()
        evaluation.accumulate()
        evaluation.summarize()
    return evaluation


@pytest.fixture()
def coco_files(train_split):
    root, _ = train_split
    with contextlib.redirect_stdout(io.StringIO()):
        detection = COCO(str(root / "coco" / "detection.json"))
        keypoints = COCO(str(root / "coco" / "keypoints.json"))
    return root, detection, keypoints


def test_pycocotools_scores_ground_truth_as_predictions_at_ap_1(coco_files):
    _, detection, _ = coco_files
    # COCO's default of 100 detections per image is enough: the default store shows at most ~82 objects.
    per_image = Counter(a["image_id"] for a in detection.dataset["annotations"])
    assert max(per_image.values()) <= 100
    evaluation = _evaluate(detection, _gt_as_predictions(detection, False), "bbox")
    assert evaluation.stats[0] == pytest.approx(1.0)  # AP@[.5:.95]
    assert evaluation.stats[1] == pytest.approx(1.0)  # AP50
    # Every category that occurs has AP 1 (precision array: [T, R, K, A, M]; -1 where a class is absent).
    precision = evaluation.eval["precision"][0, :, :, 0, -1]
    present = {a["category_id"] for a in detection.dataset["annotations"] if not a["iscrowd"]}
    for k, category in enumerate(evaluation.params.catIds):
        if category in present:
            assert precision[:, k].min() == pytest.approx(1.0), category


def test_pycocotools_keypoints_ground_truth_scores_oks_ap_1(coco_files):
    _, _, keypoints = coco_files
    evaluation = _evaluate(keypoints, _gt_as_predictions(keypoints, True), "keypoints")
    assert evaluation.stats[0] == pytest.approx(1.0)


def test_predictions_that_miss_an_object_do_not_score_1(coco_files):
    """The AP checks above can fail: dropping a third of the predictions lowers AP below 1."""
    _, detection, _ = coco_files
    predictions = _gt_as_predictions(detection, False)
    evaluation = _evaluate(detection, predictions[::3], "bbox")
    assert evaluation.stats[1] < 0.9


def test_coco_files_describe_the_export(coco_files):
    root, detection, keypoints = coco_files
    categories = detection.dataset["categories"]
    assert categories[0] == {"id": 1, "name": "person", "supercategory": "person"}
    assert len(categories) >= 13
    person = keypoints.dataset["categories"][0]
    assert person["keypoints"] == [
        "head",
        "left_shoulder",
        "right_shoulder",
        "left_elbow",
        "right_elbow",
        "left_wrist",
        "right_wrist",
    ]
    assert len(detection.dataset["images"]) == 80  # 2 videos x 40 frames, stride 1
    for image in detection.dataset["images"][:5]:
        path = root / "coco" / "images" / image["file_name"]
        assert image["file_name"] == f"{image['video']}_{image['frame']:06d}.png"
        pixels = cv2.imread(str(path))
        assert pixels.shape == (240, 320, 3)
    # Every person annotation has 7 keypoints with visibility in {0, 1, 2}.
    for annotation in keypoints.dataset["annotations"]:
        assert len(annotation["keypoints"]) == 21
        assert set(annotation["keypoints"][2::3]) <= {0, 1, 2}
        assert annotation["num_keypoints"] == sum(v > 0 for v in annotation["keypoints"][2::3])


def test_products_are_small_and_classes_are_long_tailed(coco_files):
    _, detection, _ = coco_files
    products = [a for a in detection.dataset["annotations"] if a["category_id"] > 1 and not a["iscrowd"]]
    sizes = [max(a["bbox"][2], a["bbox"][3]) for a in products]
    assert min(sizes) >= 8 and max(sizes) <= 20
    counts = Counter(a["category_id"] for a in products)
    assert max(counts.values()) >= 4 * min(counts.values())


@pytest.fixture()
def motmetrics_with_numpy2_shim(monkeypatch):
    """motmetrics 1.4.0 calls np.asfarray, which NumPy 2 removed; give it back for this test only.

    Why a shim and not a patched motmetrics: the fix is upstream's; this keeps the real reader while
    confining the compatibility fix to the test that needs it.
    """
    import motmetrics

    if not hasattr(np, "asfarray"):
        monkeypatch.setattr(
            np, "asfarray", lambda a, dtype=np.float64: np.asarray(a, dtype=dtype), raising=False
        )
    return motmetrics


def test_motmetrics_scores_each_gt_against_itself_at_mota_1(
    train_split, crowd_scenario, motmetrics_with_numpy2_shim
):
    mm = motmetrics_with_numpy2_shim
    roots = [train_split[0], crowd_scenario[0]]
    gt_files = [path for root in roots for path in sorted((root / "videos").glob("*/gt/gt.txt"))]
    assert len(gt_files) == 3
    for gt_file in gt_files:
        gt = mm.io.loadtxt(str(gt_file), fmt="mot15-2D", min_confidence=1)
        assert len(gt) > 0
        accumulator = mm.utils.compare_to_groundtruth(gt, gt, "iou", distth=0.5)
        summary = mm.metrics.create().compute(
            accumulator, metrics=["mota", "idf1", "num_switches"], name="self"
        )
        assert summary["mota"].iloc[0] == pytest.approx(1.0)
        assert summary["idf1"].iloc[0] == pytest.approx(1.0)
        assert summary["num_switches"].iloc[0] == 0


def test_gt_txt_rows_match_the_video_annotations(crowd_scenario):
    root, _ = crowd_scenario
    video = root / "videos" / "crowd_of_six"
    all_rows = [line.split(",") for line in (video / "gt" / "gt.txt").read_text().splitlines()]
    assert all(len(row) == 9 and row[6] in ("0", "1") and row[7:] == ["1", "1"] for row in all_rows)
    rows = [row for row in all_rows if row[6] == "1"]
    truth = json.loads((video / "annotations.json").read_text())
    persons = [a for a in truth["annotations"] if a["category_id"] == 1 and not a["iscrowd"]]
    hidden = [a for a in truth["annotations"] if a["category_id"] == 1 and a["iscrowd"]]
    assert len(rows) == len(persons) and len(all_rows) - len(rows) == len(hidden)
    # The same 0-based pixel boxes as the COCO annotations, row for row.
    from_coco = sorted((a["image_id"], a["track_id"], *a["bbox"]) for a in persons)
    assert sorted(tuple(int(v) for v in row[:6]) for row in rows) == from_coco
    assert {int(row[1]) for row in rows} == {1, 2, 3, 4, 5, 6}
    held = [a for a in truth["annotations"] if "held_by" in a]
    assert held and all(a["category_id"] > 1 for a in held)


def test_video_is_readable_and_seqinfo_matches(train_split):
    root, _ = train_split
    video = root / "videos" / "train_0000"
    capture = cv2.VideoCapture(str(video / "video.avi"))
    frames = 0
    while True:
        ok, frame = capture.read()
        if not ok:
            break
        assert frame.shape == (240, 320, 3)
        frames += 1
    capture.release()
    seqinfo = configparser.ConfigParser()
    seqinfo.read(video / "seqinfo.ini")
    assert frames == 40 == int(seqinfo["Sequence"]["seqLength"])
    assert seqinfo["Sequence"]["frameRate"] == "10"


def test_each_video_records_its_shuffled_planogram(train_split):
    root, _ = train_split
    base = load_layout(root / "layout.yaml")
    planograms = []
    for name in ("train_0000", "train_0001"):
        video = root / "videos" / name
        layout = load_layout(video / "layout.yaml")
        assert layout.catalog == base.catalog and layout.shelves == base.shelves
        assert Counter(s.sku for s in layout.slots) == Counter(s.sku for s in base.slots)
        planograms.append([s.sku for s in layout.slots])
        # Frame 1: every product on a shelf is the SKU this video's planogram puts there.
        truth = json.loads((video / "annotations.json").read_text())
        names = {c["id"]: c["name"] for c in truth["categories"]}
        on_shelves = [a for a in truth["annotations"] if a["image_id"] == 1 and "slot" in a]
        assert len(on_shelves) >= 40
        for annotation in on_shelves:
            assert names[annotation["category_id"]] == layout.slot_by_id(annotation["slot"]).sku
    assert planograms[0] != planograms[1] != [s.sku for s in base.slots]


def test_every_receipt_equals_the_sum_of_its_events(train_split, crowd_scenario):
    summaries = [*train_split[1], crowd_scenario[1]]
    roots = [train_split[0]] * len(train_split[1]) + [crowd_scenario[0]]
    checked = 0
    for root, summary in zip(roots, summaries, strict=True):
        video = root / "videos" / summary.name
        events = json.loads((video / "events.json").read_text())
        receipts = json.loads((video / "receipts.json").read_text())
        assert events == summary.events
        for shopper, receipt in receipts.items():
            total: Counter = Counter()
            for event in events:
                if str(event["shopper_id"]) == shopper:
                    total[event["sku"]] += 1 if event["type"] == "pick" else -1
            assert receipt == {sku: n for sku, n in total.items() if n}
            checked += 1
    assert checked >= 6  # all six crowd shoppers left, so each has a receipt


def test_arms_and_bodies_really_occlude_products(crowd_scenario):
    """Visibility comes from the rendered pixels: shelf products under arms are partly or mostly hidden."""
    root, _ = crowd_scenario
    truth = json.loads((root / "videos" / "crowd_of_six" / "annotations.json").read_text())
    on_shelves = [a for a in truth["annotations"] if "slot" in a]
    partly = [a for a in on_shelves if 0.5 <= a["visibility"] < 1.0 and not a["iscrowd"]]
    mostly = [a for a in on_shelves if a["iscrowd"]]
    assert partly and mostly
    assert all(a["visibility"] < 0.5 for a in mostly)
    # Held products are annotated in the hand of the shopper holding them.
    held = [a for a in truth["annotations"] if "held_by" in a]
    assert {a["held_by"] for a in held} >= {1, 3, 5}
