"""Command-line interface: `walkout-tracking train | evaluate | predict | gate-inputs | gate-predict |
gate-score`.

The gate's three stages (gate.yaml `evaluate`): gate-inputs (trusted: writes what a tracker may see of
a dataset, no ground truth), gate-predict (the pull request's code: tracks those inputs, writes
predictions.json), gate-score (trusted: checks the predictions strictly, scores them, writes
report.json). `evaluate` runs the same three in one process.

Exit codes: 0 ok, 1 failed check, 2 bad input / could not evaluate, 128 + signal number when stopped
by SIGTERM/SIGINT (temp folders removed). `main(argv)` is callable in-process.
"""

from __future__ import annotations

import argparse
import json
import logging
import re
import sys
from pathlib import Path

from walkout_tracking.errors import TrackingError

LOGGER = logging.getLogger("walkout_tracking.cli")
SHA256 = re.compile(r"^[0-9a-f]{64}$")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="walkout-tracking", description="Multi-shopper tracker: train, evaluate, predict."
    )
    parser.add_argument(
        "--threads",
        type=int,
        default=1,
        help="torch CPU threads (default 1: crops are tiny batches, and on a shared machine extra threads "
        "mostly spin-wait)",
    )
    sub = parser.add_subparsers(dest="command", required=True)

    train = sub.add_parser("train", help="train the appearance embedding (PyTorch-Ignite)")
    train.add_argument(
        "--data",
        required=True,
        action="append",
        help="training data: simulator export or MOTChallenge folders (repeat to train on several "
        "parts, e.g. `walkout-sim parts` folders)",
    )
    train.add_argument("--val-data", help="validation data (default: hold out part of --data)")
    train.add_argument("--config", help="YAML config (sections tracker/model/train)")
    train.add_argument("--out", required=True, help="output folder for checkpoints and TensorBoard logs")
    train.add_argument("--epochs", type=int, help="override train.epochs")
    train.add_argument("--quiet", action="store_true", help="no progress bar")

    retune = sub.add_parser(
        "retune",
        help="the model with other tracker settings, same appearance weights, as a new experiment",
    )
    retune.add_argument("--model", required=True, help="experiment id | model_ref.yaml")
    retune.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="tracker.KEY=VALUE",
        help="a tracker setting to change (YAML value), e.g. tracker.max_appearance_distance=0.4; repeat",
    )
    retune.add_argument("--out", required=True, help="output folder for best.pt and retune_result.json")

    evaluate = sub.add_parser("evaluate", help="track and score a dataset; write report.json")
    evaluate.add_argument(
        "--model", required=True, help="experiment id | model_ref.yaml | checkpoint path | 'motion-only'"
    )
    evaluate.add_argument("--data", required=True, help="dataset with gt/gt.txt per sequence")
    evaluate.add_argument("--report-dir", required=True, help="where report.json, results/ and failures/ go")
    evaluate.add_argument("--config", help="YAML config whose `tracker` section overrides the model's")
    evaluate.add_argument("--quiet", action="store_true", help="no progress bar")

    predict = sub.add_parser("predict", help="track sequences; write MOTChallenge results")
    predict.add_argument(
        "--model", required=True, help="experiment id | model_ref.yaml | checkpoint path | 'motion-only'"
    )
    predict.add_argument("--data", required=True, help="sequence folder(s) with det/det.txt or gt/gt.txt")
    predict.add_argument("--out", required=True, help="output folder: one <sequence>.txt per sequence")
    predict.add_argument("--config", help="YAML config whose `tracker` section overrides the model's")
    predict.add_argument("--quiet", action="store_true", help="no progress bar")

    inputs = sub.add_parser(
        "gate-inputs", help="gate stage 1 (trusted): write what the tracker may see of a dataset"
    )
    inputs.add_argument("--data", required=True, help="dataset with gt/gt.txt per sequence")
    inputs.add_argument("--out", required=True, help="empty or new folder for inputs.json and the inputs")

    gate_predict = sub.add_parser(
        "gate-predict", help="gate stage 2 (untrusted): track gate-inputs, write predictions.json"
    )
    gate_predict.add_argument(
        "--model", required=True, help="checkpoint path | model_ref.yaml | experiment id | 'motion-only'"
    )
    gate_predict.add_argument("--inputs", required=True, help="folder written by gate-inputs (read only)")
    gate_predict.add_argument("--out", required=True, help="folder for predictions.json (created if missing)")
    gate_predict.add_argument("--config", help="YAML config whose `tracker` section overrides the model's")
    gate_predict.add_argument("--quiet", action="store_true", help="no progress bar")

    gate_score = sub.add_parser(
        "gate-score", help="gate stage 3 (trusted): check and score predictions.json, write report.json"
    )
    gate_score.add_argument("--data", required=True, help="the dataset the inputs were made from")
    gate_score.add_argument(
        "--predictions", required=True, help="folder holding predictions.json (or the file itself)"
    )
    gate_score.add_argument("--report-dir", required=True, help="for report.json, results/, failures/")
    gate_score.add_argument("--model-ref", required=True, help="written to the report's model.ref")
    gate_score.add_argument(
        "--weights-sha256", required=True, help="sha256 of the weights evaluated (model.weights_sha256)"
    )
    gate_score.add_argument("--experiment-id", default="", help="experiment id; '' for none (null)")
    gate_score.add_argument("--code-commit", default="", help="commit of the predicting code; '' for none")
    return parser


def _tracker_override(path: str | None):
    if path is None:
        return None
    from walkout_tracking.config import load_config

    return load_config(path).tracker


def _train(args: argparse.Namespace) -> int:
    from walkout_tracking.config import TrackingConfig, TrainConfig, load_config
    from walkout_tracking.train import train

    config = load_config(args.config)
    if args.epochs is not None:
        train_config = TrainConfig(**{**config.train.__dict__, "epochs": args.epochs})
        config = TrackingConfig(tracker=config.tracker, model=config.model, train=train_config)
    result = train(
        config=config,
        data_dir=args.data,
        out_dir=args.out,
        val_dir=args.val_data,
        show_progress=not args.quiet,
    )
    print(json.dumps(result.to_dict(), indent=1))
    return 0


def _retune(args: argparse.Namespace) -> int:
    from walkout_ci.clone import parse_overrides
    from walkout_tracking.retune import retune

    result = retune(args.model, parse_overrides(args.set), args.out)
    print(json.dumps(result.to_dict(), indent=1))
    return 0


def _evaluate(args: argparse.Namespace) -> int:
    from walkout_ci.report import discard_stale_report
    from walkout_tracking.evaluate import evaluate
    from walkout_tracking.predict import load_tracking_model

    discard_stale_report(args.report_dir)

    model = load_tracking_model(args.model, tracker_config=_tracker_override(args.config))
    report = evaluate(model, args.data, args.report_dir, show_progress=not args.quiet)
    summary = {key: round(value, 4) for key, value in report["metrics"].items()}
    print(json.dumps({"report": str(Path(args.report_dir) / "report.json"), "metrics": summary}, indent=1))
    return 0


def _predict(args: argparse.Namespace) -> int:
    from walkout_tracking.predict import load_tracking_model, predict

    model = load_tracking_model(args.model, tracker_config=_tracker_override(args.config))
    for path in predict(model, args.data, args.out, show_progress=not args.quiet):
        print(path)
    return 0


def _gate_inputs(args: argparse.Namespace) -> int:
    from walkout_tracking.inputs import INDEX_NAME, write_inputs

    out = write_inputs(args.data, args.out)
    print(out / INDEX_NAME)
    return 0


def _gate_predict(args: argparse.Namespace) -> int:
    from walkout_tracking.predict import load_tracking_model, predict_inputs

    model = load_tracking_model(args.model, tracker_config=_tracker_override(args.config))
    print(predict_inputs(model, args.inputs, args.out, show_progress=not args.quiet))
    return 0


def _gate_score(args: argparse.Namespace) -> int:
    from walkout_tracking.evaluate import score

    if not SHA256.match(args.weights_sha256):
        raise TrackingError(
            f"--weights-sha256 {args.weights_sha256!r} is not a sha256 (64 lowercase hex digits)"
        )
    report = score(
        args.data,
        args.predictions,
        args.report_dir,
        model_ref=args.model_ref,
        weights_sha256=args.weights_sha256,
        experiment_id=args.experiment_id or None,
        code_commit=args.code_commit or None,
    )
    summary = {key: round(value, 4) for key, value in report["metrics"].items()}
    print(json.dumps({"report": str(Path(args.report_dir) / "report.json"), "metrics": summary}, indent=1))
    return 0


HANDLERS = {
    "train": _train,
    "retune": _retune,
    "evaluate": _evaluate,
    "predict": _predict,
    "gate-inputs": _gate_inputs,
    "gate-predict": _gate_predict,
    "gate-score": _gate_score,
}


def main(argv: list[str] | None = None) -> int:
    """Parse argv and run one command; returns the exit code (errors are reported, not raised).

    SIGTERM/SIGINT unwind the command as walkout_ci's `Interrupted` (so temp folders and half-written
    files are cleaned up by the `finally` blocks on the way) and give 128 + the signal number.
    """
    from walkout_ci.errors import WalkoutCIError
    from walkout_ci.signals import run_command

    args = build_parser().parse_args(argv)
    if args.threads < 1:
        print(f"walkout-tracking: error: --threads must be >= 1, got {args.threads}", file=sys.stderr)
        return 2

    def call() -> int:
        import torch

        torch.set_num_threads(args.threads)
        logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
        logging.getLogger("walkout_tracking").setLevel(logging.INFO)
        return HANDLERS[args.command](args)

    return run_command("walkout-tracking", args.command, call, errors=(TrackingError, WalkoutCIError))


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
