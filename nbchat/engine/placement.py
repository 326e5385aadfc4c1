"""Where a cell without a cell id is in the saved file.

Headless runners (nbclient, papermill, ``nbconvert --execute``) send no cell ids, but they run
every cell in order, failed ones included: the n-th ``%%chat`` cell run is the file's n-th
``%%chat`` cell.
"""

from __future__ import annotations

from nbchat.store.notebook import NotebookRecords

__all__ = ["UNPLACED", "CellPlacement"]

UNPLACED = (
    "nbchat: this cell cannot be found in the saved notebook, whose cells have no ids (nbformat "
    "< 4.5), so the stored turns of such cells are left out of its context. Save the notebook "
    "(JupyterLab then gives every cell an id) and run the cell again."
)


class CellPlacement:
    """The ``%%chat`` cells run without a cell id, counted in order."""

    def __init__(self) -> None:
        self._cells = 0  # %%chat cells run without a cell id
        self._ordinal: int | None = None  # the running one's place among them

    def start(self, cell_id: str | None, source: str | None) -> None:
        """A ``%%chat`` cell starts: one without a cell id takes the next place."""
        self._ordinal = None
        if cell_id is None and source is not None:
            self._ordinal = self._cells
            self._cells += 1

    def index(self, notebook: NotebookRecords | None) -> int | None:
        """The running cell's index among the file's cells (None when it has an id, or the file
        has fewer ``%%chat`` cells)."""
        ordinal = self._ordinal
        if notebook is None or ordinal is None or ordinal >= len(notebook.chat_cells):
            return None
        return notebook.chat_cells[ordinal]
