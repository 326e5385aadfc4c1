"""Lone UTF-16 surrogates in a server's text: joined into the character they split, or replaced.

JSON escapes text as UTF-16, and some servers (JavaScript proxies) cut a stream between the two
halves of a character outside the Basic Multilingual Plane: one chunk ends with ``"\\ud83d"``,
the next starts with ``"\\ude00"``. Each chunk is valid JSON, and Python decodes each half as a
lone surrogate, which no encoder accepts: the first display, file write or kernel message that
encodes it fails. Text is repaired where it enters nbchat: pairs are joined (also across
chunks and network reads), and a half that has no partner becomes U+FFFD.
"""

from __future__ import annotations

import re
from typing import Any

__all__ = ["SplitPairs", "repaired", "repaired_json"]

REPLACEMENT = "\ufffd"
_SURROGATE = re.compile("[\ud800-\udfff]")


def _is_high(char: str) -> bool:
    return "\ud800" <= char <= "\udbff"


def repaired(text: str) -> str:
    """``text`` with its surrogate pairs joined and lone surrogates replaced (the same object
    when it has none, which an ASCII text is known not to have at no cost)."""
    if text.isascii() or not _SURROGATE.search(text):
        return text
    return text.encode("utf-16-le", "surrogatepass").decode("utf-16-le", "replace")


def repaired_json(value: Any) -> Any:
    """A JSON value with every string in it `repaired` (the same object when nothing changed)."""
    if isinstance(value, str):
        return repaired(value)
    if isinstance(value, list):
        items = [repaired_json(item) for item in value]
        return value if all(a is b for a, b in zip(items, value, strict=True)) else items
    if isinstance(value, dict):
        pairs = {
            repaired(key) if isinstance(key, str) else key: repaired_json(item)
            for key, item in value.items()
        }
        same = all(pairs.get(key) is item for key, item in value.items())
        return value if same else pairs
    return value


class SplitPairs:
    """Live text, read by read: a high surrogate that ends one read waits for its partner at
    the start of the next (`take`); at the end, one still waiting is replaced (`flush`)."""

    __slots__ = ("_held",)

    def __init__(self) -> None:
        self._held = ""

    def take(self, text: str) -> str:
        """The repaired text of one read, holding back a trailing high surrogate."""
        if self._held:
            text, self._held = self._held + text, ""
        elif text.isascii() or not _SURROGATE.search(text):
            return text
        if text and _is_high(text[-1]):
            text, self._held = text[:-1], text[-1]
        return repaired(text)

    def flush(self) -> str:
        """What is still held, replaced (a pair that never completed)."""
        held, self._held = self._held, ""
        return REPLACEMENT if held else ""
