"""`walkout-pose`: train, evaluate and predict from the command line.

    walkout-pose train --data out/sim/train --out runs/pose [--val-data DIR] [--config pose.yaml]
    walkout-pose evaluate --model REF --data DIR --report-dir DIR
    walkout-pose predict --model REF --image frame.png --box 10,20,60,140 [--box ...] --out keypoints.json
    walkout-pose predict --model REF --data DIR [--detections dets.json] --out results.json

The model gate's three stages (walkout_pose.gate documents the formats; `evaluate` runs the same three):

    walkout-pose gate-inputs --data DIR --out INPUTS                      # trusted: frames + boxes only
    walkout-pose gate-predict --model WEIGHTS --inputs INPUTS --out PRED  # the PR's code: no labels
    walkout-pose gate-score --data DIR --predictions PRED --report-dir DIR --model-ref REF \
        --weights-sha256 HEX --experiment-id ID --code-commit SHA        # trusted: report.json

REF is a ClearML experiment id, a model_ref.yaml or a checkpoint path. Exit codes: 0 ok, 2 bad input
or could not evaluate (an evaluation that errors never passes), 128 + signal when stopped by SIGINT /
SIGTERM (temp folders removed).
"""

from __future__ import annotations

import argparse
import json
import logging
import re
import sys
from pathlib import Path

import cv2
import numpy as np

from walkout_ci.signals import run_command
from walkout_ci.store import atomic_write_text
from walkout_pose.config import KEYPOINT_NAMES, load_config
from walkout_pose.errors import InputError, PoseError

SHA256_HEX = re.compile(r"[0-9a-f]{64}")


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
    train.add_argument(
        "--init-from",
        metavar="REF",
        help="fine-tune: start from this experiment id's or model_ref.yaml's weights (train.init_from)",
    )
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

    inputs = commands.add_parser(
        "gate-inputs", help="gate stage 1 (trusted): copy frames and person boxes, never keypoints"
    )
    inputs.add_argument("--data", required=True, help="split to evaluate on (a walkout-sim export)")
    inputs.add_argument("--out", required=True, help="empty or new folder for inputs.json and images/")

    gate_predict = commands.add_parser(
        "gate-predict", help="gate stage 2 (untrusted): predictions.json from a gate-inputs folder only"
    )
    gate_predict.add_argument("--model", required=True, help="verified checkpoint (or any model reference)")
    gate_predict.add_argument("--inputs", required=True, help="folder written by gate-inputs")
    gate_predict.add_argument("--out", required=True, help="folder for predictions.json (created if missing)")
    gate_predict.add_argument("--batch-size", type=int, default=32, help="persons per forward pass")
    gate_predict.add_argument("--device", default="cpu", help="cpu or cuda")
    gate_predict.add_argument("--no-progress", action="store_true", help="no progress bars")

    score = commands.add_parser(
        "gate-score", help="gate stage 3 (trusted): validate predictions.json, score it, write report.json"
    )
    score.add_argument("--data", required=True, help="the split gate-inputs read (holds the ground truth)")
    score.add_argument("--predictions", required=True, help="folder with predictions.json")
    score.add_argument("--report-dir", required=True, help="folder for report.json and debug images")
    score.add_argument("--model-ref", required=True, help="what was evaluated (report model.ref)")
    score.add_argument(
        "--weights-sha256",
        required=True,
        help="sha256 of the evaluated weights (report model.weights_sha256)",
    )
    score.add_argument("--experiment-id", default="", help="experiment id; empty for none")
    score.add_argument("--code-commit", default="", help="commit of the predicting code; empty for none")
    score.add_argument(
        "--config", help="YAML whose `evaluate` section overrides the evaluation settings (sigmas...)"
    )
    return parser


def _write_json_atomic(path: Path, data: object) -> None:
    """Write JSON (keys in the order given) through walkout_ci's temp-file-then-rename writer."""
    atomic_write_text(path, json.dumps(data, indent=1) + "\n")


def experiment_id_of(ref: str, weights: Path) -> str | None:
    """The experiment a model came from: the pin's / the id asked for, else the checkpoint's record."""
    from walkout_ci import pins
    from walkout_pose.model import read_checkpoint

    found = pins.experiment_id_of_ref(ref)
    if found is not None:
        return found
    recorded = read_checkpoint(weights).get("extra", {}).get("experiment_id")
    return recorded if isinstance(recorded, str) else None


def _train(args: argparse.Namespace) -> int:
    from walkout_pose.train import train

    config = load_config(args.config)
    if args.epochs is not None or args.init_from is not None:
        values = config.to_dict()
        if args.epochs is not None:
            values["train"]["epochs"] = args.epochs
        if args.init_from is not None:
            values["train"]["init_from"] = args.init_from
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
    from walkout_ci.report import discard_stale_report
    from walkout_pose.evaluate import evaluate_model
    from walkout_pose.predict import load_model

    discard_stale_report(args.report_dir)

    evaluate_config = load_config(args.config).evaluate
    model, _, weights = load_model(args.model, device=args.device)
    report = evaluate_model(
        model=model,
        weights_path=weights,
        model_ref=str(args.model),
        experiment_id=experiment_id_of(str(args.model), weights),
        data=args.data,
        report_dir=args.report_dir,
        config=evaluate_config,
        progress=not args.no_progress,
    )
    summary = {name: round(value, 4) for name, value in report["metrics"].items()}
    print(json.dumps({"report": str(Path(args.report_dir) / "report.json"), "metrics": summary}, indent=2))
    return 0


def _gate_inputs(args: argparse.Namespace) -> int:
    from walkout_pose.gate import write_inputs

    path = write_inputs(args.data, args.out)
    print(f"gate inputs -> {path}")
    return 0


def _gate_predict(args: argparse.Namespace) -> int:
    import torch

    from walkout_pose.gate import predict_inputs, read_inputs, write_predictions
    from walkout_pose.predict import load_model

    if args.batch_size < 1:
        raise InputError(f"--batch-size must be at least 1; got {args.batch_size}")
    frames = read_inputs(args.inputs)  # before the model: bad inputs fail fast
    model, _, _ = load_model(args.model, device=args.device)
    with torch.inference_mode():
        ids, keypoints, seconds = predict_inputs(
            model, frames, batch_size=args.batch_size, progress=not args.no_progress
        )
    path = write_predictions(args.out, ids, keypoints)
    rate = len(ids) / seconds if seconds > 0 else 0.0
    print(f"{len(ids)} person(s) in {len(frames)} frame(s), {seconds:.1f} s ({rate:.0f}/s) -> {path}")
    return 0


def _gate_score(args: argparse.Namespace) -> int:
    from walkout_pose.evaluate import score_predictions

    if not SHA256_HEX.fullmatch(args.weights_sha256):
        raise InputError(
            f"--weights-sha256 is {args.weights_sha256!r}; expected 64 lowercase hex digits (the sha256 of "
            "the evaluated weights file)"
        )
    report = score_predictions(
        data=args.data,
        predictions=args.predictions,
        report_dir=args.report_dir,
        model_ref=args.model_ref,
        weights_sha256=args.weights_sha256,
        experiment_id=args.experiment_id or None,
        code_commit=args.code_commit or None,
        config=load_config(args.config).evaluate,
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


HANDLERS = {
    "train": _train,
    "evaluate": _evaluate,
    "predict": _predict,
    "gate-inputs": _gate_inputs,
    "gate-predict": _gate_predict,
    "gate-score": _gate_score,
}


def main(argv: list[str] | None = None) -> int:
    """Run the CLI in-process; returns the exit code (0 ok, 2 bad input / could not evaluate,
    128 + signal number when SIGINT / SIGTERM stopped it after its `finally` blocks cleaned up)."""
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    from walkout_ci.errors import WalkoutCIError

    # walkout_ci errors (pins, blind set, report contract) carry their own exit code; a crash is
    # "could not evaluate" (2), never 1: the gate would read 1 as a measured regression.
    return run_command(
        "walkout-pose",
        args.command,
        lambda: HANDLERS[args.command](args),
        errors=(PoseError, WalkoutCIError),
        crash_exit_code=2,
    )


if __name__ == "__main__":
    sys.exit(main())
