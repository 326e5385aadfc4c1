"""Drive a notebook in JupyterLab's page: write and open it, run its cells, wait for its
answers, read their footers, save it, and take the README's screenshots."""

from __future__ import annotations

import json
import os
import tempfile
import time
from pathlib import Path
from typing import Any

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_notebook

from nbchat.store.record import RECORD_MIME

from support.jupyterlab import SAVE_TIMEOUT, UI_TIMEOUT, Browser
from support.paths import DOCS

# The committed README images are refreshed only on request; a plain run leaves them alone.
# Read at import: conftest's isolation removes every NBCHAT_* variable before a test runs.
SCREENSHOTS = os.environ.get("NBCHAT_SCREENSHOTS") == "1"
KERNELSPEC = {"name": "python3", "display_name": "Python 3", "language": "python"}


CELLS = ".jp-NotebookPanel .jp-Notebook .jp-Cell"
# A cell's own outputs (an Output widget nests an output area of its own inside one of them).
OUTPUTS = ".jp-Cell-outputArea > .jp-OutputArea-child > .jp-OutputArea-output"

_KERNEL_IDLE = """() => {
    const kernel = window.jupyterapp?.shell.currentWidget?.sessionContext?.session?.kernel;
    return kernel?.connectionStatus === 'connected' && kernel?.status === 'idle';
}"""


def write_lab_notebook(path: Path, sources: list[str]) -> None:
    notebook = new_notebook(
        cells=[new_code_cell(source) for source in sources], metadata={"kernelspec": KERNELSPEC}
    )
    assert (notebook.nbformat, notebook.nbformat_minor) == (4, 5)
    nbformat.validate(notebook)
    nbformat.write(notebook, path)


def wait_idle(page: Any) -> None:
    """Until the notebook's kernel is connected and idle (the app is exposed for this)."""
    page.wait_for_function(_KERNEL_IDLE, timeout=UI_TIMEOUT)


def open_notebook(browser: Browser, name: str, cells: int) -> Any:
    """Open ``name`` in this test's workspace; its cells, once shown with an idle kernel."""
    browser.goto(name)
    notebook_ready(browser.page, cells)
    return browser.page.locator(CELLS)


def notebook_ready(page: Any, cells: int) -> None:
    """Until the notebook shows its cells and its kernel is connected and idle."""
    page.wait_for_function(
        f"() => document.querySelectorAll({CELLS!r}).length === {cells}", timeout=UI_TIMEOUT
    )
    # Give the notebook the whole window (cosmetic: nicer screenshots).
    page.evaluate("() => window.jupyterapp?.shell.collapseLeft()")
    wait_idle(page)


def run_all(page: Any, *, restart: bool) -> None:
    """Run every cell (after a kernel restart if asked), until every execution has replied and
    the kernel is idle again: its outputs are then all shown."""
    start_run_all(page, restart=restart)
    wait_run_all(page)


def start_run_all(page: Any, *, restart: bool) -> None:
    """Start running every cell (after a kernel restart if asked); `wait_run_all` waits."""
    page.evaluate(  # not awaited here: the wait has the timeout
        """(restart) => {
            const app = window.jupyterapp;
            const kernel = app.shell.currentWidget.sessionContext.session.kernel;
            window.__runAll = 'running';
            void (restart ? kernel.restart() : Promise.resolve())
                .then(() => app.commands.execute('notebook:run-all-cells'))
                .then(() => { window.__runAll = 'done'; },
                      (error) => { window.__runAll = `failed: ${error}`; });
        }""",
        restart,
    )


def wait_run_all(page: Any) -> None:
    """Until the run started by `start_run_all` is done, the kernel is idle and every output
    is drawn (JupyterLab renders an output some time after the output arrives)."""
    page.wait_for_function("() => window.__runAll !== 'running'", timeout=UI_TIMEOUT)
    assert page.evaluate("() => window.__runAll") == "done"
    wait_idle(page)
    page.wait_for_function(_OUTPUTS_DRAWN, timeout=UI_TIMEOUT)


# Every output element holds what its renderer drew (an empty one is still being rendered).
_OUTPUTS_DRAWN = f"""() => [...document.querySelectorAll({f"{CELLS} {OUTPUTS}"!r})]
    .every((output) => output.childElementCount > 0)"""


# An output of HTML made in the kernel (JupyterLab's HTML renderer, not its Markdown one), and
# the quiet line that ends an answer's document: its footer.
HTML_OUTPUT = f"{OUTPUTS}.jp-RenderedHTMLCommon"
FOOTER = ".nbchat > div[style*='opacity']:last-child"


def footer_line(cell: Any) -> str:
    """The answer's footer line ('' while there is none)."""
    footers = cell.locator(f"{HTML_OUTPUT} {FOOTER}")
    return footers.last.inner_text() if footers.count() else ""


def wait_answer(page: Any, cell: Any) -> None:
    """Until the cell shows a final answer (its footer) and the kernel is idle."""
    cell.locator(f"{HTML_OUTPUT} {FOOTER}").last.wait_for(timeout=UI_TIMEOUT)
    wait_idle(page)


def deselect(page: Any, cell: Any) -> None:
    """Make the first cell the active one and scroll ``cell`` to the top (for a screenshot
    without the active cell's outline)."""
    page.keyboard.press("Escape")
    page.evaluate("() => { window.jupyterapp.shell.currentWidget.content.activeCellIndex = 0; }")
    cell.evaluate("(cell) => cell.scrollIntoView({block: 'start'})")


def shoot(page: Any, name: str, first: Any, last: Any) -> None:
    """Screenshot the notebook panel's width, from `first`'s top to `last`'s bottom."""
    panel = page.locator(".jp-NotebookPanel .jp-Notebook").first.bounding_box()
    top, bottom = first.bounding_box(), last.bounding_box()
    assert panel and top and bottom
    y = max(top["y"] - 6, panel["y"])
    following = last.evaluate("(el) => el.nextElementSibling?.getBoundingClientRect().top ?? null")
    end = min(bottom["y"] + bottom["height"] + 6, panel["y"] + panel["height"])
    if following is not None:
        end = min(end, following - 1)  # not a pixel of the next (active, outlined) cell
    clip = {"x": panel["x"], "y": y, "width": panel["width"], "height": end - y}
    folder = DOCS if SCREENSHOTS else Path(tempfile.gettempdir())
    folder.mkdir(exist_ok=True)
    page.screenshot(path=str(folder / name), clip=clip)


def _stored_records(text: str) -> int:
    """How many records a saved notebook holds (in an answer's bundle or a ``--raw`` tree)."""
    try:
        cells = json.loads(text)["cells"]
    except (ValueError, KeyError):
        return 0  # not written yet, or caught mid-write
    outputs = [output for cell in cells for output in cell.get("outputs", [])]
    return sum(
        RECORD_MIME in output.get("data", {})
        or "record" in output.get("metadata", {}).get("nbchat", {})
        for output in outputs
    )


def wait_saved(path: Path, records: int) -> str:
    """The notebook file once it holds ``records`` records (JupyterLab saves asynchronously)."""
    deadline = time.monotonic() + SAVE_TIMEOUT
    while True:
        try:
            text = path.read_text()
        except OSError:  # not there yet, or renamed just now
            text = ""
        if _stored_records(text) >= records:
            return text
        if time.monotonic() > deadline:
            pytest.fail(f"{path.name} never got {records} record(s) on disk:\n{text[:2000]}")
        time.sleep(0.2)


def save(page: Any, path: Path, records: int) -> str:
    """Save with Ctrl+S; the file's text once it holds the records and the panel is clean."""
    page.keyboard.press("Control+s")
    wait_saved(path, records)
    page.wait_for_function(
        "() => !document.querySelector('.jp-NotebookPanel.jp-mod-dirty')", timeout=UI_TIMEOUT
    )
    return path.read_text()


# Whether an element is inside a ``<details>`` fold.
IN_FOLD = "(el) => el.closest('details') !== null"


def check_fold_closed(fold: Any, hidden: str) -> None:
    """The fold is collapsed: its summary shows, ``hidden`` (inside it) does not."""
    assert fold.evaluate("(el) => el.open") is False
    assert fold.locator("summary").is_visible()
    assert hidden in fold.text_content()
    assert hidden not in fold.inner_text()  # not rendered: only the summary is
