"""What "nothing executable" means for HTML that nbchat emits, checked by parsing it.

`executable(html)` lists every construct a browser (or JupyterLab's trusted-HTML path, which
evaluates ``<script>``) could run or that fetches by itself: script and other active elements,
event-handler attributes, script-capable URL schemes, style that fetches or runs, SVG/MathML
islands, forms and frames. An empty list means the HTML is inert.
"""

from __future__ import annotations

import html
import re
from html.parser import HTMLParser

# Elements that run, embed, fetch, navigate or submit by themselves, or open a foreign
# namespace (SVG/MathML carry their own script and handler tricks).
ACTIVE_TAGS = frozenset(
    {
        *("script", "iframe", "frame", "frameset", "object", "embed", "applet", "base"),
        *("meta", "link", "form", "button", "textarea", "select", "option", "svg", "math"),
        *("img", "image", "video", "audio", "source", "track", "picture", "portal", "template"),
        *("noscript", "xmp", "plaintext", "noembed", "noframes", "iframe", "marquee", "dialog"),
        *("animate", "set", "foreignobject", "use", "style"),
    }
)
URL_ATTRIBUTES = frozenset(
    {"href", "src", "action", "formaction", "xlink:href", "data", "poster", "background"}
)
SAFE_SCHEMES = frozenset({"http", "https", "mailto"})
_STYLE_DANGER = re.compile(r"url\s*\(|expression\s*\(|behavior\s*:|-moz-binding|@import", re.I)
_OUR_STYLE = re.compile(r"\.nbchat \.highlight \.[a-z0-9]+ \{ [a-z0-9:;(),#\- %.]+ \}")


def scheme_of(url: str | None) -> str | None:
    """The scheme a browser would see, after entities, controls and whitespace."""
    decoded = re.sub(r"[\x00-\x20\x7f]", "", html.unescape(url or "")).lower()
    found = re.match(r"[a-z][a-z0-9+.\-]*:", decoded)
    return found.group()[:-1] if found else None


class _Check(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.problems: list[str] = []
        self._in_style = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "style":
            self._in_style = True  # ours is checked rule by rule below
        elif tag in ACTIVE_TAGS:
            self.problems.append(f"<{tag}>")
        if tag == "input" and dict(attrs).get("type") != "checkbox":
            self.problems.append(f"<input type={dict(attrs).get('type')!r}>")
        for name, value in attrs:
            if name.startswith("on"):
                self.problems.append(f"{tag} {name}=")
            elif name in URL_ATTRIBUTES:
                scheme = scheme_of(value)
                if scheme is not None and scheme not in SAFE_SCHEMES:
                    self.problems.append(f"{tag} {name}={value!r}")
            elif name == "style" and _STYLE_DANGER.search(html.unescape(value or "")):
                self.problems.append(f"{tag} style={value!r}")
            elif name in ("srcdoc", "formaction", "autofocus") or name.startswith("data-"):
                self.problems.append(f"{tag} {name}=")

    def handle_endtag(self, tag: str) -> None:
        if tag == "style":
            self._in_style = False

    def handle_data(self, data: str) -> None:
        if self._in_style and _OUR_STYLE.sub("", data).strip():
            self.problems.append(f"style sheet {data[:80]!r}")

    def handle_comment(self, data: str) -> None:
        self.problems.append("comment")

    def handle_decl(self, decl: str) -> None:
        self.problems.append("declaration")

    def handle_pi(self, data: str) -> None:
        self.problems.append("processing instruction")


def executable(markup: str) -> list[str]:
    """Every executable or self-fetching construct in ``markup`` (empty: inert)."""
    check = _Check()
    check.feed(markup)
    check.close()
    return check.problems


# The attacker's three families (issue 16) and variants: math that is not math to the browser,
# a "$" inside a link title, doubled backslashes before math delimiters, and the classics.
PAYLOAD = "<img src=x onerror=alert(1)>"
HOSTILE = [
    f"Docs: \\(http://a.com\\{PAYLOAD}\\)",
    f"\\[http://a.com\\{PAYLOAD}\\]",
    f"$$http://a.com\\{PAYLOAD}\\$$",
    f"\\begin{{x}}http://a.com\\{PAYLOAD}\\end{{x}}",
    '[a](http://x "$" onanimationstart=alert(1) style=animation-name:spin "$")',
    '[a](http://x "t$i" onmouseover="alert(1)$")',
    f"\\\\(http://a.com/{PAYLOAD}\\\\)",
    "www.a.com\\\\(x)\\\\(<b onclick=alert(1)>",
    PAYLOAD,
    "<script>alert(1)</script>",
    "<svg><script>alert(1)</script></svg>",
    '<math><mtext><table><mglyph><style><img src=x onerror="alert(1)">',
    "[x](javascript:alert(1))",
    "[x](JaVaScRiPt&#58;alert(1))",
    "[x](data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==)",
    "![i](javascript:alert(1))",
    "![i](http://tracker.example/pixel.png)",
    "<a href='javascript:alert(1)'>x</a>",
    "<iframe src=//evil></iframe><object data=x></object><embed src=x>",
    "<base href=//evil/><meta http-equiv=refresh content='0;url=//evil'>",
    "<form action=//evil><button>go</button></form>",
    '<div style="background:url(//evil)">x</div>',
    "<!-- comment --><!DOCTYPE html><?xml?>",
    "```\n</code></pre><img src=x onerror=alert(1)>\n```",
    '```js" onclick="alert(1)\nx\n```',
    "`</code>" + PAYLOAD + "`",
    f"| a | b |\n|---|---|\n| `x | {PAYLOAD} ` |",
    f"[^1]\n\n[^1]: {PAYLOAD}",
    f"- [x] {PAYLOAD}",
    f"> [!NOTE]\n> {PAYLOAD}",
    f"<details open ontoggle=alert(1)>{PAYLOAD}</details>",
    f"[x]: javascript:alert(1)\n\n[link][x] {PAYLOAD}",
    f"$a<b$ and $x{PAYLOAD}$",
    "<a href=x data-commandlinker-command=terminal:create-new>x</a>",
    '<span id="jupyter-config-data" class="jp-Notebook">x</span>',
]


def visible_text(markup: str) -> str:
    """The text a reader sees, tags dropped and entities decoded (for asserting on content)."""
    return html.unescape(re.sub(r"<style>.*?</style>|<[^>]+>", "", markup, flags=re.S))


# How every output nbchat shows begins (MathJax 2's and 3's "skip this" classes), and how its
# blocks of code and its math are marked.
WRAPPER = '<div class="nbchat tex2jax_ignore mathjax_ignore">'
CODE = '<pre class="highlight" style="margin:1.5em 2em"><code>'
PLAIN_CODE = '<pre style="margin:1.5em 2em"><code>'
MATH = '<span class="nbchat-math tex2jax_process mathjax_process">'
