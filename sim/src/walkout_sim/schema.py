"""Strict construction of typed config dataclasses from YAML mappings.

Unknown keys are errors that suggest the closest known key; wrong types and bad values name the
file and the dotted field path. Dataclasses may define ``check(self, source, path)`` for range checks.
"""

from __future__ import annotations

import dataclasses
import difflib
import types
import typing
from pathlib import Path
from typing import Any, TypeVar

import yaml

from walkout_sim.errors import ConfigError

T = TypeVar("T")


def read_yaml(path: Path) -> Any:
    """Parse a YAML file; a missing file or a syntax error becomes a ConfigError naming the file."""
    try:
        text = Path(path).read_text()
    except OSError as error:
        raise ConfigError(str(path), "", f"cannot read the file ({error.strerror})") from error
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as error:
        raise ConfigError(str(path), "", f"not valid YAML: {error}") from error


def _type_name(tp: Any) -> str:
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        return " or ".join(_type_name(arg) for arg in typing.get_args(tp))
    if origin is not None:
        args = ", ".join(_type_name(arg) for arg in typing.get_args(tp))
        return f"{origin.__name__}[{args}]"
    if tp is type(None):
        return "null"
    if isinstance(tp, type) and dataclasses.is_dataclass(tp):
        return "mapping"
    return getattr(tp, "__name__", str(tp))


def convert(tp: Any, value: Any, source: str, path: str) -> Any:
    """Check ``value`` against the annotation ``tp``; convert lists to tuples and dicts to dataclasses."""
    origin = typing.get_origin(tp)
    if tp is Any:
        return value
    if origin in (typing.Union, types.UnionType):
        args = typing.get_args(tp)
        if value is None and type(None) in args:
            return None
        last_error: ConfigError | None = None
        for arg in args:
            if arg is type(None):
                continue
            try:
                return convert(arg, value, source, path)
            except ConfigError as error:
                last_error = error
        if last_error is not None and len([a for a in args if a is not type(None)]) == 1:
            raise last_error
        raise ConfigError(source, path, f"expected {_type_name(tp)}, got {value!r}")
    if origin is typing.Literal:
        allowed = typing.get_args(tp)
        if value not in allowed:
            raise ConfigError(source, path, f"{value!r} is not allowed; use one of {list(allowed)}")
        return value
    if origin is tuple:
        args = typing.get_args(tp)
        if not isinstance(value, list | tuple):
            raise ConfigError(source, path, f"expected a list ({_type_name(tp)}), got {value!r}")
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(convert(args[0], item, source, f"{path}[{i}]") for i, item in enumerate(value))
        if len(value) != len(args):
            raise ConfigError(source, path, f"expected a list of {len(args)} values, got {len(value)}")
        return tuple(
            convert(arg, item, source, f"{path}[{i}]")
            for i, (arg, item) in enumerate(zip(args, value, strict=True))
        )
    if origin is dict:
        key_type, value_type = typing.get_args(tp)
        if not isinstance(value, dict):
            raise ConfigError(source, path, f"expected a mapping, got {value!r}")
        return {
            convert(key_type, key, source, f"{path}.{key}"): convert(
                value_type, item, source, f"{path}.{key}"
            )
            for key, item in value.items()
        }
    if isinstance(tp, type) and dataclasses.is_dataclass(tp):
        return build(tp, value, source, path)
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ConfigError(source, path, f"expected a number, got {value!r}")
        return float(value)
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(source, path, f"expected an integer, got {value!r}")
        return value
    if tp is bool:
        if not isinstance(value, bool):
            raise ConfigError(source, path, f"expected true or false, got {value!r}")
        return value
    if tp is str:
        if not isinstance(value, str):
            raise ConfigError(source, path, f"expected a string, got {value!r}")
        return value
    raise TypeError(f"unsupported annotation {tp!r} at {path}")


def build(cls: type[T], data: Any, source: str, path: str = "") -> T:
    """Build dataclass ``cls`` from a mapping, strictly (see module docstring)."""
    where = path or "(top level)"
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(source, where, f"expected a mapping, got {data!r}")
    hints = typing.get_type_hints(cls)
    fields = {field.name: field for field in dataclasses.fields(cls) if field.init}
    for key in data:
        if key not in fields:
            close = difflib.get_close_matches(str(key), list(fields), n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            raise ConfigError(
                source,
                f"{path}.{key}" if path else str(key),
                f"unknown key{hint} (known keys: {sorted(fields)})",
            )
    kwargs = {}
    for name, field in fields.items():
        sub = f"{path}.{name}" if path else name
        if name in data:
            kwargs[name] = convert(hints[name], data[name], source, sub)
        elif field.default is dataclasses.MISSING and field.default_factory is dataclasses.MISSING:
            raise ConfigError(source, sub, "required key is missing")
    instance = cls(**kwargs)
    check = getattr(instance, "check", None)
    if check is not None:
        check(source, path)
    return instance


def require(condition: bool, source: str, path: str, field: str, problem: str) -> None:
    """Raise a ConfigError for ``path.field`` unless ``condition`` holds."""
    if not condition:
        raise ConfigError(source, f"{path}.{field}" if path else field, problem)


def to_plain(value: Any) -> Any:
    """A dataclass tree as plain dicts/lists (tuples become lists), for JSON/YAML output."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {field.name: to_plain(getattr(value, field.name)) for field in dataclasses.fields(value)}
    if isinstance(value, list | tuple):
        return [to_plain(item) for item in value]
    if isinstance(value, dict):
        return {key: to_plain(item) for key, item in value.items()}
    return value
