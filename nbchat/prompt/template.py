"""The cell of ``%%chat --map NAME``: a template filled in once per item.

``{item}`` is the element; ``{item[field]}``, ``{item["field"]}``, ``{item[0]}`` and
``{item.field}`` reach into it (a dict, a DataFrame row, a sequence, an object's attribute;
``.field`` also reads a dict's key), chained as deep as needed. Every other placeholder (``{name}``,
``{In[n]}``) is filled in once for all items, as in any ``%%chat`` cell (`prompt.interpolate`).
Nothing is evaluated: a path is a sequence of keys, indices and public attribute names.

A filled-in template is kept as its text pieces and the item's fills, so a batch record stores
the pieces once and per item only the fills (`nbchat.store.batch_record`).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from nbchat.errors import ConfigError
from nbchat.prompt.figures import instance_of
from nbchat.prompt.interpolate import interpolate
from nbchat.prompt.values import render_value
from nbchat.wire.images import ImagePart
from nbchat.wire.messages import ItemTemplate

__all__ = ["ItemError", "MapTemplate", "item_rows"]

_ITEM = re.compile(r"(?<!\{)\{item((?:\[[^\[\]{}]*\]|\.[A-Za-z_][A-Za-z0-9_]*)*)\}(?!\})")
_STEP = re.compile(r"\[([^\[\]{}]*)\]|\.([A-Za-z_][A-Za-z0-9_]*)")


class ItemError(ValueError):
    """An item the template cannot be filled in with (a missing field); that item fails."""


@dataclass(frozen=True)
class MapTemplate(ItemTemplate):
    """A cell's text split around its item placeholders, the rest already filled in."""

    notes: tuple[str, ...] = ()  # what filling in the other placeholders left out
    filled: tuple[tuple[str, str], ...] = ()  # (placeholder, text) of the other values

    @classmethod
    def compile(cls, cell: str, namespace: Mapping[str, Any], budget: int) -> MapTemplate:
        """The template of ``cell``; `ConfigError` when it has no ``{item}`` or holds images
        outside the items. The cell is split at its item placeholders first, so a value filled
        in elsewhere (code that mentions ``{item}``) is never read as one."""
        visible = {name: value for name, value in namespace.items() if name != "item"}
        pieces = _ITEM.split(cell)
        paths = tuple(pieces[1::2])
        if not paths:
            raise ConfigError("--map: the cell has no {item}: write where each item goes")
        for path in paths:
            _steps(path)  # a malformed path fails the cell, not every item
        literals: list[str] = []
        notes: list[str] = []
        filled: list[tuple[str, str]] = []
        for literal in pieces[0::2]:
            prompt = interpolate(literal, visible, budget=budget)
            if prompt.images:
                raise ConfigError(
                    "--map: an image in the template would be sent with every item; put it in "
                    "a %%chat cell of its own, or make the items the images"
                )
            literals.append(prompt.text)
            notes += prompt.notes
            filled += prompt.fills
        literals[0], literals[-1] = literals[0].lstrip(), literals[-1].rstrip()
        return cls(tuple(literals), paths, tuple(notes), tuple(filled))

    def fills(
        self, item: Any, budget: int, label: str
    ) -> tuple[list[str | ImagePart], tuple[str, ...]]:
        """What each placeholder becomes for ``item``, and what was left out of it; `ItemError`
        when a path does not lead anywhere, `ConfigError` when a value is over the budget."""
        fills: list[str | ImagePart] = []
        notes: tuple[str, ...] = ()
        for path in self.paths:
            value = _follow(item, path, label)
            rendered = render_value(value, budget, label=f"{label}{path}")
            fills.append(rendered.image or rendered.text or "")
            notes += rendered.notes
        return fills, notes


def _steps(path: str) -> list[tuple[str, Any]]:
    """``[name][0].attr`` as [("key", "name"), ("key", 0), ("attr", "attr")]."""
    steps: list[tuple[str, Any]] = []
    for match in _STEP.finditer(path):
        key, attribute = match.groups()
        if attribute is not None:
            if attribute.startswith("_"):
                raise ConfigError(f"--map: {{item{path}}} reads a private attribute")
            steps.append(("attr", attribute))
            continue
        key = key.strip()
        if len(key) >= 2 and key[0] == key[-1] and key[0] in "'\"":
            steps.append(("key", key[1:-1]))
        elif re.fullmatch(r"-?[0-9]+", key):
            steps.append(("key", int(key)))
        elif key:
            steps.append(("key", key))
        else:
            raise ConfigError(f"--map: {{item{path}}} has an empty [] ")
    return steps


def _follow(item: Any, path: str, label: str) -> Any:
    value = item
    for kind, step in _steps(path):
        try:
            if kind == "attr" and not isinstance(value, Mapping):
                value = getattr(value, step)
            else:
                value = value[step]
        except (KeyError, IndexError, TypeError, AttributeError):
            what = f".{step}" if kind == "attr" else f"[{step!r}]"
            raise ItemError(f"{label} has no {what}") from None
    return value


def item_rows(value: Any, name: str) -> tuple[list[Any], Any]:
    """The items of ``--map NAME``, and the index of a pandas Series or DataFrame (else None):
    a list, tuple or range as is, a Series' values, a DataFrame's rows as dicts."""
    if instance_of(value, "pandas.DataFrame"):
        return [dict(zip(value.columns, row, strict=True)) for row in value.itertuples(False)], (
            value.index
        )
    if instance_of(value, "pandas.Series"):
        return list(value), value.index
    if instance_of(value, "polars.DataFrame"):
        return list(value.iter_rows(named=True)), None
    if isinstance(value, list | tuple | range) or instance_of(value, "polars.Series"):
        return list(value), None
    if isinstance(value, str | bytes | Mapping):
        raise ConfigError(f"--map {name}: a {type(value).__name__} is not a list of items")
    raise ConfigError(
        f"--map {name}: {type(value).__name__} is not a list, tuple, range, pandas Series or "
        "DataFrame"
    )
