"""Training parts rendered in parallel: `walkout-sim parts busy:31 busy:32 hard:37 --out DIR`.

A model trained on more data than one process renders in time is trained on the union of several
train splits ("parts"), one seed each. Each part is one `walkout-sim generate --split train` child
process writing `DIR/part-<preset>-<seed>/` (its own temp folder, renamed when complete); at most
`jobs` run at once. The parts are then merged without copying images by `walkout-ci dataset merge`.

PART is PRESET:SEED: PRESET is a shipped generator preset (`hard`, `clean`, `busy`) or `default`
(the default store), SEED a non-negative integer. A failed part stops the others (SIGTERM: they
remove their temp folders) and is reported with the end of its error output; SIGINT / SIGTERM of this
process does the same before it unwinds.
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from walkout_sim.config import load_config, shipped_configs
from walkout_sim.errors import SimError

DEFAULT_PRESET = "default"
_POLL_S = 0.2


@dataclass(frozen=True)
class Part:
    """One training part: a generator preset (or `default`) and a seed."""

    preset: str
    seed: int

    def folder(self, out: Path) -> Path:
        return out / f"part-{self.preset}-{self.seed}"


def parse_part(text: str) -> Part:
    """'busy:31' -> Part('busy', 31). Raises SimError naming the value and what is allowed."""
    allowed = f"PRESET:SEED with PRESET one of {', '.join([DEFAULT_PRESET, *shipped_configs()])}"
    preset, colon, seed = text.partition(":")
    if not colon or not seed.isdigit():
        raise SimError(f"part {text!r} is not {allowed} and SEED a non-negative integer (e.g. busy:31)")
    if preset != DEFAULT_PRESET and preset not in shipped_configs():
        raise SimError(f"part {text!r}: unknown preset {preset!r}; expected {allowed}")
    return Part(preset=preset, seed=int(seed))


def parse_parts(texts: list[str]) -> list[Part]:
    """Parse every PART; two parts with the same preset and seed would write one folder: refused."""
    parts = [parse_part(text) for text in texts]
    if not parts:
        raise SimError("give at least one part, e.g. busy:31")
    seen: set[Part] = set()
    for part in parts:
        if part in seen:
            raise SimError(f"part {part.preset}:{part.seed} is given twice")
        seen.add(part)
    return parts


def _command(part: Part, out: Path, *, videos: int, frames: int, image_stride: int, force: bool) -> list[str]:
    command = [sys.executable, "-m", "walkout_sim.cli", "generate", "--split", "train"]
    if part.preset != DEFAULT_PRESET:
        command += ["--config", part.preset]
    command += ["--videos", str(videos), "--frames", str(frames), "--image-stride", str(image_stride)]
    command += ["--seed", str(part.seed), "--out", str(part.folder(out)), "--quiet"]
    return command + (["--force"] if force else [])


@dataclass
class _Running:
    part: Part
    process: subprocess.Popen
    log: IO[str]  # the child's stderr + stdout, a temp file (a pipe could fill and block the child)
    started: float  # time.perf_counter() at its start


def _stop(running: list[_Running]) -> None:
    """SIGTERM every child still running (each removes its temp folder) and wait for all of them."""
    for child in running:
        if child.process.poll() is None:
            child.process.terminate()
    for child in running:
        try:
            child.process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            child.process.kill()
            child.process.wait()
        child.log.close()


def generate_parts(
    parts: list[Part],
    out: str | Path,
    *,
    videos: int = 24,
    frames: int = 150,
    image_stride: int = 2,
    jobs: int = 2,
    force: bool = False,
    on_done=None,
) -> list[Path]:
    """Render every part into `out` (see the module docstring); returns their folders in `parts` order.

    on_done: optional callback(part, folder, seconds) after each part completes.
    """
    if jobs < 1:
        raise SimError(f"--jobs must be >= 1, got {jobs}")
    for name, value in (("videos", videos), ("frames", frames), ("image-stride", image_stride)):
        if value < 1:
            raise SimError(f"--{name} must be >= 1, got {value}")
    for part in parts:  # a bad preset file fails here, before any process starts
        load_config(None if part.preset == DEFAULT_PRESET else part.preset)
    out = Path(out)
    if not force:
        existing = [str(p.folder(out)) for p in parts if p.folder(out).exists()]
        if existing:
            raise SimError(f"{', '.join(existing)} already exist(s); pass --force to replace")
    out.mkdir(parents=True, exist_ok=True)
    waiting = list(parts)
    running: list[_Running] = []
    try:
        while waiting or running:
            while waiting and len(running) < jobs:
                part = waiting.pop(0)
                # Lives as long as the child; closed when it ends or by _stop.
                log = tempfile.TemporaryFile(mode="w+")  # noqa: SIM115
                command = _command(
                    part, out, videos=videos, frames=frames, image_stride=image_stride, force=force
                )
                process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
                running.append(_Running(part, process, log, time.perf_counter()))
            time.sleep(_POLL_S)
            for child in [c for c in running if c.process.poll() is not None]:
                running.remove(child)
                if child.process.returncode != 0:
                    child.log.seek(0)
                    tail = child.log.read()[-1500:].strip()
                    child.log.close()
                    name, code = f"{child.part.preset}:{child.part.seed}", child.process.returncode
                    raise SimError(f"part {name} failed (exit {code}):\n{tail}")
                child.log.close()
                if on_done is not None:
                    on_done(child.part, child.part.folder(out), time.perf_counter() - child.started)
    finally:
        _stop(running)  # a failure or an Interrupted: the other children clean up before we unwind
    return [part.folder(out) for part in parts]
