"""The notebook file in JupyterLab: a notebook renamed by JupyterLab (every ``Untitled.ipynb`` on
its first save) keeps its answers; a file without cell ids (nbformat 4.4) replays every cell with
exactly its own context."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_notebook, new_output

from nbchat.render.bundles import answer_bundle

from support.fake_openai import FakeOpenAI, Fault
from support.jupyterlab import SAVE_TIMEOUT, UI_TIMEOUT, Browser, Lab
from support.lab_page import (
    CELLS,
    KERNELSPEC,
    OUTPUTS,
    footer_line,
    notebook_ready,
    open_notebook,
    run_all,
    save,
    wait_answer,
    wait_idle,
    wait_saved,
)
from support.nbfactory import make_record


def _type_and_run(page: Any, *lines: str) -> None:
    """Type ``lines`` into the cell being edited as a person would, then run it with Shift+Enter
    (which, in the last cell, adds a new one below and edits it)."""
    for number, line in enumerate(lines):
        if number:
            page.keyboard.press("Enter")
        page.keyboard.type(line)
    page.keyboard.press("Shift+Enter")


def _wait_output(page: Any, cell: Any) -> None:
    """Until the cell shows an output and the kernel is idle."""
    cell.locator(OUTPUTS).first.wait_for(timeout=UI_TIMEOUT)
    wait_idle(page)


def _outputs_text(page: Any) -> str:
    """Every output of the notebook as the user reads it."""
    return "\n".join(page.locator(f"{CELLS} {OUTPUTS}").all_inner_texts())


# -- a rename is followed ------------------------------------------------------------------


def test_a_rename_in_jupyterlab_is_followed(browser: Browser, server: FakeOpenAI) -> None:
    page, lab = browser.page, browser.lab
    server.default_fault = Fault(text="Tides are the **rise and fall** of the sea.")
    browser.goto()
    page.locator(".jp-LauncherCard[data-category='Notebook']").first.click()
    notebook_ready(page, 1)
    assert (lab.root / "Untitled.ipynb").exists()
    cells = page.locator(CELLS)
    cells.nth(0).locator(".jp-InputArea-editor").click()
    _type_and_run(page, "%load_ext nbchat")
    _type_and_run(page, "%%chat", "What are tides?")
    wait_answer(page, cells.nth(1))

    # The first save of an untitled notebook asks for a name: JupyterLab renames the file, and
    # the server's session follows.
    page.keyboard.press("Control+s")
    dialog = page.locator(".jp-Dialog")
    dialog.locator("input:not([type=checkbox])").fill("tides.ipynb")
    dialog.locator(".jp-mod-accept").click()
    path = lab.root / "tides.ipynb"
    wait_saved(path, records=1)
    assert not (lab.root / "Untitled.ipynb").exists()
    _wait_session_path(lab, "tides.ipynb")

    cells.nth(2).locator(".jp-InputArea-editor").click()
    _type_and_run(page, "%%chat", "Why twice a day?")
    wait_answer(page, cells.nth(2))
    _type_and_run(page, "%chat notebook")
    _wait_output(page, cells.nth(3))
    assert f"Notebook: {path} (from the Jupyter server's session)" in _outputs_text(page)
    assert "no such notebook" not in _outputs_text(page)
    asked = server.chat_requests
    assert len(asked) == 2 and len(asked[1].body["messages"]) == 3  # q1, its answer, q2

    # Saved, then a fresh kernel runs every cell: both answers replay from the renamed file.
    saved = save(page, path, records=2)
    assert "no such notebook" not in saved
    run_all(page, restart=True)
    assert "replayed" in footer_line(cells.nth(1)) and "replayed" in footer_line(cells.nth(2))
    assert f"Notebook: {path} (from the Jupyter server's session)" in _outputs_text(page)
    assert "no such notebook" not in _outputs_text(page)
    assert len(server.chat_requests) == 2


def _wait_session_path(lab: Lab, path: str) -> None:
    """Until the server's only session names ``path`` (JupyterLab tells it after a rename)."""
    deadline = time.monotonic() + SAVE_TIMEOUT
    while (paths := lab.session_paths()) != [path]:
        if time.monotonic() > deadline:
            pytest.fail(f"the server's sessions name {paths}, not [{path!r}]")
        time.sleep(0.1)


# -- a file without cell ids ---------------------------------------------------------------

OLD_TURNS = [
    ("What are tides?", "The rise and fall of the sea."),
    ("Why twice a day?", "Two bulges of water, one on each side of the Earth."),
    ("And spring tides?", "The biggest ones, at new and full moon."),
]


def _write_old_notebook(path: Path, base_url: str) -> None:
    """A nbformat 4.4 file (no cell ids, as older tools write) holding one thread's answers."""
    cells = [new_code_cell("%load_ext nbchat")]
    messages: list[dict[str, str]] = []
    for question, answer in OLD_TURNS:
        messages = [*messages, {"role": "user", "content": question}]
        record = make_record(question, answer, messages=messages, base_url=base_url)
        data, metadata = answer_bundle(record)
        output = new_output("display_data", data=data, metadata=metadata)
        cells.append(new_code_cell(f"%%chat\n{question}", outputs=[output]))
        messages = [*messages, {"role": "assistant", "content": answer}]
    notebook = new_notebook(cells=cells, metadata={"kernelspec": KERNELSPEC})
    notebook.nbformat_minor = 4
    for cell in notebook.cells:
        del cell["id"]
    nbformat.validate(notebook)
    path.write_text(json.dumps(notebook, indent=1))


def test_a_file_without_cell_ids_replays_every_cell(browser: Browser, server: FakeOpenAI) -> None:
    page, lab = browser.page, browser.lab
    path = lab.root / "old.ipynb"
    _write_old_notebook(path, server.base_url)
    before = path.read_bytes()
    cells = open_notebook(browser, "old.ipynb", 4)
    # JupyterLab gives the cells ids the file does not have; nothing is saved before running.
    run_all(page, restart=False)
    footers = [footer_line(cells.nth(index)) for index in (1, 2, 3)]
    assert all("replayed" in footer for footer in footers), footers
    assert server.chat_requests == []
    assert "not reading stored answers" not in _outputs_text(page)
    assert path.read_bytes() == before, "the notebook was saved before it ran"
