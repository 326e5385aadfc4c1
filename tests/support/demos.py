"""The demo notebooks (``demo_notebooks/``), and the outputs in them that hold answers."""

from __future__ import annotations

import nbformat
import pytest

from nbchat.store.notebook import iter_output_records

from support.paths import DEMOS

NOTEBOOKS = sorted(DEMOS.glob("*.ipynb"))
demo = pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda path: path.stem)  # each notebook


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
