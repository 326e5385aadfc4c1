"""The demo notebooks as committed: they hold their answers and replay them offline.

Rebuild them with ``python demo_notebooks/build_demos.py`` after changing ``specs.py``.
"""

from __future__ import annotations

import json
import re
import shutil
import time
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

from nbchat.cli.main import verify_notebook
from nbchat.store.notebook import iter_output_records
from nbchat.store.secret_scan import find_secrets

DEMOS = Path(__file__).resolve().parents[1] / "demo_notebooks"
NOTEBOOKS = sorted(DEMOS.glob("*.ipynb"))
WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"
KEY_LIKE = re.compile(r"sk-[A-Za-z0-9_-]{6,}")
MAX_SECONDS = 15.0
# What each demo is about, as its saved answers show it: folded thinking, folded tool calls, an
# image sent as a part of a message, a batch run again and replayed whole.
SHOWS = {
    "reasoning": "<details><summary>Thinking · ",
    "tools_and_schemas": "<details><summary>Tools · 2 calls · lookup",
    "data_and_figures": '"image_url": {"url": "data:image/png;base64,',
    "batch": "--map texts: 10 items · 10 answered (10 replayed) · ",
}
# The summary of a batch whose every item was replayed (no request, so no tokens counted).
ALL_REPLAYED = re.compile(
    r"(?:--map \S+|nbchat\.map): (\d+) items? · (\d+) answered \((\d+) replayed\) · [\d.]+ s"
)

demo = pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda path: path.stem)


def answer_outputs(notebook: nbformat.NotebookNode) -> list[dict]:
    """The outputs that hold an answer record."""
    return [
        output
        for cell in notebook.cells
        for output in cell.get("outputs", [])
        if any(raw.get("kind") in ("turn", "answer") for _, raw in iter_output_records([output]))
    ]


def batch_outputs(notebook: nbformat.NotebookNode) -> list[dict]:
    """The outputs that hold a ``%%chat --map`` batch record."""
    return [
        output
        for cell in notebook.cells
        for output in cell.get("outputs", [])
        if any(raw.get("kind") == "batch" for _, raw in iter_output_records([output]))
    ]


def spent_row(notebook: nbformat.NotebookNode) -> list[list[str]]:
    """The ``spent`` row of every ``%chat usage`` output: answers, prompt and completion tokens."""
    rows = []
    for cell in notebook.cells:
        if cell.cell_type == "code" and cell.source.strip() == "%chat usage":
            (output,) = cell.outputs
            line = next(
                x for x in output["data"]["text/plain"].splitlines() if x.startswith("spent")
            )
            rows.append(line.split()[1:])
    return rows


def plain_output(notebook: nbformat.NotebookNode, source: str) -> str:
    """The text/plain result of the code cell whose source is ``source``."""
    (cell,) = [c for c in notebook.cells if c.cell_type == "code" and c.source == source]
    (output,) = cell.outputs
    return output["data"]["text/plain"]


def test_every_demo_is_there():
    names = {path.stem for path in NOTEBOOKS}
    assert {"quickstart", "threads", "cache", "raw_json", "providers"} <= names
    assert {"reasoning", "tools_and_schemas", "data_and_figures", "batch"} <= names


@demo
def test_a_committed_demo_holds_its_answers_and_nothing_private(path):
    text = path.read_text(encoding="utf-8")
    notebook = nbformat.reads(text, as_version=4)
    nbformat.validate(notebook)
    stored = answer_outputs(notebook) + batch_outputs(notebook)
    assert stored, "no stored answer: rebuild with demo_notebooks/build_demos.py"
    assert WIDGET_VIEW not in text and "widgets" not in notebook.metadata
    assert not KEY_LIKE.search(text)
    assert list(find_secrets(json.loads(text))) == []
    count, problems = verify_notebook(notebook)
    assert count and problems == []
    assert "the `demo` profile" in text and "--refresh" in text, (
        "the note on where answers come from"
    )
    assert SHOWS.get(path.stem, "") in json.dumps(stored, ensure_ascii=False)


@pytest.mark.kernel
@demo
def test_a_demo_replays_offline_without_a_request(path, tmp_path, monkeypatch):
    committed = path.read_bytes()
    folder = shutil.copytree(DEMOS, tmp_path / "demos", ignore=shutil.ignore_patterns("__py*"))
    copy = folder / path.name
    monkeypatch.setenv("NBCHAT_OFFLINE", "1")
    monkeypatch.setenv("NBCHAT_NOTEBOOK", str(copy))
    notebook = nbformat.read(copy, as_version=4)
    stored = len(answer_outputs(notebook))
    batches = len(batch_outputs(notebook))
    recorded = nbformat.read(path, as_version=4)
    client = NotebookClient(
        notebook,
        timeout=60,
        kernel_name="python3",
        resources={"metadata": {"path": str(folder)}},
        store_widget_state=False,
    )
    started = time.monotonic()
    client.execute()  # raises CellExecutionError on any cell error
    seconds = time.monotonic() - started

    assert len(answer_outputs(notebook)) == stored
    markers = [
        output["metadata"]["nbchat"]
        for cell in notebook.cells
        for output in cell.get("outputs", [])
        if "replayed" in output.get("metadata", {}).get("nbchat", {})
        and not output["metadata"]["nbchat"].get("batch")  # a batch counts its items
    ]
    assert len(markers) == stored and all(marker["replayed"] is True for marker in markers)
    assert all(row == ["0", "0", "0"] for row in spent_row(notebook)), "nothing was sent"
    errors = [o for c in notebook.cells for o in c.get("outputs", []) if o.output_type == "error"]
    assert errors == []
    if path.stem == "tools_and_schemas":
        assert plain_output(notebook, "calls") == "[]", "a replayed tool turn ran a function"
    assert len(batch_outputs(notebook)) == batches
    for output in batch_outputs(notebook):  # every item replayed: none asked, none failed
        line = output["data"]["text/plain"].splitlines()[0]
        match = ALL_REPLAYED.fullmatch(line)
        assert match and len(set(match.groups())) == 1, line
    if path.stem == "batch":  # the replayed labels are the recorded ones, bound again
        counts = 'labelled["sentiment"].value_counts()'
        assert plain_output(notebook, counts) == plain_output(recorded, counts)
    assert seconds < MAX_SECONDS
    assert path.read_bytes() == committed
