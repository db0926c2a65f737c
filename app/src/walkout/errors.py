"""The walkout (app) exception hierarchy.

Every error a user can cause derives from `WalkoutError`; its message names the bad file, field or
value and what to do instead. `exit_code` is what the CLI returns for it: 2 = bad input / could not
evaluate (never 0, never 1, which is reserved for "the check ran and failed").
"""

from __future__ import annotations


class WalkoutError(Exception):
    """Base class of every walkout app error."""

    exit_code = 2


class ConfigError(WalkoutError):
    """A config file (engine config, gate.yaml) is missing or invalid."""


class LayoutError(WalkoutError):
    """A store layout file is missing or does not follow the simulator's layout schema."""


class RefsError(WalkoutError):
    """`model_refs.yaml` is invalid, disagrees with a submodule pin, or a model cannot be resolved."""


class VideoError(WalkoutError):
    """A video is missing, unreadable, truncated or corrupt."""


class GroundTruthError(WalkoutError):
    """A video folder's ground-truth files (annotations.json, events.json, receipts.json) are bad."""


class QCError(WalkoutError):
    """System QC could not produce a complete report."""
