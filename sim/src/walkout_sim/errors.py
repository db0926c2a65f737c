"""The one exception hierarchy of walkout_sim.

Every error raised on purpose by this package is a :class:`SimError`; the CLI maps them to exit code 2.
"""

from __future__ import annotations


class SimError(Exception):
    """Base class of every error walkout_sim raises on purpose."""


class ConfigError(SimError):
    """A layout, scenario or generator config file is invalid.

    The message names the file, the field (dotted path) and what is allowed.
    """

    def __init__(self, source: str, field: str, problem: str) -> None:
        self.source = source
        self.field = field
        self.problem = problem
        where = f"{source}: {field}" if field else source
        super().__init__(f"{where}: {problem}")


class ScenarioError(SimError):
    """A scenario cannot be simulated as written (e.g. a pick from a slot that is empty by then)."""


class OutputExistsError(SimError):
    """The output folder exists and --force was not given."""


class BlindSeedError(SimError):
    """The blind split was asked for without the secret seed in WALKOUT_BLIND_SEED."""
