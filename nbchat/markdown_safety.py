"""Model text made safe to put in a trusted ``text/markdown`` output.

JupyterLab renders Markdown produced in the running session as trusted: HTML inside it runs
unsanitized (marked, then ``innerHTML``). Model text is untrusted, so ``safe_markdown`` makes sure
no HTML tag, comment, declaration or unsafe link from the model reaches the renderer, while
ordinary Markdown (headings, emphasis, lists, tables, code, math, links) renders as the model meant.

The only danger is HTML-significant ``<`` (followed by an ASCII letter, ``/``, ``!`` or ``?``)
reaching the renderer outside code, a ``javascript:``-like link, or an image (which the browser
fetches by itself). So, in text:

- every significant ``<`` becomes ``&lt;`` unless already backslash-escaped; ``<br>``, ``<sub>``,
  ``<sup>`` (no attributes) stay raw when the line has other content (alone on a line, a tag would
  open an HTML block that swallows the lines after it raw);
- a code span that holds a significant ``<``, ``![``, ``](`` or ``]:`` is re-emitted as our own
  ``<code>`` with every ASCII punctuation entity-escaped, so if the renderer sees the span
  differently (tables split cells first) no model ``<`` or link is left raw; spans over several
  lines are not rewritten but read as text;
- in math (``$..$``, ``$$..$$``, ``\\(..\\)``, ``\\[..\\]``, environments) ``<`` becomes ``\\lt``;
- ``![`` becomes ``\\![``; the ``(`` of a link whose destination decodes (backslashes, entities,
  whitespace, case) to a scheme other than http/https/mailto becomes ``\\(``; the ``:`` of a
  reference definition becomes ``\\:`` unless it is a plain one-line definition with a safe URL
  (marked lets a definition's title run over lines, fences included).

Fenced code is left exact only where every renderer surely sees a fence: the block scan below
tracks list items, paragraphs and lazy lines; anything it cannot be sure of (a fence-like line
that is not a certain opener or closer, tabs in list indentation, lines CommonMark and marked read
differently) ends all trust: from there on every line is text, which is always safe and at worst
shows ``&lt;`` inside code. A closer counts only from the opener's column to column 3 (exactly
at it when deeper) and content left of that column ends trust, so a renderer that nests the
fence in other list items cannot end it elsewhere. Info strings are quote-escaped and get the
text rules: JupyterLab puts them raw into a ``class`` attribute, and marked reads an opener on
the last line as paragraph text.

JupyterLab also pulls math out before marked runs and pastes it back with ``"`` unescaped,
wherever its placeholder landed: math must never start inside a link destination or title, a
bare URL or an info string (``$`` becomes ``&#36;`` there), and a fence whose lines hold a math
delimiter JupyterLab does not mask is not trusted (math pairing across it could swallow it).
"""

from __future__ import annotations

import html
import re
from bisect import bisect_right
from dataclasses import dataclass
from itertools import accumulate

__all__ = ["safe_markdown"]

TEXT, RAW, OPEN = 0, 1, 2

_SAFE_SCHEMES = frozenset({"http", "https", "mailto"})
_SIGNIFICANT = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ/!?")
_ASCII_PUNCT = frozenset("!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~")

_LINE_BREAK = re.compile(r"(\r\n|\r|\n)")
# First characters of a line that may start something else than paragraph text.
_BLOCK_SPECIAL = frozenset("`~-*+_=#>[\t0123456789")
_FENCE_RUN = re.compile(r"`{3,}|~{3,}")
_MARKER = re.compile(r"(?:[-+*]|(\d{1,9})[.)])(?=[ \t]|$)")
_ATX = re.compile(r"#{1,6}(?:[ \t]|$)")
_HR = re.compile(r"(?:(?:\*[ \t]*){3,}|(?:-[ \t]*){3,}|(?:_[ \t]*){3,})$")
_SETEXT = re.compile(r"(?:=+|-+)[ \t]*$")
_CONTAINER = re.compile(r"(?:[ \t]*(?:>|(?:[-+*]|\d{1,9}[.)])(?=[ \t]|$)))*[ \t]*")
_ALLOWED_TAG = re.compile(r"<(?:br(?: ?/)?|/?su[bp])>", re.IGNORECASE)
_SIMPLE_DEF = re.compile(
    r"\[[^\[\]\\\r\n]+\](?P<colon>:)[ \t]*(?P<dest>[^\s<]\S*)"
    r"(?:[ \t]+(?:\"[^\"\\\r\n]*\"|'[^'\\\r\n]*'|\([^()\\\r\n]*\)))?[ \t]*$"
)
_SCHEME_WINDOW = re.compile(r"(?:\\[!-/:-@\[-`{-~]|[A-Za-z0-9+.\-&#;:])*")
_BACKSLASH_ESCAPE = re.compile(r"\\([!-/:-@\[-`{-~])")
_CONTROL_OR_SPACE = re.compile(r"[\x00-\x20\x7f]")
_SCHEME = re.compile(r"[a-z][a-z0-9+.\-]*:")
_SPAN_RISK = re.compile(r"<[A-Za-z/!?]|!\[|\]\(|\]:")
_EVENT = re.compile(r"[\\`$<!\]]")
_MATH_EVENT = re.compile(r"[\\<!\]$]")
_BACKTICKS = re.compile(r"`+")
_SHORT_RUNS = [re.compile(rf"(?<!`)`{{{size}}}(?!`)") for size in (1, 2, 3)]
_BLANK_LINE = re.compile(r"(?:\r\n|\r|\n)[ \t]*(?=\r|\n|$)")
_BEGIN_ENV = re.compile(r"\\begin\{([A-Za-z]*\*?)\}")
_END_ENV = re.compile(r"\\end\{([A-Za-z]*\*?)\}")
_SINGLE_DOLLAR_CLOSE = re.compile(r"(?<![\s\\$])\$(?!\$)")
# JupyterLab's removeMath() pulls these out before marked runs; see _JupyterMath.
_JL_OTHER_TOKEN = re.compile(r"\\\\[()\[\]]|\\(?:begin|end)\{[a-z]*\*?\}", re.IGNORECASE)
_MATH_START = re.compile(r"\$|\\{2,}[(\[]|\\begin\{", re.IGNORECASE)
_MATH_TOKEN = re.compile(r"\$|\\{2,}[()\[\]]|\\(?:begin|end)\{", re.IGNORECASE)
_WHITESPACE = re.compile(r"\s")
_SPACES = re.compile(r"[ \t\r\n]*")
_CLOSING_PAREN = re.compile(r"\s*\)")
_LINK_OPEN = re.compile(r"\]\(")
_TITLE_NEXT_LINE = re.compile(r"[ \t]*[\"'(]")
_ANGLE_END = re.compile(r"[>\r\n]")
# A title ends at its closing quote not right after a backslash (marked's reading).
_TITLE_END = {
    '"': re.compile(r'(?<!\\)"'),
    "'": re.compile(r"(?<!\\)'"),
    "(": re.compile(r"(?<!\\)\)"),
}


def safe_markdown(text: str) -> str:
    """Model text made safe to put in a text/markdown output: no raw HTML, unsafe link or image.

    Markdown, fenced code (where surely a fence), and math render as before; text without an
    HTML-significant ``<``, ``![``, ``](``, ``]:`` or ``$`` comes back unchanged.
    """
    parts = _LINE_BREAK.split(text)
    lines = parts[0::2]
    scan = _BlockScan(lines, text)
    kinds, info_at = scan.run()
    offsets = [*list(accumulate(map(len, parts), initial=0))[0::2], len(text)]  # line starts
    out: list[str] = []
    index = 0
    while index < len(lines):
        kind, end = kinds[index], index + 1
        while end < len(lines) and kinds[end] == kind != OPEN:
            end += 1
        chunk = text[offsets[index] : offsets[end]]
        if kind == TEXT:
            if end > scan.uncertain_from and ("```" in chunk or "~~~" in chunk):
                chunk = "".join(map(_quote_fence_info, _LINE_BREAK.split(chunk)))
            chunk = _rewrite_text(chunk)
        elif kind == OPEN:
            start = offsets[index] + info_at[index]
            info_end = offsets[index] + len(lines[index])
            chunk = (
                text[offsets[index] : start]
                + _escape_info(text[start:info_end])
                + text[info_end : offsets[end]]
            )
        out.append(chunk)
        index = end
    return "".join(out)


# --- block scan: which lines are surely fenced code --------------------------------------------


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


class _BlockScan:
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


# --- text: inline rewriting ----------------------------------------------------------------------


def _defuse_math(text: str, tokens: re.Pattern[str] = _MATH_START) -> str:
    """The same text, rendering the same, without the math delimiters JupyterLab looks for.

    JupyterLab puts math back with ``"`` unescaped wherever its placeholder landed, attributes
    included, so math must never start inside a link destination, title or bare URL; and it
    must neither start nor end inside a fence's info string (it would swallow the opener).
    """
    return tokens.sub(_defuse_token, text)


def _defuse_token(found: re.Match[str]) -> str:
    token = found.group()
    if token == "$":
        return "&#36;"
    if token.endswith("{"):
        return token[:-1] + "&#123;"
    slashes = len(token) - 1  # an odd run escaped the bracket; the entity is literal anyway
    return "\\" * (slashes - slashes % 2) + f"&#{ord(token[-1])};"


def _escape_info(info: str) -> str:
    """A fence info string: JupyterLab puts it raw into a class attribute, and marked reads it
    as text when the opener is the last line (a fence interrupts a paragraph only before a
    line break), so it gets the text rules too."""
    return _rewrite_text(_defuse_math(info.replace('"', "&quot;"), _MATH_TOKEN))


def _quote_fence_info(line: str) -> str:
    """A text line some renderer may still read as a fence opener: its info made safe too."""
    if "```" not in line and "~~~" not in line:
        return line
    run = _FENCE_RUN.search(line)
    assert run is not None
    tail = _defuse_math(line[run.end() :].replace('"', "&quot;"), _MATH_TOKEN)
    return line[: run.end()] + tail


def _entity_escape(text: str) -> str:
    return "".join(f"&#{ord(ch)};" if ch in _ASCII_PUNCT else ch for ch in text)


def _code_html(content: str) -> str:
    """A one-line code span as our own HTML that renders the same."""
    if content.startswith(" ") and content.endswith(" ") and content.strip(" "):
        content = content[1:-1]
    return f"<code>{_entity_escape(content)}</code>"


def _dest_unsafe(src: str, pos: int) -> bool:
    """Whether the link destination starting at pos decodes to a scheme we do not allow."""
    pos = _skip_space(src, pos)
    if src.startswith("<", pos):
        pos = _skip_space(src, pos + 1)
    window = _SCHEME_WINDOW.match(src, pos)
    assert window is not None
    decoded = html.unescape(_BACKSLASH_ESCAPE.sub(r"\1", window.group()))
    scheme = _SCHEME.match(_CONTROL_OR_SPACE.sub("", decoded).lower())
    return bool(scheme) and scheme.group()[:-1] not in _SAFE_SCHEMES


def _url_starts(src: str) -> list[int]:
    """Where marked's bare-URL rule (http://, https://, ftp://, www.) may start a link."""
    starts = []
    found = src.find("://")
    while found >= 0:
        head = src[max(0, found - 5) : found].lower()
        scheme = next((name for name in ("https", "http", "ftp") if head.endswith(name)), "")
        if scheme:
            starts.append(found - len(scheme))
        found = src.find("://", found + 3)
    if "." in src:
        lowered = src.lower()
        found = lowered.find("www.")
        while found >= 0:
            starts.append(found)
            found = lowered.find("www.", found + 4)
    return sorted(starts)


def _skip_space(src: str, pos: int) -> int:
    """Past any spaces, tabs and line breaks (marked's ``\\s*``: wider than CommonMark's)."""
    return _SPACES.match(src, pos).end()


def _line_bounds(src: str, pos: int) -> tuple[int, int]:
    start = max(src.rfind("\n", 0, pos), src.rfind("\r", 0, pos)) + 1
    found = _LINE_BREAK.search(src, pos)
    return start, found.start() if found else len(src)


def _definition_ok(src: str, bracket: int) -> bool:
    """Whether the plain one-line definition whose ``]:`` is at bracket may stay one.

    marked lets a definition's title run over many lines (fences included) and starts it on
    the next line too; such a definition must not exist. Its URL must be safe.
    """
    line_break = _LINE_BREAK.search(src, bracket)
    if line_break and _TITLE_NEXT_LINE.match(src, line_break.end()):
        return False
    return not _dest_unsafe(src, bracket + 2)


class _TextRewriter:
    """Rewrites one region of text lines (between trusted fences)."""

    def __init__(self, src: str) -> None:
        self.src = src
        self.out: list[str] = []
        self.last = 0
        self.para_end = -1
        self.failed: set[str] = set()
        self.para_start = 0
        self.ticks: dict[int, list[int]] | None = None
        self.ends: dict[str, list[int]] | None = None
        self.attrs: tuple[list[int], list[int]] | None = None
        self.definitions: set[int] = set()  # the ``]`` of each plain definition kept
        self.found: dict[re.Pattern[str], tuple[int, int]] = {}
        self.tag_line = (0, 0, False)  # the line last checked for allowed tags

    def emit(self, pos: int, replacement: str, resume: int) -> None:
        self.out.append(self.src[self.last : pos])
        self.out.append(replacement)
        self.last = resume

    def in_attribute(self, pos: int) -> bool:
        """Whether pos may end up in an attribute: a link destination or title, or a bare URL."""
        starts, ends = self.attributes()
        slot = bisect_right(starts, pos) - 1
        return slot >= 0 and pos < ends[slot]

    def attributes(self) -> tuple[list[int], list[int]]:
        """Spans of the region marked could put into an attribute (computed once, merged)."""
        if self.attrs is not None:
            return self.attrs
        src = self.src
        spans = [(found.end(), self.link_end(found.end())) for found in _LINK_OPEN.finditer(src)]
        for start in _url_starts(src):
            end = self.search(_WHITESPACE, start)
            spans.append((start, len(src) if end < 0 else end))
        offset = 0
        for line in _LINE_BREAK.split(src)[0::2] if "]:" in src else []:
            definition = _SIMPLE_DEF.match(line, _CONTAINER.match(line).end())
            if definition and _definition_ok(src, offset + definition.start("colon") - 1):
                self.definitions.add(offset + definition.start("colon") - 1)
                spans.append((offset + definition.start("colon"), offset + len(line)))
            offset += len(line) + (2 if src.startswith("\r\n", offset + len(line)) else 1)
        starts: list[int] = []
        ends: list[int] = []
        for start, end in sorted(spans):
            if ends and start <= ends[-1]:
                ends[-1] = max(ends[-1], end)
            else:
                starts.append(start)
                ends.append(end)
        self.attrs = (starts, ends)
        return self.attrs

    def defuse(self, pos: int, end: int) -> int:
        """Emit the math delimiter at pos..end without its meaning to JupyterLab."""
        self.emit(pos, _defuse_math(self.src[pos:end]), end)
        return end

    def link_end(self, pos: int) -> int:
        """Where the destination and title after ``](`` at most end (marked's reading)."""
        src, size = self.src, len(self.src)
        pos = _skip_space(src, pos)
        close = self.search(_ANGLE_END, pos) if src.startswith("<", pos) else -1
        end = close + 1 if close >= 0 and src[close] == ">" else self.search(_WHITESPACE, pos)
        end = size if end < 0 else end
        title = _skip_space(src, end)
        if title < size and src[title] in "\"'(":
            closer = _TITLE_END[src[title]]
            close = self.search(closer, title + 1)
            if close >= 0 and _CLOSING_PAREN.match(src, close + 1):
                end = close + 1
        return end

    def search(self, pattern: re.Pattern[str], pos: int) -> int:
        """Start of the next match at or after pos, -1 if none; cached, as queries move on."""
        searched, found = self.found.get(pattern, (len(self.src) + 1, -1))
        if searched <= pos and (pos <= found or found < 0):
            return found
        match = pattern.search(self.src, pos)
        found = match.end() - 1 if match else -1
        self.found[pattern] = (pos, found)
        return found

    def paragraph_end(self, pos: int) -> int:
        """End of the paragraph holding pos: spans and math never pass a blank line."""
        if pos >= self.para_end:
            found = _BLANK_LINE.search(self.src, pos)
            self.para_end = found.start() if found else len(self.src)
            self.para_start = pos
            self.failed.clear()
            self.ticks = None
            self.ends = None
        return self.para_end

    def tick_runs(self) -> dict[int, list[int]]:
        """Backtick runs of the paragraph by length (closers of code spans)."""
        if self.ticks is None:
            self.ticks = {}
            for run in _BACKTICKS.finditer(self.src, self.para_start, self.para_end):
                self.ticks.setdefault(len(run.group()), []).append(run.start())
        return self.ticks

    def env_ends(self) -> dict[str, list[int]]:
        if self.ends is None:
            self.ends = {}
            for env in _END_ENV.finditer(self.src, self.para_start, self.para_end):
                self.ends.setdefault(env.group(1), []).append(env.start())
        return self.ends

    def run(self) -> str:
        src, pos = self.src, 0
        while True:
            found = _EVENT.search(src, pos)
            if not found:
                break
            pos = self.handle(found.start(), math=False)
        self.out.append(src[self.last :])
        return "".join(self.out)

    def handle(self, pos: int, *, math: bool) -> int:
        """Deal with the special character at pos; where to continue scanning."""
        char = self.src[pos]
        if char == "\\":
            return self.backslash(pos, math=math)
        if char == "<":
            return self.angle(pos, math=math)
        if char == "!":
            if self.src.startswith("![", pos):
                self.emit(pos, "\\!", pos + 1)
            return pos + 1
        if char == "]":
            return self.bracket(pos)
        if char == "`":
            return self.code_span(pos)
        if self.in_attribute(pos):
            return self.defuse(pos, pos + 1)
        return pos + 1 if math else self.dollar(pos)

    def backslash(self, pos: int, *, math: bool) -> int:
        src = self.src
        end = pos
        while end < len(src) and src[end] == "\\":
            end += 1
        count, nxt = end - pos, src[end : end + 1]
        token = _MATH_START.match(src, pos) or _MATH_START.match(src, end - 1)
        if token and self.in_attribute(pos):
            return self.defuse(token.start(), token.end())
        if not math and count <= 2 and nxt in ("(", "["):
            closer = "\\" * count + (")" if nxt == "(" else "]")
            resume = self.math_region(end + 1, closer, "esc" + closer)
            if resume is not None:
                return resume
        if not math and count == 1 and src.startswith("begin{", end):
            env = _BEGIN_ENV.match(src, pos)
            if env:
                resume = self.environment(env)
                if resume is not None:
                    return resume
        if count % 2 == 1 and nxt and nxt in _ASCII_PUNCT and nxt != "]":
            return end + 1  # escaped: never opens a span, math, tag or image
        return end

    def angle(self, pos: int, *, math: bool) -> int:
        nxt = self.src[pos + 1 : pos + 2]
        if not nxt or nxt not in _SIGNIFICANT:
            return pos + 1
        if not math:
            tag = _ALLOWED_TAG.match(self.src, pos)
            if tag and self.tag_may_stay(pos):
                return tag.end()
        self.emit(pos, "\\lt " if math else "&lt;", pos + 1)
        return pos + 1

    def tag_may_stay(self, pos: int) -> bool:
        """An allowed tag stays raw only if its line has other content (else: an HTML block)."""
        if not self.tag_line[0] <= pos < self.tag_line[1]:
            start, end = _line_bounds(self.src, pos)
            line = self.src[start:end]
            rest = line[_CONTAINER.match(line).end() :]
            self.tag_line = (start, end, bool(_ALLOWED_TAG.sub("", rest).strip()))
        return self.tag_line[2]

    def bracket(self, pos: int) -> int:
        src = self.src
        nxt = src[pos + 1 : pos + 2]
        if nxt == "(" and _dest_unsafe(src, pos + 2):
            self.emit(pos + 1, "\\(", pos + 2)
        elif nxt == ":":
            self.attributes()
            if pos not in self.definitions:
                self.emit(pos + 1, "\\:", pos + 2)
        return pos + 1

    def code_span(self, pos: int) -> int:
        src = self.src
        run = _BACKTICKS.match(src, pos)
        assert run is not None
        size, content_start = len(run.group()), run.end()
        close = self.span_closer(size, content_start)
        if close < 0:
            return content_start  # no closer: the backticks are literal
        content = src[content_start:close]
        if not _SPAN_RISK.search(content) and not any(
            self.in_attribute(content_start + token.start())
            for token in _MATH_START.finditer(content)
        ):
            return close + size
        if "\n" in content or "\r" in content:
            return content_start  # read it as text: line structure must not change
        self.emit(pos, _code_html(content), close + size)
        return close + size

    def span_closer(self, size: int, start: int) -> int:
        """Start of the next run of exactly size backticks in the paragraph, or -1."""
        end = self.paragraph_end(start)
        if size <= len(_SHORT_RUNS):  # the usual case: a direct search, misses remembered
            key = "`" * size
            if key in self.failed:
                return -1
            found = _SHORT_RUNS[size - 1].search(self.src, start, end)
            if not found:
                self.failed.add(key)
            return found.start() if found else -1
        starts = self.tick_runs().get(size, [])
        slot = bisect_right(starts, start - 1)
        return starts[slot] if slot < len(starts) and starts[slot] < end else -1

    def dollar(self, pos: int) -> int:
        src = self.src
        if src.startswith("$$", pos):
            resume = self.math_region(pos + 2, "$$", "$$")
            return pos + 2 if resume is None else resume
        nxt = src[pos + 1 : pos + 2]
        if not nxt or nxt.isspace():
            return pos + 1
        resume = self.math_region(pos + 1, None, "$")
        return pos + 1 if resume is None else resume

    def math_region(self, start: int, closer: str | None, kind: str) -> int | None:
        """Rewrite math from start to its closer (None: a single ``$``); where to resume."""
        end = self.paragraph_end(start)
        if kind in self.failed:
            return None
        if closer is None:  # never close on a $ that marked may put in an attribute
            found = _SINGLE_DOLLAR_CLOSE.search(self.src, start, end)
            while found and self.in_attribute(found.start()):
                found = _SINGLE_DOLLAR_CLOSE.search(self.src, found.end(), end)
            close = found.start() if found else -1
            closer = "$"
        else:
            close = self.src.find(closer, start, end)
            while close > 0 and (
                (closer[0] == "\\" and self.src[close - 1] == "\\")
                or (closer == "$$" and self.in_attribute(close))
            ):
                close = self.src.find(closer, close + 1, end)
        if close < 0:
            self.failed.add(kind)
            return None
        self.rewrite_math(start, close)
        return close + len(closer)

    def environment(self, env: re.Match[str]) -> int | None:
        end = self.paragraph_end(env.end())
        ends = self.env_ends().get(env.group(1), [])
        slot = bisect_right(ends, env.end() - 1)
        if slot == len(ends) or ends[slot] >= end:
            return None
        self.rewrite_math(env.end(), ends[slot])
        return ends[slot] + len(f"\\end{{{env.group(1)}}}")

    def rewrite_math(self, start: int, close: int) -> None:
        pos = start
        while True:
            found = _MATH_EVENT.search(self.src, pos, close)
            if not found:
                return
            pos = self.handle(found.start(), math=True)


def _rewrite_text(src: str) -> str:
    return _TextRewriter(src).run()
