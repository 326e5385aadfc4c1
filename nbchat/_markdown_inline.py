"""Rewriting the text of a Markdown answer outside trusted code: HTML, links, images, math.

Private to `nbchat.markdown_safety`, whose docstring gives the rules.
"""

from __future__ import annotations

import html
import re
from bisect import bisect_right

from nbchat._markdown_blocks import _CONTAINER, _FENCE_RUN

__all__ = ["LINE_BREAK", "escape_info", "quote_fence_info", "rewrite_text"]
_SAFE_SCHEMES = frozenset({"http", "https", "mailto"})
_SIGNIFICANT = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ/!?")
_ASCII_PUNCT = frozenset("!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~")

LINE_BREAK = re.compile(r"(\r\n|\r|\n)")
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


def escape_info(info: str) -> str:
    """A fence info string: JupyterLab puts it raw into a class attribute, and marked reads it
    as text when the opener is the last line (a fence interrupts a paragraph only before a
    line break), so it gets the text rules too."""
    return rewrite_text(_defuse_math(info.replace('"', "&quot;"), _MATH_TOKEN))


def quote_fence_info(line: str) -> str:
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
    found = LINE_BREAK.search(src, pos)
    return start, found.start() if found else len(src)


def _definition_ok(src: str, bracket: int) -> bool:
    """Whether the plain one-line definition whose ``]:`` is at bracket may stay one.

    marked lets a definition's title run over many lines (fences included) and starts it on
    the next line too; such a definition must not exist. Its URL must be safe.
    """
    line_break = LINE_BREAK.search(src, bracket)
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
        for line in LINE_BREAK.split(src)[0::2] if "]:" in src else []:
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
        if not math and count % 2 == 1 and nxt == "<" and src[end + 1 : end + 2] in _SIGNIFICANT:
            # An escaped tag is not escaped to marked when a bare URL ends just before it (its
            # autolink takes the backslash): the entity looks the same and is inert everywhere.
            self.emit(end - 1, "&lt;", end + 1)
            return end + 1
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


def rewrite_text(src: str) -> str:
    return _TextRewriter(src).run()
