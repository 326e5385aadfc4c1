"""Tool calls in JupyterLab: a call shows live while the function runs, then folds (collapsed)
above the answer; the names, arguments and results of tool calls are untrusted text too, live,
folded and replayed."""

from __future__ import annotations

from typing import Any

from support.fake_openai import FakeOpenAI, Fault
from support.hostile_page import (
    ACTIVE_NOW,
    OUTPUTS_ACTIVE_NOW,
    WATCH_OUTPUTS,
    families,
    family_three,
    nothing_ran,
    pwn,
)
from support.jupyterlab import UI_TIMEOUT, Browser
from support.lab_page import (
    IN_FOLD,
    OUTPUTS,
    check_fold_closed,
    deselect,
    footer_line,
    open_notebook,
    run_all,
    save,
    shoot,
    start_run_all,
    wait_run_all,
    write_lab_notebook,
)

LEVEL_TOOL = '''\
import time

def level(station: str) -> float:
    """The water level at a tide station now, in metres.

    Args:
        station: The station's city.
    """
    time.sleep(1.5)  # a gauge that answers slowly
    return {"Brest": 4.2, "Cadiz": 1.1}[station]'''
TOOL_ANSWER = "The water at **Brest** stands at **4.2 m** now: close to high tide."

# The calls shown live (ipywidgets HTML: the tool's line, then the status line) and the cell's
# outputs, once the call ``name(`` shows ``running``.
_LIVE_CALL = """([cell, name]) => {
    const lines = [...cell.querySelectorAll('.widget-html')].map((el) => el.innerText);
    const call = lines.find((text) => text.includes(`⚙ ${name}(`));
    if (!call || !call.includes('running')) return null;
    return {
        call, status: lines[lines.length - 1],
        outputs: cell.querySelectorAll('.jp-Cell-outputArea > .jp-OutputArea-child').length,
    };
}"""


def test_a_tool_call_shows_live_then_folds(browser: Browser, server: FakeOpenAI) -> None:
    page, lab = browser.page, browser.lab
    server.script(Fault(tool_calls=[("level", {"station": "Brest"})]), Fault(text=TOOL_ANSWER))
    sources = ["%load_ext nbchat", LEVEL_TOOL, "%%chat --tools level\nHow high is it at Brest?"]
    write_lab_notebook(lab.root / "tools.ipynb", sources)
    cells = open_notebook(browser, "tools.ipynb", 3)
    ask = cells.nth(2)

    # Live: while the function runs (1.5 s), its call shows above the status line.
    start_run_all(page, restart=False)
    live = page.wait_for_function(_LIVE_CALL, arg=[ask.element_handle(), "level"]).json_value()
    assert '⚙ level({"station": "Brest"})' in live["call"], live
    # The status line (not the call's) names the function running.
    assert live["status"].startswith("peer-small · "), live
    assert live["status"].endswith("running level…") and "⚙" not in live["status"], live
    assert live["outputs"] == 1, live
    wait_run_all(page)

    # Done: one HTML output, the calls folded (collapsed) above the answer.
    output = ask.locator(OUTPUTS).first
    assert ask.locator(OUTPUTS).count() == 1
    assert output.get_attribute("data-mime-type") == "text/html"
    fold = output.locator("details")
    assert fold.count() == 1
    summary = fold.locator("summary").inner_text()
    assert summary.startswith("Tools · 1 call · level · "), summary
    assert float(summary.split(" · ")[-1].removesuffix(" s")) >= 1.5, summary
    check_fold_closed(fold, "→ 4.2")
    answer = output.locator("strong", has_text="4.2 m")
    assert answer.is_visible() and not answer.evaluate(IN_FOLD)
    assert "peer-small" in footer_line(ask)

    fold.locator("summary").click()  # opens: the call and its result, as text
    call = fold.locator("pre")
    call.wait_for(state="visible", timeout=UI_TIMEOUT)
    shown = call.inner_text()
    assert shown.startswith('level({"station": "Brest"})'), shown
    assert shown.rstrip().endswith("→ 4.2"), shown
    deselect(page, cells.nth(1))
    page.evaluate("() => document.activeElement?.blur()")  # no focus ring on the summary
    shoot(page, "tools.png", cells.nth(1), ask)

    # The result went back to the model as the call's tool message.
    first, second = (request.body for request in server.chat_requests)
    assert [spec["function"]["name"] for spec in first["tools"]] == ["level"]
    call_id = second["messages"][-2]["tool_calls"][0]["id"]
    assert second["messages"][-1] == {"role": "tool", "tool_call_id": call_id, "content": "4.2"}


# A model's tool calls are untrusted text too: HTML in the arguments, in a function's result
# (a web page, say, with a family-3 URL), in the name of a function that was never offered, and
# the three families in the text the model writes with its calls.
HOSTILE_ARGUMENT = f'<img src=x onerror="{pwn("argument")}">'
HOSTILE_RESULT = (
    f'<img src=x onerror="{pwn("result")}"> <script>{pwn("result-script")}</script> '
    + family_three("result-family")
)
HOSTILE_NAME = f"<script>{pwn('name')}</script>"
HOSTILE_RAW_ARGUMENTS = f'<svg onload="{pwn("raw-arguments")}">'  # not even JSON
PAGE_TOOL = f'''\
PAGE = {HOSTILE_RESULT!r}

def fetch_page(query: str) -> str:
    """A web page about the query, as text."""
    with open("fetch_page.log", "a") as log:  # each run leaves a line
        log.write("ran\\n")
    return f"{{PAGE}} about {{query}}"'''
# The calls and their results, live, once both have run and the answer streams.
_LIVE_HOSTILE_CALLS = f"""(cell) => {{
    const widgets = [...cell.querySelectorAll('.widget-html')];
    const calls = widgets.find((el) => el.innerText.includes('⚙'));
    const status = widgets[widgets.length - 1];
    if (!calls || !status?.innerText.includes('streaming')) return null;
    if (calls.innerText.split('⚙').length !== 3 || calls.innerText.includes('running')) return null;
    const area = cell.querySelector('.jp-Cell-outputArea');
    const active = ({OUTPUTS_ACTIVE_NOW})(area);
    return {{calls: calls.innerText, status: status.innerText, active}};
}}"""


def test_tool_call_text_never_runs(browser: Browser, server: FakeOpenAI) -> None:
    page, lab = browser.page, browser.lab
    calls = [("fetch_page", {"query": HOSTILE_ARGUMENT}), (HOSTILE_NAME, HOSTILE_RAW_ARGUMENTS)]
    # The calls with text of their own, then the answer ("From the tools: ..." and the results).
    server.script(Fault(tool_calls=calls, text=families("tool-text")), Fault(delay=0.05))
    notebook_path = lab.root / "hostile_tools.ipynb"
    sources = ["%load_ext nbchat", PAGE_TOOL, "%%chat --tools fetch_page\nLook it up."]
    write_lab_notebook(notebook_path, sources)
    cells = open_notebook(browser, "hostile_tools.ipynb", 3)
    page.evaluate(WATCH_OUTPUTS)
    ask = cells.nth(2)

    start_run_all(page, restart=False)
    live = page.wait_for_function(_LIVE_HOSTILE_CALLS, arg=ask.element_handle()).json_value()
    nothing_ran(browser)
    assert live["active"] == [], live
    assert '⚙ fetch_page({"query": "<img src=x onerror=' in live["calls"], live
    assert "→ <img src=x onerror=" in live["calls"], live
    assert f"⚙ {HOSTILE_NAME}({HOSTILE_RAW_ARGUMENTS})" in live["calls"], live
    assert '✗ Error: there is no tool named "<script>window.' in live["calls"], live
    wait_run_all(page)
    _check_tool_text_harmless(browser, ask, replayed=False)
    assert (lab.root / "fetch_page.log").read_text() == "ran\n"
    assert len(server.chat_requests) == 2

    # Replayed from the saved file by a fresh kernel: the same text, no request, nothing run.
    save(page, notebook_path, records=1)
    run_all(page, restart=True)
    assert "replayed" in footer_line(ask)
    _check_tool_text_harmless(browser, ask, replayed=True)
    assert (lab.root / "fetch_page.log").read_text() == "ran\n"
    assert len(server.chat_requests) == 2


def _check_tool_text_harmless(browser: Browser, cell: Any, *, replayed: bool) -> None:
    """The calls' names, arguments and results show as text in the fold, as does the answer
    quoting them, and the model's text with the calls as Markdown, its math typeset; nothing ran
    or loaded, before or after the fold is opened."""
    output = cell.locator(OUTPUTS).first
    assert output.get_attribute("data-mime-type") == "text/html"
    fold = output.locator("details")
    summary = fold.locator("summary").inner_text()
    assert summary.startswith("Tools · 2 calls · fetch_page, <script>window.__pwned"), summary
    assert summary.endswith("stored results, not run again") == replayed, summary
    check_fold_closed(fold, HOSTILE_RESULT)
    answer = output.locator("p", has_text="From the tools:")
    assert not answer.evaluate(IN_FOLD)
    assert "From the tools: <img src=x onerror=" in answer.inner_text()
    assert 'there is no tool named "<script>window.' in answer.inner_text()

    fold.locator("summary").click()
    fold.locator("pre").first.wait_for(state="visible", timeout=UI_TIMEOUT)
    assert fold.locator("p", has_text="Docs:").count() == 2  # the families, in the fold
    fold.locator(".nbchat-math mjx-container").first.wait_for(state="visible")
    shown = "\n".join(fold.locator("pre").all_inner_texts())
    assert f"→ {HOSTILE_RESULT} about {HOSTILE_ARGUMENT}" in shown, shown
    assert f"{HOSTILE_NAME}({HOSTILE_RAW_ARGUMENTS})" in shown, shown
    assert 'fetch_page({"query": "<img src=x onerror=\\"window.__pwned' in shown, shown
    assert output.evaluate(ACTIVE_NOW) == []
    nothing_ran(browser)
    fetched = [url for url in browser.requests if url.split("?")[0].endswith("/x")]
    assert fetched == [], "the page fetched an image named in a tool call"
