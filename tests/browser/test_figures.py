"""A figure sent with a prompt shows as a thumbnail above the answer in JupyterLab, and again when
replayed."""

from __future__ import annotations

from typing import Any

from support.fake_openai import FakeOpenAI, Fault
from support.jupyterlab import UI_TIMEOUT, Browser
from support.lab_page import OUTPUTS, footer_line, open_notebook, run_all, save, write_lab_notebook

FIGURE = """\
import matplotlib
matplotlib.use("Agg")
import matplotlib.pyplot as plt

fig, ax = plt.subplots(figsize=(6.4, 4.8))
ax.plot([0.6, 2.1, 3.9, 4.3, 3.1, 1.2, 0.5, 1.8, 3.7, 4.4, 3.3, 1.4], marker="o")
ax.set(title="Brest", xlabel="hour", ylabel="level (m)")
plt.close(fig)"""
FIGURE_ANSWER = "Two **high tides**, about twelve hours apart: a semi-diurnal tide."
# Every image of a cell's outputs: its natural size and where it is drawn, once each has loaded.
_IMAGES = """(cell) => [...cell.querySelectorAll('.jp-OutputArea-output img')].map((img) => ({
    loaded: img.complete, width: img.naturalWidth, height: img.naturalHeight,
    bottom: img.getBoundingClientRect().bottom,
}))"""


def test_a_figure_shows_its_thumbnail_and_replays(browser: Browser, server: FakeOpenAI) -> None:
    page, lab = browser.page, browser.lab
    server.default_fault = Fault(text=FIGURE_ANSWER)
    notebook_path = lab.root / "figure.ipynb"
    sources = ["%load_ext nbchat", FIGURE, "%%chat\nWhat does {fig} show?"]
    write_lab_notebook(notebook_path, sources)
    cells = open_notebook(browser, "figure.ipynb", 3)
    ask = cells.nth(2)

    run_all(page, restart=False)
    _check_thumbnail(ask, replayed=False)
    (request,) = server.chat_requests
    parts = request.body["messages"][-1]["content"]
    assert [part["type"] for part in parts].count("image_url") == 1, parts

    # Saved, then a fresh kernel runs every cell: the thumbnail again, and no request.
    save(page, notebook_path, records=1)
    run_all(page, restart=True)
    _check_thumbnail(ask, replayed=True)
    assert len(server.chat_requests) == 1


def _check_thumbnail(cell: Any, *, replayed: bool) -> None:
    """The figure's thumbnail (an image output, at most 160 px a side, drawn) above the answer."""
    outputs = cell.locator(OUTPUTS)
    assert outputs.count() == 2
    assert outputs.first.get_attribute("data-mime-type") == "image/png"
    answer = outputs.nth(1)
    assert answer.get_attribute("data-mime-type") == "text/html"
    assert "high tides" in answer.locator("strong").inner_text()
    assert ("replayed" in footer_line(cell)) == replayed
    cell.page.wait_for_function(
        "(cell) => [...cell.querySelectorAll('img')].every((img) => img.complete)",
        arg=cell.element_handle(),
        timeout=UI_TIMEOUT,
    )
    (image,) = cell.evaluate(_IMAGES)
    assert image["loaded"] and 0 < image["width"] <= 160 and 0 < image["height"] <= 160, image
    top = answer.bounding_box()
    assert top is not None and image["bottom"] <= top["y"], (image, top)
