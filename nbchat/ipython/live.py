"""Live views of a streaming answer.

`WidgetStream` shows the answer so far as HTML rendered in the kernel (an ipywidgets ``Output``
holding a sanitized ``text/html`` bundle, so the frontend typesets its math but never parses the
model's Markdown) above a status line, with a reasoning model's thinking apart above it (dimmed,
as plain text, its length and time in its header) and, in a turn that runs tools, the last calls
above that (name and arguments, then the result's first line and run time). Everything shown has
the request's secrets taken out first (a server may echo the key) and goes through
`safe_html.document`, widget values included (an ``HTML`` widget assigns its value unsanitized).
It is updated at most ``rate`` times a second, and less often for a long answer: every widget
change is one comm message carrying the whole value, and rendering costs the kernel too. When the
answer ends, the view's output slot is replaced (a display handle's update) by the final bundle,
so nothing jumps; the saved notebook holds no widget. The view appears only when a request is
sent (`start`).

`FinalOnly` shows nothing live: headless runs (nbclient, papermill, nbconvert) have nobody
watching, and would save the widgets' state into the notebook. `TerminalStream` prints tokens as
they come, for terminal IPython, holding back each unfinished word until it can be redacted.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from typing import Any, Protocol

from IPython.display import DisplayHandle, clear_output, display

from nbchat._text import duration, plural, printable
from nbchat.engine.tool_calls import ToolResult
from nbchat.ipython.cell import Frontend
from nbchat.render.bundles import note_html, thought_summary
from nbchat.render.html import GrowingMarkdown, document, escape, warm_up
from nbchat.wire.messages import call_line

__all__ = ["FinalOnly", "LiveView", "TerminalStream", "WidgetStream", "live_view"]

_THINKING_STYLE = (
    "opacity: 0.6; white-space: pre-wrap; font-size: 90%; max-height: 14em; overflow-y: auto;"
    " border-left: 2px solid currentColor; padding-left: 0.6em; margin: 0.2em 0;"
)
_CALLS_STYLE = "font-family: monospace; font-size: 85%; margin: 0.2em 0;"
# Every update resends (and the frontend re-renders) the whole text, so a long answer is updated
# less often: about this many bytes a second at most, whatever the model's speed.
_BYTES_PER_SECOND = 300_000
_RENDER_SHARE = 20  # the pause after an update is at least this many times what it cost
_CALLS_AT_ONCE = 5  # calls of a round shown as they start; later ones at the update rate
_CALLS_SHOWN = 8  # the live view lists the last calls only (the final output has all)


def _unchanged(text: str) -> str:
    return text


class LiveView(Protocol):
    """What the magic needs from a live view."""

    def start(self, redact: Callable[[str], str] = _unchanged) -> None:
        """A request is being sent: show that something is coming; ``redact`` takes the
        request's secrets out of what is shown."""

    def on_delta(self, text: str, pieces: int, reasoning: str = "") -> None:
        """Receive the next text of the answer (joining ``pieces`` deltas) and of the thinking."""

    def on_tool_start(self, name: str, arguments: str) -> None:
        """A tool call is about to run."""

    def on_tool_result(self, result: ToolResult) -> None:
        """The tool call has its result."""

    def next_round(self) -> None:
        """The results went back; the model's next answer starts from nothing."""

    def on_calls_skipped(self, results: list[ToolResult]) -> None:
        """The round's calls beyond ``--max-tool-calls`` went back unrun (their error results)."""

    def finish(self, data: dict[str, Any], metadata: dict[str, Any]) -> None:
        """Replace the live view with the final bundle (or show it, if it never started)."""

    def discard(self) -> None:
        """Remove the live view: nothing arrived worth keeping (the error says why)."""


def result_line(result: ToolResult) -> str:
    """``→ 21.5 · 3 ms`` (``✗`` for a failure the model will read)."""
    return f"{'✗' if result.failed else '→'} {result.preview} · {duration(result.elapsed_s)}"


class WidgetStream:
    """An ipywidgets view of the answer so far, throttled by time and coalesced."""

    def __init__(
        self, model: str, *, rate: float, on_discard: Callable[[], None] = lambda: None
    ) -> None:
        self.model = model
        self.interval = 1.0 / rate
        self.tokens = 0
        self._on_discard = on_discard
        self._redact: Callable[[str], str] = _unchanged
        self._parts: list[str] = []
        self._text = ""
        self._markdown = GrowingMarkdown()
        self._thoughts: list[str] = []
        self._thinking = ""
        self._thinking_since: float | None = None
        self._thinking_until: float | None = None
        self._calls: list[list[str]] = []  # per call: its line, then its result's line
        self._round_calls = 0
        self._running: str | None = None
        self._calls_changed = False
        self._start = self._next = 0.0
        self._render_s = 0.0  # what the last update cost the kernel
        self._sent = 0  # characters of HTML the last update sent (the frontend renders them)
        self._handle: DisplayHandle | None = None
        self._widgets: list[Any] = []

    def start(self, redact: Callable[[str], str] = _unchanged) -> None:
        """Show the (empty) view and its status line; ``redact`` takes the request's secrets out
        of everything shown (a server may echo the key)."""
        import ipywidgets as widgets  # imported only when a frontend can show it

        self._redact = redact
        warm_up()  # the parser's one-off set-up, before the first token rather than on it
        self._start = self._next = time.perf_counter()  # the first token shows at once
        self._body = widgets.Output()
        self._status = widgets.HTML(value=self._status_html())
        self._thought_view: Any = None  # made when there is thinking to show: each widget
        self._calls_view: Any = None  # costs the frontend three comm messages to open
        box = self._box = widgets.VBox([self._body, self._status])
        self._widgets = [box, self._body, self._status]
        handle = display(box, display_id=True)
        assert isinstance(handle, DisplayHandle)
        self._handle = handle

    def on_delta(self, text: str, pieces: int, reasoning: str = "") -> None:
        """Called per network read: cheap; pushes an update only when the interval has passed."""
        now = time.perf_counter()
        if text:
            self._parts.append(text)
            self.tokens += pieces
            if self._thinking_since is not None and self._thinking_until is None:
                self._thinking_until = now
        if reasoning:
            self._thoughts.append(reasoning)
            if self._thinking_since is None:
                self._thinking_since = now
        self._push_if_due(now)

    def on_tool_start(self, name: str, arguments: str) -> None:
        """Show the call, running: at once for the first calls of a round (nothing else updates
        the view while it runs), throttled beyond them (a model may call hundreds)."""
        self._calls.append([call_line(name, arguments), "running…"])
        self._running = name
        self._tool_changed()

    def on_tool_result(self, result: ToolResult) -> None:
        """Show the call's result next to it."""
        if self._calls:
            self._calls[-1][1] = result_line(result)
        self._running = None
        self._round_calls += 1
        self._tool_changed()

    def on_calls_skipped(self, results: list[ToolResult]) -> None:
        """One line for them all, in one update."""
        self._calls.append([f"{plural(len(results), 'more call')} not run", "(--max-tool-calls)"])
        self._calls_changed = True
        if self._handle is not None:
            self._push()

    def _tool_changed(self) -> None:
        self._calls_changed = True
        if self._handle is None:
            return
        if self._round_calls < _CALLS_AT_ONCE:
            self._push()
        else:
            self._push_if_due(time.perf_counter())

    def next_round(self) -> None:
        """The next answer replaces the text so far (the final output keeps every round)."""
        self._parts.clear()
        self._thoughts.clear()
        self._text = self._thinking = ""
        self._markdown = GrowingMarkdown()
        self._round_calls = 0
        self._thinking_since = self._thinking_until = None
        if self._handle is not None:
            self._body.outputs = ()
            if self._thought_view is not None and self._thought_view in self._box.children:
                self._box.children = tuple(
                    child for child in self._box.children if child is not self._thought_view
                )
        self._push_if_due(time.perf_counter())

    def _push_if_due(self, now: float) -> None:
        if now >= self._next and self._handle is not None:
            self._push()
            # The frontend re-renders the whole HTML per update, and rendering it here costs
            # the kernel: both are kept to a small share of the stream's time, counted from
            # the end of this update.
            pause = max(
                self.interval, self._sent / _BYTES_PER_SECOND, self._render_s * _RENDER_SHARE
            )
            self._next = time.perf_counter() + pause

    def _push(self) -> None:
        began = time.perf_counter()
        if self._calls_changed:
            self._calls_changed = False
            self._calls_view = self._shown(self._calls_view)
            self._calls_view.value = self._calls_html()
        if self._thoughts:
            self._thinking += "".join(self._thoughts)
            self._thoughts.clear()
            self._thought_view = self._shown(self._thought_view)
            self._thought_view.value = self._thinking_html()
        if self._parts:
            self._text += "".join(self._parts)
            self._parts.clear()
            shown = self._redact(self._text)
            # Redacted again as HTML: entities in the text could spell a key out.
            markup = self._redact(document(self._markdown.html(shown)))
            bundle = {"text/html": markup, "text/plain": shown}
            self._body.outputs = ({"output_type": "display_data", "data": bundle, "metadata": {}},)
            self._sent = len(markup) + len(self._thinking)
        self._status.value = self._status_html()
        self._render_s = time.perf_counter() - began

    def _shown(self, view: Any) -> Any:
        """``view`` (an HTML widget, made now if None) at the top of the box."""
        if view is None:
            import ipywidgets as widgets

            view = widgets.HTML(value="")
            self._widgets.append(view)
        if view not in self._box.children:
            self._box.children = (view, *self._box.children)
        return view

    def _calls_html(self) -> str:
        """The last calls and their results so far, as plain (escaped) text."""
        shown = self._calls[-_CALLS_SHOWN:]
        earlier = len(self._calls) - len(shown)
        rows = [f"… {plural(earlier, 'earlier call')}"] if earlier else []
        rows += [f"⚙ {self._redact(call)}  {self._redact(result)}" for call, result in shown]
        lines = "".join(f"<div>{escape(row)}</div>" for row in rows)
        return document(f'<div style="{_CALLS_STYLE}">{lines}</div>')

    def _thinking_html(self) -> str:
        """The thinking so far, dimmed, as plain (escaped) text under its length and time."""
        end = self._thinking_until or time.perf_counter()
        seconds = end - (self._thinking_since or end)
        head = thought_summary(self._thinking, seconds)
        body = escape(self._redact(self._thinking))
        return document(f'{note_html(head)}<div style="{_THINKING_STYLE}">{body}</div>')

    def _status_html(self) -> str:
        elapsed = time.perf_counter() - self._start
        speed = f" · {self.tokens / elapsed:.0f} tok/s" if elapsed > 0.05 and self.tokens else ""
        if self._running is not None:
            state = f"running {self._running}…"
        elif self.tokens:
            state = "streaming…"
        elif self._thinking or self._thoughts:
            state = "thinking…"
        elif self._calls:
            state = "sending the results, waiting for the answer…"
        else:
            state = "waiting for the first token…"
        tokens = plural(self.tokens, "token")
        line = f"{self.model} · {tokens} · {elapsed:.1f} s{speed} · {state}"
        return document(note_html(line))

    def finish(self, data: dict[str, Any], metadata: dict[str, Any]) -> None:
        """Swap the widget for the final bundle in the same output slot, then drop the widget."""
        if self._handle is None:
            display(data, raw=True, metadata=metadata)
            return
        self._handle.update(data, raw=True, metadata=metadata)
        self._close()

    def discard(self) -> None:
        """Remove the view: the cell's output is cleared (an emptied slot would still be saved as
        an empty output) and ``on_discard`` shows again what the cell had printed before."""
        if self._handle is None:
            return
        self._close()
        clear_output()
        self._on_discard()

    def _close(self) -> None:
        for widget in self._widgets:
            widget.close()
        self._widgets = []


class FinalOnly(LiveView):
    """No live view: only the final (or partial) bundle is shown (every other method is the
    protocol's: nothing to do, nobody is watching)."""

    def finish(self, data: dict[str, Any], metadata: dict[str, Any]) -> None:
        """Show the bundle."""
        display(data, raw=True, metadata=metadata)


class TerminalStream:
    """Tokens to stdout as they arrive; the final bundle is not shown again."""

    def __init__(self, model: str) -> None:
        self.model = model
        self._wrote = False
        self._redact: Callable[[str], str] = _unchanged
        self._held = ""  # the unfinished last word: a key cut in two is redacted whole

    def start(self, redact: Callable[[str], str] = _unchanged) -> None:
        """Nothing to show until the first token."""
        self._redact = redact

    def on_delta(self, text: str, pieces: int, reasoning: str = "") -> None:
        """Print the text up to its last whitespace (the thinking is not printed: the record
        keeps it)."""
        if not text:
            return
        held = self._held + text
        cut = max(held.rfind(space) for space in " \n\t") + 1
        self._held = held[cut:]
        self._write(held[:cut])

    def _write(self, text: str) -> None:
        if text:
            sys.stdout.write(printable(self._redact(text)))  # no escape codes reach the terminal
            sys.stdout.flush()
            self._wrote = True

    def on_tool_start(self, name: str, arguments: str) -> None:
        """Print the call on its own line."""
        self._flush()
        if self._wrote:
            print()
            self._wrote = False
        sys.stdout.write(f"⚙ {printable(self._redact(call_line(name, arguments)))} ")
        sys.stdout.flush()

    def on_tool_result(self, result: ToolResult) -> None:
        """End the call's line with its result."""
        print(printable(self._redact(result_line(result))))

    def on_calls_skipped(self, results: list[ToolResult]) -> None:
        """One line for them all."""
        print(f"⚙ {plural(len(results), 'more call')} not run (--max-tool-calls)")

    def next_round(self) -> None:
        """The next answer starts on a new line."""
        self._flush()

    def _flush(self) -> None:
        held, self._held = self._held, ""
        self._write(held)

    def finish(self, data: dict[str, Any], metadata: dict[str, Any]) -> None:
        """End the line and show the footer (the last bracketed line of the plain text)."""
        self._flush()
        plain = data.get("text/plain", "")
        if not self._wrote:
            print(plain)
            return
        footer = plain.rsplit("\n", 1)[-1]
        print(f"\n{footer}")

    def discard(self) -> None:
        """End a started line; nothing else to undo in a terminal."""
        self._flush()
        if self._wrote:
            print()


def live_view(
    model: str,
    *,
    rate: float,
    frontend: Frontend,
    on_discard: Callable[[], None] = lambda: None,
) -> LiveView:
    """The view for where the kernel runs."""
    if frontend is Frontend.INTERACTIVE:
        return WidgetStream(model, rate=rate, on_discard=on_discard)
    if frontend is Frontend.HEADLESS:
        return FinalOnly()
    return TerminalStream(model)
