"""`walkout-ci` subcommands for experiments, pins, the blind set and clones.

experiment export ID --to DIR      write a bundle (walkout_ci.bundle) into DIR/ID/
experiment import DIR              copy a bundle into the local store
experiment push ID [--pins P ...]  upload to the configured ClearML server, re-pin to the new id
experiment list                    experiments in the local store
pin ID --component C --out FILE    write a model_ref.yaml from an experiment
resolve REF [--explain]            print the verified local weights path of REF (or its lineage)
blind seal DIR --out ARCHIVE       encrypt a dataset folder (key: $WALKOUT_BLIND_KEY)
blind keygen                       print a new key for WALKOUT_BLIND_KEY
clone ID --set k=v ...             clone an experiment with overrides; enqueue it or run it locally
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import yaml

from walkout_ci.errors import ConfigError


def _add_search(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--search",
        action="append",
        default=[],
        metavar="DIR",
        help="folder of bundled exports (<DIR>/<id>/) to look in after the server and the store; repeatable",
    )


def register(subparsers: Any) -> None:
    """Add this module's subcommands to the `walkout-ci` parser."""
    experiment = subparsers.add_parser("experiment", help="export, import, push or list experiments")
    experiment_sub = experiment.add_subparsers(dest="experiment_command", metavar="ACTION", required=True)

    export = experiment_sub.add_parser("export", help="export an experiment next to its pin (a few MB)")
    export.add_argument("experiment_id")
    export.add_argument("--to", required=True, type=Path, help="e.g. submodules/detection/experiments")
    _add_search(export)
    export.set_defaults(handler=_export)

    import_ = experiment_sub.add_parser("import", help="copy an exported experiment into the local store")
    import_.add_argument("bundle_dir", type=Path)
    import_.set_defaults(handler=_import)

    push = experiment_sub.add_parser("push", help="upload an offline/bundled experiment to ClearML, re-pin")
    push.add_argument("experiment_id")
    push.add_argument(
        "--pins",
        action="append",
        default=[],
        type=Path,
        metavar="PATH",
        help="model_ref.yaml files or folders to search for them (default: the git repository root)",
    )
    _add_search(push)
    push.set_defaults(handler=_push)

    list_ = experiment_sub.add_parser("list", help="experiments recorded in the local store")
    list_.set_defaults(handler=_list)

    pin = subparsers.add_parser("pin", help="write a model_ref.yaml from an experiment id")
    pin.add_argument("experiment_id")
    pin.add_argument("--component", required=True, help="detection | pose | tracking | ...")
    pin.add_argument("--out", required=True, type=Path, help="the model_ref.yaml to write")
    pin.add_argument("--artifact", default="weights")
    pin.add_argument(
        "--blind-metrics",
        default=None,
        metavar="JSON_OR_REPORT",
        help="blind-set metrics at pin time: a JSON object ('{\"AP50\": 0.9}') or a report.json path",
    )
    _add_search(pin)
    pin.set_defaults(handler=_pin)

    resolve = subparsers.add_parser("resolve", help="print the verified local weights file of a model ref")
    resolve.add_argument("ref", help="experiment id | model_ref.yaml | checkpoint path")
    resolve.add_argument("--artifact", default="weights")
    resolve.add_argument(
        "--explain",
        action="store_true",
        help="print the model's lineage: who trained it, where, when, from which commit, on what data",
    )
    _add_search(resolve)
    resolve.set_defaults(handler=_resolve)

    blind = subparsers.add_parser("blind", help="the sealed blind set")
    blind_sub = blind.add_subparsers(dest="blind_command", metavar="ACTION", required=True)
    seal = blind_sub.add_parser("seal", help="encrypt a dataset folder (key: $WALKOUT_BLIND_KEY)")
    seal.add_argument("data_dir", type=Path)
    seal.add_argument("--out", required=True, type=Path, help="the archive to write")
    seal.set_defaults(handler=_blind_seal)
    keygen = blind_sub.add_parser(
        "keygen", help="print a new key for WALKOUT_BLIND_KEY (store it as a secret)"
    )
    keygen.set_defaults(handler=_blind_keygen)
    leakage = blind_sub.add_parser(
        "check-leakage", help="exit 2 if an experiment's training data overlaps the blind set"
    )
    leakage.add_argument("experiment_id")
    leakage.add_argument(
        "blind", type=Path, help="the sealed archive (needs the key) or a blind manifest.json"
    )
    _add_search(leakage)
    leakage.set_defaults(handler=_blind_check_leakage)

    clone = subparsers.add_parser(
        "clone", help="clone an experiment with parameter overrides; enqueue it or rerun it here"
    )
    clone.add_argument("experiment_id")
    clone.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="parameter override (dotted key, YAML value), e.g. --set train.learning_rate=0.003; the key "
        "must exist in the experiment's params (ClearML's General/train/learning_rate); repeatable",
    )
    where = clone.add_mutually_exclusive_group()
    where.add_argument("--queue", help="enqueue the clone on this clearml-agent queue (server experiments)")
    where.add_argument("--local", action="store_true", help="rerun the recorded command line here")
    clone.add_argument("--name", help="name of the cloned task (server)")
    clone.add_argument("--cwd", type=Path, help="folder to rerun in (default: where it originally ran)")
    clone.add_argument(
        "--output", type=Path, help="output folder of a local rerun (default: the original's + -clone-<hex>)"
    )
    _add_search(clone)
    clone.set_defaults(handler=_clone)


def _export(args: argparse.Namespace) -> int:
    from walkout_ci.bundle import export_experiment

    target = export_experiment(args.experiment_id, args.to, search=args.search)
    size = sum(p.stat().st_size for p in target.rglob("*") if p.is_file())
    print(f"exported {args.experiment_id} to {target} ({size / 1e6:.2f} MB)")
    return 0


def _import(args: argparse.Namespace) -> int:
    from walkout_ci.bundle import import_bundle

    experiment_id = import_bundle(args.bundle_dir)
    print(f"imported {experiment_id} into the local store")
    return 0


def _push(args: argparse.Namespace) -> int:
    from walkout_ci.bundle import push_experiment

    result = push_experiment(args.experiment_id, search=args.search, pins=args.pins or [_repo_root_or_cwd()])
    print(f"pushed {result.old_id} as {result.new_id}")
    for path in result.repinned:
        print(f"re-pinned {path}")
    for path in result.exports:
        print(f"re-exported {path} (commit it with the pin)")
    return 0


def _repo_root_or_cwd() -> Path:
    """The git repository around the current folder (where pins live), else the current folder."""
    from walkout_ci import gitrepo
    from walkout_ci.errors import GateError

    try:
        return gitrepo.repo_root(Path.cwd())
    except GateError:
        return Path.cwd()


def _list(args: argparse.Namespace) -> int:
    from walkout_ci.experiment import load_record
    from walkout_ci.store import Store

    store = Store.open()
    for experiment_id in store.experiment_ids():
        record = load_record(experiment_id, store)
        print(
            f"{experiment_id}\t{record.get('mode')}\t{record.get('status')}\t{record.get('project')}/"
            f"{record.get('name')}\t{record.get('created_at')}"
        )
    return 0


def parse_blind_metrics(value: str | None) -> dict[str, float]:
    """`--blind-metrics`: a JSON object of numbers, or a report.json whose `metrics` are taken.

    Every value must be a finite number (json accepts NaN/Infinity; a pin must not): ConfigError
    naming the metric otherwise.
    """
    from walkout_ci.pins import metric_value_problem

    if not value:
        return {}
    path = Path(value)
    try:
        data = json.loads(path.read_text(encoding="utf-8")) if path.is_file() else json.loads(value)
    except (OSError, ValueError) as error:
        message = f"--blind-metrics {value!r}: not a JSON object or a readable report.json ({error})"
        raise ConfigError(message) from error
    if isinstance(data, dict) and "metrics" in data and "schema_version" in data:
        data = data["metrics"]
    if not isinstance(data, dict):
        raise ConfigError(f"--blind-metrics {value!r}: expected metric names mapped to numbers")
    for name, number in data.items():
        problem = metric_value_problem(name, number)
        if problem:
            raise ConfigError(f"--blind-metrics {value!r}: {problem}")
    return {str(k): float(v) for k, v in data.items()}


def _pin(args: argparse.Namespace) -> int:
    from walkout_ci.pins import pin_experiment

    pin = pin_experiment(
        args.experiment_id,
        args.out,
        component=args.component,
        artifact=args.artifact,
        blind_metrics=parse_blind_metrics(args.blind_metrics),
        search=args.search,
    )
    sys.stdout.write(yaml.safe_dump(pin.to_dict(), sort_keys=False))
    print(f"wrote {args.out}")
    return 0


def _resolve(args: argparse.Namespace) -> int:
    from walkout_ci.pins import explain_lineage, resolve_model_ref

    if args.explain:
        print("\n".join(explain_lineage(args.ref, search=args.search)))
        return 0
    print(resolve_model_ref(args.ref, search=args.search, artifact=args.artifact))
    return 0


def _blind_seal(args: argparse.Namespace) -> int:
    from walkout_ci.blind import seal

    archive = seal(args.data_dir, args.out)
    print(f"sealed {args.data_dir} into {archive} ({archive.stat().st_size / 1e6:.2f} MB)")
    return 0


def _blind_keygen(args: argparse.Namespace) -> int:
    from walkout_ci.blind import generate_key

    print(generate_key())
    return 0


def _blind_check_leakage(args: argparse.Namespace) -> int:
    from walkout_ci.blind import check_leakage, is_sealed, open_sealed

    if is_sealed(args.blind):
        with open_sealed(args.blind) as root:
            result = check_leakage(args.experiment_id, root, search=args.search)
    else:
        result = check_leakage(args.experiment_id, args.blind, search=args.search)
    print(
        f"no leakage: {result.training_hashes} training frames of {result.experiment_id} vs "
        f"{result.blind_hashes} blind frames"
    )
    return 0


def _clone(args: argparse.Namespace) -> int:
    from walkout_ci.clone import clone, parse_overrides

    result = clone(
        args.experiment_id,
        parse_overrides(args.overrides),
        local=args.local,
        queue=args.queue,
        name=args.name,
        search=args.search,
        cwd=args.cwd,
        output=args.output,
    )
    if result.exit_code is not None:
        print(f"rerun of {result.source_id} into {result.output} exited with code {result.exit_code}")
        return 0 if result.exit_code == 0 else 2
    where = f"enqueued on {result.queue!r}" if result.queue else "created as a draft (not enqueued)"
    print(f"cloned {result.source_id} as {result.new_id}, {where}")
    return 0
