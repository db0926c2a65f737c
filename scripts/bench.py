"""`make bench`: every stage's throughput benchmark, one after the other, on this machine.

Each package owns its benchmark (`python -m <package>.bench`); this script only runs them in
pipeline order so one command gives the whole picture. Figures depend on the machine and on
what else it is doing: compare numbers only from the same machine and the same run.
"""

from __future__ import annotations

import subprocess
import sys

BENCHMARKS = [
    ("detection: frames/s at 320x240, batch 1 and 16", ["-m", "walkout_detection.bench"]),
    ("pose: persons/s, batch 1 and 32", ["-m", "walkout_pose.bench"]),
    ("tracking: frames/s, motion-only on TUD-Campus and with appearance", ["-m", "walkout_tracking.bench"]),
    ("app: end-to-end frames/s with a per-stage breakdown", ["-m", "walkout.bench"]),
]


def main() -> int:
    failed = []
    for title, arguments in BENCHMARKS:
        print(f"\n=== {title} ===", flush=True)
        if subprocess.run([sys.executable, *arguments]).returncode != 0:
            failed.append(title)
    if failed:
        print("\nbenchmarks that failed: " + "; ".join(failed), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
