"""The whole gate: baseline from the merge-base pin, evaluations through the cache, verdict, reports.

`run_gate` is what `walkout-ci gate` calls:
1. merge-base = `git merge-base HEAD <target branch>`; gate.yaml and model_ref.yaml are read *at the
   merge-base* (`git show`), so a pull request can neither relax its own rules nor move its baseline.
2. The baseline is that pin's model, evaluated with the merge-base's code; the candidate is the model
   reference given on the command line, evaluated with HEAD's code (the candidate's gate.yaml
   `evaluate` section, since its evaluation code may have changed).
3. Each evaluation is looked up in the content-addressed cache (weights sha256, git tree hash of the
   component folder at that commit, dataset hash, rules hash) and run only on a miss.
4. Sealed data is decrypted for the evaluations only (walkout_ci.blind) and removed afterwards; a
   candidate with an experiment id is checked for training-data leakage into it.
5. Rules -> verdict (walkout_ci.gate), then report.md / report.html / junit.xml / verdict.json.

Any WalkoutCIError on the way becomes an ERROR verdict naming the stage that failed: the output files
are written in every case, so CI always has something to show.
"""

from __future__ import annotations

import contextlib
import logging
import shutil
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path

import yaml

from walkout_ci import gitrepo, pins, render
from walkout_ci.cache import CacheKey, EvaluationCache
from walkout_ci.cache import run_info as cache_run_info
from walkout_ci.errors import BlindSetError, GateError, PinError, WalkoutCIError
from walkout_ci.executors import EvaluationRequest, EvaluationRun
from walkout_ci.gate import GateResult, compare_reports, error_result
from walkout_ci.gate_config import GATE_FILENAME, load_gate_config, parse_gate_config
from walkout_ci.report import dataset_hash, read_report, sha256_of_file

LOGGER = logging.getLogger("walkout_ci.gate_runner")
Executor = Callable[[EvaluationRequest], EvaluationRun]


@dataclass
class GateRequest:
    """Inputs of one gate run (the `walkout-ci gate` arguments).

    component_dir: the component folder (holds gate.yaml and model_ref.yaml), inside a git work tree.
    candidate_ref: experiment id | path to a model_ref.yaml | path to a checkpoint file.
    data: a dataset folder (simulator export) or a sealed archive (walkout_ci.blind).
    cache: None disables caching (every evaluation runs).
    """

    component_dir: Path
    candidate_ref: str
    data: Path
    out_dir: Path
    target_branch: str = "main"
    cache: EvaluationCache | None = None
    executor: Executor | None = None
    track: bool = True
    search: list[Path] = field(default_factory=list)


class _Progress:
    """The stage a gate run is in, so an error verdict can name where the run stopped."""

    def __init__(self) -> None:
        self.stage = "gate"

    def __call__(self, stage: str) -> None:
        self.stage = stage


def run_gate(request: GateRequest) -> GateResult:
    """Run the gate end to end (see the module docstring); never raises a WalkoutCIError."""
    progress = _Progress()
    try:
        result = _run(request, progress)
    except WalkoutCIError as error:
        result = error_result(str(error), component=request.component_dir.name, rule=progress.stage)
    render.write_outputs(result, request.out_dir)
    return result


def compare_report_files(
    config_path: Path, baseline_path: Path, candidate_path: Path, out_dir: Path
) -> GateResult:
    """Compare two existing report.json files (or report folders) under a gate.yaml; write the outputs."""
    try:
        config = load_gate_config(config_path)
        component = config.component
    except WalkoutCIError as error:
        result = error_result(str(error), rule="gate.yaml")
        render.write_outputs(result, out_dir)
        return result
    reports = {}
    for label, path in (("baseline", baseline_path), ("candidate", candidate_path)):
        try:
            reports[label] = read_report(path)
        except WalkoutCIError as error:
            result = error_result(f"{label} report: {error}", component=component, rule=f"report[{label}]")
            render.write_outputs(result, out_dir)
            return result
    result = compare_reports(
        config,
        reports["baseline"],
        reports["candidate"],
        baseline_dir=_report_folder(baseline_path),
        candidate_dir=_report_folder(candidate_path),
    )
    result.baseline.link = experiment_link(result.baseline.experiment_id)
    result.candidate.link = experiment_link(result.candidate.experiment_id)
    render.write_outputs(result, out_dir)
    return result


def _report_folder(path: Path) -> Path:
    return path if path.is_dir() else path.parent


def experiment_link(experiment_id: str | None, search: list[Path] | None = None) -> str | None:
    """Where a human finds an experiment: its ClearML web URL, else its folder (store or export)."""
    if not experiment_id:
        return None
    with contextlib.suppress(WalkoutCIError, ValueError, OSError):
        location = pins.locate_experiment(experiment_id, search=search or [], use_server=False)
        server = location.record.get("server") or {}
        return server.get("web_url") or str(location.directory)
    return None


def _run(request: GateRequest, stage: Callable[[str], None]) -> GateResult:
    stage("git")
    component_dir = request.component_dir.resolve()
    root = gitrepo.repo_root(component_dir)
    relative = gitrepo.relative_to_root(root, component_dir)
    head = gitrepo.resolve_commit(root, "HEAD")
    base = gitrepo.merge_base(root, request.target_branch)
    prefix = f"{relative}/" if relative else ""
    notes = [f"baseline = pin at merge-base {base[:12]} of HEAD {head[:12]} with {request.target_branch}"]
    if gitrepo.is_dirty(root, relative):
        notes.append(
            f"{relative or '.'} has uncommitted changes; the candidate was evaluated with the committed code "
            f"of HEAD {head[:12]}"
        )

    stage("gate.yaml")
    base_text = gitrepo.show_file(root, base, prefix + GATE_FILENAME)
    if base_text is None:
        raise GateError(
            f"no {prefix}{GATE_FILENAME} at the merge-base {base[:12]}: the gate's rules come from the "
            "target branch, so a component must have its gate.yaml merged before its models can be gated"
        )
    config = parse_gate_config(base_text, source=f"{base[:12]}:{prefix}{GATE_FILENAME}")
    head_text = gitrepo.show_file(root, head, prefix + GATE_FILENAME)
    candidate_config = (
        parse_gate_config(head_text, source=f"{head[:12]}:{prefix}{GATE_FILENAME}") if head_text else config
    )
    if candidate_config.rules_dict() != config.rules_dict():
        notes.append(
            "this change edits gate.yaml: its rules apply after merge; this run used the merge-base rules"
        )

    stage("baseline")
    search = [component_dir / "experiments", *request.search]
    pin_text = gitrepo.show_file(root, base, prefix + pins.PIN_FILE_NAME)
    if pin_text is None:
        raise GateError(
            f"missing baseline: no {prefix}{pins.PIN_FILE_NAME} at the merge-base {base[:12]}; "
            "pin a production model on the target branch first (`walkout-ci pin`)"
        )
    try:
        pin = pins.pin_from_dict(yaml.safe_load(pin_text), source=f"{base[:12]}:{prefix}{pins.PIN_FILE_NAME}")
    except yaml.YAMLError as error:
        raise PinError(f"{base[:12]}:{prefix}{pins.PIN_FILE_NAME} is not valid YAML: {error}") from error
    baseline_weights = pins.resolve_pin(pin, search=search)
    baseline_sha = sha256_of_file(baseline_weights)

    stage("candidate")
    candidate_weights = pins.resolve_model_ref(request.candidate_ref, search)
    candidate_sha = sha256_of_file(candidate_weights)
    candidate_experiment = _experiment_id_of(request.candidate_ref)

    stage("data")
    with opened_data(request.data) as (data_dir, sealed):
        data_hash = dataset_hash(data_dir)
        if candidate_experiment is not None:
            stage("leakage")
            note = _check_leakage(candidate_experiment, data_dir, search, sealed)
            if note:
                notes.append(note)
        executor = request.executor or _default_executor()
        runs = {}
        for label, cfg, commit, weights, sha, ref in (
            ("baseline", config, base, baseline_weights, baseline_sha, f"pin {pin.experiment_id}"),
            ("candidate", candidate_config, head, candidate_weights, candidate_sha, request.candidate_ref),
        ):
            stage(f"evaluate[{label}]")
            key = CacheKey(
                component=config.component,
                weights_sha256=sha,
                code_tree_hash=gitrepo.tree_hash(root, commit, relative),
                dataset_hash=data_hash,
                rules_hash=config.rules_hash(),
            )
            evaluation = EvaluationRequest(
                repo_root=root,
                component_dir=relative,
                component=config.component,
                commit=commit,
                evaluate=cfg.evaluate,
                model_path=weights,
                model_ref=str(ref),
                weights_sha256=sha,
                data_dir=data_dir,
                dataset_hash=data_hash,
                report_dir=request.out_dir / "evaluations" / label,
                track=request.track,
                label=label,
            )
            runs[label] = _evaluate_cached(evaluation, key, request.cache, executor)

    stage("compare")
    result = compare_reports(
        config,
        runs["baseline"].report,
        runs["candidate"].report,
        baseline_dir=runs["baseline"].report_dir,
        candidate_dir=runs["candidate"].report_dir,
    )
    result.baseline.experiment_id = result.baseline.experiment_id or pin.experiment_id
    result.candidate.experiment_id = result.candidate.experiment_id or candidate_experiment
    result.baseline.model_ref = f"{prefix}{pins.PIN_FILE_NAME}@{base[:12]} ({pin.experiment_id})"
    result.candidate.model_ref = request.candidate_ref
    result.baseline.code_commit = result.baseline.code_commit or base
    result.candidate.code_commit = result.candidate.code_commit or head
    result.baseline.link = experiment_link(result.baseline.experiment_id, search)
    result.candidate.link = experiment_link(result.candidate.experiment_id, search)
    result.notes = notes + result.notes
    result.evaluations = {
        label: {
            "from_cache": run.from_cache,
            "duration_s": run.duration_s,
            "commit": run.commit,
            "experiment_id": run.experiment_id,
            "experiment_link": run.experiment_link,
            "report_dir": str(run.report_dir),
        }
        for label, run in runs.items()
    }
    return result


def _experiment_id_of(ref: str) -> str | None:
    """The training experiment behind a model reference (None for a bare checkpoint file)."""
    path = Path(ref).expanduser()
    if path.is_file():
        return pins.read_pin(path).experiment_id if path.suffix in (".yaml", ".yml") else None
    return ref


def _default_executor() -> Executor:
    from walkout_ci.executors.local import run_local_evaluation

    return run_local_evaluation


def _evaluate_cached(
    request: EvaluationRequest, key: CacheKey, cache: EvaluationCache | None, executor: Executor
) -> EvaluationRun:
    """The report for `key`: from the cache when present, else run, validate and store it."""
    if cache is not None:
        entry = cache.lookup(key)
        if entry is not None:
            LOGGER.info("%s: cached evaluation %s", request.label, entry)
            info = cache_run_info(entry)
            return EvaluationRun(
                report_dir=entry,
                report=read_report(entry),
                commit=request.commit,
                duration_s=0.0,
                experiment_id=info.get("experiment_id"),
                experiment_link=info.get("experiment_link"),
                executor=info.get("executor", "local"),
                from_cache=True,
            )
    if cache is None:
        return executor(request)
    scratch = Path(tempfile.mkdtemp(prefix="walkout-ci-run-"))
    try:
        run = executor(_with_report_dir(request, scratch / "report"))
        info = {
            "executor": run.executor,
            "commit": run.commit,
            "duration_s": run.duration_s,
            "experiment_id": run.experiment_id,
            "experiment_link": run.experiment_link,
        }
        entry = cache.store(key, run.report_dir, info)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    run.report_dir = entry
    run.report = read_report(entry)
    return run


def _with_report_dir(request: EvaluationRequest, report_dir: Path) -> EvaluationRequest:
    return replace(request, report_dir=report_dir)


@contextlib.contextmanager
def opened_data(data: Path) -> Iterator[tuple[Path, bool]]:
    """(dataset folder, sealed?) for a folder or a sealed archive (decrypted for the `with` only)."""
    data = Path(data)
    if data.is_dir():
        yield data.resolve(), False
        return
    if not data.is_file():
        raise GateError(f"--data {data} does not exist: pass a dataset folder or a sealed blind archive")
    from walkout_ci import blind

    with blind.open_sealed(data) as opened:
        yield Path(opened), True


def _check_leakage(experiment_id: str, data_dir: Path, search: list[Path], sealed: bool) -> str | None:
    """On the blind set: BlindSetError (-> ERROR) when the candidate's training frames overlap it.

    Returns a note for the report, or None when the data is not the blind set (sealed or marked
    `"blind": true` in its manifest): leakage into a validation split is not what the gate guards.
    """
    from walkout_ci import blind

    if not sealed:
        try:
            blind.refuse_blind(data_dir)
            return None
        except BlindSetError:
            pass  # a blind manifest: check it like a sealed one
    check = blind.check_leakage(experiment_id, data_dir, search=search)
    return (
        f"leakage check passed: {check.training_hashes} training frames of {experiment_id} vs "
        f"{check.blind_hashes} blind frames, no overlap"
    )
