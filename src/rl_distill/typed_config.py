"""Typed, frozen configs built from plain dicts (YAML parameters), validated at load.

One job: turn a ``dict`` from ``parameters_*.yml`` into a frozen dataclass, failing with a message that names the
bad key, the place it came from and how to fix it (architecture principle 3). Each default lives in exactly one
place: the dataclass field. Range checks live in each dataclass's ``__post_init__`` and raise :class:`ConfigError`.
"""

from __future__ import annotations

import dataclasses
import difflib
import math
import types
import typing
from collections.abc import Mapping
from typing import Any, TypeVar

T = TypeVar("T")


class ConfigError(ValueError):
    """A configuration value or key is invalid; the message says which one and how to fix it."""


def _suggest(key: str, valid: list[str]) -> str:
    close = difflib.get_close_matches(key, valid, n=1)
    return f" Did you mean '{close[0]}'?" if close else ""


def _is_dataclass_type(tp: Any) -> bool:
    return isinstance(tp, type) and dataclasses.is_dataclass(tp)


def _finite(value: float, where: str) -> float:
    """``value`` if finite; NaN and +-inf fail naming the key (no config value of this project is meant to be
    infinite: an open bound is written as ``null`` where a field allows it)."""
    if not math.isfinite(value):
        raise ConfigError(f"{where}={value!r} is not a finite number; give a finite value.")
    return value


def _coerce(value: Any, tp: Any, where: str) -> Any:
    """Coerce ``value`` to annotation ``tp`` where that is unambiguous (nested dataclasses, tuples, numbers)."""
    origin = typing.get_origin(tp)
    if _is_dataclass_type(tp) and isinstance(value, Mapping):
        return from_dict(tp, value, where=where)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        if value is None:
            return None
        for arg in args:
            if _is_dataclass_type(arg) and isinstance(value, Mapping):
                return from_dict(arg, value, where=where)
        if len(args) == 1:
            return _coerce(value, args[0], where)
        return value
    if origin is tuple and isinstance(value, (list, tuple)):
        args = typing.get_args(tp)
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(_coerce(v, args[0], f"{where}[{i}]") for i, v in enumerate(value))
        return tuple(value)
    if origin is dict and isinstance(value, Mapping):
        kt, vt = typing.get_args(tp) or (Any, Any)
        return {k: _coerce(v, vt, f"{where}.{k}") for k, v in value.items()}
    if tp is float and isinstance(value, (int, float)) and not isinstance(value, bool):
        return _finite(float(value), where)
    if tp is float and isinstance(value, str):
        try:  # YAML reads 1e-3 as a string
            number = float(value)
        except ValueError as exc:
            raise ConfigError(f"{where}: expected a number, got {value!r}.") from exc
        return _finite(number, where)
    if tp is int and isinstance(value, float) and value.is_integer():
        return int(value)
    if tp is int and (isinstance(value, bool) or not isinstance(value, int)):
        raise ConfigError(f"{where}: expected an integer, got {value!r}.")
    if tp is bool and not isinstance(value, bool):
        raise ConfigError(f"{where}: expected true or false, got {value!r}.")
    if tp is str and not isinstance(value, str):
        raise ConfigError(f"{where}: expected a string, got {value!r}.")
    return value


def from_dict(cls: type[T], data: Mapping[str, Any] | None, where: str = "config") -> T:
    """Build the frozen dataclass ``cls`` from ``data``.

    Unknown keys raise :class:`ConfigError` naming the key, ``where`` it was found, the closest valid key and the full
    list of valid keys. Nested dataclass fields accept nested mappings. Missing keys take the dataclass defaults.

    >>> @dataclasses.dataclass(frozen=True)
    ... class C:
    ...     lr: float = 1e-3
    >>> from_dict(C, {"lr": "2e-3"}).lr
    0.002
    >>> from_dict(C, {"lrr": 1}, where="parameters_distill.yml:grpo")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    rl_distill.typed_config.ConfigError: parameters_distill.yml:grpo: unknown key 'lrr'. Did you mean 'lr'? ...
    """
    if data is None:
        data = {}
    if not isinstance(data, Mapping):
        raise ConfigError(f"{where}: expected a mapping of keys for {cls.__name__}, got {type(data).__name__}.")
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}
    hints = typing.get_type_hints(cls)
    unknown = [k for k in data if k not in fields]
    if unknown:
        key = unknown[0]
        raise ConfigError(
            f"{where}: unknown key '{key}'.{_suggest(str(key), list(fields))} Valid keys: {', '.join(fields)}."
        )
    kwargs = {k: _coerce(v, hints.get(k, Any), f"{where}.{k}") for k, v in data.items()}
    try:
        return cls(**kwargs)
    except ConfigError as exc:
        if str(exc).startswith(where):
            raise
        raise ConfigError(f"{where}: {exc}") from exc
    except TypeError as exc:  # e.g. a required field missing
        raise ConfigError(f"{where}: {exc}") from exc


def to_dict(cfg: Any) -> dict[str, Any]:
    """Flat-ish dict of a (nested) config dataclass, for logging as MLflow params."""
    return dataclasses.asdict(cfg)


def check_range(name: str, value: float, lo: float | None = None, hi: float | None = None, *,
                lo_open: bool = False, hi_open: bool = False) -> None:
    """Raise :class:`ConfigError` when ``value`` is outside [lo, hi] (or the open variants), naming both.

    NaN is outside every range (every comparison with it is False, so it would otherwise pass), and +-inf is refused
    too: no config value of this project is meant to be infinite (a missing bound is written as ``null``).
    """
    if isinstance(value, float) and value != value:
        raise ConfigError(f"{name}={value!r} is not a number; give a finite value.")
    if isinstance(value, float) and math.isinf(value):
        raise ConfigError(f"{name}={value!r} is not finite; give a finite value.")
    bad = (lo is not None and (value <= lo if lo_open else value < lo)) or (
        hi is not None and (value >= hi if hi_open else value > hi))
    if bad:
        left = "(" if lo_open or lo is None else "["
        right = ")" if hi_open or hi is None else "]"
        lo_s = "-inf" if lo is None else lo
        hi_s = "inf" if hi is None else hi
        raise ConfigError(f"{name}={value!r} is out of range; valid range is {left}{lo_s}, {hi_s}{right}.")


def check_choice(name: str, value: str, valid: typing.Iterable[str]) -> None:
    """Raise :class:`ConfigError` when ``value`` is not one of ``valid``, listing them."""
    valid = list(valid)
    if value not in valid:
        raise ConfigError(f"{name}={value!r} is not valid.{_suggest(str(value), valid)} Valid: {', '.join(valid)}.")
