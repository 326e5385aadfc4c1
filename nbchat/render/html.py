"""HTML that leaves the kernel: model Markdown rendered here, every fragment sanitized.

Model text is untrusted input, like a web page, and the browser never parses Markdown a model
wrote. markdown-it-py renders it to HTML in the kernel (CommonMark with GitHub's tables,
strikethrough, autolinks, task lists, alerts and footnotes; math from mdit-py-plugins), raw HTML
in the text shown as text. Then `document` hands everything nbchat shows, its own markup around
the model's included, to nh3 (Rust's Ammonia), which keeps only the tags, attributes, classes and
URL schemes this renderer and nbchat's own chrome produce. Frontends rank ``text/html`` above
``text/markdown`` (JupyterLab, Notebook 7, VS Code, nbconvert), and JupyterLab inserts trusted
HTML unsanitized and evaluates its ``<script>`` tags: what it gets has none, and no event
handler, style sheet, frame, form or foreign URL scheme either.

- **Math** stays math: the plugins decide what is math (``$..$``, ``$$..$$``, ``\\(..\\)``,
  ``\\[..\\]``, ``\\begin{..}``) and it is emitted as escaped TeX, with its delimiters, in a
  span marked for processing inside a document marked to be ignored (MathJax 3's class names,
  which JupyterLab uses, and MathJax 2's, which nbconvert's templates load). MathJax (JupyterLab's
  runs with its SafeHandler) typesets exactly that and nothing else: a ``$`` in prose stays a
  dollar, a ``\\\\`` two backslashes.
- **Images** become links: nothing is fetched by itself. **Links** keep http, https, mailto and
  in-page ``#`` targets only.
- **Code** in a fence naming a common language is highlighted by Pygments (short token classes,
  coloured by JupyterLab's theme variables, light and dark, from one constant style sheet that is
  appended after cleaning, only when used); other code is plain.
"""

from __future__ import annotations

import hashlib
import html
import re
from collections.abc import Sequence
from functools import cache
from typing import Any

from nbchat.render.code import PRE_STYLE, budget, code_block, style_sheet
from nbchat.render.math import math_rules
from nbchat.wire.surrogates import repaired

__all__ = [
    "PRE_STYLE",
    "GrowingMarkdown",
    "document",
    "escape",
    "markdown",
    "sanitize",
    "table",
    "warm_up",
]

_TAGS = {
    *("a", "blockquote", "br", "code", "details", "div", "em", "hr", "li", "ol", "p", "pre"),
    *("s", "section", "small", "span", "strong", "sub", "summary", "sup", "table", "tbody"),
    *("td", "th", "thead", "tr", "ul", "input"),
    *(f"h{level}" for level in range(1, 7)),
}
_ATTRIBUTES = {
    "a": {"href", "title", "id"},
    "li": {"id"},
    "ol": {"start"},
    **{tag: {"style"} for tag in ("div", "span", "td", "th", "pre")},
}
# Ours: inline styles of nbchat's own chrome (model Markdown never yields a style attribute but
# a table cell's alignment), without url() or anything that could fetch or run.
_STYLE_PROPERTIES = {
    "text-align", "opacity", "font-size", "font-family", "font-style", "white-space",
    "max-height", "overflow-y", "border-left", "padding-left", "margin", "color",
}  # fmt: skip
_IGNORE = "tex2jax_ignore mathjax_ignore"  # MathJax 2's and 3's names
_PROCESS = "tex2jax_process mathjax_process"
_CLASSES = {
    "div": {"nbchat", "nbchat-math", *_IGNORE.split(), *_PROCESS.split()},
    "span": {"nbchat-math", *_PROCESS.split()},
    "pre": {"highlight"},
    "ul": {"contains-task-list"},
    "li": {"task-list-item", "footnote-item"},
    "sup": {"footnote-ref"},
    "section": {"footnotes"},
}
_LINK = re.compile(r"(?i)(?:https?://[^/\\]|mailto:|#)")
_FOOTNOTE_ID = re.compile(r"fn(?:ref)?-[0-9a-f]{12}-\d+(?::\d+)?")
_CHROME = f"nbchat {_IGNORE}"
_LEFT = "text-align:left"  # JupyterLab aligns HTML table cells right (DataFrames); text reads left


def escape(text: str) -> str:
    """Text shown literally in HTML."""
    return html.escape(text, quote=True)


def markdown(text: str) -> str:
    """Model Markdown as an HTML fragment (raw HTML shown as text); not yet sanitized: put it in
    a `document`, which cleans it."""
    if not text:
        return ""
    text = repaired(text)  # a lone UTF-16 half cannot be encoded, nor sanitized
    doc_id = hashlib.sha256(text.encode("utf-8")).hexdigest()[:12]
    with budget():
        return str(_parser().render(text, {"docId": doc_id}))


def table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """A table of plain-text cells (escaped here)."""
    head = "".join(f'<th style="{_LEFT}">{escape(cell)}</th>' for cell in header)
    body = "".join(
        "<tr>" + "".join(f'<td style="{_LEFT}">{escape(str(cell))}</td>' for cell in row) + "</tr>"
        for row in rows
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def sanitize(fragment: str) -> str:
    """``fragment`` cleaned by nh3 against nbchat's allowlist."""
    return str(_cleaner().clean(repaired(fragment)))


def document(body: str) -> str:
    """The HTML of one output: ``body`` (nbchat's markup, with `markdown` and `escape` inside)
    sanitized in a wrapper MathJax ignores, then the code style sheet if code was coloured."""
    cleaned = sanitize(f'<div class="{_CHROME}">{body}</div>')
    if '<pre class="highlight"' not in cleaned:
        return cleaned
    return cleaned + style_sheet(frozenset(re.findall(r'<span class="([a-z0-9]{1,3})">', cleaned)))


def warm_up() -> None:
    """Import and set up the parsers and the sanitizer now (about 0.1 s, once per process)."""
    document(markdown("*a* $b$ `c` http://d.e"))


# -- the parser -----------------------------------------------------------------------------


@cache
def _parser() -> Any:
    """markdown-it-py, set up once: CommonMark, GitHub's extensions, math, our renderers."""
    from markdown_it import MarkdownIt
    from mdit_py_plugins.dollarmath import dollarmath_plugin
    from mdit_py_plugins.footnote import footnote_plugin

    md = MarkdownIt("commonmark", {"html": False, "linkify": True, "highlight": _highlight})
    md.enable(["table", "strikethrough", "linkify"])
    md.options.update(tasklists=True, alerts=True)
    # Bare URLs and e-mail addresses (linkify-it; mdit-py-plugins' GFM autolink rule is
    # quadratic on long lines); no bare domains: "setup.py" is no link.
    md.linkify.set({"fuzzy_link": False, "fuzzy_email": True})
    # linkify-it's own pretest is a Unicode-class regex (about 0.4 µs a byte): a text with
    # neither "//" nor "@" holds no link it would make here, so it skips the scan.
    pretest = md.linkify.pretest
    md.linkify.pretest = lambda text: ("//" in text or "@" in text) and pretest(text)
    md.use(footnote_plugin, inline=False)
    # Pandoc's rule for "$": no space inside the delimiters, no digit after the closing one, so
    # "costs $5 and $10" is prose.
    md.use(dollarmath_plugin, allow_space=False, allow_digits=False, double_inline=True)
    md.use(math_rules)
    for kind in ("math_inline", "math_inline_double", "math_block", "math_block_label"):
        md.add_render_rule(kind, _render_math)
    md.add_render_rule("math_block_eqno", _render_math)
    md.add_render_rule("amsmath", _render_math)
    md.add_render_rule("image", _render_image)
    md.add_render_rule("code_block", _render_code_block)
    for cell in ("th_open", "td_open"):
        md.add_render_rule(cell, _render_cell)
    return md


_CLOSING = {"$": "$", "$$": "$$", "\\(": "\\)", "\\[": "\\]"}
_DISPLAY = {"math_block", "math_block_label", "math_block_eqno", "amsmath"}
_LABELLED = {"math_block_label", "math_block_eqno"}
# TeX that makes MathJax write HTML of its own (links, classes, styles, ids, raw MathML) or load
# an extension, or that defines macros (they are global to the page): shown as text instead.
_ACTIVE_TEX = re.compile(
    r"\\(?:href|mmlToken|require|class|cssId|style|html|unicode|bbox|data|def|gdef|edef|xdef"
    r"|let|newcommand|renewcommand|providecommand|newenvironment|renewenvironment"
    r"|DeclareMathOperator)(?![A-Za-z])"
)


def _render_math(renderer: Any, tokens: Any, index: int, options: Any, env: Any) -> str:
    """TeX as escaped text between its own delimiters, marked for MathJax to typeset."""
    token = tokens[index]
    opening = token.markup if token.markup in _CLOSING else ""
    if token.type != "amsmath" and not opening:  # a block label's or number's own markup
        opening = "\\["
    tex = f"{opening}{token.content}{_CLOSING.get(opening, '')}"
    if _ACTIVE_TEX.search(tex):  # not math to typeset: text
        return f"<code>{escape(tex)}</code>"
    if token.type not in _DISPLAY:
        return f'<span class="nbchat-math {_PROCESS}">{escape(tex)}</span>'
    labelled = token.type in _LABELLED and token.info
    label = f" ({escape(token.info)})" if labelled else ""  # outside the delimiters: text
    return f'<div class="nbchat-math {_PROCESS}">{escape(tex)}{label}</div>\n'


def _render_image(renderer: Any, tokens: Any, index: int, options: Any, env: Any) -> str:
    """An image as a link to it, never fetched by itself."""
    token = tokens[index]
    alt = renderer.renderInlineAsText(token.children or [], options, env) or "image"
    return f'<a href="{escape(token.attrGet("src") or "")}">image: {escape(alt)}</a>'


def _render_code_block(renderer: Any, tokens: Any, index: int, options: Any, env: Any) -> str:
    """Indented code, spaced like a fence."""
    return f'<pre style="{PRE_STYLE}"><code>{escape(tokens[index].content)}</code></pre>\n'


def _highlight(code: str, language: str, attributes: Any) -> str:
    """A fence, coloured where it can be (`render.code`)."""
    return code_block(code, language)


def _render_cell(renderer: Any, tokens: Any, index: int, options: Any, env: Any) -> str:
    """A table cell aligned as its column says, else left."""
    token = tokens[index]
    if token.attrGet("style") is None:
        token.attrSet("style", _LEFT)
    return str(renderer.renderToken(tokens, index, options, env))


# -- the sanitizer --------------------------------------------------------------------------


@cache
def _cleaner() -> Any:
    import nh3
    from pygments.token import STANDARD_TYPES

    classes = {**_CLASSES, "span": _CLASSES["span"] | set(STANDARD_TYPES.values()) - {""}}
    return nh3.Cleaner(
        tags=_TAGS,
        clean_content_tags={"script", "style"},
        attributes=_ATTRIBUTES,
        attribute_filter=_attribute_filter,
        url_schemes={"http", "https", "mailto"},
        url_relative=_in_page_only,
        allowed_classes=classes,
        filter_style_properties=_STYLE_PROPERTIES,
        # A task list's box, disabled; as markdown-it writes it (Ammonia's attribute setting
        # would order attributes differently in every process: outputs must be reproducible).
        tag_attribute_values={"input": {"type": {"checkbox"}, "disabled": {""}, "checked": {""}}},
    )


def _attribute_filter(tag: str, name: str, value: str) -> str | None:
    """Only the footnote plugin's ids (the document's own prefix), never one a model picks; a
    link only to an absolute http(s) URL, mail or a place in the page (Ammonia reads
    ``http:/lab`` as absolute, but the browser resolves it against the Jupyter server)."""
    if name == "id":
        return value if _FOOTNOTE_ID.fullmatch(value) else None
    if name == "href":
        bare = re.sub(r"[\x00-\x20\x7f]", "", value)
        return value if _LINK.match(bare) else None
    return value


def _in_page_only(url: str) -> str | None:
    """A relative URL is kept only as an in-page anchor (footnotes); others would resolve
    against the Jupyter server."""
    return url if url.startswith("#") else None


class GrowingMarkdown:
    """Markdown that only grows (a streamed answer), rendered again cheaply on each update.

    The blocks before the last one are settled: rendered once and kept. Only the last block,
    which more text may still change, is rendered each time, so an update costs the size of
    the last block, not of the whole answer. (A reference definition arriving later does not
    reach settled blocks until the final render, which is whole.)
    """

    def __init__(self) -> None:
        self._settled_lines = 0
        self._settled_html: list[str] = []

    def html(self, text: str) -> str:
        """The HTML of ``text``, which extends the text of the previous call."""
        lines = re.sub(r"\r\n?", "\n", text).split("\n")
        lines = [line + "\n" for line in lines[:-1]] + lines[-1:]
        tail = lines[self._settled_lines :]
        blocks = _blocks("".join(tail))
        done = blocks[-1][0] if len(blocks) > 1 else 0
        # A last block that starts on the line still being written, right under the block
        # before it, may yet join it ("#" is a heading, "#<" that paragraph's next line): then
        # only the blocks before that one are settled.
        if done and done == len(tail) - 1 and blocks[-2][1] == done:
            done = blocks[-2][0] if len(blocks) > 2 else 0
        if done:
            self._settled_html.append(markdown("".join(tail[:done])))
            self._settled_lines += done
            tail = tail[done:]
        return "".join(self._settled_html) + markdown("".join(tail))


def _blocks(text: str) -> list[tuple[int, int]]:
    """The lines (first, past the last) of each top-level block of ``text`` (block parsing
    only: cheap)."""
    md = _parser()
    tokens: list[Any] = []
    md.block.parse(text, md, {}, tokens)
    return [
        (token.map[0], token.map[1])
        for token in tokens
        if token.level == 0 and token.nesting >= 0 and token.map
    ]
