"""Which lines of a Markdown text are surely fenced code, to every renderer.

Private to `nbchat.markdown_safety`, whose docstring says why fences need this care. The scan
tracks list items, paragraphs and lazy lines the way CommonMark and marked (JupyterLab) do, and
JupyterLab's math pairing, which runs before marked; anything it cannot be sure of ends all
trust for the rest of the text.
"""

from __future__ import annotations

import re
from bisect import bisect_right
from dataclasses import dataclass

__all__ = ["OPEN", "RAW", "TEXT", "BlockScan"]

TEXT, RAW, OPEN = 0, 1, 2  # what a line is to us: text, trusted code, a trusted fence opener

# First characters of a line that may start something else than paragraph text.
_BLOCK_SPECIAL = frozenset("`~-*+_=#>[\t0123456789")
_FENCE_RUN = re.compile(r"`{3,}|~{3,}")
_MARKER = re.compile(r"(?:[-+*]|(\d{1,9})[.)])(?=[ \t]|$)")
_ATX = re.compile(r"#{1,6}(?:[ \t]|$)")
_HR = re.compile(r"(?:(?:\*[ \t]*){3,}|(?:-[ \t]*){3,}|(?:_[ \t]*){3,})$")
_SETEXT = re.compile(r"(?:=+|-+)[ \t]*$")
_CONTAINER = re.compile(r"(?:[ \t]*(?:>|(?:[-+*]|\d{1,9}[.)])(?=[ \t]|$)))*[ \t]*")

# JupyterLab's removeMath() pulls these out before marked runs; see _JupyterMath.
_JL_OTHER_TOKEN = re.compile(r"\\\\[()\[\]]|\\(?:begin|end)\{[a-z]*\*?\}", re.IGNORECASE)


@dataclass
class _Item:
    col: int  # content column
    saw_blank: bool
    empty: bool  # started with nothing after the marker
    has_content: bool = False


@dataclass
class _Fence:
    char: str
    run: int
    col: int
    line: int
    dollar: bool = False
    other_token: bool = False


class _JupyterMath:
    """Where JupyterLab's removeMath() could find math delimiters (it runs before marked).

    A ``$`` inside a fence counts unless JupyterLab's own fence regex masks that fence; other
    delimiters (``\\\\(``, ``\\begin{..}``) are never masked.
    """

    def __init__(self, lines: list[str], text: str) -> None:
        self.lines = lines
        self.active = "$" in text or "\\" in text
        self.dollar: set[int] = set()
        self.other: set[int] = set()
        if self.active:
            for index, line in enumerate(lines):
                if "$" in line:
                    self.dollar.add(index)
                if "\\" in line and _JL_OTHER_TOKEN.search(line):
                    self.other.add(index)
        self.token_lines = sorted(self.dollar | self.other)
        self.exotic = any(ch in text for ch in "\r\u2028\u2029")
        self._masks: dict[int, int] | None = None

    def any_between(self, first: int, last: int) -> bool:
        slot = bisect_right(self.token_lines, max(first, 0) - 1)
        return slot < len(self.token_lines) and self.token_lines[slot] <= last

    def masked(self, opener: int, closer: int) -> bool:
        """Whether JupyterLab's fence regex masks exactly this fence (so its ``$`` is inert)."""
        if self.exotic:
            return False
        if self._masks is None:
            self._masks = _jupyter_fence_masks(self.lines)
        return self._masks.get(opener) == closer


def _jupyter_fence_masks(lines: list[str]) -> dict[int, int]:
    """Opener line -> closer line of each fence JupyterLab masks (its regex, line by line)."""
    bare_ticks: list[tuple[int, int]] = []
    tilde_closers: dict[int, list[int]] = {}
    for index, line in enumerate(lines):
        if line and line.strip("`") == "":
            bare_ticks.append((index, len(line)))
        tildes = len(line) - len(line.lstrip("~"))
        if tildes >= 3 and line[tildes:].strip("`") == "":
            tilde_closers.setdefault(tildes, []).append(index)
    longest_after = [0] * (len(bare_ticks) + 1)
    for slot in range(len(bare_ticks) - 1, -1, -1):
        longest_after[slot] = max(longest_after[slot + 1], bare_ticks[slot][1])
    starts = [index for index, _ in bare_ticks]
    masks: dict[int, int] = {}
    index = 0
    while index < len(lines) - 1:
        found = _jupyter_closer(lines[index], index, bare_ticks, starts, longest_after)
        if found is None:
            found = _jupyter_tilde_closer(lines[index], index, tilde_closers)
        if found is None:
            index += 1
            continue
        masks[index] = found
        index = found + 1
    return masks


def _jupyter_closer(
    line: str,
    index: int,
    bare_ticks: list[tuple[int, int]],
    starts: list[int],
    longest_after: list[int],
) -> int | None:
    run = len(line) - len(line.lstrip("`"))
    if run < 3 or "`" in line[run:]:
        return None
    slot = bisect_right(starts, index)
    if longest_after[slot] < run:
        return None
    while bare_ticks[slot][1] < run:
        slot += 1
    return bare_ticks[slot][0]


def _jupyter_tilde_closer(line: str, index: int, closers: dict[int, list[int]]) -> int | None:
    run = len(line) - len(line.lstrip("~"))
    if run < 3 or "`" in line[run:]:
        return None
    for size in range(run, 2, -1):
        candidates = closers.get(size, [])
        slot = bisect_right(candidates, index)
        if slot < len(candidates):
            return candidates[slot]
    return None


class BlockScan:
    """Line kinds: TEXT, RAW (inside a surely-fenced block) or OPEN (a trusted opener)."""

    def __init__(self, lines: list[str], text: str) -> None:
        self.lines = lines
        self.kinds = [TEXT] * len(lines)
        self.info_at: dict[int, int] = {}
        self.items: list[_Item] = []
        self.paragraph = False
        self.prev_line = ""
        self.prev_plain = False
        self.pending_label = False
        self.last_blank = -1
        self.list_start = 0
        self.fence: _Fence | None = None
        self.math = _JupyterMath(lines, text)
        self.uncertain_from = len(lines)

    def run(self) -> tuple[list[int], dict[int, int]]:
        lines, index = self.lines, 0
        while index < len(lines):
            if self.fence:
                index = self._code_lines(self.fence, index)
                if index == len(lines):
                    break
                handled = self._fence_line(index, lines[index])
            else:
                line = lines[index]
                body = line.lstrip(" ")
                if (body and body[0] not in _BLOCK_SPECIAL) and (
                    not self.items or 0 <= len(line) - len(body) - self.items[-1].col < 4
                ):  # the common paragraph line: nothing to decide
                    self._plain_line(line)
                    index += 1
                    continue
                handled = self._block_line(index, line)
            if not handled:
                return self.kinds, self.info_at
            index += 1
        if self.fence and self._fence_has_math(self.fence, None):
            self._give_up(self.fence.line)
        return self.kinds, self.info_at

    def _code_lines(self, fence: _Fence, index: int) -> int:
        """Mark the code lines from index on that can neither close nor dedent; the next one."""
        lines, start, stops = self.lines, index, "\t" + fence.char
        while index < len(lines):
            line = lines[index]
            body = line.lstrip(" ")
            if not body or body[0] in stops or len(line) - len(body) < fence.col:
                break
            index += 1
        self.kinds[start:index] = [RAW] * (index - start)
        tokens = self.math.token_lines
        slot = bisect_right(tokens, start - 1)
        while slot < len(tokens) and tokens[slot] < index:
            fence.dollar = fence.dollar or tokens[slot] in self.math.dollar
            fence.other_token = fence.other_token or tokens[slot] in self.math.other
            slot += 1
        return index

    def _plain_line(self, line: str) -> None:
        for item in self.items:
            item.has_content = True
        if self.pending_label and ("[" in line or "]" in line):
            self.pending_label = False
        self.paragraph = True
        self.prev_line, self.prev_plain = line, True

    def _give_up(self, index: int) -> bool:
        """Uncertain from this line on: everything after is text."""
        if self.fence and self._fence_has_math(self.fence, None):
            index = min(index, self.fence.line)  # math could have swallowed the opener
        self.uncertain_from = index
        self.kinds[index:] = [TEXT] * (len(self.kinds) - index)
        for line in [line for line in self.info_at if line >= index]:
            del self.info_at[line]
        return False

    # inside a trusted fence

    def _fence_line(self, index: int, line: str) -> bool:
        fence = self.fence
        assert fence is not None
        stripped = line.lstrip(" \t")
        lead = line[: len(line) - len(stripped)]
        if stripped and ("\t" in lead or len(lead) < fence.col):
            looks_closing = stripped.startswith(fence.char * 3)
            if looks_closing or lead.find("\t") < fence.col:
                return self._give_up(index)
        if self.math.active:
            fence.dollar = fence.dollar or index in self.math.dollar
            fence.other_token = fence.other_token or index in self.math.other
        self.kinds[index] = RAW
        if not stripped.startswith(fence.char * 3) or "\t" in lead:
            return True
        run = len(stripped) - len(stripped.lstrip(fence.char))
        after = stripped[run:]
        if run < fence.run or after.strip(" \t`~"):
            return True
        if after.strip(" ") or len(lead) > max(3, fence.col):
            return self._give_up(index)
        self.fence = None
        self.paragraph = False
        self.prev_line, self.prev_plain = line, False
        if self._fence_has_math(fence, index):
            return self._give_up(fence.line)
        return True

    def _fence_has_math(self, fence: _Fence, closer: int | None) -> bool:
        if fence.other_token:
            return True
        return fence.dollar and (closer is None or not self.math.masked(fence.line, closer))

    # outside fences

    def _block_line(self, index: int, line: str) -> bool:
        stripped = line.lstrip(" \t")
        if not stripped:
            return self._blank_line(index, line)
        start = len(line) - len(stripped)
        has_tab = "\t" in line[:start]
        if has_tab and self.items:
            return self._give_up(index)
        indent = len(line[:start].expandtabs(4)) if has_tab else start
        depth = len(self.items)
        while depth and self.items[depth - 1].col > indent:
            depth -= 1
        if depth < len(self.items):
            verdict = self._dedent(depth, indent, stripped)
            if verdict == "uncertain":
                return self._give_up(index)
            if verdict == "lazy":
                return self._text_line(index, line, plain=True)
            del self.items[depth:]
            self.paragraph = False
        for item in self.items:
            item.has_content = True
        return self._block_content(index, line, start, indent)

    def _blank_line(self, index: int, line: str) -> bool:
        if "\t" in line and self.paragraph:
            return self._give_up(index)  # only space-only lines end a paragraph for marked
        self.paragraph = False
        for item in self.items:
            item.saw_blank = True
        if self.items and self.items[-1].empty and not self.items[-1].has_content:
            self.items.pop()  # a list item can begin with at most one blank line
        self.last_blank = index
        self.prev_line, self.prev_plain = line, False
        return True

    def _dedent(self, depth: int, indent: int, stripped: str) -> str:
        """A line less indented than an open item: 'lazy', 'pop' or 'uncertain'.

        CommonMark keeps the item open for a lazy paragraph line; marked keeps it open for any
        line unless a blank line or a non-paragraph line came before. Where they differ: uncertain.
        """
        if "|" in stripped and self.paragraph:
            # A table row right below a list item's paragraph: markdown-it starts a table that
            # ends the item, marked continues the paragraph. After a blank line both end it.
            return "uncertain"
        parent = self.items[depth - 1].col if depth else 0
        if indent - parent <= 3:
            first = stripped[0]
            marker = _MARKER.match(stripped)
            if _FENCE_RUN.match(stripped) or _ATX.match(stripped):
                return "pop"
            if marker:
                return "uncertain" if stripped[marker.end() : marker.end() + 1] == "\t" else "pop"
            if _HR.match(stripped):
                return "uncertain" if "\t" in stripped else "pop"
            if first == "#":
                return "uncertain" if self.paragraph else "pop"
            if first in ">`<=":
                return "uncertain"
        if self.paragraph:
            lazy = not self.items[depth].saw_blank and all(
                self._marked_lazy_ok(level) for level in range(depth, len(self.items))
            )
            return "lazy" if lazy else "uncertain"
        if self.items[depth].saw_blank or not self._marked_lazy_ok(depth):
            return "pop"
        return "uncertain"

    def _marked_lazy_ok(self, level: int) -> bool:
        """marked's test on the line before a less-indented one (relative to this item)."""
        if not self.prev_plain:
            return False
        relative = self.prev_line.expandtabs(4)[self.items[level].col :]
        body = relative.lstrip(" ")
        if len(relative) - len(body) >= 4:
            return False
        return not (body.startswith(("```", "~~~", "#")) or _HR.match(body))

    def _block_content(self, index: int, line: str, pos: int, col: int) -> bool:
        container = self.items[-1].col if self.items else 0
        first = True
        while True:
            rest = line[pos:]
            if not rest:
                return self._text_line(index, line, plain=False)  # an empty list item
            if col - container > 3:
                return self._text_line(index, line, plain=self.paragraph)  # code or continuation
            if _FENCE_RUN.match(rest):
                return self._open_fence(index, line, pos, col)
            if _HR.match(rest) or _ATX.match(rest):
                return self._text_line(index, line, plain=False)
            if first and self.paragraph and _SETEXT.match(rest):
                return self._text_line(index, line, plain=False)
            marker = _MARKER.match(rest)
            if not marker:
                return self._text_line(index, line, plain=True)
            step = self._list_item(line, pos, col, marker, interrupting=first)
            if step is None:
                return self._give_up(index)
            if step == (pos, col):
                return self._text_line(index, line, plain=True)  # cannot interrupt a paragraph
            pos, col = step
            container, first = self.items[-1].col, False

    def _list_item(
        self, line: str, pos: int, col: int, marker: re.Match[str], *, interrupting: bool
    ) -> tuple[int, int] | None:
        """Push the item a marker opens; (pos, col) of its content, same if it is text, or None."""
        after = line[pos + marker.end() :]
        body = after.lstrip(" ")
        spaces = len(after) - len(body)
        if body.startswith("\t") or (not body and spaces == 1):
            return None  # marked reads "1. " (one trailing space) as text, CommonMark as an item
        number = marker.group(1)
        if interrupting and self.paragraph:
            if not body:
                return None if spaces else (pos, col)
            if number is not None and number != "1":
                return None if number.lstrip("0") == "1" else (pos, col)
        width = marker.end()
        if not self.items:
            self.list_start = max(self.last_blank, 0)
        for item in self.items:
            item.has_content = True
        self.paragraph = False
        if not body:
            self.items.append(_Item(col + width + 1, saw_blank=True, empty=True))
            return (len(line), col + width + 1)
        if spaces >= 5:
            self.items.append(_Item(col + width + 1, saw_blank=False, empty=False))
            return (pos + width + spaces, col + width + spaces)
        self.items.append(_Item(col + width + spaces, saw_blank=False, empty=False))
        return (pos + width + spaces, col + width + spaces)

    def _open_fence(self, index: int, line: str, pos: int, col: int) -> bool:
        run = _FENCE_RUN.match(line, pos)
        assert run is not None
        info = line[run.end() :]
        if (run.group()[0] == "`" and "`" in info) or self.pending_label:
            return self._give_up(index)
        if col >= 4 and self.math.any_between(self.list_start, index):
            return self._give_up(index)  # math could reshape the list JupyterLab's marked sees
        self.fence = _Fence(run.group()[0], len(run.group()), col, index)  # info: defused
        self.kinds[index] = OPEN
        self.info_at[index] = run.end()
        self.paragraph = False
        self.prev_line, self.prev_plain = line, False
        return True

    def _text_line(self, index: int, line: str, *, plain: bool) -> bool:
        rest = line[_CONTAINER.match(line).end() :]
        if _FENCE_RUN.match(rest):
            return self._give_up(index)  # fence-like, yet not a certain opener
        if rest.startswith("["):
            self.pending_label = "[" not in rest[1:] and "]" not in rest
        elif "[" in rest or "]" in rest:
            self.pending_label = False
        stripped = line.lstrip(" \t")
        if plain and not stripped.startswith(">"):
            self.paragraph = True
        elif stripped.startswith(">"):
            self.paragraph = bool(rest.strip())
        else:
            self.paragraph = False
        self.prev_line, self.prev_plain = line, plain and self.paragraph
        return True
