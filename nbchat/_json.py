"""Type checks for JSON read back from a notebook, naming the first field that is wrong.

Anyone can edit a notebook file. A record whose fields have the wrong JSON type is reported
(``response.usage.prompt_tokens is a string, not an integer``) and skipped, never a traceback.
"""

from __future__ import annotations

from typing import Any

__all__ = ["json_kind", "need", "required"]

_KIND_NAMES: tuple[tuple[type | tuple[type, ...], str], ...] = (
    (bool, "a boolean"),  # before int: True is an int to Python, not to JSON
    (int, "an integer"),
    (float, "a number"),
    (str, "a string"),
    (list, "a list"),
    (dict, "an object"),
)
_EXPECTED: dict[type | tuple[type, ...], str] = {
    str: "a string",
    int: "an integer",
    bool: "a boolean",
    dict: "an object",
    list: "a list",
    (int, float): "a number",
    (str, list): "a string or a list",
}


def json_kind(value: Any) -> str:
    """``a string``, ``an integer``, ``null``...: a value's JSON type, for messages."""
    if value is None:
        return "null"
    for kinds, name in _KIND_NAMES:
        if isinstance(value, kinds):
            return name
    return f"a {type(value).__name__}"


def need(value: Any, path: str, kinds: type | tuple[type, ...], *, null: bool = False) -> None:
    """Raise `ValueError` unless ``value`` is of ``kinds`` (or None when ``null``); a boolean
    is not a number here, as in JSON."""
    if value is None and null:
        return
    wrong_bool = isinstance(value, bool) and not (kinds is bool or kinds == (bool,))
    if wrong_bool or not isinstance(value, kinds):
        expected = _EXPECTED[kinds] + (" or null" if null else "")
        raise ValueError(f"{path} is {json_kind(value)}, not {expected}")


def required(obj: dict[str, Any], name: str, path: str) -> Any:
    """A field of ``obj`` (found at ``path``) that must be there."""
    if name not in obj:
        raise ValueError(f"{path}{'.' if path else ''}{name} is missing")
    return obj[name]
