"""A reasoning model's thinking in JupyterLab: shown dimmed above the answer as it streams, then
folded above it; thinking that holds the attacker's text never runs, live or replayed."""

from __future__ import annotations

from typing import Any

from support.fake_openai import THINKING_MODEL, FakeOpenAI, Fault
from support.hostile_page import (
    OUTPUTS_ACTIVE_NOW,
    WATCH_OUTPUTS,
    check_outputs_inert,
    families,
    nothing_ran,
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

THINKING_ANSWER = """\
Because the Earth turns under **two bulges** of water: one facing the Moon, one on the far side.

- Each coast passes through both bulges in a day.
- So most coasts see two high tides, about 12 h 25 min apart."""
# The live view of a reasoning model: its thinking (dimmed, above) and the answer so far.
_LIVE_THINKING = """(cell) => {
    const view = cell.querySelector('.widget-output .jp-RenderedHTMLCommon');
    const widgets = [...cell.querySelectorAll('.widget-html')];
    const thought = widgets.find((el) => el.innerText.includes('Thinking ·'));
    const status = widgets[widgets.length - 1];
    if (!view?.innerText.trim() || !thought || !status?.innerText.includes('streaming')) {
        return null;
    }
    const body = [...thought.querySelectorAll('div')].find((el) => el.style.whiteSpace);
    return {
        thought: thought.innerText, answer: view.innerText,
        above: thought.getBoundingClientRect().bottom <= view.getBoundingClientRect().top,
        opacity: body ? Number(getComputedStyle(body).opacity) : 1,
    };
}"""


def test_thinking_folds_above_the_answer(browser: Browser, server: FakeOpenAI) -> None:
    page, lab = browser.page, browser.lab
    server.default_fault = Fault(text=THINKING_ANSWER, delay=0.04)
    question = "Why are there two tides a day?"
    sources = ["%load_ext nbchat", f"%%chat -m {THINKING_MODEL}\n{question}"]
    write_lab_notebook(lab.root / "thinking.ipynb", sources)
    cells = open_notebook(browser, "thinking.ipynb", 2)
    ask = cells.nth(1)

    # Live: the thinking, dimmed, above the answer as it streams.
    start_run_all(page, restart=False)
    live = page.wait_for_function(_LIVE_THINKING, arg=ask.element_handle()).json_value()
    assert f"The user asks: {question}" in live["thought"], live
    assert live["above"] and live["opacity"] < 1, live
    assert live["answer"].startswith("Because"), live
    shoot(page, "thinking-live.png", ask, ask)  # the thinking apart, the answer streaming
    wait_run_all(page)

    # Done: the thinking folded (collapsed) under its summary line, the answer below, outside.
    output = ask.locator(OUTPUTS).first
    fold = output.locator("details")
    assert fold.count() == 1
    summary = fold.locator("summary").inner_text()
    words = len(f"The user asks: {question}. I will answer briefly.".split())
    assert summary.startswith(f"Thinking · {words} words · "), summary
    check_fold_closed(fold, "I will answer briefly")
    answer = output.locator("strong", has_text="two bulges")
    assert answer.is_visible() and not answer.evaluate(IN_FOLD)
    assert output.locator("li").count() == 2
    assert "thinking)" in footer_line(ask)  # the tokens spent thinking
    deselect(page, ask)
    shoot(page, "thinking.png", ask, ask)  # folded, as a reader first sees it

    fold.locator("summary").click()
    thought = fold.locator("p", has_text="I will answer briefly")
    thought.wait_for(state="visible", timeout=UI_TIMEOUT)
    assert thought.inner_text().startswith(f"The user asks: {question}")
    assert not answer.evaluate(IN_FOLD)
    assert len(server.chat_requests) == 1


# The live thinking of a question holding the three families (the fake thinker repeats the
# question), once all of it has arrived and the answer streams.
_LIVE_HOSTILE_THINKING = f"""(cell) => {{
    const widgets = [...cell.querySelectorAll('.widget-html')];
    const thought = widgets.find((el) => el.innerText.includes('Thinking ·'));
    const status = widgets[widgets.length - 1];
    if (!thought?.innerText.includes('I will answer briefly')) return null;
    if (!status?.innerText.includes('streaming')) return null;
    const area = cell.querySelector('.jp-Cell-outputArea');
    return {{thought: thought.innerText, active: ({OUTPUTS_ACTIVE_NOW})(area)}};
}}"""


def test_hostile_thinking_never_runs(browser: Browser, server: FakeOpenAI) -> None:
    page, lab = browser.page, browser.lab
    server.default_fault = Fault(text=THINKING_ANSWER, delay=0.03)
    question = f"What do these mean?\n\n{families('thinking')}"
    notebook_path = lab.root / "hostile_thinking.ipynb"
    write_lab_notebook(
        notebook_path, ["%load_ext nbchat", f"%%chat -m {THINKING_MODEL}\n{question}"]
    )
    cells = open_notebook(browser, "hostile_thinking.ipynb", 2)
    page.evaluate(WATCH_OUTPUTS)
    ask = cells.nth(1)

    # Live: the whole thinking shown, as text, while the answer streams; nothing ran.
    start_run_all(page, restart=False)
    live = page.wait_for_function(_LIVE_HOSTILE_THINKING, arg=ask.element_handle()).json_value()
    assert "The user asks: What do these mean?" in live["thought"], live
    assert live["active"] == [], live
    nothing_ran(browser)
    wait_run_all(page)
    _check_thinking_harmless(browser, ask, replayed=False)
    assert len(server.chat_requests) == 1

    # Replayed from the saved file by a fresh kernel: the same, and no request.
    save(page, notebook_path, records=1)
    run_all(page, restart=True)
    _check_thinking_harmless(browser, ask, replayed=True)
    assert len(server.chat_requests) == 1


def _check_thinking_harmless(browser: Browser, cell: Any, *, replayed: bool) -> None:
    """The thinking is folded above the answer, its Markdown rendered in the kernel and its math
    typeset, before and after the fold is opened; nothing ran."""
    output = cell.locator(OUTPUTS).last  # below a note: "{x}: not defined, sent as written"
    assert output.get_attribute("data-mime-type") == "text/html"
    assert ("replayed" in footer_line(cell)) == replayed
    fold = output.locator("details")
    assert fold.locator("summary").inner_text().startswith("Thinking · ")
    check_fold_closed(fold, "I will answer briefly")
    check_outputs_inert(cell)
    fold.locator("summary").click()
    fold.locator("p", has_text="I will answer briefly").wait_for(state="visible")
    assert fold.locator("p", has_text="Docs:").count() == 2  # the families, as Markdown
    fold.locator(".nbchat-math mjx-container").first.wait_for(state="visible")
    assert output.locator("strong", has_text="two bulges").is_visible()
    check_outputs_inert(cell)
    nothing_ran(browser)
