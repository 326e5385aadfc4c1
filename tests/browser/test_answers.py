"""The life of an answer in JupyterLab: the live view shows the answer as HTML rendered in the
kernel as it streams, the same output slot then becomes the final HTML carrying the record,
``--raw`` adds JupyterLab's collapsible JSON tree, after a save and a page reload the answers are
still there without a single new request, and a restarted kernel running every cell replays them
from the saved notebook."""

from __future__ import annotations

import itertools
import time
from pathlib import Path
from typing import Any

import nbformat

from nbchat.store.record import RECORD_MIME

from support.env import TEST_KEY
from support.fake_openai import FakeOpenAI, Fault
from support.jupyterlab import UI_TIMEOUT, Browser
from support.kernel_driver import WIDGET_MIME
from support.lab_page import (
    CELLS,
    FOOTER,
    HTML_OUTPUT,
    OUTPUTS,
    deselect,
    footer_line,
    notebook_ready,
    open_notebook,
    run_all,
    save,
    shoot,
    wait_idle,
    write_lab_notebook,
)

WIDGET_STATE_MIME = "application/vnd.jupyter.widget-state+json"

ANSWER = """\
## Why the sea rises and falls

The **Moon's gravity** pulls hardest on the ocean facing it, raising a bulge of water there \
and a second one on the far side of the Earth.

- Most coasts see **two high tides** and two low tides a day.
- The Sun adds a weaker pull of its own.
- The shape of the coast decides how big the tides get.

In short: the oceans answer the Moon."""
SPRING = "**Spring tides** come at new and full moon, when the Sun and Moon pull in line."


_JSON_TREE = """(tree) => [...tree.querySelectorAll('li')].map((li) => ({
    key: li.querySelector(':scope > label')?.textContent ?? '',
    arrow: li.querySelector(':scope > div > div')?.style.transform ?? '',
}))"""


def _tree_keys(tree: Any) -> dict[str, str]:
    """Keys shown in a JSON tree -> their arrow's rotation ('' for leaves)."""
    return {node["key"]: node["arrow"] for node in tree.evaluate(_JSON_TREE)}


# -- the life of an answer -----------------------------------------------------------------


def test_stream_render_save_reload(browser: Browser, server: FakeOpenAI) -> None:
    page, lab = browser.page, browser.lab
    server.default_fault = Fault(text=ANSWER, delay=0.05)  # ~75 pieces: ~3.8 s of streaming
    notebook_path = lab.root / "chat.ipynb"
    sources = [
        "%load_ext nbchat",
        "%%chat\nExplain tides briefly.",
        "%%chat --raw\nAnd spring tides?",
    ]
    write_lab_notebook(notebook_path, sources)
    cells = open_notebook(browser, "chat.ipynb", 3)
    ask, raw = cells.nth(1), cells.nth(2)

    # Run `%load_ext nbchat`, then the first %%chat cell (Shift+Enter moves on to the next).
    cells.nth(0).locator(".jp-InputArea-editor").click()
    page.keyboard.press("Shift+Enter")
    page.keyboard.press("Shift+Enter")
    heading = _check_live(page, ask)
    _shoot_streaming(page, cells.nth(0), ask)
    assert ask.locator(".widget-output").count() == 1, "the answer ended before the screenshot"

    # After: the same (only) output slot holds the rendered answer; no widget is left.
    ask.locator(HTML_OUTPUT).wait_for(timeout=UI_TIMEOUT)
    wait_idle(page)
    _check_answer(ask, "Why the sea rises and falls", "Moon's gravity", bullets=3)
    assert ask.locator(OUTPUTS).count() == 1
    # The final answer takes the live view's place without a jump: the heading stays put.
    final = ask.evaluate(f"(cell) => ({_OFFSET})(cell, cell.querySelector('{OUTPUTS} h2'))")
    moved = (final["x"] - heading["x"], final["y"] - heading["y"])
    assert max(map(abs, moved)) <= 4, f"the answer moved by {moved} px when it completed"
    shoot(page, "answer.png", cells.nth(0), ask)
    assert len(server.chat_requests) == 1

    _check_raw(page, server, raw)
    _check_saved(page, notebook_path)

    # Reload: without running anything, the answers are still rendered and nothing is asked.
    page.reload(timeout=UI_TIMEOUT)
    notebook_ready(page, 3)
    cells = page.locator(CELLS)
    ask, raw = cells.nth(1), cells.nth(2)
    ask.locator(HTML_OUTPUT).wait_for(timeout=UI_TIMEOUT)
    raw.locator(".jp-RenderedJSON").wait_for(timeout=UI_TIMEOUT)
    _check_answer(ask, "Why the sea rises and falls", "Moon's gravity", bullets=3)
    _check_answer(raw, None, "Spring tides", bullets=0)
    assert page.locator(".jp-NotebookPanel .jupyter-widgets").count() == 0
    time.sleep(1.0)  # room for a (wrong) re-execution to reach the server
    assert len(server.chat_requests) == 2

    # The notebook is the cache: a fresh kernel running every cell replays, asking nothing.
    run_all(page, restart=True)
    assert "replayed" in footer_line(ask) and "replayed" in footer_line(raw)
    _check_answer(ask, "Why the sea rises and falls", "Moon's gravity", bullets=3)
    assert raw.locator(".jp-RenderedJSON").count() == 1
    assert len(server.chat_requests) == 2


# Where an element is drawn, relative to its cell.
_OFFSET = """(cell, el) => {
    const [outer, inner] = [cell.getBoundingClientRect(), el.getBoundingClientRect()];
    return {x: inner.left - outer.left, y: inner.top - outer.top};
}"""
_LIVE_VIEW = f"""([cell, min]) => {{
    const views = cell.querySelectorAll('.widget-output .jp-RenderedHTMLCommon');
    const status = [...cell.querySelectorAll('.widget-html')].pop();
    if (views.length !== 1 || !status || views[0].textContent.length < min) return null;
    const view = views[0];
    return {{
        text: view.innerText,
        headings: [...view.querySelectorAll('h2')].map((h) => h.textContent),
        bold: [...view.querySelectorAll('strong')].map((b) => b.textContent),
        status: status.textContent,
        outputs: cell.querySelectorAll('.jp-Cell-outputArea > .jp-OutputArea-child').length,
        heading: ({_OFFSET})(cell, view.querySelector('h2')),
    }};
}}"""


def _check_live(page: Any, cell: Any) -> dict[str, float]:
    """While streaming: one output, the widget, showing a prefix of the answer rendered (no raw
    ``##`` or ``**``) above a status line that says it is streaming. Returns where the heading is
    drawn."""
    live = page.wait_for_function(
        _LIVE_VIEW, arg=[cell.element_handle(), len(ANSWER) // 2], timeout=UI_TIMEOUT
    ).json_value()
    assert "Why the sea rises and falls" in live["headings"][0], live
    assert "Moon's gravity" in live["bold"], live
    assert "##" not in live["text"] and "**Moon" not in live["text"], live
    assert "the oceans answer the Moon" not in live["text"], "the whole answer arrived at once"
    assert "streaming" in live["status"] and "peer-small" in live["status"], live
    assert live["outputs"] == 1, live
    return live["heading"]


# When the live view shows whole Markdown (no bold still open) in a list, still streaming: a still
# copy of the widget takes its place, so a screenshot cannot catch an update half-way.
_FREEZE_LIVE = r"""(cell) => {
    const view = cell.querySelector('.widget-output .jp-RenderedHTMLCommon');
    const status = [...cell.querySelectorAll('.widget-html')].pop();
    if (!view || !status?.textContent.includes('streaming')) return null;
    const text = view.innerText;
    if (text.includes('**') || text.includes('In short') || !view.querySelector('li')) return null;
    // The status line comes in its own message, after the text's: not one update behind it.
    if (Number(/(\d+) tokens/.exec(status.textContent)?.[1] ?? 0) < 20) return null;
    const widget = view.closest('.widget-vbox');
    const still = widget.cloneNode(true);
    still.id = 'nbchat-still';
    widget.style.display = 'none';
    widget.after(still);
    return text;
}"""
_THAW_LIVE = """() => {
    const still = document.getElementById('nbchat-still');
    still.previousElementSibling.style.display = '';
    still.remove();
}"""


def _shoot_streaming(page: Any, first: Any, cell: Any) -> None:
    """Screenshot the live view at a moment it shows whole Markdown (it updates 15 times a
    second, faster than a screenshot is taken)."""
    page.wait_for_function(_FREEZE_LIVE, arg=cell.element_handle(), timeout=UI_TIMEOUT)
    try:
        shoot(page, "streaming.png", first, cell)
    finally:
        page.evaluate(_THAW_LIVE)


# Every change of the live view's text: [ms since the page opened, characters shown].
_WATCH_LIVE_TEXT = """(cell) => {
    window.__liveText = [];
    new MutationObserver(() => {
        const view = cell.querySelector('.widget-output .jp-RenderedHTMLCommon');
        const shown = view?.textContent.length;
        if (shown && shown !== window.__liveText.at(-1)?.[1]) {
            window.__liveText.push([performance.now(), shown]);
        }
    }).observe(cell, {childList: true, subtree: true, characterData: true});
}"""


def test_the_live_view_keeps_up_from_the_first_token(browser: Browser, server: FakeOpenAI) -> None:
    page = browser.page
    server.default_fault = Fault(text=ANSWER, delay=0.05)  # ~75 pieces: ~3.8 s of streaming
    write_lab_notebook(browser.lab.root / "pace.ipynb", ["%load_ext nbchat", "%%chat\nTides?"])
    cells = open_notebook(browser, "pace.ipynb", 2)
    cells.nth(1).evaluate(_WATCH_LIVE_TEXT)
    run_all(page, restart=False)
    shown = page.evaluate("() => window.__liveText")
    assert len(shown) >= 10, shown
    gaps = [round(later[0] - earlier[0]) for earlier, later in itertools.pairwise(shown)]
    assert max(gaps) < 1000, f"ms between updates of the live view: {gaps}"


def _check_raw(page: Any, server: FakeOpenAI, raw: Any) -> None:
    """``--raw``: the answer, then the record as JupyterLab's collapsed, expandable JSON tree."""
    server.script(Fault(text=SPRING, delay=0.02))
    raw.locator(".jp-InputArea-editor").click()
    page.keyboard.press("Control+Enter")
    tree = raw.locator(".jp-OutputArea-output.jp-RenderedJSON")
    tree.wait_for(timeout=UI_TIMEOUT)
    wait_idle(page)
    _check_answer(raw, None, "Spring tides", bullets=0)
    outputs = raw.locator(OUTPUTS)
    assert outputs.count() == 2
    assert "jp-RenderedJSON" in (outputs.nth(1).get_attribute("class") or "")
    keys = _tree_keys(tree)
    assert {"schema", "kind", "messages", "request", "responses", "sent"} <= keys.keys(), keys
    assert keys["sent"] == "rotateZ(0deg)", keys  # collapsed ...
    assert "base_url" not in keys and "body" not in keys, keys
    deselect(page, raw)
    shoot(page, "raw-json.png", raw, raw)
    tree.locator("li > label", has_text="sent").first.click()  # ... and expandable
    page.wait_for_function(
        """(tree) => [...tree.querySelectorAll('li > label')]
            .some((label) => label.textContent === 'body')""",
        arg=tree.element_handle(),
        timeout=UI_TIMEOUT,
    )
    assert _tree_keys(tree)["sent"] == "rotateZ(90deg)"
    assert len(server.chat_requests) == 2


def _check_saved(page: Any, notebook_path: Path) -> None:
    """Save: the file holds the records (next to the answer's HTML and plain text: no Markdown
    copy), and neither a widget nor the key."""
    saved = save(page, notebook_path, records=2)
    assert TEST_KEY not in saved
    assert WIDGET_MIME not in saved and WIDGET_STATE_MIME not in saved
    on_disk = nbformat.reads(saved, as_version=4)
    first, second = on_disk.cells[1].outputs, on_disk.cells[2].outputs
    answer_mimes = {"text/html", "text/plain"}
    assert [set(out.data) for out in first] == [{*answer_mimes, RECORD_MIME}]
    # --raw: the record is stored once, as the JSON tree's payload.
    assert [set(out.data) for out in second] == [answer_mimes, {"application/json", "text/plain"}]
    record = first[0].data[RECORD_MIME]
    assert record["cell_id"] == on_disk.cells[1].id  # JupyterLab told the kernel the cell id
    assert record["messages"][1]["content"] == ANSWER
    raw_record = second[1].data["application/json"]
    assert raw_record["cell_id"] == on_disk.cells[2].id
    assert raw_record["messages"][0]["content"] == "And spring tides?"
    assert raw_record["sent"]["body"]["messages"][-1]["content"] == "And spring tides?"


def _check_answer(cell: Any, heading: str | None, bold: str, *, bullets: int) -> None:
    """The cell's first output is the answer, rendered to HTML in the kernel, with its footer."""
    rendered = cell.locator(OUTPUTS).first
    assert rendered.get_attribute("data-mime-type") == "text/html"
    assert "jp-RenderedHTMLCommon" in (rendered.get_attribute("class") or "")
    if heading is not None:
        assert heading in rendered.locator("h1, h2, h3").first.inner_text()
    assert bold in " ".join(rendered.locator("strong").all_inner_texts())
    assert rendered.locator("li").count() == bullets
    assert "peer-small" in rendered.locator(FOOTER).last.inner_text()
    assert cell.locator(".jupyter-widgets, .widget-html").count() == 0
