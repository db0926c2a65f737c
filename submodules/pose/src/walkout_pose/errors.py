"""The walkout-pose exception hierarchy.

Every error a user can cause derives from `PoseError`; its message names the bad file, field or value
and says what to do instead. `exit_code` is what the CLI returns for it: 2 means "bad input / could
not evaluate" (the gate reads it as an ERROR verdict, never as a pass).
"""

from __future__ import annotations


class PoseError(Exception):
    """Base class of every walkout-pose error."""

    exit_code = 2


class ConfigError(PoseError):
    """A config file or dict is invalid (unknown key, wrong type, value out of range)."""


class DataError(PoseError):
    """A dataset folder or annotation file is missing or does not follow the COCO keypoints format."""


class InputError(PoseError):
    """A frame or a person box handed to `estimate` is unusable (wrong shape, outside the frame...)."""


class CheckpointError(PoseError):
    """A checkpoint is missing, corrupt, or was written for another component or format version."""


class EvaluationError(PoseError):
    """An evaluation could not produce a trustworthy result (no ground truth, reference library failed)."""


class PredictionsError(PoseError):
    """A gate predictions file breaks the `walkout-pose-predictions` format (names file, record, field)."""
