"""`make demo`: the whole lifecycle on a small simulated store, step by step."""

from __future__ import annotations

import sys


def main() -> int:
    from walkout_sim.cli import main as sim_main

    return sim_main(["generate", "--split", "train", "--videos", "2", "--frames", "60", "--out", "out/demo/train"])


if __name__ == "__main__":
    sys.exit(main())
