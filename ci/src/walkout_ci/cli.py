"""Command-line entry point of walkout_ci: `walkout-ci <command> ...`.

A thin argparse wrapper. Each group of subcommands lives in its own module with a
`register(subparsers)` function that adds its parsers and sets `handler=<function(args) -> int>`:
`commands_experiment` (experiment push|export|import, pin, resolve, blind seal, clone),
`commands_gate` (evaluate, gate), `commands_org` (org init, ci check|record-verdict|...),
`commands_dataset` (dataset merge). Exit codes:
0 ok, 1 regression / failed check, 2 bad input or could not evaluate (every WalkoutCIError).
"""

from __future__ import annotations

import argparse
import sys

from walkout_ci import commands_dataset, commands_experiment, commands_gate, commands_org
from walkout_ci.errors import WalkoutCIError
from walkout_ci.signals import run_command


def build_parser() -> argparse.ArgumentParser:
    """The full `walkout-ci` parser."""
    parser = argparse.ArgumentParser(
        prog="walkout-ci",
        description="Experiments on ClearML, model pins, evaluation reports and the fail-closed model gate.",
    )
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    commands_experiment.register(subparsers)
    commands_gate.register(subparsers)
    commands_org.register(subparsers)
    commands_dataset.register(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the CLI in-process; returns the exit code (0 ok, 1 regression, 2 bad input/error)."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exit_:
        return int(exit_.code or 0) if isinstance(exit_.code, int) else 2
    handler = getattr(args, "handler", None)
    if handler is None:
        parser.print_help(sys.stderr)
        return 2
    return run_command("walkout-ci", args.command, lambda: handler(args), errors=(WalkoutCIError,))


if __name__ == "__main__":
    sys.exit(main())
