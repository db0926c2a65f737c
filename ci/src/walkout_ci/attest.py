"""Signed CI verdicts ("attestations"): what lets a protected branch trust a gate's PASS.

CI signs, for one commit of one repository, the gate's verdict against the tip of the target branch
it was made against. The repositories' server-side hooks (walkout_ci.hooks) verify it before `main`
moves. The signature is an HMAC-SHA256 with a key only CI and the git server hold:

- CI reads it from the environment variable `WALKOUT_CI_SIGNING_KEY` (a CI secret);
- the server hooks read it from a file only the server can read (configured by `walkout-ci org init`;
  never from the environment: a local pusher's environment reaches the hook).

A key is at least 32 characters of text (`walkout-ci ci keygen` prints 64 hex characters); the HMAC
key is its UTF-8 bytes, stripped of surrounding whitespace.

The signed document (stored as a git blob at `refs/verdicts/<commit>`, see `VERDICT_REF_PREFIX`):

```json
{"format": "walkout-ci-verdict", "version": 1,
 "attestation": {"repo": "walkout-detection", "kind": "model", "commit": "<40 hex>",
                 "base": "<40 hex: tip of main the gate compared against>", "target_branch": "main",
                 "verdict": "PASS|FAIL|ERROR", "summary": "...", "component": "detection",
                 "created_at": "2026-...+00:00", "metrics": {"AP50": 0.97},
                 "dataset_hash": "<64 hex> | null", "sealed_data": true,
                 "candidate": {"experiment_id": "...", "model_ref": "...", "weights_sha256": "..."},
                 "verdict_sha256": "<64 hex of verdict.json>", "metrics_sha256": "<64 hex>"},
 "signature": {"alg": "hmac-sha256", "key_id": "<16 hex>", "value": "<64 hex>"}}
```

The HMAC covers `SIGNING_CONTEXT` + the canonical JSON of `attestation` (sorted keys, no spaces,
ASCII). `metrics_sha256` is the sha256 of the canonical JSON of `metrics`; `key_id` is the first 16 hex
characters of sha256(key), so a verdict signed with another key is told apart from a tampered one.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import math
import os
import re
import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from walkout_ci.errors import WalkoutCIError

FORMAT = "walkout-ci-verdict"
VERSION = 1
ALGORITHM = "hmac-sha256"
KEY_ENV_VAR = "WALKOUT_CI_SIGNING_KEY"
MIN_KEY_LENGTH = 32
VERDICT_REF_PREFIX = "refs/verdicts/"
KINDS = ("model", "qc")
VERDICTS = ("PASS", "FAIL", "ERROR")
# Domain separation: this HMAC key must never validate anything but a verdict.
SIGNING_CONTEXT = b"walkout-ci verdict attestation v1\n"

_SHA1 = re.compile(r"^[0-9a-f]{40}$")
_SHA256 = re.compile(r"^[0-9a-f]{64}$")
_REQUIRED = {
    "repo": str,
    "kind": str,
    "commit": str,
    "base": str,
    "target_branch": str,
    "verdict": str,
    "created_at": str,
    "metrics": dict,
    "metrics_sha256": str,
}
_OPTIONAL = {
    "summary": str,
    "component": str,
    "dataset_hash": (str, type(None)),
    "sealed_data": bool,
    "candidate": dict,
    "verdict_sha256": (str, type(None)),
}


class AttestationError(WalkoutCIError):
    """A verdict attestation is malformed, unsigned, forged or tampered with.

    `reason` is one of: "malformed", "forged" (signed with another key), "tampered" (right key id,
    signature does not match the content), "key" (no usable key).
    """

    def __init__(self, message: str, reason: str = "malformed") -> None:
        super().__init__(message)
        self.reason = reason


@dataclass(frozen=True)
class SigningKey:
    """An HMAC key and where it came from (for messages; the secret itself is never printed)."""

    secret: bytes
    source: str

    @property
    def key_id(self) -> str:
        """First 16 hex characters of sha256(key): names the key without revealing it."""
        return hashlib.sha256(self.secret).hexdigest()[:16]


def generate_key() -> str:
    """A new random signing key: 64 hex characters (256 bits)."""
    return secrets.token_hex(32)


def key_from_text(text: str, source: str) -> SigningKey:
    """Parse a key's text (surrounding whitespace ignored); AttestationError if shorter than 32 chars."""
    value = text.strip()
    if len(value) < MIN_KEY_LENGTH:
        raise AttestationError(
            f"{source}: a signing key must be at least {MIN_KEY_LENGTH} characters "
            f"(got {len(value)}); make one with `walkout-ci ci keygen`",
            reason="key",
        )
    return SigningKey(value.encode("utf-8"), source)


def key_from_env(environ: dict[str, str] | None = None) -> SigningKey:
    """CI's key from `$WALKOUT_CI_SIGNING_KEY`; AttestationError naming the variable when unset."""
    env = os.environ if environ is None else environ
    text = env.get(KEY_ENV_VAR, "")
    if not text.strip():
        raise AttestationError(
            f"{KEY_ENV_VAR} is not set: only CI holds the verdict signing key (a CI secret), so verdicts "
            "are signed by CI, not on a workstation",
            reason="key",
        )
    return key_from_text(text, f"${KEY_ENV_VAR}")


def key_from_file(path: str | os.PathLike) -> SigningKey:
    """The server's copy of the key, from a file (one line); AttestationError naming the file."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as error:
        raise AttestationError(f"cannot read the verdict signing key file {path}: {error}", "key") from error
    return key_from_text(text, str(path))


def canonical_json(data: Any) -> bytes:
    """The bytes that are signed/hashed: sorted keys, no whitespace, ASCII, no NaN/Infinity."""
    return json.dumps(
        data, sort_keys=True, separators=(",", ":"), ensure_ascii=True, allow_nan=False
    ).encode()


def metrics_digest(metrics: dict[str, float]) -> str:
    """sha256 hex of the canonical JSON of a metrics mapping."""
    return hashlib.sha256(canonical_json(metrics)).hexdigest()


def _check_metrics(metrics: Any, where: str) -> dict[str, float]:
    if not isinstance(metrics, dict):
        raise AttestationError(f"{where}: 'metrics' must map metric names to numbers")
    for name, value in metrics.items():
        if not isinstance(name, str) or isinstance(value, bool) or not isinstance(value, int | float):
            raise AttestationError(f"{where}: metric {name!r} must be a number, got {value!r}")
        if not math.isfinite(value):
            raise AttestationError(f"{where}: metric {name!r} must be finite, got {value!r}")
    return {name: float(value) for name, value in metrics.items()}


def validate_attestation(data: Any, where: str = "attestation") -> dict[str, Any]:
    """Check an attestation's fields (see the module docstring); returns it. AttestationError naming
    `where` and the field otherwise."""
    if not isinstance(data, dict):
        raise AttestationError(f"{where}: must be a JSON object, got {type(data).__name__}")
    unknown = sorted(set(data) - set(_REQUIRED) - set(_OPTIONAL))
    if unknown:
        raise AttestationError(f"{where}: unknown field(s) {', '.join(unknown)}")
    for name, kind in {**_REQUIRED, **_OPTIONAL}.items():
        if name not in data:
            if name in _REQUIRED:
                raise AttestationError(f"{where}: missing field {name!r}")
            continue
        if not isinstance(data[name], kind) or (kind is str and isinstance(data[name], bool)):
            raise AttestationError(f"{where}: field {name!r} has the wrong type ({data[name]!r})")
    for name in ("commit", "base"):
        if not _SHA1.match(data[name]):
            raise AttestationError(f"{where}: {name!r} must be a full 40-hex commit id, got {data[name]!r}")
    if data["kind"] not in KINDS:
        raise AttestationError(f"{where}: 'kind' must be one of {', '.join(KINDS)}, got {data['kind']!r}")
    if data["verdict"] not in VERDICTS:
        raise AttestationError(
            f"{where}: 'verdict' must be one of {', '.join(VERDICTS)}, got {data['verdict']!r}"
        )
    metrics = _check_metrics(data["metrics"], where)
    if data["metrics_sha256"] != metrics_digest(metrics):
        raise AttestationError(f"{where}: 'metrics_sha256' does not match 'metrics'", reason="tampered")
    for name in ("verdict_sha256", "dataset_hash"):
        value = data.get(name)
        if value is not None and not _SHA256.match(value):
            raise AttestationError(f"{where}: {name!r} must be 64 lowercase hex characters, got {value!r}")
    return data


def _mac(key: SigningKey, attestation: dict[str, Any]) -> str:
    return hmac.new(key.secret, SIGNING_CONTEXT + canonical_json(attestation), hashlib.sha256).hexdigest()


def make_attestation(
    *,
    repo: str,
    kind: str,
    commit: str,
    base: str,
    verdict: str,
    created_at: str,
    metrics: dict[str, float],
    target_branch: str = "main",
    **extra: Any,
) -> dict[str, Any]:
    """A validated attestation dict; `extra` holds the optional fields (summary, component, ...)."""
    metrics = _check_metrics(dict(metrics), "attestation")
    data = {
        "repo": repo,
        "kind": kind,
        "commit": commit,
        "base": base,
        "target_branch": target_branch,
        "verdict": verdict,
        "created_at": created_at,
        "metrics": metrics,
        "metrics_sha256": metrics_digest(metrics),
        **extra,
    }
    return validate_attestation(data)


def sign(attestation: dict[str, Any], key: SigningKey) -> bytes:
    """The signed document (UTF-8 JSON bytes, ending in a newline) for an attestation."""
    attestation = validate_attestation(attestation)
    document = {
        "format": FORMAT,
        "version": VERSION,
        "attestation": attestation,
        "signature": {"alg": ALGORITHM, "key_id": key.key_id, "value": _mac(key, attestation)},
    }
    return json.dumps(document, sort_keys=True, indent=2, allow_nan=False).encode() + b"\n"


def verify(document: bytes, key: SigningKey, where: str = "verdict") -> dict[str, Any]:
    """The attestation of a signed document after checking format, fields and signature.

    AttestationError with reason "malformed" (not our format), "forged" (signed with another key) or
    "tampered" (content changed after signing).
    """
    try:
        data = json.loads(document.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as error:
        raise AttestationError(f"{where}: not a JSON verdict document ({error})") from error
    if not isinstance(data, dict) or data.get("format") != FORMAT or data.get("version") != VERSION:
        raise AttestationError(f"{where}: not a {FORMAT} version {VERSION} document")
    signature = data.get("signature")
    if (
        not isinstance(signature, dict)
        or signature.get("alg") != ALGORITHM
        or not isinstance(signature.get("value"), str)
        or not isinstance(signature.get("key_id"), str)
    ):
        raise AttestationError(f"{where}: no {ALGORITHM} signature", reason="forged")
    attestation = data.get("attestation")
    if not isinstance(attestation, dict):
        raise AttestationError(f"{where}: no attestation object")
    if signature["key_id"] != key.key_id:
        raise AttestationError(
            f"{where}: signed with key {signature['key_id']!r}, not CI's key {key.key_id!r} "
            "(forged, or signed with an old key)",
            reason="forged",
        )
    try:
        expected = _mac(key, attestation)
    except (TypeError, ValueError) as error:
        raise AttestationError(f"{where}: attestation cannot be canonicalised ({error})") from error
    if not hmac.compare_digest(expected, signature["value"]):
        raise AttestationError(
            f"{where}: the signature does not match the content (tampered after CI signed it, or forged)",
            reason="tampered",
        )
    return validate_attestation(attestation, where)


# --- where verdicts live: refs/verdicts/<commit> -> a blob holding the signed document ----------------


def verdict_ref(commit: str) -> str:
    """`refs/verdicts/<commit>`; AttestationError unless `commit` is a full 40-hex commit id."""
    if not _SHA1.match(commit):
        raise AttestationError(f"verdict refs name a full 40-hex commit id, got {commit!r}")
    return VERDICT_REF_PREFIX + commit


def store_verdict(repo: str | os.PathLike, commit: str, document: bytes) -> str:
    """Write `document` as a blob and point `refs/verdicts/<commit>` at it (local); returns the blob id."""
    import subprocess

    from walkout_ci import gitrepo

    completed = subprocess.run(
        ["git", "-C", os.fspath(repo), "hash-object", "-w", "--stdin"],
        input=document,
        capture_output=True,
        check=False,
    )
    if completed.returncode != 0:
        raise AttestationError(f"cannot store the verdict in {repo}: {completed.stderr.decode().strip()}")
    blob = completed.stdout.decode().strip()
    gitrepo.git(repo, "update-ref", verdict_ref(commit), blob)
    return blob


def push_verdict(repo: str | os.PathLike, remote: str, commit: str) -> None:
    """Push `refs/verdicts/<commit>` to `remote` (forced: a newer CI run replaces an older verdict).

    The remote's hook checks the signature, so a refusal there surfaces as a GateError quoting git.
    """
    from walkout_ci import gitrepo

    ref = verdict_ref(commit)
    gitrepo.git(repo, "push", "--quiet", remote, f"+{ref}:{ref}")


def fetch_verdicts(repo: str | os.PathLike, remote: str = "origin") -> None:
    """Fetch every `refs/verdicts/*` of `remote` into the local repository."""
    from walkout_ci import gitrepo

    gitrepo.git(repo, "fetch", "--quiet", remote, f"+{VERDICT_REF_PREFIX}*:{VERDICT_REF_PREFIX}*")


def read_verdict(
    repo: str | os.PathLike, commit: str, key: SigningKey | None = None
) -> tuple[dict[str, Any], bool] | None:
    """(attestation, verified) recorded for `commit` in `repo`, None when there is none.

    With `key` the signature is checked (AttestationError when it fails) and `verified` is True;
    without a key the fields are validated only (anyone can read a verdict; only CI and the server can
    check it). E.g. `walkout bump` reads the candidate's blind metrics from here.
    """
    import subprocess

    from walkout_ci import gitrepo

    ref = verdict_ref(commit)
    oid = gitrepo.git(repo, "rev-parse", "--verify", "--quiet", ref, check=False)
    if not oid:
        return None
    completed = subprocess.run(
        ["git", "-C", os.fspath(repo), "cat-file", "blob", oid], capture_output=True, check=False
    )
    if completed.returncode != 0:
        raise AttestationError(f"{ref} in {repo} does not hold a verdict blob")
    if key is not None:
        return verify(completed.stdout, key, where=ref), True
    try:
        data = json.loads(completed.stdout.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as error:
        raise AttestationError(f"{ref}: not a JSON verdict document ({error})") from error
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise AttestationError(f"{ref}: not a {FORMAT} document")
    return validate_attestation(data.get("attestation"), ref), False
