"""This kernel's saved notebook: which file it is, and its records, read again only on change.

The file is named explicitly (``%chat notebook PATH``, ``ChatMagics.notebook``,
``$NBCHAT_NOTEBOOK``), else found (`store.notebook.find_notebook`: VS Code, the Jupyter server's
session, ``$JPY_SESSION_NAME``). When it is unknown or unreadable the user is told once, in the
cell's output, and how to fix it.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from nbchat.errors import NotebookError
from nbchat.ipython.server_sessions import ServerSessionLookup
from nbchat.store.notebook import NotebookRecords, NotebookWatcher, find_notebook

__all__ = ["SavedNotebook"]

_UNKNOWN_FILE = (
    "nbchat: the notebook file is unknown, so only this session's answers can be reused. "
    "Point nbchat at it with %chat notebook PATH or $NBCHAT_NOTEBOOK."
)
_HEADLESS_UNKNOWN_FILE = (
    "nbchat: running headless (nbclient, papermill or nbconvert) without $NBCHAT_NOTEBOOK, so the "
    "answers stored in this notebook cannot be replayed: every %%chat cell is sent again. Run it "
    "with `nbchat run NOTEBOOK`, or set NBCHAT_NOTEBOOK=path/to/the.ipynb for the run."
)


class SavedNotebook:
    """The notebook file of this kernel and its records."""

    def __init__(self, server_session: ServerSessionLookup | None = None) -> None:
        self.path: Path | None = None  # set by `%chat notebook PATH` or ChatMagics.notebook
        self._server_session = server_session or ServerSessionLookup()
        self._watcher: NotebookWatcher | None = None

    def locate(self, user_ns: Mapping[str, Any]) -> tuple[Path | None, str]:
        """The file and how it was found (``(None, "")`` when unknown)."""
        if self.path is not None:
            return self.path, "%chat notebook / ChatMagics.notebook"
        try:
            return find_notebook(user_ns, os.environ, self._server_session.path)
        except KeyboardInterrupt:  # while the Jupyter server was asked
            raise NotebookError(
                "Interrupted while looking for the notebook file; nothing was sent. Run the cell "
                "again."
            ) from None

    def records(
        self, user_ns: Mapping[str, Any], *, headless: bool, warn: Callable[[str], None]
    ) -> NotebookRecords | None:
        """The file's records, if it is known and readable; ``warn`` says why not."""
        path, _ = self.locate(user_ns)
        if path is None:
            warn(_HEADLESS_UNKNOWN_FILE if headless else _UNKNOWN_FILE)
            return None
        if self._watcher is None or self._watcher.path != path:
            self._watcher = NotebookWatcher(path)
        records = self._watcher.get()
        if records is None and self._watcher.error:
            warn(f"nbchat: not reading stored answers: {self._watcher.error}")
        return records

    @property
    def last(self) -> NotebookRecords | None:
        """The records as last read, without looking at the file again."""
        return self._watcher.records if self._watcher else None

    @property
    def parse_count(self) -> int:
        """How many times the file was parsed."""
        return self._watcher.parse_count if self._watcher else 0
