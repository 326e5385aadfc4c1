"""Plain text for people: one line, clipped to a width, counted, tabulated.

The one place the package squeezes, clips and aligns text, for the ``nbchat`` command and for
the tables of ``%chat``. Widths are terminal columns: an East Asian wide character counts two, a
combining mark none. Model text is untrusted input, so `one_line` and `printable` also neutralise
what a terminal would obey (control characters such as the escape that starts a colour or cursor
sequence, and the bidirectional overrides that reorder what is shown): they become ``�``.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping, Sequence

__all__ = [
    "CONTROLS",
    "ELLIPSIS",
    "clip",
    "display_width",
    "duration",
    "markdown_table",
    "one_line",
    "plural",
    "printable",
    "render_table",
]

ELLIPSIS = "…"
REPLACEMENT = "\ufffd"
# What a terminal obeys rather than shows: the C0 and C1 controls, DEL, and the bidirectional
# embeddings, overrides and isolates (they reorder the text around them).
CONTROLS = (*range(0x20), 0x7F, *range(0x80, 0xA0), *range(0x202A, 0x202F), *range(0x2066, 0x206A))
# A pattern, not str.translate: a 200 kB answer (nearly always without a control) is scanned in
# 0.2 ms, where translate's lookup per character took 11 ms.
_CONTROL = re.compile("[" + "".join(re.escape(chr(code)) for code in CONTROLS) + "]")
_CONTROL_IN_LINES = re.compile(
    "[" + "".join(re.escape(chr(code)) for code in CONTROLS if chr(code) not in "\n\t") + "]"
)


def one_line(text: str) -> str:
    """``text`` on one line: every run of whitespace becomes one space, controls become ``�``."""
    return _CONTROL.sub(REPLACEMENT, " ".join(text.split()))


def printable(text: str) -> str:
    """``text`` with its lines and tabs kept and every other control replaced by ``�``."""
    lines = text.replace("\r\n", "\n").replace("\r", "\n")
    return _CONTROL_IN_LINES.sub(REPLACEMENT, lines)


def _char_width(char: str) -> int:
    if unicodedata.combining(char) or unicodedata.category(char) in ("Mn", "Me", "Cf"):
        return 0
    return 2 if unicodedata.east_asian_width(char) in ("W", "F") else 1


def display_width(text: str) -> int:
    """The columns ``text`` takes in a terminal."""
    if text.isascii():
        return len(text)
    return sum(_char_width(char) for char in text)


def clip(text: str, width: int) -> str:
    """``text`` cut to ``width`` columns, ending in ``…`` when it was cut."""
    if display_width(text) <= width:
        return text
    if width <= 0:
        return ""
    room, kept = width - 1, 0  # one column for the ellipsis
    if text.isascii():
        kept = room
    else:
        used = 0
        for kept, char in enumerate(text):  # noqa: B007 - `kept` is the cut after the loop
            used += _char_width(char)
            if used > room:
                break
    return text[:kept].rstrip() + ELLIPSIS


def plural(count: int, word: str, many: str | None = None) -> str:
    """``1 record``, ``2 records`` (``many`` for an irregular plural)."""
    return f"{count} {word}" if count == 1 else f"{count} {many or word + 's'}"


def render_table(
    header: Sequence[str],
    rows: Sequence[Sequence[str]],
    *,
    width: int | None = None,
    right: frozenset[int] = frozenset(),
    shrink: Mapping[int, int] | None = None,
    gap: str = "  ",
) -> list[str]:
    """Aligned plain-text lines: the header, then the rows; trailing spaces trimmed.

    Cells are put on one line (`one_line`). Columns in ``right`` are right-aligned. With
    ``width``, no line is wider: the columns of ``shrink`` (column -> the width it keeps while
    another shrinkable column is wider) are cut to a common width with an ellipsis, and a line
    that still does not fit is cut at ``width``.
    """
    table = [[one_line(str(cell)) for cell in row] for row in [header, *rows]]
    sizes = [max(display_width(row[column]) for row in table) for column in range(len(header))]
    if width is not None and shrink:
        sizes = _fit(sizes, width - len(gap) * (len(header) - 1), shrink)
    lines = []
    for row in table:
        cells = []
        for column, (text, size) in enumerate(zip(row, sizes, strict=True)):
            text = clip(text, size)
            pad = " " * (size - display_width(text))
            cells.append(pad + text if column in right else text + pad)
        line = gap.join(cells).rstrip()
        lines.append(line if width is None else clip(line, width))
    return lines


def _fit(sizes: list[int], room: int, shrink: Mapping[int, int]) -> list[int]:
    """Column widths that fit ``room``: shrinkable columns are capped at one common level."""
    columns = [column for column in shrink if 0 <= column < len(sizes)]
    free = room - sum(size for column, size in enumerate(sizes) if column not in shrink)
    if sum(sizes[column] for column in columns) <= free:
        return sizes
    floors = {column: min(shrink[column], sizes[column]) for column in columns}
    if sum(floors.values()) > free:  # the floors themselves do not fit: share what there is
        floors = dict.fromkeys(columns, 0)

    def widths(level: int) -> dict[int, int]:
        return {column: min(sizes[column], max(floors[column], level)) for column in columns}

    low, high = 0, max(sizes[column] for column in columns)
    while low < high:  # the highest level whose widths fit
        middle = (low + high + 1) // 2
        if sum(widths(middle).values()) <= free:
            low = middle
        else:
            high = middle - 1
    fitted = list(sizes)
    for column, size in widths(low).items():
        fitted[column] = size
    return fitted


def markdown_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """A GitHub-flavoured Markdown table; cells on one line with ``|`` escaped.

    Only the table's own syntax is handled here: model text must be made safe to render first.
    """
    lines = [_markdown_row(header), "|" + "---|" * len(header)]
    lines += [_markdown_row(row) for row in rows]
    return "\n".join(lines)


def _markdown_row(cells: Sequence[str]) -> str:
    return "| " + " | ".join(_escape_pipes(one_line(str(cell))) for cell in cells) + " |"


def _escape_pipes(text: str) -> str:
    r"""``|`` as ``\|``; backslashes just before it doubled, so they stay text, not escapes."""
    if "|" not in text:
        return text
    pieces = text.split("|")
    escaped = []
    for piece in pieces[:-1]:
        backslashes = len(piece) - len(piece.rstrip("\\"))
        escaped.append(piece + "\\" * backslashes + "\\|")
    return "".join(escaped) + pieces[-1]


def duration(seconds: float) -> str:
    """``340 ms`` under a second, ``2.5 s`` from there."""
    return f"{seconds * 1000:.0f} ms" if seconds < 1 else f"{seconds:.1f} s"
