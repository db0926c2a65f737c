"""Helpers that turn YAML mappings into typed dataclasses, with errors that name the key and the fix."""

from __future__ import annotations

import dataclasses
import difflib
from collections.abc import Mapping
from typing import Any, TypeVar

T = TypeVar("T")


def check_keys(
    mapping: Mapping[str, Any], allowed: set[str] | list[str], *, where: str, error: type[Exception]
) -> None:
    """Raise `error` for the first key of `mapping` not in `allowed`, suggesting the closest allowed key."""
    allowed = set(allowed)
    for key in mapping:
        if key not in allowed:
            close = difflib.get_close_matches(str(key), sorted(allowed), n=1)
            hint = f"did you mean {close[0]!r}?" if close else f"allowed keys: {', '.join(sorted(allowed))}"
            raise error(f"{where}: unknown key {key!r}; {hint}")


def dataclass_from_mapping(
    cls: type[T], mapping: Mapping[str, Any] | None, *, where: str, error: type[Exception]
) -> T:
    """Build dataclass `cls` from `mapping` (missing keys keep their defaults; unknown keys are errors).

    Each field's value is passed to the dataclass, whose `__post_init__` validates ranges.
    """
    mapping = mapping or {}
    if not isinstance(mapping, Mapping):
        raise error(f"{where}: expected a mapping of keys to values, got {type(mapping).__name__}")
    names = [f.name for f in dataclasses.fields(cls)]  # type: ignore[arg-type]
    check_keys(mapping, names, where=where, error=error)
    return cls(**mapping)
