"""The whole gate: baseline from the merge-base pin, evaluations through the cache, verdict, reports.

`run_gate` is what `walkout-ci gate` calls:
1. merge-base = `git merge-base HEAD <target branch>`; gate.yaml and the pin (gate.yaml `model.path`,
   default model_ref.yaml) are read *at the merge-base* (`git show`), so a pull request can neither
   relax its own rules nor move its baseline.
2. The baseline is that pin's model, predicted with the merge-base's model code; the candidate is the
   model reference given on the command line (default: the pin at HEAD), predicted with HEAD's model
   code. Both are prepared and *scored by the merge-base's code* and its gate.yaml `evaluate` section
   (walkout_ci.evaluation): the change's model code only predicts, inside the sandbox, without the
   ground truth, and never writes its own report.
3. Each evaluation is looked up in the content-addressed cache (weights sha256, hash of the model code
   at the predicting commit and of the scorer code at the merge-base, dataset hash, rules hash) and run
   only on a miss; a hit is read from a private copy.
4. The dataset's manifest hashes are verified against its files first (a mismatch is ERROR); sealed
   data is decrypted for the trusted stages only (walkout_ci.blind); every candidate (id, pin or
   checkpoint with its recorded experiment) is checked for training-data leakage into the blind set,
   and a candidate with no provenance on the blind set is ERROR.
5. Rules -> verdict (walkout_ci.gate), then report.md / report.html / junit.xml / verdict.json.

Any exception on the way becomes an ERROR verdict naming the stage that failed: the four output files
are written in every case, so CI always has something to show. SIGINT/SIGTERM (walkout_ci.signals)
unwind through every cleanup and also leave an ERROR verdict.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import shutil
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import yaml
from tqdm import tqdm

from walkout_ci import gitrepo, pins, render
from walkout_ci.blind import is_marked_blind
from walkout_ci.cache import CacheKey, EvaluationCache
from walkout_ci.cache import run_info as cache_run_info
from walkout_ci.errors import BlindSetError, GateError, PinError, WalkoutCIError
from walkout_ci.evaluation import Candidate, EvaluationContext, Scorer, evaluate, worktree_pool
from walkout_ci.executors import EvaluationRun, PredictionRequest, PredictionRun
from walkout_ci.gate import GateResult, compare_reports, error_result
from walkout_ci.gate_config import GATE_FILENAME, GateConfig, load_gate_config, parse_gate_config
from walkout_ci.report import read_report, sha256_of_file
from walkout_ci.sandbox import redact
from walkout_ci.signals import Interrupted

LOGGER = logging.getLogger("walkout_ci.gate_runner")
Executor = Callable[[PredictionRequest], PredictionRun]


@dataclass
class GateRequest:
    """Inputs of one gate run (the `walkout-ci gate` arguments).

    component_dir: the component folder (holds gate.yaml and model_ref.yaml), inside a git work tree.
    candidate_ref: experiment id | path to a model_ref.yaml | path to a checkpoint file (model.kind
    "file": a path to such a file); None = the model this change names in gate.yaml's `model.path`.
    data: a dataset folder (simulator export) or a sealed archive (walkout_ci.blind).
    cache: None disables caching (every evaluation runs).
    """

    component_dir: Path
    candidate_ref: str | None
    data: Path
    out_dir: Path
    target_branch: str = "main"
    cache: EvaluationCache | None = None
    executor: Executor | None = None
    track: bool = True
    search: list[Path] = field(default_factory=list)
    progress: bool = True


class _Progress:
    """The stage a gate run is in, so an error verdict can name where the run stopped."""

    def __init__(self) -> None:
        self.stage = "gate"
        # Notes gathered before an error (e.g. "this change edits gate.yaml") stay in the ERROR report.
        self.notes: list[str] = []

    def __call__(self, stage: str) -> None:
        self.stage = stage


def run_gate(request: GateRequest) -> GateResult:
    """Run the gate end to end (see the module docstring); never raises a WalkoutCIError."""
    progress = _Progress()
    started = time.perf_counter()
    try:
        result = _run(request, progress)
    except WalkoutCIError as error:
        result = error_result(redact(str(error)), component=request.component_dir.name, rule=progress.stage)
    except Interrupted as stop:
        result = error_result(
            f"the gate was {stop}", component=request.component_dir.name, rule=progress.stage
        )
        result.duration_s = time.perf_counter() - started
        result.notes = progress.notes + result.notes
        render.write_outputs(result, request.out_dir)
        raise
    except Exception as error:
        # Fail closed: a bug in the gate is an ERROR verdict with all four outputs, never a PASS.
        LOGGER.exception("the gate crashed")
        result = error_result(
            redact(f"internal error ({type(error).__name__}: {error}); please report it"),
            component=request.component_dir.name,
            rule=progress.stage,
        )
    if result.verdict == "ERROR":
        result.notes = [note for note in progress.notes if note not in result.notes] + result.notes
    result.duration_s = time.perf_counter() - started
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


def experiment_link(
    experiment_id: str | None, search: list[Path] | None = None, root: Path | None = None
) -> str | None:
    """Where a human finds an experiment: its ClearML web URL, else its folder (store or export),
    written without machine paths (`display_location`)."""
    if not experiment_id:
        return None
    with contextlib.suppress(WalkoutCIError, ValueError, OSError):
        location = pins.locate_experiment(experiment_id, search=search or [], use_server=False)
        server = location.record.get("server") or {}
        if server.get("web_url"):
            return server["web_url"]
        if server.get("api_host"):
            web = _web_url(experiment_id)
            if web:
                return web
        return display_location(str(location.directory), root)
    return None


def display_location(location: str | None, root: Path | None = None) -> str | None:
    """A URL as it is; a path as people can use it anywhere: relative to the repository root `root`,
    or `$WALKOUT_HOME/...`, else just its last two parts (no machine paths in reports)."""
    if not location or "://" in location:
        return location
    from walkout_ci.store import walkout_home

    path = Path(location)
    for base, shown in ((root, None), (walkout_home(), "$WALKOUT_HOME")):
        if base is None:
            continue
        with contextlib.suppress(ValueError, OSError):
            relative = path.resolve().relative_to(Path(base).resolve()).as_posix()
            return f"{shown}/{relative}" if shown else relative
    return "/".join(path.parts[-2:])


def _web_url(experiment_id: str) -> str | None:
    """ClearML's web page of an online experiment whose record did not keep one (None if unknown)."""
    try:
        from clearml.backend_api import Session

        host = Session.get_app_server_host()
    except Exception:
        # A link is a convenience: no web host configured just means the store path is shown.
        return None
    return f"{host}/projects/*/experiments/{experiment_id}/output/log" if host else None


def _run(request: GateRequest, stage: _Progress) -> GateResult:
    stage("git")
    component_dir = request.component_dir.resolve()
    root = gitrepo.repo_root(component_dir)
    relative = gitrepo.relative_to_root(root, component_dir)
    head = gitrepo.resolve_commit(root, "HEAD")
    base = gitrepo.merge_base(root, request.target_branch)
    prefix = f"{relative}/" if relative else ""
    notes = stage.notes
    notes += [
        f"baseline = the model pinned at the merge-base {base[:12]} of HEAD {head[:12]} "
        f"with {request.target_branch}"
    ]
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
    if head_text != base_text:
        # Not parsed: a change's gate.yaml decides nothing here, and a broken one is its own reviewers'
        # problem (it becomes the rules after merge).
        notes.append(
            "this change edits gate.yaml: its rules and evaluate commands apply after merge; this run used "
            "the merge-base's rules, its prepare/predict/score commands and its scorer"
        )

    stage("baseline")
    search = [component_dir / "experiments", *request.search]
    baseline = _pinned_model(root, base, relative, config, search, side="baseline")

    stage("candidate")
    candidate = _candidate_model(request.candidate_ref, root, head, relative, config, search, notes)

    stage("data")
    with opened_data(request.data) as (data_dir, sealed):
        data_hash = verified_dataset_hash(data_dir)
        blind_data = sealed or is_marked_blind(data_dir)
        stage("leakage")
        trained_by = (candidate.experiment_id,) if candidate.experiment_id else candidate.locked_ids
        if trained_by:
            if blind_data:
                notes.extend(_check_leakage(experiment_id, data_dir, search) for experiment_id in trained_by)
        elif blind_data:
            raise BlindSetError(
                f"the candidate {candidate.ref!r} has no recorded experiment, so nothing shows it was not "
                "trained on the blind set: gate a pinned experiment id, a model_ref.yaml or a checkpoint "
                "written by our training (it records its experiment id)"
            )
    executor = request.executor or _default_executor()
    cache = request.cache
    hidden = tuple(
        path
        for path in (request.out_dir, cache.root if cache is not None else None, walkout_home_or_none())
        if path is not None
    )
    sides = (("baseline", base, baseline), ("candidate", head, candidate))
    runs: dict[str, EvaluationRun] = {}
    code_hashes: dict[str, str] = {}
    scorer = Scorer(commit=base, evaluate=config.evaluate)
    scorer_hash = _code_hash(root, base, relative, config)
    with worktree_pool(root) as trees:
        context = EvaluationContext(
            repo_root=root,
            component_dir=relative,
            component=config.component,
            data=request.data,
            dataset_hash=data_hash,
            predictor=executor,
            track=request.track,
            hidden=hidden,
            trees=trees,
        )
        bar = tqdm(
            sides, desc="gate evaluations", unit="model", disable=not request.progress, file=sys.stderr
        )
        for label, commit, model in bar:
            stage(f"evaluate[{label}]")
            bar.set_postfix_str(f"{label} @ {commit[:10]}")
            code_hashes[label] = scorer_hash if commit == base else _code_hash(root, commit, relative, config)
            key = CacheKey(
                component=config.component,
                weights_sha256=model.sha256,
                # The model code that predicted and the scorer that judged it both make the result.
                code_tree_hash=hashlib.sha256(f"{code_hashes[label]}:{scorer_hash}".encode()).hexdigest(),
                dataset_hash=data_hash,
                rules_hash=config.rules_hash(),
            )
            side = Candidate(
                label=label,
                commit=commit,
                model_ref=model.ref,
                weights_sha256=model.sha256,
                model_path=model.path,
                model_in_worktree=model.in_worktree,
                experiment_id=model.experiment_id,
                exports=model.exports,
            )
            runs[label] = _evaluate_cached(
                context, scorer, side, key, cache, request.out_dir / "evaluations" / label
            )
            notes.extend(note for note in runs[label].notes if note not in notes)
    if code_hashes["baseline"] != code_hashes["candidate"]:
        notes.append(
            "the model code differs between the merge-base and HEAD: each model predicted with its own "
            "commit's code and both were scored by the merge-base's scorer"
        )

    stage("compare")
    result = compare_reports(
        config,
        runs["baseline"].report,
        runs["candidate"].report,
        baseline_dir=runs["baseline"].report_dir,
        candidate_dir=runs["candidate"].report_dir,
    )
    result.baseline.experiment_id = result.baseline.experiment_id or baseline.experiment_id
    result.candidate.experiment_id = result.candidate.experiment_id or candidate.experiment_id
    result.baseline.model_ref = baseline.ref
    result.candidate.model_ref = candidate.ref
    result.baseline.code_commit = result.baseline.code_commit or base
    result.candidate.code_commit = result.candidate.code_commit or head
    result.baseline.link = experiment_link(result.baseline.experiment_id, search, root)
    result.candidate.link = experiment_link(result.candidate.experiment_id, search, root)
    result.notes = notes + result.notes
    result.evaluations = {
        label: {
            "from_cache": run.from_cache,
            "duration_s": run.duration_s,
            "commit": run.commit,
            "experiment_id": run.experiment_id,
            "experiment_link": display_location(run.experiment_link, root),
            "report_dir": display_location(str(run.report_dir), request.out_dir.parent),
        }
        for label, run in runs.items()
    }
    return result


@dataclass(frozen=True)
class _Model:
    """One side's model as the executor needs it: a local file, or a file inside the worktree.

    sha256: the model's identity in the cache key (weights file, or the model file's bytes).
    """

    sha256: str
    ref: str
    experiment_id: str | None = None
    path: Path | None = None
    in_worktree: str | None = None
    # A lock file's models (gate.yaml model.kind file): (folder, verified export) for the sandbox,
    # and their experiment ids for the leakage check.
    exports: tuple[tuple[str, Path], ...] = ()
    locked_ids: tuple[str, ...] = ()


def _pinned_model(
    root: Path, commit: str, relative: str, config: GateConfig, search: list[Path], *, side: str
) -> _Model:
    """The model named by gate.yaml's `model.path` as committed at `commit` (read with git show)."""
    model_path = gitrepo.join_inside(relative, config.model.path)
    data = gitrepo.show_bytes(root, commit, model_path)
    if data is None:
        if side == "baseline":
            raise GateError(
                f"missing baseline: no {model_path} at the merge-base {commit[:12]}; pin a production model "
                "on the target branch first (`walkout-ci pin`)"
            )
        raise GateError(f"no candidate: {model_path} does not exist at HEAD {commit[:12]}; pass --candidate")
    where = f"{model_path}@{commit[:12]}"
    if config.model.kind == "file":
        exports, locked = _locked_exports(data, f"{commit[:12]}:{model_path}", root, search)
        return _Model(
            sha256=hashlib.sha256(data).hexdigest(),
            ref=where,
            in_worktree=model_path,
            exports=exports,
            locked_ids=locked,
        )
    try:
        pin = pins.pin_from_dict(yaml.safe_load(data), source=f"{commit[:12]}:{model_path}")
    except yaml.YAMLError as error:
        raise PinError(f"{commit[:12]}:{model_path} is not valid YAML: {error}") from error
    weights = pins.resolve_pin(pin, search=search)
    return _Model(
        sha256=sha256_of_file(weights),
        ref=f"{where} ({pin.experiment_id})",
        experiment_id=pin.experiment_id,
        path=weights,
    )


def _candidate_model(
    ref: str | None,
    root: Path,
    head: str,
    relative: str,
    config: GateConfig,
    search: list[Path],
    notes: list[str],
) -> _Model:
    """The model given on the command line, or (ref None) the one HEAD pins in `model.path`."""
    if ref is None:
        model_path = gitrepo.join_inside(relative, config.model.path)
        working = root / model_path
        committed = gitrepo.show_bytes(root, head, model_path)
        if committed is not None and (not working.is_file() or working.read_bytes() != committed):
            notes.append(f"{model_path} has uncommitted changes; the committed version at HEAD was evaluated")
        return _pinned_model(root, head, relative, config, search, side="candidate")
    if config.model.kind == "file":
        path = Path(ref).expanduser()
        if not path.is_file():
            raise GateError(f"candidate model file {ref} does not exist")
        exports, locked = _locked_exports(path.read_bytes(), ref, root, search)
        # It replaces the lock inside the worktree, so the folders it names resolve there.
        return _Model(
            sha256=sha256_of_file(path),
            ref=ref,
            path=path.resolve(),
            in_worktree=gitrepo.join_inside(relative, config.model.path),
            exports=exports,
            locked_ids=locked,
        )
    weights = pins.resolve_model_ref(ref, search)
    experiment_id = _experiment_id_of(ref, weights)
    if (
        experiment_id is not None
        and Path(ref).expanduser().is_file()
        and Path(ref).suffix not in (".yaml", ".yml")
    ):
        notes.append(f"the checkpoint {Path(ref).name} records its training experiment {experiment_id}")
    return _Model(sha256=sha256_of_file(weights), ref=ref, experiment_id=experiment_id, path=weights)


def _locked_exports(
    data: bytes, source: str, root: Path, search: list[Path]
) -> tuple[tuple[tuple[str, Path], ...], tuple[str, ...]]:
    """For a lock file: each pinned model's verified experiment export (found here, by the trusted
    side, in the store or bundled exports; its weights' sha256 checked against the lock) and its id.
    The sandboxed prediction sees no store, so these exports are what it resolves the lock with."""
    try:
        document = yaml.safe_load(data)
    except yaml.YAMLError as error:
        raise PinError(f"{source} is not valid YAML: {error}") from error
    exports, ids = [], []
    for model in pins.lock_models(document, source=source):
        bundled = root / model.path / "experiments"
        location = pins.locate_experiment(model.experiment_id, search=[*search, bundled])
        pins.verified_artifact(location, "weights", model.weights_sha256)
        exports.append((model.path, location.directory))
        ids.append(model.experiment_id)
    return tuple(exports), tuple(ids)


def _code_hash(root: Path, commit: str, relative: str, config: GateConfig) -> str:
    """The evaluation code's identity at `commit`: sha256 of the git blob ids of every file under
    `evaluate.code_paths`, except the model pin and the bundled experiments/ exports (a pull request
    that only re-pins keeps the code hash, so its baseline and candidate share code and cache), and of
    every gitlink there (a real submodule: its pinned commit *is* its code, so a bump that moves it
    changes the hash even when no file of the superproject changed)."""
    excluded_file = gitrepo.join_inside(relative, config.model.path)
    excluded_folder = gitrepo.join_inside(relative, "experiments") + "/"
    lines = []
    for path in config.evaluate.code_paths:
        folder = gitrepo.join_inside(relative, path)
        entries = gitrepo.tree_files(root, commit, folder)
        lines += [
            f"{name} {blob}"
            for name, blob in entries
            if name != excluded_file and not name.startswith(excluded_folder)
        ]
        lines += [f"{name} gitlink {sha}" for name, sha in gitrepo.tree_gitlinks(root, commit, folder)]
    if not lines:
        raise GateError(f"no evaluation code under {config.evaluate.code_paths} at commit {commit[:12]}")
    return hashlib.sha256("\n".join(sorted(set(lines))).encode()).hexdigest()


def _experiment_id_of(ref: str, weights: Path) -> str | None:
    """The training experiment behind a model reference: the id itself, a pin's id, or the id a
    checkpoint recorded when our training wrote it (None when it recorded none)."""
    return pins.experiment_id_of_ref(ref) or checkpoint_experiment_id(weights)


def checkpoint_experiment_id(path: Path) -> str | None:
    """`experiment_id` recorded in a checkpoint (torch, read with weights_only) or a JSON model file:
    at its top level or under `extra` / `metadata`; None when absent or unreadable."""
    import json
    import zipfile

    payload = None
    if zipfile.is_zipfile(path):
        import torch

        try:
            payload = torch.load(path, map_location="cpu", weights_only=True)
        except Exception:
            # Unreadable as a safe checkpoint: it records no provenance (the caller decides).
            return None
    else:
        try:
            payload = json.loads(Path(path).read_bytes())
        except (OSError, ValueError):
            return None
    if not isinstance(payload, dict):
        return None
    for holder in (payload, payload.get("extra"), payload.get("metadata")):
        if (
            isinstance(holder, dict)
            and isinstance(holder.get("experiment_id"), str)
            and holder["experiment_id"]
        ):
            return holder["experiment_id"]
    return None


def _default_executor() -> Executor:
    from walkout_ci.executors.local import run_local_prediction

    return run_local_prediction


def verified_dataset_hash(data_dir: Path) -> str:
    """The dataset's hash after checking every file its manifest lists (a mismatch raises)."""
    from walkout_ci.report import verify_dataset

    return verify_dataset(data_dir)


def walkout_home_or_none() -> Path | None:
    from walkout_ci.store import walkout_home

    home = walkout_home()
    return home if home.exists() else None


def _evaluate_cached(
    context: EvaluationContext,
    scorer: Scorer,
    side: Candidate,
    key: CacheKey,
    cache: EvaluationCache | None,
    report_dir: Path,
) -> EvaluationRun:
    """The report for `key`: a private copy of the cached one when present, else evaluate and store.

    The cache is shared by concurrent gates: the first writer of an entry wins, and a reader only
    ever reads its own copy (in `report_dir`), never the entry another gate may be replacing.
    """
    # The folder is this gate's own output of an earlier run into the same --out: replace it.
    shutil.rmtree(report_dir, ignore_errors=True)
    if cache is not None:
        entry = cache.lookup_copy(key, report_dir)
        if entry is not None:
            LOGGER.info("%s: cached evaluation %s", side.label, key.digest()[:12])
            info = cache_run_info(entry)
            return EvaluationRun(
                report_dir=entry,
                report=read_report(entry),
                commit=side.commit,
                duration_s=0.0,
                experiment_id=info.get("experiment_id"),
                experiment_link=info.get("experiment_link"),
                executor=info.get("executor", "local"),
                from_cache=True,
                notes=list(info.get("notes", [])),
            )
    run = evaluate(context, scorer, side, report_dir)
    if cache is not None:
        info = {
            "executor": run.executor,
            "commit": run.commit,
            "duration_s": run.duration_s,
            "experiment_id": run.experiment_id,
            "experiment_link": run.experiment_link,
            "notes": run.notes,
        }
        cache.store(key, run.report_dir, info)
    return run


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


def _check_leakage(experiment_id: str, data_dir: Path, search: list[Path]) -> str:
    """On the blind set: BlindSetError (-> ERROR) when the candidate's training frames overlap it."""
    from walkout_ci import blind

    check = blind.check_leakage(experiment_id, data_dir, search=search)
    return (
        f"leakage check passed: {check.training_hashes} training frames of {experiment_id} vs "
        f"{check.blind_hashes} blind frames, no overlap"
    )
