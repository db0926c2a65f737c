"""The walkout-ci exception hierarchy.

Every error a user can cause derives from `WalkoutCIError`; its message names the bad file, field or
value and what to do instead. `exit_code` is what the CLI returns: 2 means "could not evaluate /
bad input" (the gate's ERROR verdict), 1 is reserved for a regression (FAIL).
"""

from __future__ import annotations


class WalkoutCIError(Exception):
    """Base class of every walkout-ci error."""

    exit_code = 2


class ConfigError(WalkoutCIError):
    """A config file (gate.yaml, model_ref.yaml, ...) is missing or invalid."""


class ExperimentError(WalkoutCIError):
    """An experiment cannot be found, exported or imported."""


class PinError(WalkoutCIError):
    """A model pin cannot be written or resolved (unknown id, missing artifact, hash mismatch)."""


class ReportError(WalkoutCIError):
    """An evaluation report does not follow the report contract."""


class GateError(WalkoutCIError):
    """The gate could not reach a verdict (missing baseline, metric or report)."""


class EvaluationError(WalkoutCIError):
    """Launching or running an evaluation failed (crash, timeout, missing output)."""


class BlindSetError(WalkoutCIError):
    """The sealed blind set was misused: no key, wrong key, training on it, or leakage."""


class DataError(ReportError):
    """A dataset folder does not match its manifest.json (changed, missing or unlisted files).

    A ReportError, so callers of `report.dataset_hash` that handle ReportError handle it too.
    """
