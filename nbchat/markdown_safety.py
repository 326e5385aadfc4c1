"""Model text made safe to put in a trusted ``text/markdown`` output.

JupyterLab renders Markdown produced in the running session as trusted: HTML inside it runs
unsanitized (marked, then ``innerHTML``). Model text is untrusted, so ``safe_markdown`` makes sure
no HTML tag, comment, declaration or unsafe link from the model reaches the renderer, while
ordinary Markdown (headings, emphasis, lists, tables, code, math, links) renders as the model meant.

The only danger is HTML-significant ``<`` (followed by an ASCII letter, ``/``, ``!`` or ``?``)
reaching the renderer outside code, a ``javascript:``-like link, or an image (which the browser
fetches by itself). So, in text:

- every significant ``<`` becomes ``&lt;``, a backslash-escaped one too (marked's bare-URL
  autolink takes the backslash into the URL, which would leave the ``<`` raw); ``<br>``, ``<sub>``,
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

from itertools import accumulate

from nbchat._markdown_blocks import OPEN, TEXT, BlockScan
from nbchat._markdown_inline import LINE_BREAK, escape_info, quote_fence_info, rewrite_text

__all__ = ["safe_markdown", "surely_text_lines"]


def safe_markdown(text: str) -> str:
    """Model text made safe to put in a text/markdown output: no raw HTML, unsafe link or image.

    Markdown, fenced code (where surely a fence), and math render as before; text without an
    HTML-significant ``<``, ``![``, ``](``, ``]:`` or ``$`` comes back unchanged.
    """
    parts = LINE_BREAK.split(text)
    lines = parts[0::2]
    scan = BlockScan(lines, text)
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
                chunk = "".join(map(quote_fence_info, LINE_BREAK.split(chunk)))
            chunk = rewrite_text(chunk)
        elif kind == OPEN:
            start = offsets[index] + info_at[index]
            info_end = offsets[index] + len(lines[index])
            chunk = (
                text[offsets[index] : start]
                + escape_info(text[start:info_end])
                + text[info_end : offsets[end]]
            )
        out.append(chunk)
        index = end
    return "".join(out)


def surely_text_lines(text: str) -> list[bool]:
    """For each line of ``text``: whether every renderer surely reads it outside code (not in a
    fence, nor after the point where the block scan stopped being sure)."""
    lines = LINE_BREAK.split(text)[0::2]
    scan = BlockScan(lines, text)
    kinds, _ = scan.run()
    return [kind == TEXT and index < scan.uncertain_from for index, kind in enumerate(kinds)]
