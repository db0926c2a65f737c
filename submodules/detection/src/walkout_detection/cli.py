"""Command-line entry point of walkout_detection."""

from __future__ import annotations

import argparse


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="walkout_detection")
    parser.parse_args(argv)
    return 0
