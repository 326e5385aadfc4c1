"""What a ``%%chat --map`` cell shows: live progress, then a compact summary.

The progress view is an ipywidgets progress bar and one line (done / total, replayed, failed,
tokens, items per second, ETA), updated only when `nbchat.batch.run_batch` reports (a few times
a second at most), so a batch of thousands costs the frontend a bounded number of messages.
Headless runs show nothing live. The summary replaces the view: the counts, the first few items
with their answers, and every failure with its one-line reason; model text in it is escaped.
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from typing import Any

from IPython.display import DisplayHandle, display

from nbchat.batch import Progress
from nbchat.record import RECORD_MIME
from nbchat.render import Bundle, escape_markdown
from nbchat.text import clip, markdown_table, one_line, plural, render_table

__all__ = ["BatchSummary", "ProgressView", "progress_view"]

_SHOWN_RESULTS = 5
_SHOWN_FAILURES = 10
_STYLE = "font-size: 85%; opacity: 0.75;"


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
        line.value = f'<span style="{_STYLE}">{html.escape(progress_line(progress))}</span>'

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
        """The summary as Markdown and plain text (with the batch record, when stored); its
        metadata counts the answers, and the ``replayed`` ones, for `nbchat run`."""
        headers = ["#", self.name, "answer"]
        rows = [
            [self.labels[index], clip(one_line(self.inputs[index]), 60), clip(one_line(answer), 80)]
            for index, answer in enumerate(self.answers)
            if answer is not None
        ][:_SHOWN_RESULTS]
        answered = sum(answer is not None for answer in self.answers)
        more = answered - len(rows)
        markdown = [f"**{escape_markdown(line)}**"]
        plain = [line]
        if rows:
            safe = [[escape_markdown(cell) for cell in row] for row in rows]
            markdown.append(markdown_table([escape_markdown(h) for h in headers], safe))
            plain += render_table(headers, rows)
            if more:
                markdown.append(f"*… and {plural(more, 'more answer')}.*")
                plain.append(f"… and {plural(more, 'more answer')}.")
        failures = sorted(self.failures.items())
        for index, reason in failures[:_SHOWN_FAILURES]:
            text = f"item {self.labels[index]} failed: {clip(one_line(reason), 200)}"
            markdown.append(f"- ⚠ {escape_markdown(text)}")
            plain.append(f"⚠ {text}")
        if len(failures) > _SHOWN_FAILURES:
            rest = f"… and {len(failures) - _SHOWN_FAILURES} more failures"
            markdown.append(f"- {rest}")
            plain.append(rest)
        if pending:
            markdown.append(f"*{plural(len(pending), 'item')} not done (interrupted).*")
            plain.append(f"{plural(len(pending), 'item')} not done (interrupted).")
        data: dict[str, Any] = {
            "text/markdown": "\n\n".join(markdown),
            "text/plain": "\n".join(plain),
        }
        if record is not None:
            data[RECORD_MIME] = record
        answered = sum(answer is not None for answer in self.answers)
        return data, {"nbchat": {"batch": True, "answered": answered, "replayed": replayed}}
