"""Type checks of the HAMBox config dataclasses' fields against their defaults (JSON configs, CLI options)."""

from __future__ import annotations

import dataclasses
import json
from typing import Any

import numpy as np

from facebench.errors import is_finite_number


def _is_integer(value: Any) -> bool:
    return isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_))


def config_type_problem(name: str, value: Any, default: Any, any_length: bool = False) -> str | None:
    """Why a config field's value does not have its default's type (None when it does): booleans, integers,
    finite numbers, strings, sequences of numbers (of the default's length unless `any_length`); a default of
    None allows null or an integer."""
    if isinstance(default, bool):
        ok, kind = isinstance(value, (bool, np.bool_)), "true or false"
    elif default is None:
        ok, kind = value is None or _is_integer(value), "null or an integer"
    elif isinstance(default, int):
        ok, kind = _is_integer(value), "an integer"
    elif isinstance(default, float):
        ok, kind = is_finite_number(value), "a finite number"
    elif isinstance(default, str):
        ok, kind = isinstance(value, str), "a string"
    elif isinstance(default, tuple):
        items_ok = _is_integer if default and all(_is_integer(v) for v in default) else is_finite_number
        ok = isinstance(value, (tuple, list)) and all(items_ok(v) for v in value)
        kind = f"a list of {'integers' if items_ok is _is_integer else 'finite numbers'}"
        if ok and not any_length and len(value) != len(default):
            ok, kind = False, f"{kind} of length {len(default)}"
    else:
        return None
    return None if ok else f"'{name}' must be {kind}, got {_shown(value)}"[:160]


def _shown(value: Any) -> str:
    """A value as the JSON config would spell it (true, null, "x"), else its repr."""
    try:
        return json.dumps(value)
    except (TypeError, ValueError):
        return repr(value)


def check_field_types(config: Any) -> None:
    """ValueError naming the first field of a config dataclass whose value has the wrong type."""
    for item in dataclasses.fields(config):
        # Annotations are strings here (postponed evaluation): "tuple[int, ...]" marks a list of any length.
        problem = config_type_problem(item.name, getattr(config, item.name), item.default, "..." in str(item.type))
        if problem:
            raise ValueError(problem)
