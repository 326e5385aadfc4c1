"""Keep secrets out of what nbchat shows: error messages, error bodies and displayed URLs.

A `Redactor` is built from the secrets of one request (the API key as read from its variable,
and the query values of the base URL, which may hold a key too). Every message built from
server text goes through `Redactor.clip`: redacted first, then put on one line and clipped, so
a clip can never cut a key in half and leave the first half standing.

`mask_url` is for showing a URL; `request_url` and `split_query` are for using one whose query
string must stay on every request but never be stored or shown in the clear.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from typing import Any
from urllib.parse import unquote_plus, urlsplit, urlunsplit

from nbchat._text import clip, one_line

__all__ = ["MASK", "MIN_SECRET", "Redactor", "mask_url", "request_url", "runs_of", "split_query"]

MASK = "***"
# Shorter values are not secret-grade (an api-version "1", a flag "true"), and masking them
# would garble every message that happens to contain them.
MIN_SECRET = 6
_PIECED_FROM = 16  # a query value this long is masked even in part, like the key


class Redactor:
    """Replaces the secrets of one request with ``***`` wherever they appear.

    Each secret is also matched in its ``repr``- and JSON-escaped forms (how a server or an
    exception quotes a string). For the key, any run of `MIN_SECRET` or more of its characters
    is masked as well, so a server that echoes part of the key (``sk-proj-abc...wxyz``) or
    wraps it does not show that part either.
    """

    __slots__ = ("_fragments", "_runs", "_secrets")

    def __init__(self, key: str = "", others: Iterable[str] = ()) -> None:
        keys = _forms(key)
        other_forms = {f for s in others for f in _forms(s)}
        self._secrets = sorted(keys | other_forms, key=len, reverse=True)
        # Pieces are masked for the key, and for other values long enough to be keys (not an
        # api-version date, whose pieces would garble every date in an answer).
        pieced = keys | {form for form in other_forms if len(form) >= _PIECED_FROM}
        self._fragments = {
            form[i : i + MIN_SECRET] for form in pieced for i in range(len(form) - MIN_SECRET + 1)
        }
        self._runs = runs_of("".join(self._fragments), MIN_SECRET)

    @classmethod
    def for_request(cls, key: str, base_url: str) -> Redactor:
        """The redactor of a request sent with ``key`` (as read, unstripped) to ``base_url``."""
        return cls(key, _query_values(split_query(base_url)[1]))

    def __bool__(self) -> bool:
        return bool(self._secrets)

    def text(self, text: str) -> str:
        """``text`` with every secret replaced by ``***``."""
        if not self._secrets:
            return text
        for secret in self._secrets:
            if secret in text:
                text = text.replace(secret, MASK)
        return self._mask_fragments(text) if self._fragments else text

    def clip(self, text: str, limit: int = 200) -> str:
        """Server text made fit for a message: redacted, then put on one line (controls such
        as a terminal's escape neutralised), then clipped to ``limit`` columns."""
        return clip(one_line(self.text(text)), limit)

    def json(self, value: Any) -> Any:
        """A copy of a JSON value with every string in it (object keys too) redacted."""
        if isinstance(value, str):
            return self.text(value)
        if isinstance(value, dict):
            return {self.text(str(k)): self.json(v) for k, v in value.items()}
        if isinstance(value, list | tuple):
            return [self.json(item) for item in value]
        return value

    def _mask_fragments(self, text: str) -> str:
        """Mask every run of characters covered by some `MIN_SECRET`-long piece of the key.
        A piece can only lie within a run of the key's characters (`runs_of`): only those are
        scanned, a window at a time."""
        fragments, size = self._fragments, MIN_SECRET
        covered_to = -1
        spans: list[list[int]] = []
        for run in self._runs.finditer(text) if self._runs is not None else ():
            start, found = run.start(), run.group()
            for i in range(start, start + len(found) - size + 1):
                if found[i - start : i - start + size] in fragments:
                    if spans and i <= covered_to:
                        spans[-1][1] = i + size
                    else:
                        spans.append([i, i + size])
                    covered_to = i + size
        for start, end in reversed(spans):
            text = text[:start] + MASK + text[end:]
        return text


def runs_of(characters: str, least: int) -> re.Pattern[str] | None:
    """What finds the runs of at least ``least`` of ``characters`` in a text (None when there
    are none): any piece of a secret lies within such a run of the secret's characters."""
    if not characters:
        return None
    return re.compile(f"[{re.escape(''.join(sorted(set(characters))))}]{{{least},}}")


def _forms(secret: str) -> set[str]:
    """A secret as set, stripped, and as quoted by ``repr`` and JSON; short ones dropped."""
    forms: set[str] = set()
    for value in {secret, secret.strip()}:
        forms |= {value, repr(value)[1:-1], json.dumps(value)[1:-1]}
    return {form for form in forms if len(form) >= MIN_SECRET}


def _query_values(query: str) -> list[str]:
    """Each value of a query string, as written and decoded (a bare ``?token`` counts)."""
    values: list[str] = []
    for part in query.split("&"):
        name, equals, value = part.partition("=")
        raw = value if equals else name
        values += [raw, unquote_plus(raw)]
    return values


def split_query(base_url: str) -> tuple[str, str]:
    """``(base URL without query or fragment, raw query string)``; the query may be ``""``."""
    base, _, query = base_url.partition("#")[0].partition("?")
    return base, query


def request_url(base_url: str, path: str) -> str:
    """``path`` joined to the base URL's path, the base URL's query kept after it.

    ``https://h/openai/v1?api-version=X`` + ``/chat/completions`` gives
    ``https://h/openai/v1/chat/completions?api-version=X``.
    """
    base, query = split_query(base_url)
    joined = base.rstrip("/") + path
    return f"{joined}?{query}" if query else joined


def mask_url(url: str) -> str:
    """A URL fit to show: user info and every query value masked, fragment dropped.

    ``https://user:pw@h/v1?api-version=2024&key=abc`` gives
    ``https://***@h/v1?api-version=***&key=***``.
    """
    try:
        parts = urlsplit(url)
    except ValueError:  # e.g. an unbalanced "[" in the host: show nothing of it
        return MASK
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return MASK  # not a URL: perhaps a key pasted in the wrong place
    netloc = parts.netloc
    if "@" in netloc:
        netloc = MASK + "@" + netloc.rpartition("@")[2]
    query = "&".join(_mask_pair(pair) for pair in parts.query.split("&")) if parts.query else ""
    return urlunsplit((parts.scheme, netloc, parts.path, query, ""))


def _mask_pair(pair: str) -> str:
    name, equals, _ = pair.partition("=")
    if equals:
        return f"{name}={MASK}"
    return MASK if pair else ""
