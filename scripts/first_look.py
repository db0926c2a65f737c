"""First-look QC figures (app/README.md "Measuring honestly"): one Markdown row per QC report.

    python scripts/first_look.py out/firstlook/90/report out/firstlook/91/report [out/firstlook/replay]
        [--out SUMMARY.md]

Each argument is a `walkout qc` / `walkout gate-score` report folder (or its report.json), or a
`walkout replay` folder (or its replay.json) over several seeds' recordings: its `models` variant,
the recorded run re-scored as one pool, gives the pooled row ("all N splits"). A row gives
shoppers judged, receipt exact-match, item P / R / F1, false charges and missed items per 100
shoppers, review rate, the review flags' figures (among them the false charges on receipts nobody
flagged: what reaches customers when every flagged receipt is reviewed), and the video-level 95%
bootstrap intervals the report carries (`extra.confidence_intervals`). The last column says how much
of the false charges is the video's end (`extra.video_end`): whole receipts issued to shoppers still
walking out as the video ended, and how many of those charged exactly what the shopper carried. A
figure a report was written before is "n/a". Reports written before those intervals existed are
refused: re-score their predictions with `walkout gate-score` first (a replay written before it
carried the review flags' figures: replay again).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

from walkout.replay import REPLAY_FILENAME, ReplayError, read_replay
from walkout_ci.errors import ReportError
from walkout_ci.report import read_report

HEADER = (
    "| split | videos | shoppers judged | receipt exact-match [95% CI] | item P / R / F1 [F1 95% CI] | "
    "false charges / 100 [95% CI] | missed / 100 [95% CI] | review rate | wrong receipts flagged | "
    "unflagged exact-match | unflagged false charges / 100 [95% CI] | "
    "false charges at the video's end / 100 (receipts as carried) |"
    "\n|---|---|---|---|---|---|---|---|---|---|---|---|"
)


def _interval(report: dict, name: str, digits: int) -> str:
    """`value [lower, upper]` of a metric, from the report's video-level intervals."""
    entry = report["extra"]["confidence_intervals"]["metrics"].get(name)
    if entry is None:
        return "undefined"
    return f"{entry['estimate']:.{digits}f} [{entry['lower']:.{digits}f}, {entry['upper']:.{digits}f}]"


def row(label: str, report: dict) -> str:
    """One Markdown table row for a QC report (see HEADER for the columns)."""
    extra = report.get("extra", {})
    if "confidence_intervals" not in extra or "review_flags" not in extra:
        raise ValueError(
            f"{label}: report has no extra.confidence_intervals / extra.review_flags "
            "(written before issue 15): re-score its predictions with `walkout gate-score`"
        )
    metrics = report["metrics"]
    flags = extra["review_flags"]
    wrong = flags["wrong_receipts"]
    flagged_share = (
        "no wrong receipt"
        if flags["wrong_receipts_flagged_share"] is None
        else f"{flags['wrong_receipts_flagged']} / {wrong} = "
        f"{_interval(report, 'wrong_receipts_flagged_share', 3)}"
    )
    unflagged = (
        "none unflagged"
        if flags["unflagged_exact_match"] is None
        else f"{flags['unflagged_exact']} / {flags['unflagged_receipts']} = "
        f"{_interval(report, 'unflagged_exact_match', 3)}"
    )
    return (
        f"| {label} | {extra['confidence_intervals']['videos']} | {int(metrics['receipts_judged'])} "
        f"({int(metrics['shoppers'])} shoppers) | {_interval(report, 'receipt_exact_match', 3)} | "
        f"{metrics['item_precision']:.3f} / {metrics['item_recall']:.3f} / "
        f"{_interval(report, 'item_f1', 3)} | {_interval(report, 'false_charges_per_100', 2)} | "
        f"{_interval(report, 'missed_items_per_100', 2)} | {metrics['review_rate']:.3f} | {flagged_share} | "
        f"{unflagged} | {_unflagged_charges(report)} | {_video_end(extra)} |"
    )


def _unflagged_charges(report: dict) -> str:
    """False charges on receipts nobody flagged, per 100 shoppers with its interval; n/a for reports
    written before the figure existed."""
    if "unflagged_false_charges_per_100" not in report["extra"]["confidence_intervals"]["metrics"]:
        return "n/a"
    return _interval(report, "unflagged_false_charges_per_100", 2)


def _video_end(extra: dict) -> str:
    """`per-100 (issued as carried / wrong receipts at the end)` from `extra.video_end`, or n/a."""
    end = extra.get("video_end")
    if end is None:
        return "n/a"
    per_100 = end["false_charges_per_100"]
    shown = "undefined" if per_100 is None else f"{per_100:.2f}"
    return f"{shown} ({end['issued_as_carried']} of {end['wrong_receipts']} as carried)"


def is_replay(path: str | os.PathLike) -> bool:
    """True when `path` is a `walkout replay` output: its replay.json, or a folder holding one."""
    path = Path(path)
    return path.name == REPLAY_FILENAME or (path / REPLAY_FILENAME).is_file()


def pooled_report(replay: dict, variant: str = "models") -> tuple[str, dict]:
    """(label, report) for one variant of a replay: its figures in a QC report's shape, for `row`.

    The `models` variant is the recorded QC runs re-run as one pool: the same receipts (`walkout
    replay` checks that it reproduces each run), with intervals that resample the videos of all splits.
    """
    replayed = replay.get("metrics") or {}
    if variant not in replayed:
        ran = ", ".join(sorted(replayed)) or "none"
        raise ValueError(f"the replay has no variant {variant!r}: it ran {ran}")
    needed = ("confidence_intervals", "review_flags", "video_end")
    missing = [key for key in needed if variant not in (replay.get(key) or {})]
    if missing:
        raise ValueError(
            f"the replay has no {', '.join(missing)} for variant {variant!r} (written before the "
            "pooled row existed): replay again"
        )
    splits = (replay.get("dataset") or {}).get("splits") or []
    label = f"**all {len(splits)} splits** (one replay)"
    extra = {
        "confidence_intervals": replay["confidence_intervals"][variant],
        "review_flags": replay["review_flags"][variant],
        "video_end": replay["video_end"][variant],
    }
    return label, {"metrics": replay["metrics"][variant], "extra": extra}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "reports",
        nargs="+",
        help="report folders (or report.json files); a replay folder (or replay.json) for the pooled row",
    )
    parser.add_argument("--out", help="also write the table to this Markdown file")
    args = parser.parse_args(argv)
    lines = [HEADER]
    try:
        for path in args.reports:
            if is_replay(path):
                lines.append(row(*pooled_report(read_replay(path))))
            else:
                lines.append(row(str(path), read_report(path)))
    except (OSError, ValueError, ReportError, ReplayError) as error:
        print(f"first_look: error: {error}", file=sys.stderr)
        return 2
    table = "\n".join(lines) + "\n"
    sys.stdout.write(table)
    if args.out:
        target = Path(args.out)
        handle, temporary = tempfile.mkstemp(prefix=f".{target.name}.", dir=target.parent or ".")
        with os.fdopen(handle, "w", encoding="utf-8") as stream:
            stream.write(table)
        os.replace(temporary, target)
    return 0


if __name__ == "__main__":
    sys.exit(main())
