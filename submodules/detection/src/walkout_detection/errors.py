"""The walkout-detection exception hierarchy.

Every error a user can cause derives from `DetectionError`; its message names the bad file, field or
value and what to do instead. `exit_code` is what the CLI returns for it (2: bad input / could not
evaluate).
"""

from __future__ import annotations


class DetectionError(Exception):
    """Base class of every walkout-detection error."""

    exit_code = 2


class ConfigError(DetectionError):
    """A configuration key or value is invalid (unknown key, out-of-range value, wrong type)."""


class DataError(DetectionError):
    """A dataset cannot be read: missing file, malformed COCO JSON, unknown category, blind data."""


class CheckpointError(DetectionError):
    """A checkpoint is missing, corrupt or incompatible with this version of the package."""


class EvaluationError(DetectionError):
    """An evaluation could not be completed (and therefore must not count as a pass)."""


class PredictionsError(DetectionError):
    """A predictions file (the gate's predict stage output) breaks its format: the scorer refuses it."""
