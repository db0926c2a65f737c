"""Turn `walkout-detection predict` output into MOTChallenge sequences the tracker can evaluate.

    python submodules/tracking/scripts/detections_to_mot.py --detections det.json --data SIM_EXPORT --out DIR

For every sequence of the simulator export that appears in the detections JSON, DIR/<sequence>/ gets
symbolic links to its gt/, video and seqinfo.ini plus det/det.txt made of the `person` detections
(`frame,-1,x,y,w,h,score,-1,-1,-1`). Then `walkout-tracking evaluate --data DIR` tracks the detector's
boxes instead of synthesised ones. Reads only the documented JSON of the detection CLI
({"results": [{"source": video path, "frame": 1-based, "detections": [{"class", "score",
"bbox": [x1, y1, x2, y2]}]}]}); it does not import walkout_detection.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import defaultdict
from pathlib import Path

from walkout_tracking.data import find_sequences
from walkout_tracking.errors import TrackingError
from walkout_tracking.motchallenge import write_atomic


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--detections", type=Path, required=True)
    parser.add_argument("--data", type=Path, required=True, help="simulator export the videos came from")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--person-class", default="person")
    args = parser.parse_args(argv)
    try:
        payload = json.loads(args.detections.read_text())
        sequences = {s.video_path.resolve(): s for s in find_sequences(args.data) if s.video_path is not None}
    except (OSError, ValueError, TrackingError) as error:
        print(f"detections_to_mot: error: {error}", file=sys.stderr)
        return 2
    lines: dict[Path, list[str]] = defaultdict(list)
    for result in payload.get("results", []):
        source = Path(result["source"]).resolve()
        if source not in sequences:
            print(f"detections_to_mot: error: {source} is not a video of {args.data}", file=sys.stderr)
            return 2
        for detection in result["detections"]:
            if detection["class"] != args.person_class:
                continue
            x1, y1, x2, y2 = detection["bbox"]
            box = f"{x1:.2f},{y1:.2f},{x2 - x1:.2f},{y2 - y1:.2f}"
            lines[source].append(f"{result['frame']},-1,{box},{detection['score']:.4f},-1,-1,-1")
    covered = {Path(result["source"]).resolve() for result in payload.get("results", [])}
    for source, sequence in sequences.items():
        if source not in covered:
            continue
        target = args.out / sequence.name
        (target / "det").mkdir(parents=True, exist_ok=True)
        for name in ("gt", sequence.video_path.name, "seqinfo.ini"):
            link = target / name
            if not link.exists():
                link.symlink_to((sequence.directory / name).resolve())
        write_atomic(target / "det" / "det.txt", "\n".join(lines[source]) + "\n")
        print(f"{target}: {len(lines[source])} person detections")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
