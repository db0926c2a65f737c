"""Command-line entry point of walkout_sim."""

from __future__ import annotations

import argparse


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="walkout_sim")
    parser.parse_args(argv)
    return 0
