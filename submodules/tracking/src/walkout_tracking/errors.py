"""The walkout-tracking exception hierarchy.

Every error a user can cause derives from `TrackingError`; its message names the bad file, line,
field or value and says what to do instead. `exit_code` is what the CLI returns for it.
"""

from __future__ import annotations


class TrackingError(Exception):
    """Base class of every walkout-tracking error (bad input / could not evaluate: exit code 2)."""

    exit_code = 2


class ConfigError(TrackingError):
    """A config file or dict is invalid (unknown key, wrong type, value out of range)."""


class DataError(TrackingError):
    """An input file (det.txt, gt.txt, video, COCO annotations, export folder) is missing or malformed."""


class DetectionsError(TrackingError):
    """Detections handed to `Tracker.update` do not have the documented shape or values."""


class CheckpointError(TrackingError):
    """A checkpoint is missing, corrupt, or was written for another component or format version."""


class EvaluationError(TrackingError):
    """An evaluation could not be completed (fails closed: never reported as a pass)."""


class PredictionsError(TrackingError):
    """A predictions.json (gate-predict's output, read by gate-score) breaks its documented format."""
