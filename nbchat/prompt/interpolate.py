"""A cell body with ``{name}``, ``{In[n]}`` and ``{Out[n]}`` filled in from the user namespace.

Three placeholders are filled in; every other brace (code, JSON, dict literals, ``{{templates}}``,
unknown names, any other expression) is left exactly as written, and filling in never raises
except for a value that cannot be sent at all (`ConfigError`, see `nbchat.prompt.values`):

- ``{name}``: an identifier defined in the namespace, rendered by
  `nbchat.prompt.values.render_value` (a str as written, a DataFrame as a table, a figure as an
  image, …). An undefined name is left as written (braces around a word are common in code and
  templates), with a note, since it is more often a typo (``{dff}``) that would be paid for
  unnoticed. A value whose rendering fails (a broken ``__str__``) is left as written, with a
  note.
- ``{In[n]}``: the code of execution ``n`` of this session as it was typed (IPython's ``_iN``;
  its ``In`` list holds the code as run, a magic as the ``get_ipython()`` call, and is the
  fallback). Sent whole, as text, like any str.
- ``{Out[n]}``: the result of execution ``n``, from IPython's ``Out`` dict, rendered like any
  value.

``n`` counts as IPython's prompts do (``In [3]:``). A negative ``n`` counts back from the running
cell as Python indexing of ``In`` does: ``In[-1]`` is the running ``%%chat`` cell itself,
``In[-2]`` the cell run before it, and ``Out[-2]`` that cell's result. An execution that does not
exist, or has no result, leaves the placeholder as written and adds a note.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from nbchat.errors import ConfigError
from nbchat.prompt.values import DEFAULT_BUDGET, Rendered, render_value
from nbchat.wire.images import ImagePart

__all__ = ["Prompt", "interpolate"]

_NAME = r"[A-Za-z_][A-Za-z0-9_]*"
_PLACEHOLDER = re.compile(
    rf"(?<!\{{)\{{(?:(?P<name>{_NAME})|(?P<history>In|Out)\[(?P<number>-?[0-9]+)\])\}}(?!\}})"
)


@dataclass(frozen=True)
class Prompt:
    """A user message as text and images, in the order they appear in the cell."""

    pieces: tuple[str | ImagePart, ...]  # no empty str, no two str in a row
    notes: tuple[str, ...] = ()  # for people: what was left out, clipped, or not found
    fills: tuple[tuple[str, str], ...] = ()  # (placeholder, text) of each value filled in

    @property
    def images(self) -> tuple[ImagePart, ...]:
        """The images, in order."""
        return tuple(piece for piece in self.pieces if isinstance(piece, ImagePart))

    @property
    def text(self) -> str:
        """The prompt for people: the text, each image as ``[PNG image, 640×480, 45 kB]``."""
        return "".join(
            piece if isinstance(piece, str) else f"[{piece.summary}]" for piece in self.pieces
        )

    @property
    def content(self) -> str | list[dict[str, Any]]:
        """The user message's ``content``: the text, or a list of parts when there is an image."""
        if not self.images:
            return self.text
        return [
            {"type": "text", "text": piece} if isinstance(piece, str) else piece.part()
            for piece in self.pieces
        ]

    def strip(self) -> Prompt:
        """The prompt without whitespace at its start and end."""
        pieces = list(self.pieces)
        if pieces and isinstance(pieces[0], str):
            pieces[0] = pieces[0].lstrip()
        if pieces and isinstance(pieces[-1], str):
            pieces[-1] = pieces[-1].rstrip()
        return Prompt(_joined(pieces), self.notes, self.fills)


def interpolate(text: str, namespace: Mapping[str, Any], *, budget: int = DEFAULT_BUDGET) -> Prompt:
    """``text`` with its placeholders filled in; ``budget`` characters per rendered value."""
    pieces: list[str | ImagePart] = []
    notes: list[str] = []
    fills: list[tuple[str, str]] = []
    end = 0
    for match in _PLACEHOLDER.finditer(text):
        rendered = _fill(match, namespace, budget, notes)
        if rendered is None:
            continue
        pieces.append(text[end : match.start()])
        pieces.append(rendered.image or rendered.text or "")
        notes.extend(rendered.notes)
        if rendered.text:
            fills.append((match.group(0)[1:-1], rendered.text))
        end = match.end()
    pieces.append(text[end:])
    return Prompt(_joined(pieces), tuple(notes), tuple(fills))


def _fill(
    match: re.Match[str], namespace: Mapping[str, Any], budget: int, notes: list[str]
) -> Rendered | None:
    """The placeholder's rendering, or None to leave it as written (with a note, if useful)."""
    if match["name"] is not None:
        if match["name"] not in namespace:
            note = _undefined(match["name"], namespace)
            if note not in notes:
                notes.append(note)
            return None
        label, value = match["name"], namespace[match["name"]]
    else:
        label = match.group(0)[1:-1]
        found = _history(match["history"], int(match["number"]), namespace)
        if isinstance(found, str):
            notes.append(f"{label}: {found}; left as written")
            return None
        (value,) = found
    try:
        return render_value(value, budget, label=label)
    except ConfigError:
        raise
    except Exception as error:  # a broken __str__ or rich repr must not break the cell
        notes.append(f"{label}: could not be rendered ({type(error).__name__}); left as written")
        return None


def _undefined(name: str, namespace: Mapping[str, Any]) -> str:
    """The note for a ``{name}`` that is not defined, with the likeliest name meant."""
    public = [defined for defined in namespace if not defined.startswith("_")]
    close = difflib.get_close_matches(name, public, n=1)
    meant = f" (did you mean {{{close[0]}}}?)" if close else ""
    return f"{{{name}}}: not defined, sent as written{meant}"


def _history(kind: str, number: int, namespace: Mapping[str, Any]) -> tuple[object] | str:
    """``(value,)`` of ``In[number]`` or ``Out[number]``, or why there is none."""
    inputs = namespace.get("In")
    if not isinstance(inputs, Sequence) or isinstance(inputs, str):
        if kind == "In" or number < 0:  # counting back needs In's length
            return "no IPython history (In) in this namespace"
        inputs = None
    execution = number if number >= 0 else len(inputs) + number
    # In[0] is IPython's empty placeholder: executions count from 1.
    if execution < 1 or (inputs is not None and execution >= len(inputs)):
        return "no such execution in this session"
    if kind == "In":
        # IPython's In holds the code as run (a magic as its get_ipython() call); _iN, as typed.
        typed = namespace.get(f"_i{execution}")
        return (typed if isinstance(typed, str) else inputs[execution],)
    outputs = namespace.get("Out")
    if not isinstance(outputs, Mapping):
        return "no IPython history (Out) in this namespace"
    if execution not in outputs:
        return f"execution {execution} has no result"
    return (outputs[execution],)


def _joined(pieces: list[str | ImagePart]) -> tuple[str | ImagePart, ...]:
    """``pieces`` with adjacent text merged and empty text dropped."""
    joined: list[str | ImagePart] = []
    for piece in pieces:
        if isinstance(piece, str) and joined and isinstance(joined[-1], str):
            joined[-1] += piece
        elif piece != "":
            joined.append(piece)
    return tuple(joined)
