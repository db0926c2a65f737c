"""Several gates share one evaluation cache: concurrent stores and private-copy lookups stay valid."""

from __future__ import annotations

import json
import multiprocessing
from dataclasses import replace
from pathlib import Path

from walkout_ci.cache import CacheKey, EvaluationCache
from walkout_ci.report import read_report, write_report
from walkout_ci.testing import make_report

WORKERS = 4
ROUNDS = 10
KEY = CacheKey(
    component="detection",
    weights_sha256="a" * 64,
    code_tree_hash="b" * 40,
    dataset_hash="c" * 64,
    rules_hash="d" * 64,
)


def shared_key(round_index: int) -> CacheKey:
    """The key every worker stores and looks up in one round (a fresh one per round: a new race)."""
    return replace(KEY, rules_hash=f"{round_index:064x}")


def own_key(worker: int, round_index: int) -> CacheKey:
    return replace(KEY, weights_sha256=f"{worker:032x}{round_index:032x}")


def worker_report_dir(root: Path, worker: int) -> Path:
    """Worker `worker`'s report folder: a different score and a 200 kB log (copies take a while)."""
    folder = root / f"report-{worker}"
    if not folder.exists():
        write_report(folder, make_report(sample_scores={"s1": {"person": worker / 10}}))
        (folder / "log.txt").write_text(f"worker {worker}\n" * 20_000)
    return folder


def _worker(root: str, worker: int, barrier, results) -> None:
    """Store and look up the round's shared key and an own key, ROUNDS times; report problems."""
    root_path = Path(root)
    cache = EvaluationCache(root_path / "cache")
    report_dir = worker_report_dir(root_path, worker)
    problems: list[str] = []
    stored_reports = [read_report(worker_report_dir(root_path, w)) for w in range(WORKERS)]
    try:
        for round_index in range(ROUNDS):
            barrier.wait()
            private = root_path / "private" / f"{worker}-{round_index}"
            cache.store(shared_key(round_index), report_dir, {"worker": worker})
            for attempt, key in enumerate([shared_key(round_index), own_key(worker, round_index)]):
                copy = cache.lookup_copy(key, private / str(attempt))
                if copy is None:
                    problems.append(f"round {round_index}: miss after store of {key.rules_hash[-4:]}")
                    continue
                report = read_report(copy)
                if report not in stored_reports:
                    problems.append(f"round {round_index}: a report nobody stored")
                log = (copy / "log.txt").read_text()
                if log.count("\n") != 20_000 or len(set(log.splitlines())) != 1:
                    problems.append(f"round {round_index}: a torn log.txt")
                if attempt == 0:
                    cache.store(own_key(worker, round_index), report_dir)
            assert cache.lookup(shared_key(round_index)) is not None
    except Exception as error:  # reported to the parent, which fails the test with it
        problems.append(f"{type(error).__name__}: {error}")
    results.put((worker, problems))


def test_four_processes_store_and_read_the_same_and_different_keys(tmp_path: Path) -> None:
    for worker in range(WORKERS):
        worker_report_dir(tmp_path, worker)
    context = multiprocessing.get_context("spawn")
    barrier = context.Barrier(WORKERS, timeout=120)
    results = context.Queue()
    processes = [
        context.Process(target=_worker, args=(str(tmp_path), worker, barrier, results))
        for worker in range(WORKERS)
    ]
    for process in processes:
        process.start()
    outcomes = dict(results.get(timeout=300) for _ in processes)
    for process in processes:
        process.join(timeout=60)
    assert [process.exitcode for process in processes] == [0] * WORKERS
    assert outcomes == {worker: [] for worker in range(WORKERS)}
    cache_root = tmp_path / "cache"
    # One entry per shared key and per own key; no staging or moved-aside folder left behind.
    entries = [path for path in cache_root.glob("*/*") if path.is_dir()]
    assert len(entries) == ROUNDS + WORKERS * ROUNDS
    assert not [path for path in entries if path.name.startswith(".")]
    for round_index in range(ROUNDS):
        entry = EvaluationCache(cache_root).entry_dir(shared_key(round_index))
        winner = json.loads((entry / "run.json").read_text())["worker"]
        assert read_report(entry) == read_report(worker_report_dir(tmp_path, winner))
