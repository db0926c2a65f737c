"""`walkout-ci evaluate` and `walkout-ci gate`: thin argparse wrappers over the executors and the gate.

Exit codes: 0 PASS / evaluation written, 1 FAIL (regression), 2 ERROR (could not evaluate, bad input).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from walkout_ci import gitrepo
from walkout_ci.cache import EvaluationCache, secret_from_env
from walkout_ci.errors import EvaluationError
from walkout_ci.evaluation import Candidate, EvaluationContext, Scorer, evaluate
from walkout_ci.executors import EvaluationRun
from walkout_ci.gate import GateResult
from walkout_ci.gate_config import GATE_FILENAME, parse_gate_config
from walkout_ci.gate_runner import (
    GateRequest,
    compare_report_files,
    opened_data,
    run_gate,
    verified_dataset_hash,
)
from walkout_ci.report import sha256_of_file

EXECUTORS = ("local", "clearml")


def register(subparsers: Any) -> None:
    """Add the `evaluate` and `gate` subcommands."""
    evaluate = subparsers.add_parser(
        "evaluate",
        help="run a component's evaluation (a test experiment) for a commit in a clean worktree",
        description="Run the evaluation command of <component-dir>/gate.yaml at --commit, in a clean git "
        "worktree, as its own ClearML experiment; the validated report lands in --report-dir.",
    )
    evaluate.add_argument(
        "--component-dir", type=Path, required=True, help="component folder (has gate.yaml)"
    )
    evaluate.add_argument("--model", required=True, help="experiment id | model_ref.yaml | checkpoint file")
    evaluate.add_argument("--data", type=Path, required=True, help="dataset folder or sealed blind archive")
    evaluate.add_argument("--report-dir", type=Path, required=True, help="new folder for report.json")
    evaluate.add_argument("--commit", default="HEAD", help="code to evaluate with (default: HEAD)")
    _add_common(evaluate)
    evaluate.set_defaults(handler=_evaluate)

    gate = subparsers.add_parser(
        "gate",
        help="compare a candidate model with the merge-base pin: PASS (0) / FAIL (1) / ERROR (2)",
        description="Evaluate the baseline (pin at the merge-base with --target-branch) and the candidate "
        "through the cache, apply gate.yaml's rules and write report.md, report.html, junit.xml and "
        "verdict.json into --out. Or compare two existing reports (--baseline-report, --candidate-report).",
    )
    gate.add_argument("--component-dir", type=Path, help="component folder (has gate.yaml, model_ref.yaml)")
    gate.add_argument(
        "--candidate",
        help="experiment id | model_ref.yaml | checkpoint file "
        "(default: the model this change pins, gate.yaml's model.path, e.g. model_ref.yaml)",
    )
    gate.add_argument("--data", type=Path, help="dataset folder or sealed blind archive")
    gate.add_argument(
        "--target-branch", default="main", help="branch the change will merge into (default: main)"
    )
    gate.add_argument("--out", type=Path, required=True, help="folder for the gate's outputs")
    gate.add_argument(
        "--baseline-report", type=Path, help="compare this existing report.json (or its folder)"
    )
    gate.add_argument("--candidate-report", type=Path, help="... with this one (no evaluation is run)")
    gate.add_argument("--gate-config", type=Path, help="gate.yaml for --*-report mode (default: component's)")
    gate.add_argument("--cache-dir", type=Path, help="evaluation cache (default: $WALKOUT_HOME/ci-cache)")
    gate.add_argument("--no-cache", action="store_true", help="always evaluate (and do not store results)")
    _add_common(gate)
    gate.set_defaults(handler=_gate)


def _add_common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--executor", choices=EXECUTORS, default="local", help="where evaluations run")
    parser.add_argument("--no-track", action="store_true", help="do not record evaluations as experiments")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    parser.add_argument(
        "--search", type=Path, action="append", default=[], help="extra folder of exported experiments"
    )


def executor_for(name: str):
    """The executor function `PredictionRequest -> PredictionRun` called `name`."""
    if name == "local":
        from walkout_ci.executors.local import run_local_prediction

        return run_local_prediction
    try:
        from walkout_ci.executors.clearml import run_clearml_prediction
    except ImportError as error:
        raise EvaluationError(
            f"the clearml executor is not available here ({error}); use --executor local"
        ) from error
    return run_clearml_prediction


def _evaluate(args: argparse.Namespace) -> int:
    from walkout_ci import pins

    component_dir = args.component_dir.resolve()
    root = gitrepo.repo_root(component_dir)
    relative = gitrepo.relative_to_root(root, component_dir)
    commit = gitrepo.resolve_commit(root, args.commit)
    prefix = f"{relative}/" if relative else ""
    text = gitrepo.show_file(root, commit, prefix + GATE_FILENAME)
    if text is None:
        raise EvaluationError(
            f"no {prefix}{GATE_FILENAME} at commit {commit[:12]}: nothing says how to evaluate"
        )
    config = parse_gate_config(text, source=f"{commit[:12]}:{prefix}{GATE_FILENAME}")
    experiment_id = None
    if config.model.kind == "file":
        # The model is the file itself (e.g. the app's model_refs.yaml), not a pin to resolve.
        weights = Path(args.model).expanduser().resolve()
        if not weights.is_file():
            raise EvaluationError(f"--model {args.model}: no such file (gate.yaml model.kind is 'file')")
    else:
        weights = pins.resolve_model_ref(args.model, [component_dir / "experiments", *args.search])
        experiment_id = None if Path(args.model).expanduser().exists() else args.model
    with opened_data(args.data) as (data_dir, _sealed):
        data_hash = verified_dataset_hash(data_dir)
    context = EvaluationContext(
        repo_root=root,
        component_dir=relative,
        component=config.component,
        data=args.data,
        dataset_hash=data_hash,
        predictor=executor_for(args.executor),
        track=not args.no_track,
    )
    # One commit's evaluation: its own prepare/score code judges its own model code (nothing is
    # compared here; the gate is what scores a change with the target branch's code).
    candidate = Candidate(
        label="evaluate",
        commit=commit,
        model_ref=args.model,
        weights_sha256=sha256_of_file(weights),
        model_path=weights,
        experiment_id=experiment_id,
    )
    run: EvaluationRun = evaluate(
        context, Scorer(commit=commit, evaluate=config.evaluate), candidate, args.report_dir
    )
    print(
        f"evaluation of {args.model} at {commit[:12]}: {run.report_dir / 'report.json'} "
        f"({run.duration_s:.1f} s)"
    )
    if run.experiment_link:
        print(f"test experiment {run.experiment_id}: {run.experiment_link}")
    metrics = ", ".join(f"{name}={value:.4f}" for name, value in run.report["metrics"].items())
    print(f"metrics: {metrics}")
    return 0


def _gate(args: argparse.Namespace) -> int:
    direct = args.baseline_report is not None or args.candidate_report is not None
    if direct:
        if args.baseline_report is None or args.candidate_report is None:
            raise EvaluationError(
                "give both --baseline-report and --candidate-report (missing baseline or candidate)"
            )
        config_path = args.gate_config or (args.component_dir / GATE_FILENAME if args.component_dir else None)
        if config_path is None:
            raise EvaluationError(
                "--baseline-report/--candidate-report need --gate-config or --component-dir"
            )
        result = compare_report_files(config_path, args.baseline_report, args.candidate_report, args.out)
    else:
        missing = [
            flag
            for flag, value in (("--component-dir", args.component_dir), ("--data", args.data))
            if value is None
        ]
        if missing:
            raise EvaluationError(
                f"gate needs {', '.join(missing)} (or --baseline-report and --candidate-report)"
            )
        cache = (
            None
            if args.no_cache
            else (
                EvaluationCache(args.cache_dir, secret=secret_from_env())
                if args.cache_dir
                else EvaluationCache.default()
            )
        )
        request = GateRequest(
            component_dir=args.component_dir,
            candidate_ref=args.candidate,
            data=args.data,
            out_dir=args.out,
            target_branch=args.target_branch,
            cache=cache,
            executor=executor_for(args.executor),
            track=not args.no_track,
            search=list(args.search),
            progress=not args.no_progress,
        )
        result = run_gate(request)
    _print_result(result, args.out)
    return result.exit_code


def _print_result(result: GateResult, out_dir: Path) -> None:
    for label, side in (("baseline", result.baseline), ("candidate", result.candidate)):
        link = side.link or "(no experiment link)"
        print(f"{label} experiment {side.experiment_id or '-'}: {link}")
        evaluation = result.evaluations.get(label) or {}
        if evaluation:
            how = (
                "cached"
                if evaluation.get("from_cache")
                else f"ran in {evaluation.get('duration_s', 0):.1f} s"
            )
            link = evaluation.get("experiment_link") or "-"
            print(f"{label} evaluation: {how}; test experiment: {link}")
    took = f" ({result.duration_s:.2f} s)" if result.duration_s is not None else ""
    print(f"verdict{took}: {result.summary()}")
    names = ("report.md", "report.html", "junit.xml", "verdict.json")
    print("reports: " + ", ".join(str(out_dir / name) for name in names))
    sys.stdout.flush()
