"""`walkout-pose`: train, evaluate and predict from the command line.

    walkout-pose train --data out/sim/train --out runs/pose [--val-data DIR] [--config pose.yaml]
    walkout-pose evaluate --model REF --data DIR --report-dir DIR
    walkout-pose predict --model REF --image frame.png --box 10,20,60,140 [--box ...] --out keypoints.json
    walkout-pose predict --model REF --data DIR [--detections dets.json] --out results.json

REF is a ClearML experiment id, a model_ref.yaml or a checkpoint path. Exit codes: 0 ok, 2 bad input
or could not evaluate (an evaluation that errors never passes).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import tempfile
from pathlib import Path

import cv2
import numpy as np

from walkout_pose.config import KEYPOINT_NAMES, load_config
from walkout_pose.errors import InputError, PoseError


def _parse_box(text: str) -> list[float]:
    try:
        values = [float(part) for part in text.split(",")]
    except ValueError:
        values = []
    if len(values) != 4:
        raise argparse.ArgumentTypeError(f"a box is x1,y1,x2,y2 in frame pixels; got {text!r}")
    return values


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="walkout-pose", description="Top-down shopper pose estimation.")
    commands = parser.add_subparsers(dest="command", required=True)

    train = commands.add_parser("train", help="train a model on a COCO keypoints split")
    train.add_argument(
        "--data", required=True, help="training split (a walkout-sim export or COCO keypoints)"
    )
    train.add_argument("--val-data", help="validation split (default: hold out whole videos of --data)")
    train.add_argument("--out", required=True, help="output folder (checkpoints, TensorBoard, summary)")
    train.add_argument("--config", help="YAML config (sections model/train/evaluate; default: built-in)")
    train.add_argument("--epochs", type=int, help="override train.epochs")
    train.add_argument("--name", default="train", help="experiment name")
    train.add_argument("--no-progress", action="store_true", help="no progress bars")

    evaluate = commands.add_parser("evaluate", help="evaluate a model and write report.json")
    evaluate.add_argument("--model", required=True, help="experiment id, model_ref.yaml or checkpoint path")
    evaluate.add_argument("--data", required=True, help="split to evaluate on")
    evaluate.add_argument("--report-dir", required=True, help="folder for report.json and debug images")
    evaluate.add_argument(
        "--config", help="YAML whose `evaluate` section overrides the evaluation settings (sigmas...)"
    )
    evaluate.add_argument("--device", default="cpu", help="cpu or cuda")
    evaluate.add_argument("--no-progress", action="store_true", help="no progress bars")

    predict = commands.add_parser("predict", help="keypoints for person boxes")
    predict.add_argument("--model", required=True, help="experiment id, model_ref.yaml or checkpoint path")
    source = predict.add_mutually_exclusive_group(required=True)
    source.add_argument("--image", help="one frame (use with --box)")
    source.add_argument("--data", help="a split: every frame, with its ground-truth boxes or --detections")
    predict.add_argument(
        "--box", type=_parse_box, action="append", default=[], help="x1,y1,x2,y2 (repeatable)"
    )
    predict.add_argument("--detections", help="COCO detection results JSON (category 1 = person) for --data")
    predict.add_argument("--min-score", type=float, default=0.3, help="detection score threshold")
    predict.add_argument("--out", required=True, help="output JSON (COCO keypoint results)")
    predict.add_argument(
        "--draw", help="write the frame(s) with skeletons drawn: a PNG (--image) or a folder"
    )
    predict.add_argument("--device", default="cpu", help="cpu or cuda")
    return parser


def _write_json_atomic(path: Path, data: object) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temp_name = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    with os.fdopen(handle, "w", encoding="utf-8") as stream:
        json.dump(data, stream, indent=1)
        stream.write("\n")
    os.replace(temp_name, path)


def _experiment_id_of(ref: str, weights: Path) -> str | None:
    """The experiment a model came from: the pin's / the id asked for, else the checkpoint's record."""
    from walkout_pose.model import read_checkpoint

    path = Path(ref)
    if path.is_file() and path.suffix in (".yaml", ".yml"):
        from walkout_ci import pins

        return pins.read_pin(path).experiment_id
    if not path.exists():
        return ref
    recorded = read_checkpoint(weights).get("extra", {}).get("experiment_id")
    return recorded if isinstance(recorded, str) else None


def _train(args: argparse.Namespace) -> int:
    from walkout_pose.train import train

    config = load_config(args.config)
    if args.epochs is not None:
        values = config.to_dict()
        values["train"]["epochs"] = args.epochs
        config = load_config(values)
    result = train(
        data=args.data,
        val_data=args.val_data,
        out_dir=args.out,
        config=config,
        experiment_name=args.name,
        progress=not args.no_progress,
    )
    print(
        json.dumps(
            {
                "experiment_id": result.experiment_id,
                "best_checkpoint": str(result.best_checkpoint),
                "best_epoch": result.best_epoch,
                "best_val_metrics": result.best_metrics,
                "train_seconds": round(result.train_seconds, 1),
            },
            indent=2,
        )
    )
    return 0


def _evaluate(args: argparse.Namespace) -> int:
    from walkout_pose.evaluate import evaluate_model
    from walkout_pose.predict import load_model

    evaluate_config = load_config(args.config).evaluate
    model, _, weights = load_model(args.model, device=args.device)
    report = evaluate_model(
        model=model,
        weights_path=weights,
        model_ref=str(args.model),
        experiment_id=_experiment_id_of(str(args.model), weights),
        data=args.data,
        report_dir=args.report_dir,
        config=evaluate_config,
        progress=not args.no_progress,
    )
    summary = {name: round(value, 4) for name, value in report["metrics"].items()}
    print(json.dumps({"report": str(Path(args.report_dir) / "report.json"), "metrics": summary}, indent=2))
    return 0


def _detections_by_image(path: str, min_score: float) -> dict[int, np.ndarray]:
    try:
        detections = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as error:
        raise InputError(f"cannot read detections {path}: {error}") from error
    if not isinstance(detections, list):
        raise InputError(f"{path}: expected a COCO detection results list")
    boxes: dict[int, list[list[float]]] = {}
    for detection in detections:
        if detection.get("category_id") != 1 or detection.get("score", 1.0) < min_score:
            continue
        x, y, width, height = detection["bbox"]
        boxes.setdefault(detection["image_id"], []).append([x, y, x + width, y + height])
    return {image_id: np.array(values) for image_id, values in boxes.items()}


def _predict(args: argparse.Namespace) -> int:
    from walkout_pose.data import load_keypoints_dataset, read_image
    from walkout_pose.draw import PREDICTION_COLOR, draw_skeleton
    from walkout_pose.evaluate import instance_score
    from walkout_pose.predict import estimate, load_model

    model, _, _ = load_model(args.model, device=args.device)
    if args.image is not None:
        if not args.box:
            raise InputError("--image needs at least one --box x1,y1,x2,y2")
        frame = read_image(Path(args.image))
        keypoints = estimate(model, frame, np.array(args.box))
        output = [
            {"box_xyxy": box, "keypoints": dict(zip(KEYPOINT_NAMES, person.tolist(), strict=True))}
            for box, person in zip(args.box, keypoints, strict=True)
        ]
        _write_json_atomic(Path(args.out), output)
        if args.draw:
            for person in keypoints:
                draw_skeleton(frame, person, color=PREDICTION_COLOR, min_value=-1.0)
            cv2.imwrite(args.draw, frame)
        print(f"{len(output)} person(s) -> {args.out}")
        return 0
    if args.box:
        raise InputError("--box goes with --image; with --data use ground-truth boxes or --detections")
    dataset = load_keypoints_dataset(args.data)
    category_id = next(c["id"] for c in dataset.coco["categories"] if "keypoints" in c)
    detections = _detections_by_image(args.detections, args.min_score) if args.detections else None
    ground_truth: dict[int, list[np.ndarray]] = {}
    for person in dataset.persons:
        ground_truth.setdefault(person.image_id, []).append(person.box_xyxy)
    results = []
    draw_dir = Path(args.draw) if args.draw else None
    for image_id, path in dataset.image_paths.items():
        if detections is not None:
            boxes = detections.get(image_id, np.zeros((0, 4)))
        else:
            boxes = np.array(ground_truth.get(image_id, np.zeros((0, 4))))
        if len(boxes) == 0:
            continue
        frame = read_image(path)
        keypoints = estimate(model, frame, boxes)
        for box, person in zip(boxes, keypoints, strict=True):
            flat = np.concatenate([person[:, :2], np.ones((len(person), 1))], axis=1).reshape(-1)
            results.append(
                {
                    "image_id": image_id,
                    "category_id": category_id,
                    "bbox": [float(box[0]), float(box[1]), float(box[2] - box[0]), float(box[3] - box[1])],
                    "keypoints": [round(float(value), 2) for value in flat],
                    "keypoint_confidences": [round(float(value), 4) for value in person[:, 2]],
                    "score": instance_score(person),
                }
            )
            if draw_dir is not None:
                draw_skeleton(frame, person, color=PREDICTION_COLOR, min_value=-1.0)
        if draw_dir is not None:
            draw_dir.mkdir(parents=True, exist_ok=True)
            cv2.imwrite(str(draw_dir / f"{path.stem}.png"), frame)
    _write_json_atomic(Path(args.out), results)
    print(f"{len(results)} person(s) in {len(dataset.image_paths)} frame(s) -> {args.out}")
    return 0


def main(argv: list[str] | None = None) -> int:
    """Run the CLI in-process; returns the exit code (0 ok, 2 bad input / could not evaluate)."""
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    handlers = {"train": _train, "evaluate": _evaluate, "predict": _predict}
    try:
        return handlers[args.command](args)
    except PoseError as error:
        print(f"walkout-pose {args.command}: error: {error}", file=sys.stderr)
        return error.exit_code
    except Exception as error:
        from walkout_ci.errors import WalkoutCIError

        if isinstance(error, WalkoutCIError):
            # walkout_ci errors (pins, blind set, report contract) carry their own exit code.
            print(f"walkout-pose {args.command}: error: {error}", file=sys.stderr)
            return error.exit_code
        # A crash is "could not evaluate" (2), never 1: the gate would read 1 as a measured regression.
        logging.getLogger("walkout_pose.cli").exception("walkout-pose %s crashed", args.command)
        return 2


if __name__ == "__main__":
    sys.exit(main())
