"""What a cell shows besides its answer: quiet notes, and the pictures it sends.

Notes are not errors, so they are not written to stderr (JupyterLab's red box): each is a small
output of its own, sanitized HTML with plain text beside it, marked as a note in its metadata
(terminal IPython gets them on stderr). When a live view is removed the cell's output is
cleared, and what the cell had shown before it is shown again.
"""

from __future__ import annotations

import base64
import sys
from collections.abc import Callable
from typing import Any

from IPython.display import display

from nbchat.ipython.cell import Frontend
from nbchat.prompt.figures import thumbnail
from nbchat.render.bundles import note_html
from nbchat.render.html import document
from nbchat.store.marker import OutputMarker
from nbchat.wire.images import ImagePart

__all__ = ["CellOutput"]


class CellOutput:
    """The running cell's notes and pictures, to show again after a live view is cleared."""

    def __init__(self, frontend: Callable[[], Frontend]) -> None:
        self._frontend = frontend
        self._notes: list[str] = []
        self._pictures: list[dict[str, Any]] = []

    def start(self) -> None:
        """A new cell runs: nothing shown yet."""
        self._notes, self._pictures = [], []

    def note(self, message: str) -> None:
        """Show a note, quietly."""
        self._notes.append(message)
        self._show_note(message)

    def picture(self, image: ImagePart) -> None:
        """Show an image the cell sends, as a thumbnail (a line without PIL)."""
        picture = thumbnail(image)
        bundle = {"text/plain": f"[{image.summary}, sent]"}
        if picture is not None:
            bundle["image/png"] = base64.b64encode(picture).decode("ascii")
        self._pictures.append(bundle)
        display(bundle, raw=True)

    def reshow(self) -> None:
        """What the cell showed before its live view, after the view cleared the output."""
        for message in self._notes:
            self._show_note(message)
        for bundle in self._pictures:
            display(bundle, raw=True)

    def _show_note(self, message: str) -> None:
        if self._frontend() is Frontend.TERMINAL:
            print(message, file=sys.stderr)
            return
        bundle = {"text/html": document(note_html(message)), "text/plain": message}
        display(bundle, raw=True, metadata=OutputMarker(note=True).to_json())
