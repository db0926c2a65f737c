"""Command-line entry point `walkout`: run, qc, replay, compare, lock, bump, and the gate's
gate-inputs, gate-predict, gate-score.

Exit codes: 0 ok; 1 a check failed (`lock --check` found a disagreement, `replay --predictions` was not
reproduced, `compare --fail-if-worse` showed the candidate worse); 2 bad input or could not
evaluate or bump (missing/corrupt video, bad refs, bad predictions, any QC video error); 128 + the signal
number when stopped by SIGINT/SIGTERM (temp folders and worker processes are cleaned up first).
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

from walkout.errors import WalkoutError
from walkout.replay import DEFAULT_VARIANTS, VARIANTS
from walkout_ci.errors import WalkoutCIError
from walkout_ci.signals import run_command as run_cli_command

_SHA256 = re.compile(r"[0-9a-f]{64}")


def build_parser() -> argparse.ArgumentParser:
    """The argparse tree of every subcommand."""
    parser = argparse.ArgumentParser(
        prog="walkout", description="walkout: checkout-free store app and system QC"
    )
    commands = parser.add_subparsers(dest="command", required=True)

    run = commands.add_parser("run", help="run the system on one video: events, carts, receipts")
    run.add_argument(
        "video", help="a video file, or a simulator video folder (holding video.avi + layout.yaml)"
    )
    mode = run.add_mutually_exclusive_group(required=True)
    mode.add_argument("--refs", help="the lock file model_refs.yaml naming the models to run")
    mode.add_argument("--oracle", action="store_true", help="feed the video's ground truth instead of models")
    run.add_argument("--out", required=True, help="where to write receipts, events and review reasons (JSON)")
    run.add_argument("--layout", help="store layout.yaml (default: the one beside the video)")
    run.add_argument("--preview", help="also write an annotated video (boxes, skeletons, ids, carts)")
    run.add_argument("--device", default="auto", help="auto (CUDA when available), cpu or cuda")

    qc = commands.add_parser("qc", help="system QC over every video of a split; writes the report contract")
    qc.add_argument("--videos", required=True, help="a simulator split folder (or its videos/ folder)")
    qc_mode = qc.add_mutually_exclusive_group(required=True)
    qc_mode.add_argument("--refs", help="the lock file model_refs.yaml")
    qc_mode.add_argument("--oracle", action="store_true", help="ground truth instead of models")
    qc.add_argument("--report-dir", required=True, help="folder for report.json, images/ and videos/")
    qc.add_argument("--jobs", type=int, default=2, help="parallel processes (default 2)")
    qc.add_argument("--device", default="cpu", help="cpu (default) or cuda")
    qc.add_argument(
        "--save-observations",
        metavar="DIR",
        help="also record every video's model outputs in DIR (one .npz each) for `walkout replay`",
    )
    qc.add_argument(
        "--executor",
        choices=("local", "clearml"),
        default="local",
        help="where prediction runs: here (default), or as ClearML tasks for clearml-agent workers "
        "(with --refs; README: Sharded QC)",
    )
    qc.add_argument("--queue", help="clearml: the agents' queue (default: $WALKOUT_CLEARML_QUEUE or default)")
    qc.add_argument(
        "--shards", type=int, default=1, help="clearml: split the videos into N tasks (default 1)"
    )
    qc.add_argument(
        "--wait-timeout",
        type=float,
        help="clearml: seconds to wait for all shards (default: gate.yaml's timeout_s + 600)",
    )

    replay = commands.add_parser(
        "replay",
        help="re-run the engine on recorded model outputs with parts swapped for ground truth: "
        "which stage each wrong receipt comes from",
    )
    replay.add_argument(
        "--observations",
        required=True,
        action="append",
        help="the folder `walkout qc --save-observations` wrote (repeat, with one --videos each, to "
        "replay several splits together)",
    )
    replay.add_argument(
        "--videos",
        required=True,
        action="append",
        help="the split those recordings are of (with its ground truth); in --observations order",
    )
    replay.add_argument("--report-dir", required=True, help="folder for replay.json and replay.md")
    replay.add_argument(
        "--variants",
        default=",".join(DEFAULT_VARIANTS),
        help=f"comma-separated, from {', '.join(VARIANTS)} (default: all but retracked)",
    )
    replay.add_argument(
        "--retrack",
        metavar="LOCKFILE",
        help="also re-run this lock file's tracker on the recorded detections",
    )
    replay.add_argument(
        "--tracker-set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="retracked: change one of the tracker's settings (tracking configs' `tracker:` keys; repeat)",
    )
    replay.add_argument(
        "--engine-set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="change one of the engine's thresholds in every variant (EngineConfig fields; repeat)",
    )
    replay.add_argument(
        "--predictions", help="the QC run's predictions.json: check that the `models` variant reproduces it"
    )
    replay.add_argument("--jobs", type=int, default=2, help="parallel processes (default 2)")

    compare = commands.add_parser(
        "compare",
        help="two QC runs of the same split(s), e.g. pins vs a candidate: receipts per split and a "
        "paired video-level bootstrap of every change",
    )
    compare.add_argument(
        "--baseline",
        required=True,
        action="append",
        help="a `walkout qc` report folder (or its report.json), or a `walkout replay`'s "
        "replay.json[#VARIANT] (default variant: models); repeat, one per split",
    )
    compare.add_argument(
        "--candidate",
        required=True,
        action="append",
        help="the other run's report of the same split; in --baseline order",
    )
    compare.add_argument("--report-dir", required=True, help="folder for compare.json and compare.md")
    compare.add_argument(
        "--fail-if-worse",
        action="store_true",
        help="exit 1 when a paired interval shows the candidate worse (exact-match, item F1, false "
        "charges or missed items)",
    )

    inputs = commands.add_parser(
        "gate-inputs",
        help="gate stage 1 (trusted): copy what prediction may see of a split (no ground truth)",
    )
    inputs.add_argument("--data", required=True, help="a simulator split folder (or its videos/ folder)")
    inputs.add_argument("--out", required=True, help="the inputs folder to write (absent or empty)")

    predict = commands.add_parser(
        "gate-predict",
        help="gate stage 2 (untrusted): run the system on an inputs folder -> predictions.json",
    )
    predict_mode = predict.add_mutually_exclusive_group(required=True)
    predict_mode.add_argument("--model", help="the lock file model_refs.yaml naming the models to run")
    predict_mode.add_argument(
        "--oracle", action="store_true", help="ground truth instead of models (tests only; needs --data)"
    )
    predict.add_argument("--inputs", required=True, help="a folder written by `walkout gate-inputs`")
    predict.add_argument("--out", required=True, help="folder for predictions.json (created if missing)")
    predict.add_argument("--data", help="oracle mode only: the split whose ground truth the oracle replays")
    predict.add_argument("--jobs", type=int, default=2, help="parallel processes (default 2)")
    predict.add_argument("--device", default="cpu", help="cpu (default) or cuda")
    predict.add_argument("--no-progress", action="store_true", help="no progress bar (for logs)")

    score = commands.add_parser(
        "gate-score", help="gate stage 3 (trusted): check and score predictions.json; writes the report"
    )
    score.add_argument("--data", required=True, help="the simulator split (with its ground truth)")
    score.add_argument(
        "--predictions", required=True, help="the folder holding predictions.json (or the file)"
    )
    score.add_argument("--report-dir", required=True, help="folder for report.json, images/ and videos/")
    score.add_argument("--model-ref", required=True, help="report model.ref: what was evaluated")
    score.add_argument(
        "--weights-sha256",
        required=True,
        help="report model.weights_sha256 (the gate's sha256 of the lock file)",
    )
    score.add_argument("--experiment-id", default="", help="report experiment_id ('' = null)")
    score.add_argument("--code-commit", default="", help="report code_commit ('' = null)")

    lock = commands.add_parser("lock", help="rebuild model_refs.yaml from the submodule pins, or --check it")
    lock.add_argument("--refs", default="model_refs.yaml", help="the lock file (default ./model_refs.yaml)")
    lock.add_argument(
        "--check",
        action="store_true",
        help="only check every field of the lock file against the pins and the submodule commits",
    )

    from walkout.refs import COMPONENTS

    bump = commands.add_parser(
        "bump",
        help="move a submodule to a commit of its model repository's main, re-lock, verify, commit",
    )
    bump.add_argument("component", choices=COMPONENTS, help="the component to bump")
    bump.add_argument("--to", help="a commit, tag or branch of the model repository (default: origin/main)")
    bump.add_argument("--refs", default="model_refs.yaml", help="the lock file (default ./model_refs.yaml)")
    bump.add_argument("--no-fetch", action="store_true", help="do not `git fetch` the model repository first")
    return parser


def run_command(args: argparse.Namespace) -> int:
    """`walkout run`."""
    from walkout.results import write_json_atomic

    if args.oracle:
        from walkout.oracle import run_oracle
        from walkout.video import resolve_video

        result = run_oracle(resolve_video(args.video).parent)
    else:
        from walkout.pipeline import load_system

        system = load_system(args.refs, device=args.device)
        result = system.run_video(args.video, layout_path=args.layout, preview=args.preview, progress=True)
    write_json_atomic(args.out, result.output_json())
    flagged = sum(1 for reasons in result.review.values() if reasons)
    print(
        f"{result.video}: {result.frames} frames in {result.seconds:.1f} s "
        f"({result.frames / max(result.seconds, 1e-9):.1f} frames/s), {len(result.events)} events, "
        f"{len(result.receipts)} receipts ({flagged} flagged for review) -> {args.out}"
    )
    return 0


def qc_command(args: argparse.Namespace) -> int:
    """`walkout qc`."""
    from walkout.qc import run_qc

    if args.jobs < 1:
        raise WalkoutError(f"--jobs must be >= 1, got {args.jobs}")
    if args.save_observations and args.executor == "clearml":
        raise WalkoutError("--save-observations runs with --executor local (the agents keep no recordings)")
    if args.executor == "clearml":
        outcome = _sharded_qc(args)
    elif args.queue or args.shards != 1 or args.wait_timeout is not None:
        raise WalkoutError("--queue, --shards and --wait-timeout need --executor clearml")
    else:
        outcome = run_qc(
            args.videos,
            report_dir=args.report_dir,
            refs_path=None if args.oracle else args.refs,
            jobs=args.jobs,
            device=args.device,
            observations_dir=args.save_observations,
        )
    if outcome.errors:
        _print_errors("QC verdict: ERROR", outcome.errors)
        return 2
    for name, value in outcome.metrics.items():
        print(f"{name}: {value:.4f}")
    print(f"report: {outcome.report_path}")
    return 0


def _sharded_qc(args: argparse.Namespace):
    """`walkout qc --executor clearml`: walkout.shard.run_sharded_qc with the CLI's options."""
    from dataclasses import replace

    from walkout.shard import run_sharded_qc
    from walkout_ci.executors.clearml import ClearMLExecutorOptions

    if args.oracle:
        raise WalkoutError(
            "--executor clearml needs --refs: agents never get the ground truth the oracle replays"
        )
    if args.shards < 1:
        raise WalkoutError(f"--shards must be >= 1, got {args.shards}")
    if args.wait_timeout is not None and args.wait_timeout <= 0:
        raise WalkoutError(f"--wait-timeout must be > 0 seconds, got {args.wait_timeout}")
    options = ClearMLExecutorOptions.from_env()
    if args.queue:
        options = replace(options, queue=args.queue)
    return run_sharded_qc(
        args.videos,
        report_dir=args.report_dir,
        refs_path=args.refs,
        shards=args.shards,
        options=options,
        wait_timeout_s=args.wait_timeout,
    )


def _print_errors(verdict: str, errors: dict[str, str]) -> None:
    print(f"{verdict} ({len(errors)} video(s) could not be evaluated)", file=sys.stderr)
    for video, error in sorted(errors.items()):
        print(f"  {video}: {error}", file=sys.stderr)


def gate_inputs_command(args: argparse.Namespace) -> int:
    """`walkout gate-inputs`."""
    from walkout.gate_inputs import prepare_inputs

    path = prepare_inputs(args.data, args.out)
    print(f"inputs: {path}")
    return 0


def use_component_code(refs_path: str | Path) -> list[Path]:
    """Put each component's `<path>/src` beside the lock file first on `sys.path`; returns them.

    The lock file names the component code with it (`commit`: the submodule commit or the in-tree
    folder), so the models must run with that code, not with whatever copy of the component packages
    the interpreter has installed (an editable install points at the developer's checkout). In the
    gate, the lock file is inside the worktree of the evaluated commit, whose submodules are checked
    out at that commit's gitlinks: each side predicts with its own component code. Spawned worker
    processes inherit `sys.path`. Must run before any component package is imported.
    """
    from walkout.refs import COMPONENTS, component_dir, load_refs

    refs = load_refs(refs_path)
    root = Path(refs_path).resolve().parent
    folders = []
    for name in COMPONENTS:
        source = component_dir(root, name, refs.components[name].path, source=refs_path) / "src"
        if source.is_dir():
            folders.append(source)
    for folder in reversed(folders):
        sys.path.insert(0, str(folder))
    return folders


def gate_predict_command(args: argparse.Namespace) -> int:
    """`walkout gate-predict`."""
    from walkout.predict import run_predict

    if args.model:
        use_component_code(args.model)
    run = run_predict(
        args.inputs,
        args.out,
        refs_path=None if args.oracle else args.model,
        data=args.data,
        jobs=args.jobs,
        device=args.device,
        progress=not args.no_progress,
    )
    if run.errors:
        _print_errors("predict: ERROR", run.errors)
        return 2
    print(f"predictions: {run.predictions_path}")
    return 0


def gate_score_command(args: argparse.Namespace) -> int:
    """`walkout gate-score`."""
    from walkout.qc import ReportIdentity, score_predictions
    from walkout_ci.report import dataset_hash

    if not _SHA256.fullmatch(args.weights_sha256):
        raise WalkoutError(f"--weights-sha256 must be 64 lowercase hex digits, got {args.weights_sha256!r}")
    identity = ReportIdentity(
        model={"ref": args.model_ref, "weights_sha256": args.weights_sha256},
        experiment_id=args.experiment_id or None,
        code_commit=args.code_commit or None,
        dataset={"id": str(args.data), "hash": dataset_hash(args.data)},
    )
    outcome = score_predictions(args.data, args.predictions, report_dir=args.report_dir, identity=identity)
    if outcome.errors:
        _print_errors("QC verdict: ERROR", outcome.errors)
        return 2
    for name, value in outcome.metrics.items():
        print(f"{name}: {value:.4f}")
    print(f"report: {outcome.report_path}")
    return 0


def lock_command(args: argparse.Namespace) -> int:
    """`walkout lock`."""
    from walkout.refs import check_lock, load_refs, refs_from_pins, write_refs

    path = Path(args.refs)
    refs = load_refs(path)
    root = path.resolve().parent
    if args.check:
        problems = check_lock(refs, root)
        for problem in problems:
            print(problem, file=sys.stderr)
        print(
            "model_refs.yaml agrees with the submodule pins and commits"
            if not problems
            else "lock file is stale"
        )
        return 1 if problems else 0
    write_refs(path, refs_from_pins(root, previous=refs))
    print(f"wrote {path}")
    return 0


def replay_command(args: argparse.Namespace) -> int:
    """`walkout replay`: exit 0, or 1 when --predictions is not reproduced, 2 when it could not run."""
    from walkout.replay import outcome_json, render_markdown, run_replay, split_names
    from walkout.results import write_json_atomic
    from walkout_ci.clone import parse_overrides
    from walkout_ci.store import atomic_write_text

    variants = [v.strip() for v in args.variants.split(",") if v.strip()]
    overrides = parse_overrides(args.tracker_set)
    outcome = run_replay(
        args.observations,
        args.videos,
        variants=variants,
        retrack_refs=args.retrack,
        tracker_overrides=overrides,
        engine_overrides=parse_overrides(args.engine_set),
        predictions=args.predictions,
        jobs=args.jobs,
    )
    if outcome.errors:
        _print_errors("replay: ERROR", outcome.errors)
        return 2
    report_dir = Path(args.report_dir)
    write_json_atomic(report_dir / "replay.json", outcome_json(outcome))
    text = render_markdown(outcome, title=", ".join(split_names([Path(v) for v in args.videos])))
    atomic_write_text(report_dir / "replay.md", text)
    print(text.split("\n## Each wrong receipt")[0].rstrip())
    print(f"replay: {outcome.videos} videos in {outcome.seconds:.1f} s -> {report_dir / 'replay.md'}")
    if outcome.reproduces_qc is False:
        print("replay: the models variant does NOT reproduce the QC run (other code or models recorded it?)")
        return 1
    return 0


def compare_command(args: argparse.Namespace) -> int:
    """`walkout compare`: exit 0; 1 with --fail-if-worse when the candidate is shown worse; 2 bad input."""
    from walkout.compare import compare_runs, comparison_json, render_markdown, verdict_line
    from walkout.results import write_json_atomic
    from walkout_ci.store import atomic_write_text

    comparison = compare_runs(args.baseline, args.candidate)
    report_dir = Path(args.report_dir)
    write_json_atomic(report_dir / "compare.json", comparison_json(comparison))
    text = render_markdown(comparison)
    atomic_write_text(report_dir / "compare.md", text)
    print(text.split("\n## Videos whose receipts changed")[0].rstrip())
    print(f"compare: {comparison.paired['videos']} videos -> {report_dir / 'compare.md'}")
    if args.fail_if_worse and comparison.worse:
        print("compare: FAIL: " + verdict_line(comparison).replace("**", ""))
        return 1
    return 0


def bump_command(args: argparse.Namespace) -> int:
    """`walkout bump`."""
    from walkout.bump import bump

    result = bump(args.refs, args.component, args.to, fetch=not args.no_fetch)
    if result.superproject_commit is None:
        print(
            f"{result.component}: {result.path} is already at {result.new_commit[:12]} "
            f"({result.new_experiment}) and model_refs.yaml agrees; nothing to commit"
        )
        return 0
    print(result.message.splitlines()[0])
    print(
        f"committed {result.superproject_commit[:12]}; next: push a branch, open a pull request (system QC)"
    )
    return 0


def main(argv: list[str] | None = None) -> int:
    """Run the CLI; returns the exit code (errors are printed, never raised).

    SIGINT/SIGTERM unwind as `Interrupted` (walkout_ci.signals): temp folders are removed and worker
    processes stopped on the way out, then one line is printed and 128 + the signal number returned.
    """
    args = build_parser().parse_args(argv)
    handlers = {
        "run": run_command,
        "qc": qc_command,
        "gate-inputs": gate_inputs_command,
        "gate-predict": gate_predict_command,
        "gate-score": gate_score_command,
        "lock": lock_command,
        "bump": bump_command,
        "replay": replay_command,
        "compare": compare_command,
    }
    # Component packages raise their own error types (CheckpointError, PinError...): bad input there
    # is still "could not run", exit 2 with the message; any other crash is 2 too, never a pass.
    return run_cli_command(
        "walkout",
        args.command,
        lambda: handlers[args.command](args),
        errors=(WalkoutError, WalkoutCIError),
        crash_exit_code=2,
    )


if __name__ == "__main__":
    sys.exit(main())
