"""Checking YAML mappings: unknown keys are errors that name the key and suggest the right one."""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from typing import Any


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
