"""The running cell, as the kernel tells it: read once, at the start of a magic or an `ask`.

JupyterLab, Notebook 7 and VS Code send the cell's id with each execute request (in the parent
header's metadata); headless runners (nbclient, papermill, ``nbconvert --execute``) send none,
and terminal IPython has no kernel at all. Which of the three is running decides how a cell is
placed in the saved notebook and what is shown live.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Any

__all__ = ["Frontend", "RunningCell"]


class Frontend(enum.Enum):
    """Who is watching the kernel."""

    INTERACTIVE = "interactive"  # a notebook frontend that sends cell ids
    HEADLESS = "headless"  # nbclient, papermill, nbconvert: a kernel nobody watches
    TERMINAL = "terminal"  # terminal IPython: no kernel, output goes to a terminal


@dataclass(frozen=True, kw_only=True)
class RunningCell:
    """The cell being run: its id (when the frontend sent one), its code as executed, the
    execute request's message id, and who is watching."""

    cell_id: str | None
    source: str | None
    message_id: str
    frontend: Frontend

    @classmethod
    def read(cls, shell: Any) -> RunningCell:
        """The running cell, from the kernel's parent header (nothing outside a kernel)."""
        kernel = getattr(shell, "kernel", None)
        if kernel is None:
            return cls(cell_id=None, source=None, message_id="", frontend=Frontend.TERMINAL)
        parent = _parent(kernel)
        cell_id = (parent.get("metadata") or {}).get("cellId")
        code = (parent.get("content") or {}).get("code")
        return cls(
            cell_id=str(cell_id) if cell_id else None,
            source=code if isinstance(code, str) else None,
            message_id=str((parent.get("header") or {}).get("msg_id", "")),
            frontend=Frontend.INTERACTIVE if cell_id else Frontend.HEADLESS,
        )

    @property
    def knows_cells(self) -> bool:
        """Whether cells can be placed in the saved notebook by their ids."""
        return self.cell_id is not None


def _parent(kernel: Any) -> dict[str, Any]:
    """The execute request being run."""
    try:
        parent = kernel.get_parent()
    except Exception:  # older ipykernel
        parent = getattr(kernel, "_parent_header", {}) or {}
    return parent if isinstance(parent, dict) else {}
