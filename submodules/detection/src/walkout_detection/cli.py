"""`walkout-detection`: train, evaluate and predict from the command line, and the gate's three
evaluation stages (gate-inputs, gate-predict, gate-score; see gate.py).

Exit codes: 0 ok, 1 failed check, 2 bad input / could not evaluate, 128 + signal number when stopped
by SIGINT / SIGTERM (after removing temp folders).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from walkout_ci.signals import run_command
from walkout_detection.errors import DetectionError


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="walkout-detection", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)

    train = commands.add_parser("train", help="train a detector on a COCO dataset (a walkout-sim export)")
    train.add_argument("--data", type=Path, required=True, help="training dataset folder or COCO JSON")
    train.add_argument(
        "--val-data", type=Path, help="validation dataset (default: every 10th training image)"
    )
    train.add_argument("--output", type=Path, required=True, help="run folder for checkpoints and logs")
    train.add_argument("--config", type=Path, help="YAML config (sections model / train / evaluate)")
    train.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="SECTION.KEY=VALUE",
        help="override a config value, e.g. --set train.epochs=5 (repeatable)",
    )
    train.add_argument("--name", default="train", help="experiment name")
    train.add_argument("--no-progress", action="store_true", help="no progress bars")

    evaluate = commands.add_parser("evaluate", help="evaluate a model and write the walkout-ci report")
    evaluate.add_argument("--model", required=True, help="experiment id, model_ref.yaml or checkpoint path")
    evaluate.add_argument("--data", type=Path, required=True, help="dataset folder or COCO JSON")
    evaluate.add_argument(
        "--report-dir", type=Path, required=True, help="folder for report.json and debug images"
    )
    evaluate.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    evaluate.add_argument("--no-progress", action="store_true", help="no progress bars")

    predict = commands.add_parser("predict", help="detect on images, image folders or videos")
    predict.add_argument("inputs", nargs="+", help="image files, folders of images, or videos")
    predict.add_argument("--model", required=True, help="experiment id, model_ref.yaml or checkpoint path")
    predict.add_argument("--output", type=Path, required=True, help="detections JSON to write")
    predict.add_argument("--preview", type=Path, help="folder for annotated images / videos")
    predict.add_argument("--score-threshold", type=float, help="minimum score (default: the model's)")
    predict.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])

    inputs = commands.add_parser(
        "gate-inputs", help="gate stage 1 (trusted): copy the images prediction needs, no annotations"
    )
    inputs.add_argument("--data", type=Path, required=True, help="dataset folder or COCO JSON")
    inputs.add_argument("--out", type=Path, required=True, help="new or empty output folder")

    gate_predict = commands.add_parser(
        "gate-predict", help="gate stage 2 (untrusted): detect on an inputs folder, write predictions.json"
    )
    gate_predict.add_argument("--model", required=True, help="checkpoint (or experiment id / model_ref.yaml)")
    gate_predict.add_argument("--inputs", type=Path, required=True, help="folder written by gate-inputs")
    gate_predict.add_argument("--out", type=Path, required=True, help="folder for predictions.json")
    gate_predict.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    gate_predict.add_argument("--no-progress", action="store_true", help="no progress bars")

    score = commands.add_parser(
        "gate-score", help="gate stage 3 (trusted): validate and score predictions, write report.json"
    )
    score.add_argument("--data", type=Path, required=True, help="dataset folder or COCO JSON (ground truth)")
    score.add_argument(
        "--predictions", type=Path, required=True, help="folder written by gate-predict (or the JSON file)"
    )
    score.add_argument("--report-dir", type=Path, required=True, help="folder for report.json and images")
    score.add_argument("--model-ref", required=True, help="recorded as model.ref")
    score.add_argument("--weights-sha256", required=True, help="recorded as model.weights_sha256")
    score.add_argument("--experiment-id", default="", help='recorded as experiment_id ("": null)')
    score.add_argument("--code-commit", default="", help='recorded as code_commit ("": null)')
    return parser


def run_train(args: argparse.Namespace) -> int:
    from walkout_detection.config import apply_overrides, load_config
    from walkout_detection.train import train

    config = apply_overrides(load_config(args.config), args.overrides)
    result = train(
        config=config,
        train_data=args.data,
        val_data=args.val_data,
        output_dir=args.output,
        name=args.name,
        progress=not args.no_progress,
    )
    metrics = ", ".join(f"{key} {value:.3f}" for key, value in result.best_metrics.items())
    print(
        f"best checkpoint {result.best_checkpoint} "
        f"(epoch {result.best_epoch}/{result.epochs_run}; {metrics}); "
        f"trained {result.train_seconds:.0f} s; experiment {result.experiment_id}"
    )
    return 0


def run_evaluate(args: argparse.Namespace) -> int:
    from walkout_ci.report import discard_stale_report
    from walkout_detection.gate import evaluate_to_report

    discard_stale_report(args.report_dir)

    report = evaluate_to_report(
        model_ref=args.model,
        data=args.data,
        report_dir=args.report_dir,
        device=args.device,
        progress=not args.no_progress,
    )
    _print_summary(report, args.report_dir)
    return 0


def _print_summary(report: dict, report_dir: Path) -> None:
    """One line: the main metrics, the worst class and where the report is."""
    metrics = report["metrics"]
    worst = min(report["per_class"].items(), key=lambda item: item[1]["AP50"], default=("-", {"AP50": 0.0}))
    print(
        f"AP {metrics['AP']:.3f} AP50 {metrics['AP50']:.3f} AP75 {metrics['AP75']:.3f}; "
        f"worst class {worst[0]} AP50 {worst[1]['AP50']:.3f}; report {report_dir / 'report.json'}"
    )


def run_gate_inputs(args: argparse.Namespace) -> int:
    from walkout_detection.gate import prepare_inputs

    index = prepare_inputs(args.data, args.out)
    print(f"{len(index['images'])} images and inputs.json written to {args.out}")
    return 0


def run_gate_predict(args: argparse.Namespace) -> int:
    from walkout_detection.gate import PREDICTIONS_FILE, predict_inputs
    from walkout_detection.predict import load_detector

    detector = load_detector(args.model, device=args.device)
    payload = predict_inputs(detector, args.inputs, args.out, progress=not args.no_progress)
    count = sum(len(entry["detections"]) for entry in payload["predictions"])
    images = len(payload["predictions"])
    print(f"{count} detections on {images} images written to {args.out / PREDICTIONS_FILE}")
    return 0


def run_gate_score(args: argparse.Namespace) -> int:
    from walkout_detection.gate import score_predictions

    report = score_predictions(
        data=args.data,
        predictions=args.predictions,
        report_dir=args.report_dir,
        model_ref=args.model_ref,
        weights_sha256=args.weights_sha256,
        experiment_id=args.experiment_id,
        code_commit=args.code_commit,
    )
    _print_summary(report, args.report_dir)
    return 0


def run_predict(args: argparse.Namespace) -> int:
    from walkout_detection.predict import load_detector, predict_files

    detector = load_detector(args.model, device=args.device)
    payload = predict_files(
        detector,
        args.inputs,
        output=args.output,
        preview_dir=args.preview,
        score_threshold=args.score_threshold,
        model_ref=args.model,
    )
    count = sum(len(result["detections"]) for result in payload["results"])
    print(f"{count} detections in {len(payload['results'])} frames written to {args.output}")
    return 0


HANDLERS = {
    "train": run_train,
    "evaluate": run_evaluate,
    "predict": run_predict,
    "gate-inputs": run_gate_inputs,
    "gate-predict": run_gate_predict,
    "gate-score": run_gate_score,
}


def main(argv: list[str] | None = None) -> int:
    """Entry point; returns the exit code (0 ok, 2 bad input / could not evaluate, 128 + signal when
    stopped by SIGINT / SIGTERM: the signal unwinds the command, so its temp folders are removed)."""
    args = build_parser().parse_args(argv)
    return run_command(
        "walkout-detection", args.command, lambda: HANDLERS[args.command](args), errors=(DetectionError,)
    )


if __name__ == "__main__":
    sys.exit(main())
