"""Score brand-new validation seeds with one commit's frozen code and pins (app README: measuring honestly).

    python scripts/fresh_seeds.py --rev HEAD --seeds 2240 2241 2242 2243 --out out/firstlook18

A first look scores the code and pins as they were before a round changed anything, and a round goes
on editing while QC runs (4-6 minutes a seed on 2 cores). So the commit's tree is taken with `git
archive` into OUT/snapshot-<commit>/ and every command runs from there, its packages first on
PYTHONPATH: nothing edited meanwhile reaches the figures.

Per seed, into OUT/<seed>/ (built as OUT/.<seed>.partial and renamed when complete, so a seed folder
that exists is a finished first look; an existing one is refused: a first look is scored once):

    val/       walkout-sim generate --split val --seed S --videos 22 --frames 600 --image-stride 10
               [--config PRESET_OR_YAML: a store unlike the default, e.g. `--config busy`]
    report/    walkout qc --refs <snapshot>/model_refs.yaml --jobs J --save-observations obs/
    obs/       the recordings `walkout replay` re-runs the engine on
    oracle/    walkout qc --oracle (engine and simulator on ground truth)

Each command's output goes to OUT/logs/<seed>/<step>.log (kept when a step fails).

Then OUT/first_look.md: scripts/first_look.py's table of every finished seed's report (and one of
their oracle-mode reports). Then, with
the snapshot's code too:

    replay/    walkout replay over all the seeds' recordings (all variants but retracked)

which says per stage where each wrong receipt comes from (replay/replay.md), and whose `models`
variant, the recorded runs re-scored as one pool, adds the row "all N splits" to OUT/first_look.md
(when there are two seeds or more): one pooled figure with intervals that resample every seed's
videos. Its log is OUT/logs/replay.log. A snapshot whose replay predates the pooled figures gets the
per-stage report without that row.

Exit codes: 0 done; 2 bad input or a failed command (that seed's partial folder is removed, finished
seeds and their table stay); 130 / 143 when stopped by SIGINT / SIGTERM (the running command's
process group is stopped first).
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
from dataclasses import dataclass
from pathlib import Path

from walkout.replay import ReplayError, read_replay
from walkout_ci.signals import run_command, stop_process_group
from walkout_ci.store import atomic_write_text

REPO = Path(__file__).resolve().parents[1]
# Packages of the monorepo, in the order they go on PYTHONPATH (the snapshot's copies shadow the
# editable installs of the working tree).
SOURCE_DIRS = (
    "app/src",
    "ci/src",
    "sim/src",
    "submodules/detection/src",
    "submodules/pose/src",
    "submodules/tracking/src",
)
SIM_MAIN = "import sys; from walkout_sim.cli import main; sys.exit(main())"


class FreshSeedsError(Exception):
    """Bad input or a failed step; the message names what and how to fix it."""

    exit_code = 2


@dataclass(frozen=True)
class Step:
    """One command of a seed's first look: its log file's name and its argument list."""

    name: str
    command: list[str]


def seed_steps(
    python: str,
    snapshot: Path,
    seed_dir: Path,
    seed: int,
    *,
    videos: int,
    frames: int,
    jobs: int,
    config: str | None = None,
) -> list[Step]:
    """The commands that score one seed into `seed_dir` with the snapshot's code and lock file;
    `config`: the generator's preset name or an absolute YAML path (None: the default store)."""
    val = seed_dir / "val"
    generator = [] if config is None else ["--config", config]

    def qc(*mode: str, report: Path) -> list[str]:
        return [python, "-m", "walkout", "qc", "--videos", str(val), *mode, "--jobs", str(jobs),
                "--report-dir", str(report)]  # fmt: skip

    return [
        Step(
            "generate",
            [
                python,
                "-c",
                SIM_MAIN,
                "generate",
                "--split",
                "val",
                "--seed",
                str(seed),
                "--videos",
                str(videos),
                "--frames",
                str(frames),
                "--image-stride",
                "10",
                *generator,
                "--out",
                str(val),
                "--quiet",
            ],
        ),
        Step(
            "qc",
            qc(
                "--refs",
                str(snapshot / "model_refs.yaml"),
                "--save-observations",
                str(seed_dir / "obs"),
                report=seed_dir / "report",
            ),
        ),
        Step("oracle", qc("--oracle", report=seed_dir / "oracle")),
    ]


POOL_DIR = "replay"


def pool_step(python: str, out: Path, seed_dirs: list[Path], *, jobs: int) -> Step:
    """`walkout replay` over every finished seed's recordings into OUT/replay/ (all default variants:
    the per-stage attribution, and the `models` variant for the pooled row)."""
    command = [python, "-m", "walkout", "replay"]
    for seed_dir in seed_dirs:
        command += ["--observations", str(seed_dir / "obs"), "--videos", str(seed_dir / "val")]
    return Step("replay", [*command, "--report-dir", str(out / POOL_DIR), "--jobs", str(jobs)])


def has_pooled_figures(replay_dir: Path) -> bool:
    """True when the replay carries what the pooled row needs (replays before it lacked the review
    flags' figures): only then is it handed to first_look.py."""
    try:
        replay = read_replay(replay_dir)
    except ReplayError:
        return False
    return "models" in (replay.get("review_flags") or {})


def resolve_commit(rev: str, repo: Path = REPO) -> str:
    """The full commit id `rev` names in `repo`; FreshSeedsError when it names none."""
    done = subprocess.run(
        ["git", "-C", str(repo), "rev-parse", "--verify", "--quiet", f"{rev}^{{commit}}"],
        capture_output=True,
        text=True,
    )
    if done.returncode != 0:
        raise FreshSeedsError(f"--rev {rev!r} names no commit of {repo.name}: give a commit, tag or branch")
    return done.stdout.strip()


def snapshot(commit: str, out: Path, repo: Path = REPO) -> Path:
    """OUT/snapshot-<commit>/, absolute: the commit's tree (reused when already there; built in a temp
    folder). Absolute because the steps run from inside it, with its packages on PYTHONPATH: a relative
    entry would silently fall back to the working tree's code."""
    target = out.absolute() / f"snapshot-{commit}"
    if target.is_dir():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    building = Path(tempfile.mkdtemp(prefix=f".snapshot-{commit[:12]}.", dir=target.parent))
    try:
        with tempfile.TemporaryFile() as archive:
            subprocess.run(["git", "-C", str(repo), "archive", commit], stdout=archive, check=True)
            archive.seek(0)
            with tarfile.open(fileobj=archive) as tar:
                tar.extractall(building, filter="data")
        os.replace(building, target)
    finally:
        shutil.rmtree(building, ignore_errors=True)
    return target


def snapshot_environment(snapshot_dir: Path) -> dict[str, str]:
    """This process's environment with the snapshot's packages first on PYTHONPATH."""
    environment = dict(os.environ)
    paths = [str(snapshot_dir / d) for d in SOURCE_DIRS]
    if environment.get("PYTHONPATH"):
        paths.append(environment["PYTHONPATH"])
    environment["PYTHONPATH"] = os.pathsep.join(paths)
    return environment


def run_step(step: Step, *, cwd: Path, environment: dict[str, str], log: Path) -> None:
    """Run one step with its output in `log`; FreshSeedsError naming the step and log when it fails."""
    with log.open("w", encoding="utf-8") as stream:
        process = subprocess.Popen(
            step.command,
            cwd=cwd,
            env=environment,
            stdout=stream,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        try:
            code = process.wait()
        finally:
            stop_process_group(process)  # a stopped run leaves no QC workers behind
    if code != 0:
        raise FreshSeedsError(f"{step.name} exited {code}; its output: {log}")


def score_seed(
    seed: int,
    *,
    out: Path,
    snapshot_dir: Path,
    python: str,
    videos: int,
    frames: int,
    jobs: int,
    config: str | None = None,
) -> Path:
    """Score one seed into OUT/<seed>/ (see the module docstring); returns that folder."""
    out = out.absolute()  # the steps run from the snapshot: a relative path would land inside it
    final = out / str(seed)
    if final.exists():
        raise FreshSeedsError(f"{final} exists: seed {seed} was scored already (a first look is scored once)")
    partial = out / f".{seed}.partial"
    shutil.rmtree(partial, ignore_errors=True)  # a run stopped earlier
    partial.mkdir(parents=True)
    # Logs live beside the seed folders, so a failed step's log outlives the removed partial folder.
    logs = out / "logs" / str(seed)
    logs.mkdir(parents=True, exist_ok=True)
    environment = snapshot_environment(snapshot_dir)
    try:
        steps = seed_steps(
            python, snapshot_dir, partial, seed, videos=videos, frames=frames, jobs=jobs, config=config
        )
        for step in steps:
            print(f"seed {seed}: {step.name}", flush=True)
            run_step(step, cwd=snapshot_dir, environment=environment, log=logs / f"{step.name}.log")
        os.replace(partial, final)
    finally:
        shutil.rmtree(partial, ignore_errors=True)
    return final


def first_look_table(out: Path, arguments: list[str]) -> str:
    """scripts/first_look.py's table for report / replay folders given relative to `out`."""
    script = Path(__file__).resolve().parent / "first_look.py"
    # Run from OUT with relative paths: the table's labels read "2240/report", no machine path.
    done = subprocess.run([sys.executable, str(script), *arguments], capture_output=True, text=True, cwd=out)
    if done.returncode != 0:
        raise FreshSeedsError(f"first_look.py could not read the reports: {done.stderr.strip()}")
    return done.stdout


def write_table(out: Path, seed_dirs: list[Path], *, pool: Path | None = None) -> str:
    """OUT/first_look.md: scripts/first_look.py's rows for the finished seeds, then the pooled row of
    the replay in `pool` (when given) and where its per-stage report is, then oracle mode's rows;
    returns the text."""
    arguments = [str(d.relative_to(out) / "report") for d in seed_dirs]
    if pool is not None and len(seed_dirs) > 1 and has_pooled_figures(pool):
        arguments.append(str(pool.relative_to(out)))
    text = first_look_table(out, arguments)
    if pool is not None:
        text += (
            f"\nPer stage, where each wrong receipt comes from: {pool.relative_to(out)}/replay.md "
            "(`walkout replay` over the seeds' recordings).\n"
        )
    text += "\nOracle mode (`walkout qc --oracle`: the engine and the simulator on ground truth):\n\n"
    text += first_look_table(out, [str(d.relative_to(out) / "oracle") for d in seed_dirs])
    atomic_write_text(out / "first_look.md", text)
    return text


def generator_config(value: str | None) -> str | None:
    """--config as the steps get it: a YAML file as an absolute path (they run from the snapshot),
    anything else as given (a preset name, which the snapshot's simulator resolves or refuses)."""
    if value is None:
        return None
    path = Path(value)
    if path.suffix in (".yaml", ".yml") or path.is_file():
        if not path.is_file():
            raise FreshSeedsError(f"--config {value!r}: no such file (give a YAML file or a preset name)")
        return str(path.absolute())
    return value


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def run(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--rev", default="HEAD", help="the commit whose code and pins are scored (default HEAD)"
    )
    parser.add_argument(
        "--seeds", type=int, nargs="+", required=True, help="brand-new val seeds, never used before"
    )
    parser.add_argument(
        "--out", type=Path, required=True, help="folder for the snapshot and one folder per seed"
    )
    parser.add_argument("--videos", type=_positive, default=22, help="videos per seed (default 22)")
    parser.add_argument("--frames", type=_positive, default=600, help="frames per video (default 600)")
    parser.add_argument(
        "--config",
        help="the simulator's store: a shipped preset (busy, hard, clean) or a generator config YAML "
        "(default: the default store)",
    )
    parser.add_argument("--jobs", type=_positive, default=2, help="QC processes (default 2)")
    parser.add_argument("--python", default=sys.executable, help="interpreter with the project installed")
    args = parser.parse_args(argv)
    if len(set(args.seeds)) != len(args.seeds):
        raise FreshSeedsError(f"--seeds repeats a seed: {args.seeds}")
    taken = [seed for seed in args.seeds if (args.out / str(seed)).exists()]
    if taken:
        raise FreshSeedsError(
            f"seeds {taken} already have a folder in {args.out}: a first look is scored once"
        )
    config = generator_config(args.config)
    commit = resolve_commit(args.rev)
    snapshot_dir = snapshot(commit, args.out)
    print(f"scoring seeds {args.seeds} with the code and pins of {commit[:12]}", flush=True)
    finished = [
        score_seed(
            seed,
            out=args.out,
            snapshot_dir=snapshot_dir,
            python=args.python,
            videos=args.videos,
            frames=args.frames,
            jobs=args.jobs,
            config=config,
        )
        for seed in args.seeds
    ]
    out = args.out.absolute()
    write_table(out, finished)  # the seeds' own rows stay, should the replay fail
    print("all seeds: replay", flush=True)
    run_step(
        pool_step(args.python, out, finished, jobs=args.jobs),
        cwd=snapshot_dir,
        environment=snapshot_environment(snapshot_dir),
        log=out / "logs" / "replay.log",
    )
    sys.stdout.write(write_table(out, finished, pool=out / POOL_DIR))
    return 0


def main(argv: list[str] | None = None) -> int:
    return run_command("fresh_seeds", "run", lambda: run(argv), errors=(FreshSeedsError, OSError))


if __name__ == "__main__":
    sys.exit(main())
