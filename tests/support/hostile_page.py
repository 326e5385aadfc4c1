"""The attacker's text for the browser tests, and the checks, run in the page, that none of it
ever ran: the three families of text that ran script in JupyterLab before issue 16, and a
watch on every element added to an output."""

from __future__ import annotations

import json
from typing import Any

from support.jupyterlab import Browser
from support.lab_page import OUTPUTS


def _fill(template: str, **values: str) -> str:
    """``template`` (script) with each NAME replaced by its value."""
    for name, value in values.items():
        template = template.replace(name, value)
    return template


def pwn(name: str, target: str = "window") -> str:
    """Script that leaves a trace if it ever runs: ``name`` appended to ``window.__pwned``."""
    return f"{target}.__pwned=({target}.__pwned||[]).concat('{name}')"


# An animation JupyterLab's own style sheets define (Font Awesome's spinner): an element given
# it in a style attribute would fire its ``onanimationstart`` at once, without a click.
KEYFRAME = "fa-spin"
ALERT_IMG = "<img src=x onerror=alert(1)>"


def _img(name: str) -> str:
    return f'<img src=x onerror="{pwn(name)}">'


def family_three(name: str) -> str:
    """Doubled backslashes before math delimiters around a bare URL (issue 16, family 3): once as
    found (a dialog, were it to run) and once leaving the trace ``name``."""
    return f"\\\\(http://a.com/{ALERT_IMG}\\\\) \\\\(http://b.com/{_img(name)}\\\\)"


def family_three_shown(name: str) -> list[str]:
    """What `family_three` must show as text, whatever the frontend does with its backslashes
    (JupyterLab's MathJax takes ``\\\\`` for an escaped backslash: see
    `test_nbchat_text_is_not_typeset_outside_its_math`)."""
    return [f"http://a.com/{ALERT_IMG}", f"http://b.com/{_img(name)}"]


def families(name: str) -> str:
    """Markdown holding the three families of text that ran script in JupyterLab before issue 16,
    each once as the attacker wrote it (``alert(1)``: a dialog) and once leaving a trace named
    ``name``: (1) HTML inside what looked like math (``\\(..\\)``, ``\\[..\\]``, ``$$..\\$$``,
    ``\\begin{x}``), (2) a ``$`` in a link title hiding its quotes, with a style that starts a
    loaded animation, (3) doubled backslashes before math delimiters in a bare URL."""
    blocks = []
    for img, handler in ((ALERT_IMG, "alert(1)"), (_img(name), pwn(name))):
        blocks += [
            f"Docs: \\(http://a.com\\{img}\\)",
            f"\\[http://a.com\\{img}\\]",
            f"$$http://a.com\\{img}\\$$",
            f"\\begin{{x}}http://a.com\\{img}\\end{{x}}",
            f'[a](http://x "$" onanimationstart={handler} style=animation-name:{KEYFRAME} "$")',
            f"\\\\(http://a.com/{img}\\\\)",
        ]
    return "\n\n".join(blocks)


# -- nothing ran ---------------------------------------------------------------------------

# What no output may hold: elements that run script, embed, fetch or submit by themselves, or
# open a foreign namespace (SVG, MathML); event-handler attributes; URLs with a scheme that runs
# or embeds (javascript:, data:, vbscript:); style that fetches or animates. Two things nbchat and
# JupyterLab put there themselves are not model text and are allowed: the style sheet nbchat
# appends after a document with coloured code (only its `.nbchat .highlight` rules), and the
# MathML copy MathJax makes from TeX for screen readers (inside `<mjx-assistive-mml>`).
_ACTIVE = (
    "script, iframe, frame, frameset, object, embed, applet, img, image, picture, svg, math, "
    "form, input:not([type=checkbox]), button, textarea, select, base, meta, link, style, "
    "video, audio, source, track, portal, template, [srcdoc], [src], [srcset], [formaction]"
)
_URL_ATTRIBUTES = ["href", "src", "action", "formaction", "xlink:href", "data", "poster"]
_OUR_STYLE = r"^(\.nbchat \.highlight \.[a-z0-9]+ \{ [a-z0-9:;(),#\- %.]+ \})+$"
# (element) => what is wrong with it, or null.
_UNSAFE = _fill(
    r"""(el) => {
    const problems = [];
    const ours = el.matches('style') && !!el.previousElementSibling?.matches('div.nbchat')
        && /OUR_STYLE/.test(el.textContent.trim());
    const mathjax = el.matches('mjx-assistive-mml > math');
    if (el.matches(ACTIVE) && !ours && !mathjax) problems.push(`<${el.localName}>`);
    for (const {name, value} of el.attributes) {
        const url = value.replace(/[\s\x00-\x1f]/g, '').toLowerCase();
        if (name.startsWith('on')) problems.push(name);
        if (URLS.includes(name) && /^(javascript|data|vbscript):/.test(url)) {
            problems.push(`${name}=${value}`);
        }
        if (name === 'style' && /url\(|animation|expression|binding|@import/i.test(value)) {
            problems.push(`style=${value}`);
        }
    }
    return problems.length ? `${problems.join(' ')} in ${el.outerHTML.slice(0, 200)}` : null;
}""",
    OUR_STYLE=_OUR_STYLE,
    ACTIVE=json.dumps(_ACTIVE),
    URLS=json.dumps(_URL_ATTRIBUTES),
)
WATCH_OUTPUTS = f"""() => {{
    window.__active = [];  // every unsafe element ever added to an output, live or final
    window.__liveRenders = 0;  // renders of the answer's HTML inside the live view
    window.__liveMath = 0;  // formulas MathJax typeset inside the live view
    const unsafe = {_UNSAFE};
    // In an output: the node, or where it was added. (A live render may be replaced, so
    // detached, by the time this runs: it is then counted as live.)
    const area = '.jp-OutputArea-output';
    const inspect = (el, live) => {{
        const problem = unsafe(el);
        if (problem) window.__active.push(problem);
        if (live && el.matches('.jp-RenderedHTMLCommon')) window.__liveRenders += 1;
        if (live && el.matches('mjx-container')) window.__liveMath += 1;
    }};
    new MutationObserver((mutations) => {{
        for (const mutation of mutations) {{
            const where = mutation.target;
            const live = !!where.closest('.widget-output') || !where.isConnected;
            for (const node of mutation.addedNodes) {{
                if (!(node instanceof Element)) continue;
                if (!node.closest(area) && !where.closest(area)) continue;
                [node, ...node.querySelectorAll('*')].forEach((el) => inspect(el, live));
            }}
            if (mutation.type === 'attributes' && where.closest(area)) inspect(where, false);
        }}
    }}).observe(document.querySelector('.jp-NotebookPanel .jp-Notebook'),
                {{childList: true, subtree: true, attributes: true}});
}}"""
# Every problem of an element and everything inside it, now.
ACTIVE_NOW = f"""(output) => [output, ...output.querySelectorAll('*')]
    .map({_UNSAFE}).filter((problem) => problem !== null)"""
# The same for every output of a cell's output area (not JupyterLab's own icons around them).
OUTPUTS_ACTIVE_NOW = f"""(area) => [...area.querySelectorAll('.jp-OutputArea-output')]
    .flatMap({ACTIVE_NOW})"""


def nothing_ran(browser: Browser) -> None:
    """No script of the model or the server ran: no trace, no dialog, nothing unsafe ever added
    to an output (when `WATCH_OUTPUTS` watches)."""
    page = browser.page
    assert page.evaluate("() => window.__pwned ?? null") is None
    assert browser.dialogs == []
    assert page.evaluate("() => window.__active ?? []") == []


def check_outputs_inert(cell: Any) -> None:
    """Nothing unsafe in any of the cell's outputs, as they are now."""
    for output in cell.locator(OUTPUTS).all():
        assert output.evaluate(ACTIVE_NOW) == []
