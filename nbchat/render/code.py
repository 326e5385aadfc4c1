"""Code in model text, coloured by Pygments within a time budget, and the style sheet for it.

Only fences that name a common language are coloured; nothing is guessed. Pygments' lexers are
regular expressions, and some go quadratic on crafted input (a 20 kB C# fence of one-word lines
took 36 s), so the tokens of an answer's code are read within a budget of CPU time (`budget`):
past it, the rest of that answer's code is shown plain. The budget counts this thread's CPU
time spent reading tokens only (not the import of a lexer, not other processes' load), so the
same answer renders to the same bytes on a busy machine as on an idle one. The colours are
JupyterLab's editor theme variables (light and dark alike), in a style sheet of the token
classes an output uses.
"""

from __future__ import annotations

import contextvars
import html
import io
import time
from collections.abc import Iterator
from contextlib import contextmanager
from functools import cache
from typing import Any

__all__ = ["PRE_STYLE", "budget", "code_block", "style_sheet"]

# JupyterLab spaces a <pre> only at the top of an output (``> pre``); ours sit in a wrapper.
PRE_STYLE = "margin: 1.5em 2em"
_ALIASES = {  # names a model writes for the lexers below (IPython's own lexer is quadratic)
    **{"yml": "yaml", "py": "python", "js": "javascript", "ts": "typescript", "sh": "bash"},
    **{"ipython": "python", "ipython3": "python", "python3": "python", "shell-session": "console"},
}
_LANGUAGES = frozenset(
    {
        *("bash", "c", "console", "cpp", "csharp", "css", "diff", "dockerfile", "go", "html"),
        *("ini", "java", "javascript", "json", "julia", "kotlin", "latex", "lua"),
        *("make", "markdown", "matlab", "php", "pycon", "python", "r", "ruby", "rust", "scala"),
        *("shell", "sql", "swift", "tex", "toml", "typescript", "xml", "yaml"),
    }
)
_HIGHLIGHT_LIMIT = 50_000  # characters of one code block worth colouring
_BUDGET_S = 0.05  # seconds of colouring one answer may take
_CHECK_EVERY = 16  # tokens between looks at the clock
# The CPU seconds of colouring left to the answer being rendered (a one-item list, spent from).
_LEFT: contextvars.ContextVar[list[float]] = contextvars.ContextVar("nbchat_code_budget")


@contextmanager
def budget(seconds: float = _BUDGET_S) -> Iterator[None]:
    """Colour the code rendered inside for at most ``seconds`` of CPU time in all (within any
    budget already running)."""
    outer = _LEFT.get(None)
    token = _LEFT.set([min(seconds, outer[0]) if outer else seconds])
    try:
        yield
    finally:
        spent = _LEFT.get()
        _LEFT.reset(token)
        if outer is not None:
            outer[0] = min(outer[0], spent[0])


def code_block(code: str, language: str) -> str:
    """A fence as HTML: coloured when it names a common language and there is time, else plain
    (escaped)."""
    name = language.strip().lower()
    name = _ALIASES.get(name, name)
    spans = _coloured(code, name) if name in _LANGUAGES and len(code) <= _HIGHLIGHT_LIMIT else None
    if spans is None:
        return f'<pre style="{PRE_STYLE}"><code>{html.escape(code)}</code></pre>'
    return f'<pre class="highlight" style="{PRE_STYLE}"><code>{spans}</code></pre>'


def _coloured(code: str, name: str) -> str | None:
    """Pygments' spans for ``code``, or None when the budget is spent first."""
    left = _LEFT.get(None) or [_BUDGET_S]
    lexer = _lexer(name)  # loading it is not reading tokens
    start, tokens = time.thread_time(), []
    try:
        for count, token in enumerate(lexer.get_tokens(code)):
            tokens.append(token)
            if count % _CHECK_EVERY == 0 and time.thread_time() - start > left[0]:
                return None
    finally:
        left[0] = max(left[0] - (time.thread_time() - start), 0.0)
    out = io.StringIO()
    _formatter().format(iter(tokens), out)
    return out.getvalue()


@cache
def _lexer(name: str) -> Any:
    from pygments.lexers import get_lexer_by_name

    return get_lexer_by_name(name)


@cache
def _formatter() -> Any:
    from pygments.formatters import HtmlFormatter

    return HtmlFormatter(nowrap=True)  # its set-up (a style sheet) costs more than a block


# Pygments' short class -> CSS, from JupyterLab's editor theme variables (light and dark alike);
# the fallbacks read on light and dark backgrounds where those variables are not defined.
_COLOURS = {
    "keyword": "color: var(--jp-mirror-editor-keyword-color, #a04bb5); font-weight: bold",
    "string": "color: var(--jp-mirror-editor-string-color, #3a8a3a)",
    "number": "color: var(--jp-mirror-editor-number-color, #2a8a6a)",
    "comment": "color: var(--jp-mirror-editor-comment-color, #808080); font-style: italic",
    "builtin": "color: var(--jp-mirror-editor-builtin-color, #2f7fbf)",
    "def": "color: var(--jp-mirror-editor-def-color, #2f6fdf)",
    "operator": "color: var(--jp-mirror-editor-operator-color, #a04bb5)",
    "meta": "color: var(--jp-mirror-editor-meta-color, #a05a2c)",
    "tag": "color: var(--jp-mirror-editor-tag-color, #2a8a3a)",
    "attribute": "color: var(--jp-mirror-editor-attribute-color, #6f5fbf)",
    "error": "color: var(--jp-mirror-editor-error-color, #d03030)",
}
_KINDS = {  # the first matching prefix of a Pygments token type's name
    "Keyword": "keyword", "Operator.Word": "keyword", "Operator": "operator",
    "Literal.String": "string", "Literal.Number": "number", "Comment": "comment",
    "Name.Builtin": "builtin", "Name.Function": "def", "Name.Class": "def",
    "Name.Decorator": "meta", "Name.Tag": "tag", "Name.Attribute": "attribute",
    "Generic.Deleted": "error", "Generic.Inserted": "string", "Generic.Heading": "keyword",
    "Generic.Subheading": "keyword",
}  # fmt: skip


@cache
def _class_styles() -> dict[str, str]:
    from pygments.token import STANDARD_TYPES

    styles = {}
    for token_type, short in STANDARD_TYPES.items():
        name = ".".join(token_type)
        kind = next((k for prefix, k in _KINDS.items() if name.startswith(prefix)), None)
        if short and kind:
            styles[short] = _COLOURS[kind]
    return styles


def style_sheet(used: frozenset[str]) -> str:
    """The rules for the token classes this output uses, scoped to nbchat's outputs."""
    styles = _class_styles()
    rules = "".join(
        f".nbchat .highlight .{name} {{ {styles[name]} }}" for name in sorted(used & styles.keys())
    )
    return f"<style>{rules}</style>" if rules else ""
