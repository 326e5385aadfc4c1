"""Math in model text that is not in dollars: ``\\(..\\)``, ``\\[..\\]`` and ``\\begin{env}``.

mdit-py-plugins' ``texmath`` and ``amsmath`` parse these, but each opening scans the rest of the
text for its closing: a hostile answer of 200 kB of ``\\(`` kept the kernel busy for 80 s, on
every replay. These rules find the closing of an opening by a binary search among the closings'
positions, found once per text, so rendering stays linear. They make the same tokens as the
plugins (``math_inline``, ``math_block``, ``math_block_eqno``, ``amsmath``), which
`render.html` renders.
"""

from __future__ import annotations

import re
from bisect import bisect_left
from typing import Any

__all__ = ["math_rules"]

# The amsmath environments that stand as display math on their own (as the plugin reads them).
_ENVIRONMENTS = (
    "equation|multline|gather|align|alignat|flalign|matrix|pmatrix|bmatrix|Bmatrix|vmatrix|"
    "Vmatrix|eqnarray"
)
_BEGIN = re.compile(rf"\\begin\{{({_ENVIRONMENTS})(\*?)\}}")
_LABEL = re.compile(r"[ \t]*\(([^)\n]*)\)[ \t]*$")


def _positions(env: dict[str, Any], text: str, needle: str) -> list[int]:
    """Where ``needle`` occurs in ``text``, found once per text and kept in the parse's env."""
    cache = env.setdefault("nbchat_math_closings", {})
    found = cache.get((needle, id(text)))
    if found is None or found[0] is not text:
        found = cache[(needle, id(text))] = (
            text,
            [m.start() for m in re.finditer(re.escape(needle), text)],
        )
    return found[1]


def _closing(env: dict[str, Any], text: str, needle: str, start: int, end: int) -> int:
    """The first ``needle`` in ``text[start:end]``, or -1."""
    positions = _positions(env, text, needle)
    at = bisect_left(positions, start)
    return positions[at] if at < len(positions) and positions[at] < end else -1


def _inline_brackets(state: Any, silent: bool) -> bool:
    """``\\(tex\\)`` in a paragraph."""
    src, pos = state.src, state.pos
    if not src.startswith("\\(", pos):
        return False
    close = _closing(state.env, src, "\\)", pos + 3, state.posMax)  # at least one character
    if close < 0:
        return False
    if not silent:
        token = state.push("math_inline", "math", 0)
        token.content, token.markup = src[pos + 2 : close], "\\("
    state.pos = close + 2
    return True


def _line_start(state: Any, line: int) -> int:
    return int(state.bMarks[line] + state.tShift[line])


def _block_end(state: Any, start_line: int, end_line: int, close: int) -> int:
    """The line that holds the text position ``close``."""
    line = start_line
    while line < end_line and state.eMarks[line] < close:
        line += 1
    return line


def _block_brackets(state: Any, start_line: int, end_line: int, silent: bool) -> bool:
    """``\\[tex\\]`` starting a block, perhaps over several lines, perhaps numbered ``(1)``."""
    if state.sCount[start_line] - state.blkIndent >= 4:  # indented code
        return False
    begin = _line_start(state, start_line)
    if not state.src.startswith("\\[", begin):
        return False
    close = _closing(state.env, state.src, "\\]", begin + 3, len(state.src))
    if close < 0:
        return False
    last = _block_end(state, start_line, end_line, close)
    if last >= end_line:
        return False
    rest = state.src[close + 2 : state.eMarks[last]]
    label = _LABEL.match(rest)
    if rest.strip() and label is None:
        return False
    if silent:
        return True
    token = state.push("math_block_eqno" if label else "math_block", "math", 0)
    token.content, token.markup = state.src[begin + 2 : close], "\\["
    token.info = label.group(1) if label else ""
    token.map = [start_line, last + 1]
    state.line = last + 1
    return True


def _environment(state: Any, start_line: int, end_line: int, silent: bool) -> bool:
    """``\\begin{align} .. \\end{align}`` (and the other amsmath environments) as a block."""
    if state.sCount[start_line] - state.blkIndent >= 4:
        return False
    begin = _line_start(state, start_line)
    opening = _BEGIN.match(state.src, begin)
    if opening is None:
        return False
    ending = f"\\end{{{opening.group(1)}{opening.group(2)}}}"
    close = _closing(state.env, state.src, ending, opening.end(), len(state.src))
    if close < 0:
        return False
    last = _block_end(state, start_line, end_line, close)
    if last >= end_line or state.src[close + len(ending) : state.eMarks[last]].strip():
        return False
    if silent:
        return True
    token = state.push("amsmath", "math", 0)
    token.content = state.src[begin : close + len(ending)]
    token.map = [start_line, last + 1]
    state.line = last + 1
    return True


def math_rules(md: Any) -> None:
    """Add the rules to a markdown-it parser (before its escapes and fences)."""
    md.inline.ruler.before("escape", "math_inline_brackets", _inline_brackets)
    alt = {"alt": ["paragraph", "reference", "blockquote", "list", "footnote_def"]}
    md.block.ruler.before("fence", "math_block_brackets", _block_brackets, alt)
    md.block.ruler.before("fence", "math_environment", _environment, alt)
