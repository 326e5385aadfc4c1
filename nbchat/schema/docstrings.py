"""A docstring read for its parts: the summary and each parameter's description.

`parse_docstring` gives the first paragraph on one line, and the parameters documented in any of
the three common styles: Google (an ``Args:`` section), NumPy (``Parameters`` underlined with
dashes) or reST (``:param x:``). A tool's description and its parameters' come from here.
"""

from __future__ import annotations

import inspect
import re

from nbchat._text import one_line

__all__ = ["parse_docstring"]

_GOOGLE = re.compile(
    r"^(Args|Arguments|Parameters|Params|Keyword Args|Keyword Arguments|Other Parameters):\s*$"
)
_GOOGLE_ITEM = re.compile(r"^\*{0,2}(\w+)\s*(?:\([^)]*\))?\s*:(.*)$")
_NUMPY_RULE = re.compile(r"^\s*-{3,}\s*$")
_NUMPY_ITEM = re.compile(r"^(\*{0,2}\w+(?:\s*,\s*\*{0,2}\w+)*)\s*(?::.*)?$")
_REST = re.compile(
    r"^:(?:param|parameter|arg|argument|key|keyword)\s+(?:[^:]*\s)?\*{0,2}(\w+):(.*)$"
)
_REST_ANY = re.compile(r"^:\w+")


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip())


def _block(lines: list[str], start: int, base: int) -> list[str]:
    """The lines after ``start`` that are indented deeper than ``base`` (blank lines kept)."""
    block = []
    for line in lines[start + 1 :]:
        if line.strip() and _indent(line) <= base:
            break
        block.append(line)
    return block


def _items(block: list[str], header: re.Pattern[str]) -> dict[str, str]:
    """Entries at the block's first indent, each with its deeper-indented continuation."""
    texts: dict[str, list[str]] = {}
    names: list[str] = []
    level = min((_indent(line) for line in block if line.strip()), default=0)
    for line in block:
        match = header.match(line.strip()) if _indent(line) == level else None
        if match:
            names = [name.strip().lstrip("*") for name in match.group(1).split(",")]
            first = match.group(2) if header.groups > 1 else ""
            for name in names:
                texts[name] = [first or ""]
        elif names and line.strip():
            for name in names:
                texts[name].append(line.strip())
    return {
        name: one_line(" ".join(parts))
        for name, parts in texts.items()
        if one_line(" ".join(parts))
    }


def _numpy_section(lines: list[str], start: int) -> list[str]:
    """The lines of a NumPy section from ``start`` up to the next section's header (a line
    followed by a rule of dashes)."""
    end = start
    while end < len(lines) and not (end + 1 < len(lines) and _NUMPY_RULE.match(lines[end + 1])):
        end += 1
    return lines[start:end]


def _param_docs(lines: list[str]) -> dict[str, str]:
    docs: dict[str, str] = {}
    for index, line in enumerate(lines):
        stripped = line.strip()
        if _GOOGLE.match(stripped):
            docs.update(_items(_block(lines, index, _indent(line)), _GOOGLE_ITEM))
        elif stripped in ("Parameters", "Other Parameters") and index + 1 < len(lines):
            if _NUMPY_RULE.match(lines[index + 1]):
                docs.update(_items(_numpy_section(lines, index + 2), _NUMPY_ITEM))
        elif match := _REST.match(stripped):
            more = [ln.strip() for ln in _block(lines, index, _indent(line)) if ln.strip()]
            docs[match.group(1)] = one_line(" ".join([match.group(2), *more]))
    return docs


def parse_docstring(doc: str | None) -> tuple[str, dict[str, str]]:
    """The summary (first paragraph, on one line) and each documented parameter's description."""
    lines = inspect.cleandoc(doc or "").splitlines()
    if lines and _GOOGLE.match(lines[0].strip()):
        # cleandoc took the items' indent for the margin: give them back a level below the header
        lines = [lines[0], *("    " + line for line in lines[1:])]
    summary: list[str] = []
    for index, line in enumerate(lines):
        stripped = line.strip()
        section = _GOOGLE.match(stripped) or _REST_ANY.match(stripped)
        numpy = index + 1 < len(lines) and _NUMPY_RULE.match(lines[index + 1])
        if not stripped or section or numpy:
            break
        summary.append(stripped)
    return one_line(" ".join(summary)), _param_docs(lines)
