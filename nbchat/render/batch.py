"""What a ``%%chat --map`` cell shows: live progress, then a compact summary.

The progress view is an ipywidgets progress bar and one line (done / total, replayed, failed,
tokens, items per second, ETA), updated only when `engine.batch.run_batch` reports (a few times
a second at most), so a batch of thousands costs the frontend a bounded number of messages.
Headless runs show nothing live. The summary replaces the view: the counts, the first few items
with their answers, and every failure with its one-line reason; model and server text in it is
escaped and the HTML sanitized (`safe_html.document`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from IPython.display import DisplayHandle, display

from nbchat._text import clip, one_line, plural, render_table
from nbchat.engine.batch import Progress
from nbchat.render.bundles import Bundle, note_html
from nbchat.render.html import document, escape, table
from nbchat.store.record import RECORD_MIME

__all__ = ["BatchSummary", "ProgressView", "progress_view"]

_SHOWN_RESULTS = 5
_SHOWN_FAILURES = 10


def progress_line(progress: Progress) -> str:
    """``120 / 200 · 12 replayed · 1 failed · 8,400 tokens · 23.1 items/s · ETA 3 s``."""
    parts = [f"{progress.done} / {progress.total}"]
    if progress.replayed:
        parts.append(f"{progress.replayed} replayed")
    if progress.failed:
        parts.append(f"{progress.failed} failed")
    if progress.tokens:
        parts.append(f"{progress.tokens:,} tokens")
    if progress.rate:
        parts.append(f"{progress.rate:.1f} items/s")
    if progress.paused > 0:
        parts.append(f"rate limited: paused {progress.paused:.0f} s")
    elif progress.eta is not None and not progress.finished:
        parts.append(f"ETA {progress.eta:.0f} s")
    return " · ".join(parts)


class ProgressView:
    """A progress bar and its line, shown at the first report; the summary replaces them."""

    def __init__(self) -> None:
        self._widgets: tuple[Any, Any, Any] | None = None
        self._handle: DisplayHandle | None = None

    def update(self, progress: Progress) -> None:
        """Show ``progress`` (two widget messages)."""
        if self._widgets is None:
            import ipywidgets as widgets  # only when a frontend shows it

            bar = widgets.IntProgress(value=0, min=0, max=max(progress.total, 1))
            line = widgets.HTML(value="")
            box = widgets.VBox([bar, line])
            self._widgets = (box, bar, line)
            handle = display(box, display_id=True)
            assert isinstance(handle, DisplayHandle)
            self._handle = handle
        _, bar, line = self._widgets
        bar.value = progress.done
        line.value = document(note_html(progress_line(progress)))

    def stop(self) -> None:
        """The batch failed before its summary: the bar is replaced by a line saying so."""
        if self._handle is None or self._widgets is None:
            return
        self._handle.update({"text/plain": "[--map stopped: see the error below]"}, raw=True)
        for widget in self._widgets:
            widget.close()
        self._widgets, self._handle = None, None

    def finish(self, data: dict[str, Any], metadata: dict[str, Any]) -> None:
        """Replace the view with the summary, in the same output slot."""
        if self._handle is None or self._widgets is None:
            display(data, raw=True, metadata=metadata)
            return
        self._handle.update(data, raw=True, metadata=metadata)
        for widget in self._widgets:
            widget.close()
        self._widgets, self._handle = None, None


class _Silent:
    """No live view (a headless run, a terminal): the summary alone."""

    def update(self, progress: Progress) -> None:
        """Nobody is watching."""

    def stop(self) -> None:
        """Nothing was shown."""

    def finish(self, data: dict[str, Any], metadata: dict[str, Any]) -> None:
        """Show the summary."""
        display(data, raw=True, metadata=metadata)


def progress_view(frontend: str) -> ProgressView | _Silent:
    """The live view for where the kernel runs ("interactive", "headless", "terminal")."""
    return ProgressView() if frontend == "interactive" else _Silent()


class BatchSummary:
    """The persistent output of a batch: counts, the first results, the failures."""

    def __init__(
        self,
        name: str,
        inputs: Sequence[str],
        answers: Sequence[str | None],
        failures: dict[int, str],
        labels: Sequence[str] | None = None,
    ) -> None:
        self.name = name
        self.inputs = inputs
        self.answers = answers
        self.failures = failures
        self.labels = labels or [str(number) for number in range(len(inputs))]

    def bundle(
        self,
        line: str,
        record: dict[str, Any] | None,
        *,
        pending: Sequence[int] = (),
        replayed: int = 0,
    ) -> Bundle:
        """The summary as HTML and plain text (with the batch record, when stored); its
        metadata counts the answers, and the ``replayed`` ones, for `nbchat run`."""
        headers = ["#", self.name, "answer"]
        rows = [
            [self.labels[index], clip(one_line(self.inputs[index]), 60), clip(one_line(answer), 80)]
            for index, answer in enumerate(self.answers)
            if answer is not None
        ][:_SHOWN_RESULTS]
        answered = sum(answer is not None for answer in self.answers)
        more = answered - len(rows)
        html = [f"<p><strong>{escape(line)}</strong></p>"]
        plain = [line]
        if rows:
            html.append(table(headers, rows))
            plain += render_table(headers, rows)
            if more:
                html.append(f"<p><em>… and {plural(more, 'more answer')}.</em></p>")
                plain.append(f"… and {plural(more, 'more answer')}.")
        failures = sorted(self.failures.items())
        shown = [
            f"item {self.labels[index]} failed: {clip(one_line(reason), 200)}"
            for index, reason in failures[:_SHOWN_FAILURES]
        ]
        if len(failures) > _SHOWN_FAILURES:
            shown.append(f"… and {len(failures) - _SHOWN_FAILURES} more failures")
        if shown:
            html.append("<ul>" + "".join(f"<li>⚠ {escape(text)}</li>" for text in shown) + "</ul>")
            plain += [f"⚠ {text}" for text in shown]
        if pending:
            note = f"{plural(len(pending), 'item')} not done (interrupted)."
            html.append(f"<p><em>{escape(note)}</em></p>")
            plain.append(note)
        data: dict[str, Any] = {
            "text/html": document("".join(html)),
            "text/plain": "\n".join(plain),
        }
        if record is not None:
            data[RECORD_MIME] = record
        return data, {"nbchat": {"batch": True, "answered": answered, "replayed": replayed}}
