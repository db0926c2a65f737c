"""Validation helpers for the typed config dataclasses of the model packages.

Every model package validates its YAML config the same way (unknown keys suggest the right one,
values are type-checked, ranges name the key), so the rules live here once. Each helper takes the
package's own exception class, so a package's users still catch that package's ConfigError.
"""

from __future__ import annotations

import dataclasses
import difflib
import re
import typing
from typing import Any


def check_range(key: str, value: Any, low: float, high: float, *, error: type[Exception]) -> None:
    """Raise `error` naming `key` unless low <= value <= high."""
    if not low <= value <= high:
        raise error(f"{key} must be between {low} and {high}; got {value!r}")


def unknown_key_error(key: str, valid: list[str], where: str, *, error: type[Exception]) -> Exception:
    """An `error` for an unknown key `where + key`, suggesting the closest valid key."""
    close = difflib.get_close_matches(key, valid, n=1)
    hint = f"; did you mean {close[0]!r}?" if close else f"; valid keys: {', '.join(sorted(valid))}"
    return error(f"unknown config key {where}{key!r}{hint}")


_EXPONENT_NUMBER = re.compile(r"[-+]?(\d+\.?\d*|\.\d+)[eE][-+]?\d+")


def coerce(key: str, value: Any, expected: Any, *, error: type[Exception]) -> Any:
    """Check `value` against a field's type; ints are accepted where floats are expected.

    expected: int, float, bool, str, or tuple[float, ...] (given in YAML as a list of numbers).
    """
    if typing.get_origin(expected) is tuple:
        if not isinstance(value, list | tuple):
            raise error(f"{key} must be a list of numbers; got {value!r}")
        return tuple(coerce(f"{key}[{index}]", item, float, error=error) for index, item in enumerate(value))
    if expected is bool:
        if not isinstance(value, bool):
            raise error(f"{key} must be true or false; got {value!r}")
        return value
    if expected is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if expected is float and isinstance(value, str) and _EXPONENT_NUMBER.fullmatch(value.strip()):
        # PyYAML follows YAML 1.1, which reads 1e-7 (no dot in the mantissa) as a string.
        return float(value)
    if not isinstance(value, expected) or (expected is int and isinstance(value, bool)):
        raise error(f"{key} must be of type {expected.__name__}; got {value!r}")
    return value


def build_section(name: str, cls: type, values: Any, *, error: type[Exception]) -> Any:
    """Build and validate one config section (a dataclass with a `validate()` method) from a mapping.

    values: the section's mapping from YAML, or None for the defaults.
    """
    if values is None:
        values = {}
    if not isinstance(values, dict):
        raise error(f"config section {name!r} must be a mapping; got {type(values).__name__}")
    hints = typing.get_type_hints(cls)
    valid = [field.name for field in dataclasses.fields(cls)]
    keyword_arguments = {}
    for key, value in values.items():
        if key not in valid:
            raise unknown_key_error(str(key), valid, f"{name}.", error=error)
        keyword_arguments[key] = coerce(f"{name}.{key}", value, hints[key], error=error)
    section = cls(**keyword_arguments)
    section.validate()
    return section
