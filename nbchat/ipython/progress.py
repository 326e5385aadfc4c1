"""The live view of a ``%%chat --map`` run: a progress bar and one line.

An ipywidgets progress bar and one line (done / total, replayed, failed, tokens, dollars
spent and projected for the rest, items per second, ETA), updated only when
`engine.batch.run_batch` reports (a few times a second at most), so a batch of thousands costs
the frontend a bounded number of messages. Headless runs show nothing live. The summary
(`summary_bundle`) replaces the view in the same output slot.
"""

from __future__ import annotations

from typing import Any

from IPython.display import DisplayHandle, display

from nbchat.engine.batch import Progress
from nbchat.engine.map import MapOutcome
from nbchat.ipython.cell import Frontend
from nbchat.render.batch import BatchSummary
from nbchat.render.bundles import Bundle, note_html
from nbchat.render.html import document
from nbchat.store.record import RECORD_MIME

__all__ = ["ProgressView", "progress_line", "progress_view", "summary_bundle"]


def progress_line(progress: Progress) -> str:
    """``120 / 200 · 12 replayed · 1 failed · 8,400 tokens · spent $0.12 · ≈$0.08 more for the
    rest · 23.1 items/s · ETA 3 s``."""
    parts = [f"{progress.done} / {progress.total}"]
    if progress.replayed:
        parts.append(f"{progress.replayed} replayed")
    if progress.failed:
        parts.append(f"{progress.failed} failed")
    if progress.tokens:
        parts.append(f"{progress.tokens:,} tokens")
    if progress.spent.usd or progress.spent.unknown:
        parts.append(f"spent {progress.spent}")
    projected = progress.projected()
    if projected is not None and not progress.finished:
        parts.append(f"≈{str(projected).lstrip('≈')} more for the rest")
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


def progress_view(frontend: Frontend) -> ProgressView | _Silent:
    """The live view for where the kernel runs."""
    return ProgressView() if frontend is Frontend.INTERACTIVE else _Silent()


def summary_bundle(outcome: MapOutcome, **more: Any) -> Bundle:
    """The summary shown (and stored, with the batch record) when a run is done; ``more``:
    what `BatchSummary.bundle` adds while a provider's batch runs."""
    summary = outcome.summary
    shown = BatchSummary(
        summary.name, summary.inputs, summary.answers, summary.listed, summary.labels
    )
    data, metadata = shown.bundle(
        summary.line, outcome.record, pending=summary.pending, replayed=summary.replayed, **more
    )
    assert outcome.record is None or data[RECORD_MIME] is outcome.record
    return data, metadata
