"""Live views of a streaming answer.

`WidgetStream` shows the text so far and a status line in an ipywidgets view, updated at most
``rate`` times a second (less often for a very long answer): every widget change is one comm
message carrying the whole value, and nothing else throttles them. When the answer ends, the
view's output slot is replaced (a display handle's update) by a plain bundle, so the saved
notebook holds no widget. `TerminalStream` prints tokens as they come, for terminal IPython.
"""

from __future__ import annotations

import html
import sys
import time
from typing import Any, Protocol

from IPython.display import DisplayHandle, display

__all__ = ["LiveView", "TerminalStream", "WidgetStream", "live_view"]

_TEXT_STYLE = "white-space: pre-wrap; margin: 0; font-family: inherit; line-height: 1.5;"
_STATUS_STYLE = "font-size: 85%; opacity: 0.7;"
# Every update resends the whole text, so a long answer is updated less often: the view never
# sends more than about this many bytes a second, whatever the model's speed.
_BYTES_PER_SECOND = 1_000_000


class LiveView(Protocol):
    """What the magic needs from a live view."""

    def on_delta(self, text: str, pieces: int = 1) -> None:
        """Receive the next text of the answer (joining ``pieces`` deltas)."""

    def finish(self, data: dict[str, Any], metadata: dict[str, Any]) -> None:
        """Replace the live view with the final bundle."""

    def discard(self) -> None:
        """Remove the live view: nothing arrived worth keeping (the error says why)."""


class WidgetStream:
    """An ipywidgets view of the answer so far, throttled by time and coalesced."""

    def __init__(self, model: str, *, rate: float = 15.0) -> None:
        import ipywidgets as widgets  # imported only when a frontend can show it

        self.model = model
        self.interval = 1.0 / rate if rate > 0 else 0.0
        self.tokens = 0
        self._parts: list[str] = []
        self._text = ""
        self._start = time.perf_counter()
        self._next = self._start  # the first token shows at once
        self._body = widgets.HTML(value="")
        self._status = widgets.HTML(value=self._status_html(streaming=True))
        self._box = widgets.VBox([self._body, self._status])
        handle = display(self._box, display_id=True)
        assert isinstance(handle, DisplayHandle)
        self._handle = handle

    def on_delta(self, text: str, pieces: int = 1) -> None:
        """Called per network read: cheap; pushes an update only when the interval has passed."""
        self._parts.append(text)
        self.tokens += pieces
        now = time.perf_counter()
        if now >= self._next:
            self._push()
            self._next = now + max(self.interval, len(self._text) / _BYTES_PER_SECOND)

    def _push(self) -> None:
        if self._parts:
            self._text += "".join(self._parts)
            self._parts.clear()
        self._body.value = f'<pre style="{_TEXT_STYLE}">{html.escape(self._text)}</pre>'
        self._status.value = self._status_html(streaming=True)

    def _status_html(self, *, streaming: bool) -> str:
        elapsed = time.perf_counter() - self._start
        speed = f" · {self.tokens / elapsed:.0f} tok/s" if elapsed > 0.05 and self.tokens else ""
        state = "streaming…" if streaming else "done"
        line = f"{self.model} · {self.tokens} tokens · {elapsed:.1f} s{speed} · {state}"
        return f'<span style="{_STATUS_STYLE}">{html.escape(line)}</span>'

    def finish(self, data: dict[str, Any], metadata: dict[str, Any]) -> None:
        """Swap the widget for the final bundle in the same output slot, then drop the widget."""
        self._handle.update(data, raw=True, metadata=metadata)
        self._box.close()
        self._body.close()
        self._status.close()

    def discard(self) -> None:
        """Leave an empty output where the view was, and drop the widget."""
        self.finish({"text/plain": ""}, {})


class TerminalStream:
    """Tokens to stdout as they arrive; the final bundle is not shown again."""

    def __init__(self, model: str) -> None:
        self.model = model
        self._wrote = False

    def on_delta(self, text: str, pieces: int = 1) -> None:
        """Print the text at once."""
        sys.stdout.write(text)
        sys.stdout.flush()
        self._wrote = True

    def finish(self, data: dict[str, Any], metadata: dict[str, Any]) -> None:
        """End the line and show the footer (the last bracketed line of the plain text)."""
        plain = data.get("text/plain", "")
        if not self._wrote:
            print(plain)
            return
        footer = plain.rsplit("\n", 1)[-1]
        print(f"\n{footer}")

    def discard(self) -> None:
        """End a started line; nothing else to undo in a terminal."""
        if self._wrote:
            print()


def live_view(model: str, *, rate: float, widgets: bool) -> LiveView:
    """A widget view in a kernel with a frontend, else a terminal one."""
    if widgets:
        return WidgetStream(model, rate=rate)
    return TerminalStream(model)
