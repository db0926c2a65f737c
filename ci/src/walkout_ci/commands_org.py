"""`walkout-ci org ...` and `walkout-ci ci ...`: the org of repositories and CI's signed verdicts.

org init DIR [--update]           build (or refresh) the org: bare repos, hooks, index, store, key
ci keygen                         print a new verdict signing key (for WALKOUT_CI_SIGNING_KEY)
ci check --component-dir . --data D --target-branch main --out OUT [--push]
                                  run the gate, sign its verdict for HEAD against the target branch's
                                  tip, record it at refs/verdicts/<HEAD> (and push it with --push)
ci record-verdict --gate-out OUT  sign and record the verdict of a `walkout-ci gate` run already made
ci show-verdict [COMMIT]          print the verdict recorded for a commit (verified when the key is set)

Exit codes: `ci check` returns the gate's (0 PASS, 1 FAIL, 2 ERROR) unless the verdict cannot be
signed or recorded (2); the others 0 ok, 2 error.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from walkout_ci import attest, gitrepo
from walkout_ci.errors import GateError, WalkoutCIError
from walkout_ci.experiment import utc_now


def register(subparsers: Any) -> None:
    """Add the `org` and `ci` subcommands."""
    org = subparsers.add_parser("org", help="the org of repositories (model repos, app, index, store)")
    org_sub = org.add_subparsers(dest="org_command", metavar="ACTION", required=True)
    init = org_sub.add_parser(
        "init",
        help="create the org under DIR from this monorepo (refused if it exists, unless --update)",
        description="Create bare repositories walkout-<component>.git (subtree splits, experiments/ moved "
        "to the store) and walkout.git (real submodules), a package index with wheels of walkout-ci and "
        "walkout-sim, the experiment store, the verdict signing key and the protection hooks.",
    )
    init.add_argument("dir", type=Path, help="the org folder to create")
    init.add_argument(
        "--update", action="store_true", help="refresh hooks, index and store of an existing org"
    )
    init.add_argument("--source", type=Path, help="the monorepo to publish (default: the current one)")
    init.add_argument(
        "--component", action="append", default=[], help="model packages to publish (default: all three)"
    )
    init.add_argument("--no-wheels", action="store_true", help="leave the package index empty")
    init.add_argument(
        "--key-file", type=Path, help="install this verdict signing key (default: generate a new one)"
    )
    init.add_argument(
        "--hook-python", help="interpreter the hooks run, with walkout-ci installed (default: this one)"
    )
    init.set_defaults(handler=_org_init)

    ci = subparsers.add_parser("ci", help="what CI runs: the gate, then a signed verdict for the commit")
    ci_sub = ci.add_subparsers(dest="ci_command", metavar="ACTION", required=True)
    keygen = ci_sub.add_parser("keygen", help="print a new verdict signing key")
    keygen.set_defaults(handler=_keygen)

    check = ci_sub.add_parser(
        "check",
        help="run the gate for HEAD and record its signed verdict (PASS 0 / FAIL 1 / ERROR 2)",
        description="Run `walkout-ci gate` for HEAD against --target-branch, then sign its verdict with "
        f"${attest.KEY_ENV_VAR} and record it at refs/verdicts/<HEAD> (pushed to --remote with --push).",
    )
    check.add_argument("--component-dir", type=Path, default=Path("."), help="component folder (gate.yaml)")
    check.add_argument("--data", type=Path, required=True, help="dataset folder or sealed blind archive")
    check.add_argument("--target-branch", default="main", help="branch the change merges into")
    check.add_argument("--out", type=Path, required=True, help="folder for the gate's outputs")
    check.add_argument("--candidate", help="model to gate (default: the one HEAD pins)")
    check.add_argument(
        "--store", type=Path, help="the org's experiment store (its experiments/ is searched for pins)"
    )
    check.add_argument(
        "--search", type=Path, action="append", default=[], help="extra folder of exported experiments"
    )
    check.add_argument("--cache-dir", type=Path, help="evaluation cache (default: $WALKOUT_HOME/ci-cache)")
    check.add_argument("--no-cache", action="store_true", help="always evaluate")
    check.add_argument("--executor", choices=("local", "clearml"), default="local")
    check.add_argument("--no-track", action="store_true", help="do not record evaluations as experiments")
    check.add_argument("--no-progress", action="store_true", help="no progress bar")
    _add_record_options(check)
    check.set_defaults(handler=_check)

    record = ci_sub.add_parser(
        "record-verdict", help="sign and record the verdict of a gate run already made (its --out folder)"
    )
    record.add_argument("--gate-out", type=Path, required=True, help="the gate's --out folder")
    record.add_argument("--component-dir", type=Path, default=Path("."), help="component folder (gate.yaml)")
    record.add_argument("--target-branch", default="main")
    record.add_argument(
        "--data", type=Path, help="the data the gate ran on (to record whether it was sealed)"
    )
    _add_record_options(record)
    record.set_defaults(handler=_record)

    show = ci_sub.add_parser("show-verdict", help="print the verdict recorded for a commit")
    show.add_argument("commit", nargs="?", default="HEAD")
    show.add_argument("--repo-dir", type=Path, default=Path("."))
    show.add_argument("--fetch", action="store_true", help="fetch refs/verdicts/* from --remote first")
    show.add_argument("--remote", default="origin")
    show.set_defaults(handler=_show)


def _add_record_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--push", action="store_true", help="push refs/verdicts/<commit> to --remote")
    parser.add_argument("--remote", default="origin", help="where to push the verdict (default: origin)")
    parser.add_argument("--repo", help="repository name in the verdict (default: --remote's URL basename)")


# --- the API (also used by other tools) -------------------------------------------------------------


def repo_name(root: Path, remote: str = "origin") -> str:
    """The repository's name: the basename of `remote`'s URL without `.git`, else the folder name."""
    url = gitrepo.git(root, "remote", "get-url", remote, check=False).strip()
    name = url.rstrip("/").rsplit("/", 1)[-1].rsplit(":", 1)[-1] if url else root.name
    return name.removesuffix(".git") or root.name


def gate_kind(root: Path, commit: str, relative: str) -> str:
    """Which gate a component's gate.yaml at `commit` is: "qc" (the model is a file, e.g. the app's
    model_refs.yaml lock) or "model" (a model pin). GateError when there is no gate.yaml there."""
    from walkout_ci.gate_config import GATE_FILENAME, parse_gate_config

    path = f"{relative}/{GATE_FILENAME}" if relative else GATE_FILENAME
    text = gitrepo.show_file(root, commit, path)
    if text is None:
        raise GateError(f"no {path} at {commit[:12]}: cannot tell which gate this is")
    config = parse_gate_config(text, source=f"{commit[:12]}:{path}")
    return "qc" if config.model.kind == "file" else "model"


def _candidate_metrics(verdict: dict[str, Any]) -> tuple[dict[str, float], str | None]:
    """(candidate metrics, dataset hash) from the candidate's report, else from the verdict's rows."""
    from walkout_ci.report import read_report

    report_dir = ((verdict.get("evaluations") or {}).get("candidate") or {}).get("report_dir")
    if report_dir:
        try:
            report = read_report(report_dir)
            return {k: float(v) for k, v in report["metrics"].items()}, report["dataset"]["hash"]
        except WalkoutCIError:
            pass  # an ERROR run may have no report: the rows below are what there is
    rows = verdict.get("metrics") or []
    return {row["name"]: float(row["candidate"]) for row in rows if row.get("candidate") is not None}, None


def attestation_from_gate_out(
    gate_out: Path,
    *,
    repo: str,
    root: Path,
    relative: str,
    commit: str,
    base: str,
    target_branch: str,
    sealed: bool | None,
) -> dict[str, Any]:
    """The attestation of the gate run whose outputs are in `gate_out` (its verdict.json)."""
    path = gate_out / "verdict.json"
    try:
        raw = path.read_bytes()
        verdict = json.loads(raw)
    except (OSError, ValueError) as error:
        raise GateError(f"cannot read the gate's verdict {path}: {error}") from error
    try:
        kind = gate_kind(root, base, relative)
    except WalkoutCIError:
        if verdict.get("verdict") == "PASS":
            raise
        kind = "model"  # an ERROR/FAIL without a readable gate.yaml: recorded, and it never passes
    metrics, dataset_hash = _candidate_metrics(verdict)
    candidate = verdict.get("candidate") or {}
    extra: dict[str, Any] = {
        "summary": str(verdict.get("summary") or "")[:2000],
        "component": str(verdict.get("component") or ""),
        "dataset_hash": dataset_hash,
        "candidate": {
            "experiment_id": candidate.get("experiment_id"),
            "model_ref": candidate.get("model_ref"),
            "weights_sha256": candidate.get("weights_sha256"),
        },
        "verdict_sha256": hashlib.sha256(raw).hexdigest(),
    }
    if sealed is not None:
        extra["sealed_data"] = sealed
    return attest.make_attestation(
        repo=repo,
        kind=kind,
        commit=commit,
        base=base,
        verdict=str(verdict.get("verdict")),
        created_at=utc_now(),
        metrics=metrics,
        target_branch=target_branch,
        **extra,
    )


@dataclass
class Recorded:
    """A verdict signed and recorded for `commit` (pushed when `pushed`)."""

    attestation: dict[str, Any]
    document: bytes
    ref: str
    pushed: bool


def record(
    gate_out: Path,
    component_dir: Path,
    *,
    target_branch: str = "main",
    data: Path | None = None,
    push: bool = False,
    remote: str = "origin",
    repo: str | None = None,
    key: attest.SigningKey | None = None,
) -> Recorded:
    """Sign the verdict in `gate_out` for HEAD against the merge-base with `target_branch` (the tip of
    the target branch when the change is up to date), store it at refs/verdicts/<HEAD> and push it.

    Also writes `gate_out/attestation.json` (the signed document). AttestationError without a key.
    """
    from walkout_ci import blind

    key = key or attest.key_from_env()
    component_dir = Path(component_dir).resolve()
    root = gitrepo.repo_root(component_dir)
    relative = gitrepo.relative_to_root(root, component_dir)
    head = gitrepo.resolve_commit(root, "HEAD")
    base = gitrepo.merge_base(root, target_branch)
    attestation = attestation_from_gate_out(
        Path(gate_out),
        repo=repo or repo_name(root, remote),
        root=root,
        relative=relative,
        commit=head,
        base=base,
        target_branch=target_branch,
        sealed=blind.is_sealed(data) if data is not None else None,
    )
    document = attest.sign(attestation, key)
    from walkout_ci.store import atomic_write_bytes

    atomic_write_bytes(Path(gate_out) / "attestation.json", document)
    attest.store_verdict(root, head, document)
    if push:
        attest.push_verdict(root, remote, head)
    return Recorded(attestation, document, attest.verdict_ref(head), push)


def _branch_tip(root: Path, branch: str) -> str | None:
    for name in (branch, f"origin/{branch}"):
        found = gitrepo.git(root, "rev-parse", "--verify", "--quiet", f"{name}^{{commit}}", check=False)
        if found:
            return found
    return None


# --- handlers ---------------------------------------------------------------------------------------


def _org_init(args: argparse.Namespace) -> int:
    from walkout_ci import org

    spec = org.OrgSpec()
    if args.component:
        spec = org.OrgSpec(components=tuple(args.component), wheel_projects=spec.wheel_projects)
    if args.no_wheels:
        spec = org.OrgSpec(components=spec.components, wheel_projects=())
    key_text = None
    if args.key_file is not None:
        key_text = attest.key_from_file(args.key_file).secret.decode()
    info = org.build_org(
        args.dir,
        source=args.source,
        spec=spec,
        update=args.update,
        key_text=key_text,
        python=args.hook_python,
    )
    verb = "updated" if info.updated else "created"
    print(f"org {verb} at {info.root} from {info.source} @ {info.source_commit[:12]}")
    for name, repo in info.repos.items():
        print(f"  {name}.git ({repo['kind']} gate) main = {str(repo.get('main'))[:12]}")
    print(f"  index: file://{info.root / org.INDEX_DIR / 'simple'} ({len(info.wheels)} wheels)")
    print(f"  store: {info.root / org.STORE_DIR} ({len(info.experiments)} experiments)")
    print(
        f"  verdict signing key: {info.root / org.KEY_FILE} (give CI the same value as "
        f"${attest.KEY_ENV_VAR}; keep it off workstations)"
    )
    return 0


def _keygen(_args: argparse.Namespace) -> int:
    print(attest.generate_key())
    return 0


def _check(args: argparse.Namespace) -> int:
    from walkout_ci.commands_gate import executor_for
    from walkout_ci.gate_runner import GateRequest, run_gate

    # Refuse early, before a long gate run, when the verdict could not be pushed anyway.
    key = attest.key_from_env() if args.push else None
    component_dir = args.component_dir.resolve()
    root = gitrepo.repo_root(component_dir)
    head = gitrepo.resolve_commit(root, "HEAD")
    base = gitrepo.merge_base(root, args.target_branch)
    tip = _branch_tip(root, args.target_branch)
    if tip is not None and tip != base:
        print(
            f"note: HEAD {head[:12]} is not up to date with {args.target_branch} ({tip[:12]}); the gate "
            f"compares with the merge-base {base[:12]}, and the protected branch will refuse this verdict "
            f"as stale: merge or rebase {args.target_branch} first",
            file=sys.stderr,
        )
    cache = None
    if not args.no_cache:
        from walkout_ci.cache import EvaluationCache, secret_from_env

        cache = (
            EvaluationCache(args.cache_dir, secret=secret_from_env())
            if args.cache_dir
            else EvaluationCache.default()
        )
    search = list(args.search)
    if args.store is not None:
        search.append(args.store / "experiments")
    result = run_gate(
        GateRequest(
            component_dir=component_dir,
            candidate_ref=args.candidate,
            data=args.data,
            out_dir=args.out,
            target_branch=args.target_branch,
            cache=cache,
            executor=executor_for(args.executor),
            track=not args.no_track,
            search=search,
            progress=not args.no_progress,
        )
    )
    print(f"verdict for {head[:12]} against {args.target_branch} @ {base[:12]}: {result.summary()}")
    print(f"reports: {args.out}")
    if key is None:
        try:
            key = attest.key_from_env()
        except attest.AttestationError as error:
            print(f"verdict not signed or recorded: {error}", file=sys.stderr)
            return result.exit_code
    recorded = record(
        args.out,
        component_dir,
        target_branch=args.target_branch,
        data=args.data,
        push=args.push,
        remote=args.remote,
        repo=args.repo,
        key=key,
    )
    _print_recorded(recorded, args.remote)
    return result.exit_code


def _print_recorded(recorded: Recorded, remote: str) -> None:
    attestation = recorded.attestation
    where = f"{recorded.ref}" + (f", pushed to {remote}" if recorded.pushed else " (local; not pushed)")
    print(
        f"signed {attestation['verdict']} verdict ({attestation['kind']} gate, {attestation['repo']}) for "
        f"{attestation['commit'][:12]} against {attestation['base'][:12]}: {where}"
    )


def _record(args: argparse.Namespace) -> int:
    recorded = record(
        args.gate_out,
        args.component_dir,
        target_branch=args.target_branch,
        data=args.data,
        push=args.push,
        remote=args.remote,
        repo=args.repo,
    )
    _print_recorded(recorded, args.remote)
    return 0


def _show(args: argparse.Namespace) -> int:
    root = gitrepo.repo_root(args.repo_dir)
    if args.fetch:
        attest.fetch_verdicts(root, args.remote)
    commit = gitrepo.resolve_commit(root, args.commit)
    if not commit:
        raise GateError(f"{args.commit!r} is not a commit in {root}")
    try:
        key = attest.key_from_env()
    except attest.AttestationError:
        key = None
    found = attest.read_verdict(root, commit, key)
    if found is None:
        raise GateError(
            f"no verdict recorded for {commit[:12]} (refs/verdicts/{commit}); fetch them with --fetch"
        )
    attestation, verified = found
    print(json.dumps({"verified": verified, "attestation": attestation}, indent=2, sort_keys=True))
    return 0
