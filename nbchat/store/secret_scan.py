"""Find what looks like a leaked credential in text, JSON and whole notebooks, in linear time.

What counts (only where it is and what kind is ever reported, never the secret itself):

- an OpenAI-style key: ``sk-`` at the start of a word, then 20+ key characters (letters, digits,
  ``_``, ``-``) with a digit among them, so ``risk-assessment-framework`` stays prose;
- ``Bearer``, whitespace, then a token of 20+ characters;
- ``Authorization``, ``:`` or ``=``, an optional scheme (``Bearer``, ``Basic``, ``Token``), then
  a token of 16+ characters;
- a name ending in ``api_key``, ``api-key`` or ``apikey``, ``:`` or ``=``, then a key of 20+ key
  characters with a digit (quotes around the name and the value are allowed, as in code or JSON);
- a JSON field named like ``authorization``, ``x-api-key`` or ``api_key`` whose string holds 8+
  token characters in a row (``"<your key>"`` and ``"********"`` do not).

Why no regular expression spells these patterns: ``sk-(?=[\\w-]*\\d)[\\w-]{20,}`` rescans the
rest of a run for every ``sk-`` in it, so ``"sk-" * 40000`` took 21-40 s, and ``authorization:``
followed by 40,000 spaces 17-20 s. Here the text is cut once into runs of token characters (a
single character class, which cannot backtrack); each run is judged alone and with the one or two
runs before it and the gaps between them, so every character is looked at a bounded number of times.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from nbchat.store.record import RECORD_MIME_PATTERN

__all__ = [
    "API_KEY",
    "AUTHORIZATION",
    "BEARER",
    "FIELD",
    "SK_KEY",
    "Finding",
    "find_secrets",
    "is_credential_field",
    "scan_cell",
    "scan_json",
    "scan_notebook",
    "scan_notebook_fields",
    "text_secret",
]

# The kinds of finding, as `verify` names them.
SK_KEY = "an sk- key"
BEARER = "a bearer token"
AUTHORIZATION = "an Authorization header"
API_KEY = "an api_key value"
FIELD = "a credential field"

_RUN = re.compile(r"[A-Za-z0-9_.~+/-]+")  # RFC 6750 token characters
_KEY_BODY = re.compile(r"[A-Za-z0-9_-]*")
_DIGIT = re.compile(r"[0-9]")
_NAME_MAX = 64  # longer runs are never a header or variable name: not even lower-cased
_KEY_SUFFIXES = ("api_key", "api-key", "apikey")
_FIELDS = frozenset({"authorization", "proxy_authorization", "x_api_key", "api_key", "apikey"})
_HINTS = ("bearer", "authorization", "key")  # one of these (or "sk-") is in every finding


@dataclass(frozen=True)
class Finding:
    """A place that seems to hold a credential (``cell 3, output 1, text/plain``) and its kind."""

    place: str
    kind: str


# -- text ------------------------------------------------------------------------------------------


def text_secret(text: str) -> str | None:
    """The kind of credential ``text`` seems to hold (e.g. ``"a bearer token"``), or None."""
    has_sk = "sk-" in text
    if not has_sk:
        lower = text.lower()
        if not any(hint in lower for hint in _HINTS):
            return None
    # The two runs before this one: (start, end, role). Most runs are judged by two cheap tests.
    previous: _Run = (0, 0, None)
    earlier: _Run = (0, 0, None)
    for run in _RUN.finditer(text):
        start, end = run.span()
        if has_sk and text.find("sk-", start, end) != -1 and _has_sk_key(text, start, end):
            return SK_KEY
        if previous[2] is not None:
            kind = _after_name(text, start, end, previous, earlier)
            if kind:
                return kind
        role = _role(text, start, end) if text[end - 1] in _ROLE_ENDINGS else None
        previous, earlier = (start, end, role), previous
    return None


_Run = tuple[int, int, "str | None"]  # a run's start, end, and what it can introduce
_ROLE_ENDINGS = frozenset("rcnyRCNY")  # the last letters of bearer, basic, token, api_key...
_ROLE_TAILS = frozenset({"rer", "sic", "ken", "ion", "key"})  # ... and their last three


def _role(text: str, start: int, end: int) -> str | None:
    """What a run can introduce: ``bearer``, ``scheme``, ``authorization``, ``api_key`` or None."""
    if not 5 <= end - start <= _NAME_MAX or text[end - 3 : end].lower() not in _ROLE_TAILS:
        return None
    name = text[start:end].lower()
    if name == "bearer":
        return "bearer"
    if name in ("basic", "token"):
        return "scheme"
    if _named(name, ("authorization",)):
        return "authorization"
    return "api_key" if _named(name, _KEY_SUFFIXES) else None


def _named(name: str, suffixes: tuple[str, ...]) -> bool:
    """``name`` is one of ``suffixes``, or ends in one after a separator (``x-api-key``)."""
    for suffix in suffixes:
        if name.endswith(suffix):
            rest = len(name) - len(suffix)
            if rest == 0 or not name[rest - 1].isalnum():
                return True
    return False


def _after_name(text: str, start: int, end: int, previous: _Run, earlier: _Run) -> str | None:
    """The kind of credential the run ``text[start:end]`` is, after a run with a role."""
    length = end - start
    gap = text[previous[1] : start]
    role = previous[2]
    if role == "bearer" and length >= 20 and gap.isspace():
        return BEARER
    if role == "authorization" and length >= 16 and _is_assignment(gap):
        return AUTHORIZATION if _role(text, start, end) is None else None  # not a scheme
    if role == "api_key" and _is_assignment(gap) and _is_key(text, start, end):
        return API_KEY
    after_scheme = role in ("bearer", "scheme") and earlier[2] == "authorization"
    if after_scheme and length >= 16 and gap.isspace():
        return AUTHORIZATION if _is_assignment(text[earlier[1] : previous[0]]) else None
    return None


def _is_assignment(gap: str) -> bool:
    """``:`` or ``=``, with whitespace and quotes around it allowed (``": "``, `` = '``)."""
    return gap.strip(" \t\r\n\"'") in (":", "=")


def _has_sk_key(text: str, start: int, end: int) -> bool:
    """Whether the run ``text[start:end]`` holds ``sk-`` at a word start followed by a key."""
    found = text.find("sk-", start, end)
    while found != -1:
        if found == start or not text[found - 1].isalnum():
            if _is_key(text, found + 3, end):
                return True
            # A later "sk-" inside this key body has a shorter body with fewer digits: skip it.
            body = _KEY_BODY.match(text, found + 3, end)
            found = text.find("sk-", max(body.end() if body else 0, found + 1), end)
        else:
            found = text.find("sk-", found + 1, end)
    return False


def _is_key(text: str, start: int, end: int) -> bool:
    """Whether 20+ key characters with a digit among them start at ``start``."""
    body = _KEY_BODY.match(text, start, end)
    return (
        body is not None
        and body.end() - start >= 20
        and bool(_DIGIT.search(text, start, body.end()))
    )


# -- JSON ------------------------------------------------------------------------------------------


def is_credential_field(name: str) -> bool:
    """Whether a JSON field of this name holds a credential (``Authorization``, ``x-api-key``)."""
    if len(name) > _NAME_MAX:
        return False
    name = name.lower().replace("-", "_")
    return name in _FIELDS or name.endswith("_api_key")


def _field_holds_secret(value: str) -> bool:
    return any(run.end() - run.start() >= 8 for run in _RUN.finditer(value))


# A path into a JSON value, built only when it is reported: (parent, field name or list index).
_Path = tuple[Any, "str | int"]


def _render(path: _Path | None) -> str:
    parts: list[str | int] = []
    while path is not None:
        path, part = path
        parts.append(part)
    pieces = [f"[{part}]" if isinstance(part, int) else f".{part}" for part in reversed(parts)]
    return "".join(pieces).removeprefix(".")


def scan_json(value: Any) -> Iterator[tuple[str, str]]:
    """(path, kind) for every string of a JSON value that looks like a credential.

    Paths read like ``request.messages[0].content`` ("" is ``value`` itself). A field name that
    itself looks like a credential is reported at its object and shown as ``(name)``.
    """
    stack: list[tuple[Any, _Path | None, str | None]] = [(value, None, None)]
    while stack:  # not recursive: a deeply nested value cannot exhaust the stack
        item, path, found = stack.pop()
        if found:
            yield _render(path), found
        elif isinstance(item, str):
            kind = text_secret(item)
            if kind:
                yield _render(path), kind
        elif isinstance(item, Mapping):
            children: list[tuple[Any, _Path | None, str | None]] = []
            for name, child in item.items():
                name = str(name)
                name_kind = text_secret(name)
                if name_kind:
                    children.append((None, path, name_kind))
                here = (path, "(name)" if name_kind else name)
                if (
                    isinstance(child, str)
                    and is_credential_field(name)
                    and _field_holds_secret(child)
                ):
                    children.append((None, here, FIELD))
                else:
                    children.append((child, here, None))
            stack.extend(reversed(children))
        elif isinstance(item, list):
            stack.extend(
                (child, (path, index), None) for index, child in reversed(list(enumerate(item)))
            )


def find_secrets(value: Any, where: str = "") -> Iterator[str]:
    """Where in a JSON value something looks like a credential (paths, never the secret)."""
    for path, _ in scan_json(value):
        if not path:
            yield where or "record"
        elif not where:
            yield path
        else:
            yield where + path if path.startswith("[") else f"{where}.{path}"


# -- notebooks -------------------------------------------------------------------------------------


def _findings(value: Any, label: str) -> Iterator[Finding]:
    for path, kind in scan_json(value):
        yield Finding(f"{label} at {path}" if path else label, kind)


def _part(where: str, name: Any) -> tuple[str, Finding | None]:
    """The label of a named part of ``where``, and a finding when the name itself is suspect."""
    kind = text_secret(str(name))
    label = f"{where}, (name)" if kind else f"{where}, {name}"
    return label, Finding(label, kind) if kind else None


def scan_notebook(notebook: Mapping[str, Any]) -> Iterator[Finding]:
    """Every place of a parsed notebook that seems to hold a credential, in file order: its
    metadata (`scan_notebook_fields`), then every cell (`scan_cell`)."""
    yield from scan_notebook_fields(notebook)
    cells = notebook.get("cells")
    for index, cell in enumerate(cells if isinstance(cells, list) else []):
        yield from scan_cell(cell, index + 1)


def scan_notebook_fields(notebook: Mapping[str, Any]) -> Iterator[Finding]:
    """The places outside the cells (the notebook's metadata) that seem to hold a credential."""
    for name, value in notebook.items():
        if name == "cells" and isinstance(value, list):
            continue
        label, found = _part("notebook", name)
        if found:
            yield found
        yield from _findings(value, "notebook metadata" if name == "metadata" else label)


def scan_cell(cell: Any, number: int) -> Iterator[Finding]:
    """Every place of one cell that seems to hold a credential: its source, metadata, attachments
    and every output (stream text, error value and traceback, every value of display data and
    execute results, records included)."""
    where = f"cell {number}"
    if not isinstance(cell, Mapping):
        yield from _findings(cell, where)
        return
    # The source first and the outputs last, whatever order the file has its fields in.
    order = {"source": 0, "outputs": 2}
    for name, value in sorted(cell.items(), key=lambda item: order.get(item[0], 1)):
        if name == "outputs" and isinstance(value, list):
            for position, output in enumerate(value):
                yield from _scan_output(output, f"{where}, output {position + 1}")
            continue
        label, found = _part(where, name)
        if found:
            yield found
        yield from _findings(value, label)


def _scan_output(output: Any, where: str) -> Iterator[Finding]:
    if not isinstance(output, Mapping):
        yield from _findings(output, where)
        return
    stream = output.get("name") if output.get("output_type") == "stream" else None
    for name, value in output.items():
        if name == "data" and isinstance(value, Mapping):
            for mime, item in value.items():
                label, found = _part(where, mime)
                if found:
                    yield found
                elif RECORD_MIME_PATTERN.match(str(mime)):
                    label = f"{where}, nbchat record"
                yield from _findings(item, label)
            continue
        label, found = _part(where, name)
        if found:
            yield found
        elif name == "text" and stream in ("stdout", "stderr"):
            label = f"{where}, {stream}"
        yield from _findings(value, label)
