"""Signed CI verdicts: sign/verify, forged vs tampered, field validation, keys, refs/verdicts storage."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from walkout_ci import attest

KEY = attest.key_from_text("k" * 40, "test key")
OTHER_KEY = attest.key_from_text("o" * 40, "other key")
COMMIT = "1" * 40
BASE = "2" * 40


def attestation(**changes) -> dict:
    fields = dict(
        repo="walkout-detection",
        kind="model",
        commit=COMMIT,
        base=BASE,
        verdict="PASS",
        created_at="2026-12-04T00:00:00+00:00",
        metrics={"AP50": 0.97},
        summary="PASS: 5 rules checked, all passed",
    )
    fields.update(changes)
    return attest.make_attestation(**fields)


def test_a_signed_verdict_verifies_and_keeps_every_field() -> None:
    document = attest.sign(attestation(), KEY)
    verified = attest.verify(document, KEY)
    assert verified["commit"] == COMMIT and verified["base"] == BASE and verified["verdict"] == "PASS"
    assert verified["metrics"] == {"AP50": 0.97}
    assert verified["metrics_sha256"] == attest.metrics_digest({"AP50": 0.97})
    assert json.loads(document)["signature"]["key_id"] == KEY.key_id


def test_a_verdict_signed_with_another_key_is_forged() -> None:
    document = attest.sign(attestation(), OTHER_KEY)
    with pytest.raises(attest.AttestationError, match="forged") as caught:
        attest.verify(document, KEY)
    assert caught.value.reason == "forged"


def test_a_forger_copying_the_key_id_is_caught_as_tampered() -> None:
    data = json.loads(attest.sign(attestation(), OTHER_KEY))
    data["signature"]["key_id"] = KEY.key_id
    with pytest.raises(attest.AttestationError) as caught:
        attest.verify(json.dumps(data).encode(), KEY)
    assert caught.value.reason == "tampered"


@pytest.mark.parametrize(
    ("field", "value"),
    [("verdict", "PASS"), ("base", "3" * 40), ("commit", "4" * 40), ("kind", "qc"), ("repo", "walkout-pose")],
)
def test_changing_any_signed_field_is_tampering(field: str, value: str) -> None:
    data = json.loads(attest.sign(attestation(verdict="FAIL"), KEY))
    data["attestation"][field] = value
    with pytest.raises(attest.AttestationError, match="tampered") as caught:
        attest.verify(json.dumps(data).encode(), KEY)
    assert caught.value.reason == "tampered"


def test_changing_the_metrics_is_tampering() -> None:
    data = json.loads(attest.sign(attestation(), KEY))
    data["attestation"]["metrics"]["AP50"] = 0.99
    with pytest.raises(attest.AttestationError) as caught:
        attest.verify(json.dumps(data).encode(), KEY)
    assert caught.value.reason == "tampered"


def test_an_unsigned_or_foreign_document_is_refused() -> None:
    data = json.loads(attest.sign(attestation(), KEY))
    del data["signature"]
    with pytest.raises(attest.AttestationError, match="no hmac-sha256 signature"):
        attest.verify(json.dumps(data).encode(), KEY)
    with pytest.raises(attest.AttestationError, match="not a JSON"):
        attest.verify(b"\xff not json", KEY)
    with pytest.raises(attest.AttestationError, match="not a walkout-ci-verdict"):
        attest.verify(b'{"format": "something-else", "version": 1}', KEY)


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"commit": "abc"}, "'commit' must be a full 40-hex commit id"),
        ({"verdict": "MAYBE"}, "'verdict' must be one of PASS, FAIL, ERROR"),
        ({"kind": "unit"}, "'kind' must be one of model, qc"),
        ({"metrics": {"AP50": float("nan")}}, "metric 'AP50' must be finite"),
        ({"metrics": {"AP50": "high"}}, "metric 'AP50' must be a number"),
        ({"color": "blue"}, "unknown field"),
    ],
)
def test_invalid_attestations_are_refused_naming_the_field(changes: dict, message: str) -> None:
    with pytest.raises(attest.AttestationError, match=message):
        attestation(**changes)


def test_keys_must_be_long_and_ci_reads_its_key_from_the_environment() -> None:
    with pytest.raises(attest.AttestationError, match="at least 32 characters"):
        attest.key_from_text("short", "k")
    with pytest.raises(attest.AttestationError, match="WALKOUT_CI_SIGNING_KEY is not set"):
        attest.key_from_env({})
    key = attest.key_from_env({attest.KEY_ENV_VAR: " " + "k" * 40 + "\n"})
    assert key.key_id == KEY.key_id
    assert len(attest.generate_key()) == 64 and attest.generate_key() != attest.generate_key()


def test_verdicts_are_stored_and_read_back_at_refs_verdicts(tmp_path: Path) -> None:
    subprocess.run(["git", "init", "-q", str(tmp_path)], check=True)
    document = attest.sign(attestation(), KEY)
    assert attest.read_verdict(tmp_path, COMMIT) is None
    blob = attest.store_verdict(tmp_path, COMMIT, document)
    ref = subprocess.run(
        ["git", "-C", str(tmp_path), "rev-parse", f"refs/verdicts/{COMMIT}"], capture_output=True, text=True
    )
    assert ref.stdout.strip() == blob
    found, verified = attest.read_verdict(tmp_path, COMMIT, KEY)
    assert verified and found["verdict"] == "PASS"
    unverified, verified = attest.read_verdict(tmp_path, COMMIT)
    assert not verified and unverified == found
    with pytest.raises(attest.AttestationError, match="forged"):
        attest.read_verdict(tmp_path, COMMIT, OTHER_KEY)
    with pytest.raises(attest.AttestationError, match="40-hex"):
        attest.verdict_ref("HEAD")
