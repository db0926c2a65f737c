"""The content-addressed evaluation cache, and a gate re-run that performs no evaluation."""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import asdict, replace

import pytest

from walkout_ci import cli
from walkout_ci.cache import (
    SECRET_ENV_VAR,
    CacheKey,
    EvaluationCache,
    files_digest,
    run_info,
    secret_from_env,
)
from walkout_ci.errors import ReportError
from walkout_ci.report import read_report, write_report
from walkout_ci.testing import fake_weights, make_fake_component_repo, make_fake_dataset, make_report

KEY = CacheKey(
    component="detection",
    weights_sha256="a" * 64,
    code_tree_hash="b" * 40,
    dataset_hash="c" * 64,
    rules_hash="d" * 64,
)


def test_every_field_changes_the_address():
    digests = {KEY.digest()}
    for field, value in [
        ("component", "pose"),
        ("weights_sha256", "e" * 64),
        ("code_tree_hash", "f" * 40),
        ("dataset_hash", "0" * 64),
        ("rules_hash", "1" * 64),
    ]:
        digests.add(replace(KEY, **{field: value}).digest())
    assert len(digests) == 6
    assert KEY.digest() == replace(KEY).digest()


def test_store_then_lookup_round_trip(tmp_path):
    cache = EvaluationCache(tmp_path / "cache")
    write_report(tmp_path / "report", make_report(sample_scores={"a": {"person": 1.0}}))
    (tmp_path / "report" / "images").mkdir()
    (tmp_path / "report" / "images" / "a.png").write_bytes(b"png")
    assert cache.lookup(KEY) is None and cache.misses == 1
    entry = cache.store(KEY, tmp_path / "report", {"experiment_id": "exp-1"})
    assert cache.lookup(KEY) == entry and cache.hits == 1
    assert (entry / "images" / "a.png").read_bytes() == b"png"
    assert json.loads((entry / "key.json").read_text())["weights_sha256"] == "a" * 64
    assert (
        json.loads((entry / "files.json").read_text())["files"]["images/a.png"]
        == hashlib.sha256(b"png").hexdigest()
    )
    assert run_info(entry) == {"experiment_id": "exp-1"}
    assert cache.lookup(replace(KEY, rules_hash="2" * 64)) is None
    # First writer wins: storing again keeps the existing entry (a reader may be copying it).
    assert cache.store(KEY, tmp_path / "report", {"experiment_id": "exp-2"}) == entry
    assert run_info(entry) == {"experiment_id": "exp-1"}
    assert sorted(p.name for p in entry.parent.iterdir()) == [entry.name, f"{entry.name}.lock"]


def test_lookup_copy_gives_a_verified_private_copy(tmp_path):
    cache = EvaluationCache(tmp_path / "cache")
    write_report(tmp_path / "report", make_report(sample_scores={"a": {"person": 1.0}}))
    entry = cache.store(KEY, tmp_path / "report", {"experiment_id": "exp-1"})
    private = cache.lookup_copy(KEY, tmp_path / "mine")
    assert private == tmp_path / "mine" and cache.hits == 1
    assert read_report(private) == read_report(entry) and run_info(private) == {"experiment_id": "exp-1"}
    # Changing the shared entry afterwards does not change what this reader verified.
    (entry / "report.json").write_text('{"schema_version": 1')
    assert read_report(private)["component"] == "detection"
    assert cache.lookup_copy(KEY, tmp_path / "again") is None and not (tmp_path / "again").exists()
    assert cache.lookup_copy(replace(KEY, rules_hash="2" * 64), tmp_path / "other") is None


@pytest.mark.parametrize("damage", ["edit", "extra", "missing", "symlink", "key"])
def test_a_damaged_entry_is_a_miss_is_kept_and_a_new_store_replaces_it(tmp_path, damage):
    cache = EvaluationCache(tmp_path / "cache")
    write_report(tmp_path / "report", make_report(sample_scores={"a": {"person": 1.0}}))
    (tmp_path / "report" / "log.txt").write_text("log")
    entry = cache.store(KEY, tmp_path / "report")
    if damage == "edit":
        (entry / "log.txt").write_text("lie")
    elif damage == "extra":
        (entry / "planted.png").write_bytes(b"x")
    elif damage == "missing":
        (entry / "log.txt").unlink()
    elif damage == "symlink":
        (entry / "log.txt").unlink()
        (entry / "log.txt").symlink_to("/etc/passwd")
    else:
        (entry / "key.json").write_text(json.dumps({**asdict(KEY), "rules_hash": "e" * 64}))
    assert cache.lookup(KEY) is None and cache.lookup_copy(KEY, tmp_path / "copy") is None
    assert entry.exists()  # not deleted under another reader's feet
    assert cache.store(KEY, tmp_path / "report") == entry
    assert cache.lookup_copy(KEY, tmp_path / "copy") is not None
    assert (tmp_path / "copy" / "log.txt").read_text() == "log"
    assert sorted(p.name for p in entry.parent.iterdir()) == [entry.name, f"{entry.name}.lock"]


def test_with_a_secret_an_entry_forged_without_it_is_a_miss(tmp_path):
    write_report(tmp_path / "report", make_report(sample_scores={"a": {"person": 1.0}}))
    signed = EvaluationCache(tmp_path / "cache", secret=b"ci-secret")
    entry = signed.store(KEY, tmp_path / "report")
    assert signed.lookup_copy(KEY, tmp_path / "ok") is not None
    assert EvaluationCache(tmp_path / "cache", secret=b"other").lookup(KEY) is None
    # A forger rewrites the report and a consistent files.json, but cannot compute the HMAC.
    forged = make_report(sample_scores={"a": {"person": 0.0}})
    write_report(entry, forged)
    listing = json.loads((entry / "files.json").read_text())
    listing["files"] = files_digest(entry)
    (entry / "files.json").write_text(json.dumps(listing))
    assert EvaluationCache(tmp_path / "cache").lookup(KEY) == entry  # no secret: looks consistent
    assert signed.lookup_copy(KEY, tmp_path / "forged") is None
    (entry / "files.hmac").unlink()
    assert signed.lookup(KEY) is None


def test_the_default_cache_takes_its_secret_from_the_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("WALKOUT_HOME", str(tmp_path / "home"))
    monkeypatch.setenv(SECRET_ENV_VAR, "ci-secret")
    assert EvaluationCache.default().secret == b"ci-secret" == secret_from_env()
    monkeypatch.setenv(SECRET_ENV_VAR, "")
    monkeypatch.delenv("WALKOUT_BLIND_KEY", raising=False)
    assert EvaluationCache.default().secret is None and secret_from_env({}) is None
    # On CI the blind key alone signs the cache (derived: the key itself is never the secret).
    derived = secret_from_env({"WALKOUT_BLIND_KEY": "blind-key-of-ci"})
    assert derived and b"blind-key-of-ci" not in derived
    assert (
        derived
        == secret_from_env({"WALKOUT_BLIND_KEY": "blind-key-of-ci"})
        != secret_from_env({"WALKOUT_BLIND_KEY": "x" * 16})
    )


def test_a_report_with_a_symlink_is_not_stored(tmp_path):
    write_report(tmp_path / "report", make_report(sample_scores={"a": {"person": 1.0}}))
    (tmp_path / "report" / "passwd.png").symlink_to("/etc/passwd")
    with pytest.raises(ReportError, match=r"passwd\.png"):
        EvaluationCache(tmp_path / "cache").store(KEY, tmp_path / "report")
    assert list((tmp_path / "cache").glob("*/*")) == []  # no entry, no staging folder left


def test_an_invalid_report_is_never_stored(tmp_path):
    (tmp_path / "report").mkdir()
    (tmp_path / "report" / "report.json").write_text("{}")
    with pytest.raises(ReportError):
        EvaluationCache(tmp_path / "cache").store(KEY, tmp_path / "report")


def from_cache(out) -> dict[str, bool]:
    """{side: whether the gate took its report from the cache} of the verdict in `out`."""
    verdict = json.loads((out / "verdict.json").read_text())
    return {side: verdict["evaluations"][side]["from_cache"] for side in ("baseline", "candidate")}


def test_gate_rerun_with_nothing_changed_performs_no_evaluation(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("WALKOUT_HOME", str(tmp_path / "home"))
    scores = {"person": [0.9, 0.8, 0.7, 0.9], "sku": [0.9, 0.9, 0.8, 0.6]}
    component = make_fake_component_repo(tmp_path / "repo", scores)
    make_fake_dataset(tmp_path / "data")
    candidate = tmp_path / "candidate.json"
    # Different weights from the baseline's (identical weights + code + data would share one entry).
    candidate.write_bytes(fake_weights({"person": [0.9, 0.8, 0.7, 0.95], "sku": [0.9, 0.9, 0.8, 0.6]}))
    out = tmp_path / "out"
    argv = ["gate", "--component-dir", str(component), "--candidate", str(candidate)]
    argv += ["--data", str(tmp_path / "data"), "--out", str(out), "--no-track"]
    argv += ["--cache-dir", str(tmp_path / "cache")]

    started = time.perf_counter()
    assert cli.main(argv) == 0
    first_s = time.perf_counter() - started
    assert from_cache(out) == {"baseline": False, "candidate": False}  # both evaluated
    first = json.loads((out / "verdict.json").read_text())

    started = time.perf_counter()
    assert cli.main(argv) == 0
    rerun_s = time.perf_counter() - started
    assert from_cache(out) == {"baseline": True, "candidate": True}  # the re-run evaluated nothing
    verdict = json.loads((out / "verdict.json").read_text())
    assert verdict["verdict"] == first["verdict"] and verdict["metrics"] == first["metrics"]
    assert verdict["evaluations"]["baseline"]["commit"] == verdict["baseline"]["code_commit"]

    # A changed candidate is evaluated again, the unchanged baseline is not.
    candidate.write_bytes(fake_weights({"person": [1.0] * 4, "sku": [1.0] * 4}))
    assert cli.main(argv) == 0
    assert from_cache(out) == {"baseline": True, "candidate": False}
    with capsys.disabled():
        print(
            f"\n[gate cache] first run {first_s:.2f} s (2 evaluations), unchanged re-run {rerun_s:.2f} s (0)"
        )


def test_no_cache_evaluates_every_time_into_the_out_folder(tmp_path, monkeypatch):
    monkeypatch.setenv("WALKOUT_HOME", str(tmp_path / "home"))
    scores = {"person": [0.9, 0.8], "sku": [0.9, 0.7]}
    component = make_fake_component_repo(tmp_path / "repo", scores)
    make_fake_dataset(tmp_path / "data")
    candidate = tmp_path / "candidate.json"
    candidate.write_bytes(fake_weights({"person": [0.9, 0.85], "sku": [0.9, 0.7]}))
    out = tmp_path / "out"
    argv = ["gate", "--component-dir", str(component), "--candidate", str(candidate)]
    argv += ["--data", str(tmp_path / "data"), "--out", str(out), "--no-track", "--no-cache"]
    for _ in range(2):
        assert cli.main(argv) == 0
        assert from_cache(out) == {"baseline": False, "candidate": False}
    assert (out / "evaluations" / "candidate" / "report.json").is_file()
    assert not (tmp_path / "home" / "ci-cache").exists()
