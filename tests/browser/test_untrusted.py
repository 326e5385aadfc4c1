"""Model and server text is untrusted: HTML, ``javascript:`` links, images and the three families
of text that ran script in JupyterLab before issue 16 (HTML inside what only looked like math, a
``$`` in a link title, doubled backslashes before math delimiters in a bare URL) never run or
load, live, replayed, or rendered from the saved file the way nbviewer does; nor from the footer
(the server's model name), ``%chat history`` or a ``--map`` failure reason. No dialog opens, no
trace is left in ``window.__pwned``, and no element of an output has an event handler, a
``javascript:``/``data:`` URL, or is an active element (script, frame, object, image, form, SVG,
MathML other than MathJax's own copy)."""

from __future__ import annotations

import json
import re
from html.parser import HTMLParser
from typing import Any

import nbformat

from support.fake_openai import FakeOpenAI, Fault
from support.hostile_page import (
    ACTIVE_NOW,
    KEYFRAME,
    WATCH_OUTPUTS,
    check_outputs_inert,
    families,
    family_three,
    family_three_shown,
    nothing_ran,
    pwn,
)
from support.jupyterlab import UI_TIMEOUT, Browser, free_port
from support.lab_page import (
    HTML_OUTPUT,
    OUTPUTS,
    deselect,
    footer_line,
    notebook_ready,
    open_notebook,
    run_all,
    save,
    shoot,
    wait_answer,
    write_lab_notebook,
)

FAMILIES_END = "Those were the three families."


def _hostile_answer(pixel: str) -> str:
    """Real Markdown around every kind of HTML a model could use to run script or fetch, the
    three families of issue 16, and TeX asking MathJax for a link, a style and a class."""
    return f"""\
## Safety check

Everything below is **text**:

- headings, lists and tables render
- code keeps `<div>` and math keeps $a<b$

```html
<b>code</b>
```

| tag | shown as |
|---|---|
| script | text |

<img src=x onerror="{pwn("img")}">
<script>{pwn("script")}</script>
<iframe srcdoc="<script>{pwn("iframe", "parent")}</script>"></iframe>
<svg onload="{pwn("svg")}"></svg>

[click me](javascript:{pwn("link")})

Docs: http://a/\\<img src=x onerror="{pwn("autolink")}">
and www.a.b\\<img src=x onerror="{pwn("www")}">

<!-- hidden -->

![x]({pixel})

That is all.

## Issue 16

{families("answer")}

And TeX that asks MathJax for a link, a style and a class: \
$\\href{{javascript:{pwn("href")}}}{{x}}$, $\\style{{animation-name: {KEYFRAME}}}{{y}}$, \
$\\class{{jp-Dialog}}{{z}}$.

{FAMILIES_END} Whatever an answer holds, it is shown as text or typeset as math; nothing in it \
runs, loads or submits anything, live or replayed, and a link goes only where it says."""


# What the hostile answer must show as plain, visible text.
HOSTILE_VISIBLE = [
    "<img src=x onerror=",
    "<script>window.__pwned",
    '<iframe srcdoc="<script>',
    "<svg onload=",
    "click me",
    "javascript:window.__pwned",
    "<!-- hidden -->",
]
# Names of the animations the page's style sheets define.
_KEYFRAMES = """() => [...document.styleSheets]
    .flatMap((sheet) => { try { return [...sheet.cssRules]; } catch { return []; } })
    .filter((rule) => rule instanceof CSSKeyframesRule).map((rule) => rule.name)"""
# Markup the check must catch, each checked in an inert document (nothing loads or runs): the
# samples it misses.
_MUST_CATCH = [
    "<img src=x>",
    '<a href=" JaVaScRiPt:x">a</a>',
    '<a href="data:text/html,x">a</a>',
    '<p onclick="x">p</p>',
    "<svg></svg>",
    "<math></math>",
    "<style>p { }</style>",
    f'<span style="animation-name: {KEYFRAME}">a</span>',
    "<form></form>",
    "<iframe></iframe>",
    "<object></object>",
    "<base>",
]
_MISSED = f"""(samples) => samples.filter((sample) => {{
    const doc = document.implementation.createHTMLDocument('');
    doc.body.innerHTML = sample;
    return ({ACTIVE_NOW})(doc.body).length === 0;
}})"""
_LIVE_HOSTILE = f"""(cell) => {{
    const view = cell.querySelector('.widget-output .jp-RenderedHTMLCommon');
    const status = [...cell.querySelectorAll('.widget-html')].pop();
    // The last paragraph: everything else is in the view.
    if (!view || !view.innerText.includes({FAMILIES_END!r}) || !status) return null;
    return {{text: view.innerText, status: status.textContent, active: ({ACTIVE_NOW})(view)}};
}}"""


def test_model_html_never_runs_live_or_replayed(browser: Browser, server: FakeOpenAI) -> None:
    page, lab = browser.page, browser.lab
    pixel = f"http://127.0.0.1:{free_port()}/pixel.png"  # a closed port: nothing would answer
    answer = _hostile_answer(pixel)
    server.default_fault = Fault(text=answer, delay=0.04)  # ~140 pieces: ~6 s of streaming
    notebook_path = lab.root / "hostile.ipynb"
    write_lab_notebook(notebook_path, ["%load_ext nbchat", "%%chat\nShow me some HTML."])
    cells = open_notebook(browser, "hostile.ipynb", 2)
    assert page.evaluate(_MISSED, _MUST_CATCH) == []
    page.evaluate(WATCH_OUTPUTS)
    ask = cells.nth(1)

    cells.nth(0).locator(".jp-InputArea-editor").click()
    page.keyboard.press("Shift+Enter")
    page.keyboard.press("Shift+Enter")
    # Live: the hostile part is in the view as text, and nothing ran, while still streaming.
    live = page.wait_for_function(_LIVE_HOSTILE, arg=ask.element_handle()).json_value()
    assert "streaming" in live["status"], live
    nothing_ran(browser)
    assert live["active"] == [], live
    assert "<img src=x onerror=" in live["text"] and "<svg onload=" in live["text"], live
    assert KEYFRAME in page.evaluate(_KEYFRAMES), "the family-2 payload would not even fire"
    wait_answer(page, ask)
    assert page.evaluate("() => window.__liveRenders") >= 3, "the live view hardly rendered"
    # The families were in the live view too, typeset by MathJax: as text, never as HTML.
    assert page.evaluate("() => window.__liveMath") > 0
    _check_harmless(browser, ask)
    deselect(page, ask)
    end = ask.locator(OUTPUTS).first.locator("p", has_text="That is all.")
    shoot(page, "untrusted.png", ask, end)  # the classic cases, down to "That is all."
    assert len(server.chat_requests) == 1

    # Saved, then opened again (JupyterLab shows the stored HTML as untrusted): the same.
    saved = save(page, notebook_path, records=1)
    page.reload(timeout=UI_TIMEOUT)
    notebook_ready(page, 3)  # Shift+Enter in the last cell added an empty one
    page.evaluate(WATCH_OUTPUTS)
    _check_harmless(browser, ask)

    # Replayed from the saved file by a fresh kernel (a fresh, trusted output): the same, and
    # no request.
    run_all(page, restart=True)
    assert "replayed" in footer_line(ask)
    _check_harmless(browser, ask)
    assert len(server.chat_requests) == 1
    nothing_ran(browser)

    # Without a kernel, as nbviewer renders it (nbconvert's HTML exporter): readable text.
    _check_exported(nbformat.reads(saved, as_version=4), pixel)


def _check_harmless(browser: Browser, cell: Any) -> None:
    """The hostile answer shows as text inside real Markdown, its math typeset; nothing ran,
    loaded or linked."""
    page = browser.page
    output = cell.locator(OUTPUTS).first
    assert output.get_attribute("data-mime-type") == "text/html"
    # MathJax typesets an output in one pass: once a formula shows, all of them do.
    output.locator(".nbchat-math mjx-container").first.wait_for(state="attached")
    nothing_ran(browser)
    assert output.evaluate(ACTIVE_NOW) == []
    # The family-2 link is a plain link: no title, handler or style was smuggled into it.
    for link in output.locator("a[href='http://x']").all():
        names = link.evaluate("(a) => [...a.attributes].map((attribute) => attribute.name)")
        assert set(names) <= {"href", "rel", "target"}, names
    text = output.inner_text()
    for shown in HOSTILE_VISIBLE:
        assert shown in text, (shown, text)
    assert "Safety check" in output.locator("h2").first.inner_text()
    assert output.locator("li").count() == 2
    assert output.locator("table th").all_inner_texts() == ["tag", "shown as"]
    assert output.locator("pre code").inner_text().strip() == "<b>code</b>"
    assert output.locator("pre b").count() == 0
    assert "<div>" in output.locator("li code").all_inner_texts()
    assert output.locator("a[href$='/pixel.png']").inner_text() == "image: x"  # a link
    # Clicking the would-be link runs nothing and goes nowhere.
    url = page.url
    output.get_by_text("click me").click()
    page.wait_for_timeout(300)
    nothing_ran(browser)
    assert page.url == url and len(page.context.pages) == 1
    fetched = [u for u in browser.requests if "pixel.png" in u or u.split("?")[0].endswith("/x")]
    assert fetched == [], "the page fetched an image of the answer"


class _Visible(HTMLParser):
    """Text a reader sees (outside script and style), and every place script could hide."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.text: list[str] = []
        self.code: list[str] = []  # script and style bodies
        self.attributes: list[tuple[str, str, str]] = []  # (tag, name, value) that run or load
        self._in: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in ("script", "style"):
            self._in.append(tag)
        for name, value in attrs:
            if name.startswith("on") or name in ("src", "srcdoc", "srcset", "href", "data"):
                self.attributes.append((tag, name, value or ""))

    def handle_endtag(self, tag: str) -> None:
        if self._in and self._in[-1] == tag:
            self._in.pop()

    def handle_data(self, data: str) -> None:
        (self.code if self._in else self.text).append(data)


def _check_exported(notebook: nbformat.NotebookNode, pixel: str) -> None:
    """nbconvert's HTML (what nbviewer shows) has the hostile parts as visible text only."""
    from nbconvert import HTMLExporter

    html, _ = HTMLExporter().from_notebook_node(notebook)
    page = _Visible()
    page.feed(html)
    text = " ".join("".join(page.text).split())
    for shown in HOSTILE_VISIBLE:
        assert shown in text, shown
    assert "Safety check" in text and "<b>code</b>" in text
    assert not [body for body in page.code if "pwned" in body]
    loads = [
        (tag, name, value)
        for tag, name, value in page.attributes
        if "pwned" in value
        or (name != "href" and "pixel.png" in value)
        or value.strip().lower().startswith("javascript:")
    ]
    assert loads == [], loads
    assert ("a", "href", pixel) in page.attributes  # a link, not an image
    assert "<h2" in html and "<table" in html and "<li>" in html


# A server is untrusted too: the model name it answers with (shown in the footer), an error
# message (a --map item's failure reason), and the answer it streams (in %chat history).
HOSTILE_MODEL = family_three("model")
HOSTILE_REASON = family_three("reason")


def _sse(model: str, text: str) -> bytes:
    """A streamed answer as a server sends it, each chunk naming ``model`` as the answering one."""
    head = {"id": "chatcmpl-1", "object": "chat.completion.chunk", "created": 1, "model": model}

    def event(choices: list[Any], **extra: Any) -> str:
        return f"data: {json.dumps({**head, 'choices': choices, **extra})}\n\n"

    def delta(content: dict[str, str], finish: str | None = None) -> list[Any]:
        return [{"index": 0, "delta": content, "logprobs": None, "finish_reason": finish}]

    usage = {"prompt_tokens": 5, "completion_tokens": 7, "total_tokens": 12}
    events = [event(delta({"role": "assistant", "content": ""}))]
    events += [event(delta({"content": word})) for word in re.findall(r"\S+\s*|\s+", text)]
    events += [event(delta({}, "stop")), event([], usage=usage), "data: [DONE]\n\n"]
    return "".join(events).encode()


def test_server_text_never_runs(browser: Browser, server: FakeOpenAI) -> None:
    page, lab = browser.page, browser.lab
    answer = f"{family_three('history')} is what I found."
    refusal = {"error": {"message": HOSTILE_REASON, "type": "invalid_request_error"}}
    server.script(
        Fault(raw_sse=_sse(HOSTILE_MODEL, answer)),  # the %%chat cell
        Fault(status=400, body=refusal),  # --map: the first item fails,
        Fault(text=family_three("map-answer")),  # the second is answered
    )
    notebook_path = lab.root / "hostile_server.ipynb"
    sources = [
        "%load_ext nbchat",
        f"%%chat\n{family_three('question')}",
        "%chat history",
        'xs = ["a", "b"]',
        "%%chat --map xs --concurrency 1 -o out\nAbout {item}",  # last: it fails, Run All stops
    ]
    write_lab_notebook(notebook_path, sources)
    cells = open_notebook(browser, "hostile_server.ipynb", 5)
    page.evaluate(WATCH_OUTPUTS)

    run_all(page, restart=False)
    _check_server_text_harmless(browser, cells, replayed=False)
    assert len(server.chat_requests) == 3

    # Replayed from the saved file by a fresh kernel: the answer and the answered item without a
    # request, the failed item asked again (and failing again).
    save(page, notebook_path, records=2)
    server.script(Fault(status=400, body=refusal))
    run_all(page, restart=True)
    _check_server_text_harmless(browser, cells, replayed=True)
    assert len(server.chat_requests) == 4


def _check_server_text_harmless(browser: Browser, cells: Any, *, replayed: bool) -> None:
    """The model name in the footer, the thread in ``%chat history``, the --map answer (in its
    summary) and failure reason (in the cell's error) show as text; nothing ran."""
    ask, history, mapped = cells.nth(1), cells.nth(2), cells.nth(4)
    footer = footer_line(ask)
    assert all(shown in footer for shown in family_three_shown("model")), footer
    assert ("replayed" in footer) == replayed, footer
    rows = history.locator(f"{HTML_OUTPUT} table tbody tr")
    assert rows.count() == 2, history.inner_text()  # the question and the answer
    question, answer = (row.locator("td").last.inner_text() for row in rows.all())
    # Previews, cut short.
    assert family_three_shown("question")[0] in question, question
    assert family_three_shown("history")[0] in answer, answer
    summary = mapped.locator(HTML_OUTPUT).first
    counts = "1 answered (1 replayed) · 1 failed" if replayed else "1 answered · 1 failed"
    assert counts in summary.inner_text()
    assert family_three_shown("map-answer")[0] in summary.locator("td").last.inner_text()
    error = mapped.locator(OUTPUTS).last  # the cell's error names the failure: text, not HTML
    assert error.get_attribute("data-mime-type") == "application/vnd.jupyter.stderr"
    shown = error.inner_text()
    assert f"item 0: The server rejected the request (400). Server said: {HOSTILE_REASON}" in shown
    for cell in (ask, history, mapped):
        check_outputs_inert(cell)
    nothing_ran(browser)
