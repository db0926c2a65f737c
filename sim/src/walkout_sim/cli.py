"""Command-line entry point ``walkout-sim`` (a thin argparse wrapper around the API).

Exit codes: 0 ok, 1 a check failed (scenario events differ from the script), 2 bad input,
143 / 130 stopped by SIGTERM / SIGINT (the temp output folder is removed first).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from walkout_sim.errors import SimError
from walkout_sim.signals import Interrupted, interruptible


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="walkout-sim", description="The synthetic walkout store.")
    commands = parser.add_subparsers(dest="command", required=True)

    generate = commands.add_parser("generate", help="render a split of random videos (export layout)")
    generate.add_argument("--split", choices=["train", "val", "blind"], required=True)
    generate.add_argument("--videos", type=int, default=4, help="number of videos (default 4)")
    generate.add_argument("--frames", type=int, default=150, help="frames per video (default 150)")
    generate.add_argument(
        "--seed",
        type=int,
        default=None,
        help="seed of train/val (default 0); blind takes its seed from WALKOUT_BLIND_SEED",
    )
    generate.add_argument(
        "--config",
        default=None,
        help="generator config YAML (camera, shoppers, ...) or a preset: hard, clean, busy",
    )
    generate.add_argument(
        "--image-stride",
        type=int,
        default=None,
        help="every n-th frame goes to coco/ (overrides the config; default 1)",
    )
    generate.add_argument(
        "--out", type=Path, required=True, help="output folder (must not exist unless --force)"
    )
    generate.add_argument("--force", action="store_true", help="replace an existing output folder")
    generate.add_argument("--quiet", action="store_true", help="no progress bar")

    parts = commands.add_parser(
        "parts",
        help="render training parts in parallel, one train split per PRESET:SEED (merge them with "
        "`walkout-ci dataset merge`)",
    )
    parts.add_argument(
        "parts",
        nargs="+",
        metavar="PRESET:SEED",
        help="e.g. busy:31 hard:37 default:68 (PRESET: a preset or default)",
    )
    parts.add_argument("--out", type=Path, required=True, help="folder for the parts (part-PRESET-SEED/)")
    parts.add_argument("--videos", type=int, default=24, help="videos per part (default 24)")
    parts.add_argument("--frames", type=int, default=150, help="frames per video (default 150)")
    parts.add_argument(
        "--image-stride", type=int, default=2, help="every n-th frame goes to coco/ (default 2)"
    )
    parts.add_argument("--jobs", type=int, default=2, help="parts rendered at once (default 2)")
    parts.add_argument("--force", action="store_true", help="replace existing part folders")
    parts.add_argument("--quiet", action="store_true", help="no line per finished part")

    scenario = commands.add_parser("scenario", help="render one scenario (a shipped name or a YAML file)")
    scenario.add_argument("scenario", nargs="?", help="shipped scenario name or path to a scenario YAML")
    scenario.add_argument("--list", action="store_true", help="list the shipped scenarios and exit")
    scenario.add_argument(
        "--config", default=None, help="generator config YAML or a preset: hard, clean, busy"
    )
    scenario.add_argument("--out", type=Path, help="output folder")
    scenario.add_argument("--force", action="store_true")
    scenario.add_argument("--quiet", action="store_true")

    show = commands.add_parser("show", help="annotated preview: contact sheet (.png) or video (.avi)")
    show.add_argument("source", type=Path, help="an export root or one of its videos/<name> folders")
    show.add_argument("--out", type=Path, required=True, help="preview file: .png or .avi")
    show.add_argument("--frames", type=int, default=12, help="frames on the contact sheet (default 12)")
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the CLI; returns the exit code (see module doc)."""
    args = _parser().parse_args(argv)
    # A stopped run (SIGTERM from a CI timeout, Ctrl-C) unwinds as Interrupted, so the temp output
    # folder is removed; one line on stderr and the shell's 128 + signal number (143, 130).
    try:
        with interruptible():
            if args.command == "generate":
                return _generate(args)
            if args.command == "scenario":
                return _scenario(args)
            if args.command == "parts":
                return _parts(args)
            return _show(args)
    except SimError as error:
        sys.stderr.write(f"walkout-sim: error: {error}\n")
        return 2
    except Interrupted as stop:
        sys.stderr.write(f"walkout-sim {args.command}: {stop}\n")
        return stop.exit_code


def _generate(args: argparse.Namespace) -> int:
    from dataclasses import replace

    from walkout_sim.config import load_config
    from walkout_sim.generate import generate_split

    config = load_config(args.config)
    if args.image_stride is not None:
        if args.image_stride < 1:
            raise SimError(f"--image-stride must be >= 1, got {args.image_stride}")
        config = replace(config, output=replace(config.output, image_stride=args.image_stride))
    seed = args.seed
    if args.split != "blind" and seed is None:
        seed = 0
    summaries = generate_split(
        args.out,
        split=args.split,
        videos=args.videos,
        frames=args.frames,
        seed=seed,
        config=config,
        force=args.force,
        progress=not args.quiet,
    )
    events = sum(len(s.events) for s in summaries)
    sys.stdout.write(f"wrote {args.out}: {len(summaries)} videos x {args.frames} frames, {events} events\n")
    return 0


def _parts(args: argparse.Namespace) -> int:
    from walkout_sim.parts import generate_parts, parse_parts

    def done(part, folder, seconds):
        sys.stdout.write(f"wrote {folder} ({part.preset}, seed {part.seed}) in {seconds:.0f} s\n")
        sys.stdout.flush()

    generate_parts(
        parse_parts(args.parts),
        args.out,
        videos=args.videos,
        frames=args.frames,
        image_stride=args.image_stride,
        jobs=args.jobs,
        force=args.force,
        on_done=None if args.quiet else done,
    )
    return 0


def _scenario(args: argparse.Namespace) -> int:
    from walkout_sim.generate import render_scenario
    from walkout_sim.scenario import shipped_scenarios

    if args.list:
        sys.stdout.write("".join(name + "\n" for name in shipped_scenarios()))
        return 0
    if args.scenario is None or args.out is None:
        raise SimError("scenario needs a scenario name/file and --out (or --list)")
    summary = render_scenario(
        args.scenario, args.out, config=args.config, force=args.force, progress=not args.quiet
    )
    got = [(e["type"], e["shopper_id"], e["sku"], e["slot"]) for e in summary.events]
    sys.stdout.write(f"wrote {args.out}: {summary.frames} frames, {len(got)} events\n")
    if not _events_match(summary):
        sys.stderr.write(
            f"walkout-sim: events differ from the script:\n  expected {summary.expected}\n  got {got}\n"
        )
        return 1
    return 0


def _events_match(summary) -> bool:
    """Per shopper, the rendered events equal the scripted ones in order (slot None matches any slot)."""
    expected = summary.expected or []
    shoppers = {e.shopper_id for e in expected} | {e["shopper_id"] for e in summary.events}
    for shopper in shoppers:
        want = [e for e in expected if e.shopper_id == shopper]
        got = [e for e in summary.events if e["shopper_id"] == shopper]
        if len(want) != len(got):
            return False
        for w, g in zip(want, got, strict=True):
            if (w.type, w.sku) != (g["type"], g["sku"]) or (w.slot is not None and w.slot != g["slot"]):
                return False
    return True


def _show(args: argparse.Namespace) -> int:
    from walkout_sim.show import show

    out = show(args.source, args.out, frames=args.frames)
    sys.stdout.write(f"wrote {out}\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
