"""Benign Markdown renders in JupyterLab: headings, lists, tables, code coloured by JupyterLab's
theme (light and dark), and math typeset by JupyterLab's MathJax, only the math."""

from __future__ import annotations

from typing import Any

from support.fake_openai import FakeOpenAI, Fault
from support.hostile_page import check_outputs_inert
from support.jupyterlab import UI_TIMEOUT, Browser
from support.lab_page import OUTPUTS, deselect, open_notebook, run_all, shoot, write_lab_notebook

LIST_TABLE_CODE = """\
- one
- two

| a | b |
|---|---|
| 1 | 2 |

```html
<b>code</b>
```"""


def test_code_below_a_list_and_a_table_shows_literally(
    browser: Browser, server: FakeOpenAI
) -> None:
    server.default_fault = Fault(text=LIST_TABLE_CODE)
    sources = ["%load_ext nbchat", "%%chat\nA list, a table, then code."]
    write_lab_notebook(browser.lab.root / "table.ipynb", sources)
    cells = open_notebook(browser, "table.ipynb", 2)
    run_all(browser.page, restart=False)
    output = cells.nth(1).locator(OUTPUTS).first
    assert output.locator("li").count() == 2 and output.locator("table td").count() == 2
    assert output.locator("pre code").inner_text().strip() == "<b>code</b>"


BENIGN = r"""## Tides in numbers

The height follows $h(t) = A\cos(\omega t)$, its energy grows as $x^2$, and \(a<b\) at neap tide.

- one
- two

| station | level |
|---|---|
| Brest | 4.2 |

```python
# The water level now, in metres.
def level(station: str) -> float:
    return {"Brest": 4.2}[station] if station else 0.0
```"""
# The colours of the first keyword of the coloured code, of the code's text, and of JupyterLab's
# editor keyword colour (a probe coloured by the theme variable itself).
_CODE_COLOURS = """(output) => {
    const code = output.querySelector('pre.highlight');
    const probe = document.createElement('span');
    probe.style.color = 'var(--jp-mirror-editor-keyword-color)';
    code.append(probe);
    const theme = getComputedStyle(probe).color;
    probe.remove();
    return {
        keyword: getComputedStyle(code.querySelector('.k')).color,
        text: getComputedStyle(code).color,
        theme,
    };
}"""
_THEME_IS = "(light) => document.body.dataset.jpThemeLight === String(light)"


def test_benign_markdown_renders_in_light_and_dark(browser: Browser, server: FakeOpenAI) -> None:
    page = browser.page
    server.default_fault = Fault(text=BENIGN)
    sources = ["%load_ext nbchat", "%%chat\nTides in numbers, with some code."]
    write_lab_notebook(browser.lab.root / "benign.ipynb", sources)
    cells = open_notebook(browser, "benign.ipynb", 2)
    run_all(page, restart=False)
    ask = cells.nth(1)
    output = ask.locator(OUTPUTS).first
    assert output.get_attribute("data-mime-type") == "text/html"
    assert "Tides in numbers" in output.locator("h2").inner_text()
    assert output.locator("li").count() == 2
    assert output.locator("table th").all_inner_texts() == ["station", "level"]
    assert output.locator("table td").all_inner_texts() == ["Brest", "4.2"]
    # The three formulas typeset by JupyterLab's MathJax, and nothing else.
    output.locator("mjx-container").first.wait_for(state="visible")
    assert output.locator(".nbchat-math mjx-container").count() == 3
    assert output.locator("mjx-container").count() == 3
    # Python, coloured by JupyterLab's own editor colours.
    code = output.locator("pre.highlight code")
    assert "def level(station: str) -> float:" in code.inner_text()
    assert code.locator(".k").first.inner_text() == "def"
    _check_code_colours(output)
    check_outputs_inert(ask)

    # The same in JupyterLab's dark theme (the theme is the lab's setting: put back after).
    try:
        page.evaluate(
            "() => window.jupyterapp.commands.execute("
            "'apputils:change-theme', {theme: 'JupyterLab Dark'})"
        )
        page.wait_for_function(_THEME_IS, arg=False, timeout=UI_TIMEOUT)
        page.wait_for_timeout(500)  # the theme's style sheet applied
        _check_code_colours(output)
        deselect(page, ask)
        shoot(page, "code-dark.png", ask, ask)
    finally:
        page.evaluate(
            "() => window.jupyterapp.commands.execute("
            "'apputils:change-theme', {theme: 'JupyterLab Light'})"
        )
        page.wait_for_function(_THEME_IS, arg=True, timeout=UI_TIMEOUT)


def _check_code_colours(output: Any) -> None:
    """Keywords take the theme's editor keyword colour, which is not the code's text colour."""
    colours = output.evaluate(_CODE_COLOURS)
    assert colours["keyword"] == colours["theme"] != colours["text"], colours


def test_nbchat_text_is_not_typeset_outside_its_math(browser: Browser, server: FakeOpenAI) -> None:
    prose = "It costs $5 and $10, while $x^2$ is math. A share: \\\\\\\\server\\\\docs."
    server.default_fault = Fault(text=prose)
    write_lab_notebook(browser.lab.root / "dollars.ipynb", ["%load_ext nbchat", "%%chat\nPrices?"])
    cells = open_notebook(browser, "dollars.ipynb", 2)
    run_all(browser.page, restart=False)
    output = cells.nth(1).locator(OUTPUTS).first
    output.locator("mjx-container").first.wait_for(state="visible")
    assert output.locator("mjx-container").count() == 1  # $x^2$ only
    text = output.locator("p").first.inner_text()
    assert "It costs $5 and $10, while" in text and "A share: \\\\server\\docs." in text, text


def test_bracket_display_math_shows_once(browser: Browser, server: FakeOpenAI) -> None:
    server.default_fault = Fault(text="The sum:\n\n\\[a+b\\]\n\nThat is all.")
    write_lab_notebook(browser.lab.root / "bracket.ipynb", ["%load_ext nbchat", "%%chat\nA sum?"])
    cells = open_notebook(browser, "bracket.ipynb", 2)
    run_all(browser.page, restart=False)
    display = cells.nth(1).locator(OUTPUTS).first.locator("div.nbchat-math")
    display.locator("mjx-container").wait_for(state="visible")
    beside = display.evaluate(
        "(div) => [...div.childNodes].filter((node) => node.nodeType === Node.TEXT_NODE)"
        ".map((node) => node.textContent).join('').trim()"
    )
    assert beside == "", f"shown next to the formula: {beside!r}"
