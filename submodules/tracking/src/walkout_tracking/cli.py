"""Command-line interface: `walkout-tracking train | evaluate | predict | bench`.

Exit codes: 0 ok, 1 failed check, 2 bad input / could not evaluate. `main(argv)` is callable in-process.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

from walkout_tracking.errors import TrackingError

LOGGER = logging.getLogger("walkout_tracking.cli")


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
        "--data", required=True, help="training data: simulator export or MOTChallenge folders"
    )
    train.add_argument("--val-data", help="validation data (default: hold out part of --data)")
    train.add_argument("--config", help="YAML config (sections tracker/model/train)")
    train.add_argument("--out", required=True, help="output folder for checkpoints and TensorBoard logs")
    train.add_argument("--epochs", type=int, help="override train.epochs")
    train.add_argument("--quiet", action="store_true", help="no progress bar")

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


def _evaluate(args: argparse.Namespace) -> int:
    from walkout_tracking.evaluate import evaluate
    from walkout_tracking.predict import load_tracking_model

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


def main(argv: list[str] | None = None) -> int:
    """Parse argv and run one command; returns the exit code (errors are reported, not raised)."""
    from walkout_ci.errors import WalkoutCIError

    args = build_parser().parse_args(argv)
    if args.threads < 1:
        print(f"walkout-tracking: error: --threads must be >= 1, got {args.threads}", file=sys.stderr)
        return 2
    import torch

    torch.set_num_threads(args.threads)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    logging.getLogger("walkout_tracking").setLevel(logging.INFO)
    handlers = {"train": _train, "evaluate": _evaluate, "predict": _predict}
    try:
        return handlers[args.command](args)
    except (TrackingError, WalkoutCIError) as error:
        print(f"walkout-tracking {args.command}: error: {error}", file=sys.stderr)
        return error.exit_code


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
