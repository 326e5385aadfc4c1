"""``%%chat --map NAME --batch`` and `nbchat.map(..., batch=True)`: the items go through the
provider's batch API (`engine.provider_batch`), and the kernel stays free.

As soon as the batches are made, the cell's output holds the summary so far with the pending
state (`store.batch_state`: what a re-run in any kernel re-attaches to), and the cell returns; a
background poller (`ipython.batch_poller`) asks for the batches' status every
``ChatMagics.batch_poll_s`` seconds and updates that output in place, by its display id, until
the batches end: then the answers are stored in it as the usual batch record and ``-o`` is
bound, which the summary says. With ``--wait``, and always when nobody watches (nbclient,
papermill, ``nbchat run``, a terminal), the cell waits instead, with a progress bar in a
frontend, up to ``--batch-timeout``; past it, or on Ctrl-C, it stops waiting in one line that
names the batch, which goes on.
"""

from __future__ import annotations

import time
from typing import Any

from IPython.display import DisplayHandle, display

from nbchat._text import clip, one_line, plural
from nbchat.engine.batch import Progress
from nbchat.engine.batch_status import progress, skipped_line, status_lines
from nbchat.engine.map import MapJob, MapOutcome
from nbchat.engine.provider_batch import ProviderBatchRun
from nbchat.errors import PASSING_ERRORS, BatchPending
from nbchat.ipython.batch_poller import BatchPoller
from nbchat.ipython.cell import Frontend
from nbchat.ipython.context import ChatKernel
from nbchat.ipython.options import CellOptions
from nbchat.ipython.progress import progress_line, summary_bundle
from nbchat.render.bundles import Bundle, note_html
from nbchat.render.html import document
from nbchat.store.batch_state import BATCHES_MIME, BatchState, PendingBatch
from nbchat.store.keys import Endpoint

__all__ = ["PENDING", "BatchView", "batch_map", "keep_pending"]

PENDING = object()  # the values are not there yet: the poller binds them
_WIDGET_MIME = "application/vnd.jupyter.widget-view+json"
_SLICE = 0.1  # longest sleep while waiting: how soon Ctrl-C is seen
_TAKE_OVER = 30.0  # seconds a re-run waits for the poller it replaces to finish a request


def batch_map(kernel: ChatKernel, options: CellOptions, job: MapJob) -> Any:
    """Run ``job`` through the provider's batch API; the values when every batch ended in
    the cell, else `PENDING` (a poller follows the batches and binds ``options.out``)."""
    settings = job.settings
    place = _place(kernel, job)
    try:
        kernel.pollers.stop(place, wait=_TAKE_OVER)  # a re-run takes over from the run before
        run = ProviderBatchRun(job, kernel.session, kernel.notebook())
        run.start()
    except BaseException:  # this output replaced the one with the pending state: keep it
        keep_pending(kernel)
        raise
    if run.finished:  # everything was stored, or answered before this run
        return _done(run.outcome(), BatchView(bar=False), options)
    if run.interrupted:  # Ctrl-C while submitting: what was made is stored, then the cell stops
        _stopped_submitting(run, options)
    frontend = kernel.running.frontend
    wait = options.wait or frontend is not Frontend.INTERACTIVE
    view = BatchView(bar=wait and frontend is Frontend.INTERACTIVE)
    view.show(*pending_bundle(run, options, wait, problem=run.problem), progress(run))
    if not wait:
        poller = BatchPoller(
            run,
            interval=settings.batch_poll_s,
            show=lambda: view.show(*pending_bundle(run, options, waiting=False)),
            finish=lambda outcome: _finish_later(kernel, outcome, view, options, run),
            failed=lambda line: view.show(*pending_bundle(run, options, False, problem=line)),
        )
        kernel.pollers.start(place, poller)
        return PENDING
    timeout = options.batch_timeout or settings.batch_timeout
    _wait(run, view, options, timeout, settings.batch_poll_s)
    return _done(run.outcome(), view, options, skipped=skipped_line(run))


def keep_pending(kernel: ChatKernel) -> None:
    """A ``--batch`` cell that fails before its run shows anything: show again the pending
    state of this cell's batches not collected yet. The re-run replaced the output holding it;
    saved without it, the batches would be lost and their items submitted (and paid) again."""
    cell_id = kernel.running.cell_id
    if not cell_id:
        return
    known = kernel.session.batches.listed(kernel.notebook())
    held: dict[Endpoint, list[PendingBatch]] = {}
    for entry in known:
        if entry.cell_id == cell_id and not entry.ended:
            held.setdefault(entry.endpoint, []).append(entry.batch)
    for endpoint, batches in held.items():
        state = BatchState(
            base_url=endpoint.shown,
            query_digest=endpoint.query_digest,
            batches=tuple(batches),
            cell_id=cell_id,
        )
        ids = ", ".join(batch.id for batch in batches)
        line = f"{ids} still pending at the provider: this cell picks it up when it runs."
        data = {"text/html": document(note_html(line)), "text/plain": line}
        display({**data, BATCHES_MIME: state.to_json()}, raw=True)


def pending_bundle(
    run: ProviderBatchRun, options: CellOptions, waiting: bool, *, problem: str = ""
) -> Bundle:
    """The summary so far, one line per batch, and the pending state to store."""
    outcome = run.outcome()
    lines = [*status_lines(run)]
    if problem:
        lines.append(problem)
    elif waiting:
        lines.append("Waiting in the cell for the batch (Ctrl-C stops waiting; it goes on).")
    else:
        bound = f"{options.out} is bound when it ends; " if options.out else ""
        every = f"{run.job.settings.batch_poll_s:g} s"
        lines.append(f"The kernel is free: {bound}this output follows the batch (every {every}).")
    state = run.state()
    return summary_bundle(
        outcome,
        waiting="",  # the summary's line says it
        lines=lines,
        state=state.to_json() if state is not None else None,
    )


class BatchView:
    """The cell's output slot while its batches run, updated in place (from any thread, by
    its display id); with ``bar``, a progress bar in it while the cell waits."""

    def __init__(self, *, bar: bool) -> None:
        self._bar = bar
        self._handle: DisplayHandle | None = None
        self._widgets: tuple[Any, Any, Any] | None = None

    def show(
        self, data: dict[str, Any], metadata: dict[str, Any], progress: Progress | None = None
    ) -> None:
        """Show ``data`` (and, with a bar, ``progress``) in the slot."""
        if self._bar and progress is not None:
            data = {**data, _WIDGET_MIME: self._progress(progress)}
        if self._handle is None:
            handle = display(data, raw=True, metadata=metadata, display_id=True)
            assert isinstance(handle, DisplayHandle)
            self._handle = handle
        else:
            self._handle.update(data, raw=True, metadata=metadata)

    def finish(self, data: dict[str, Any], metadata: dict[str, Any]) -> None:
        """The last content of the slot (no bar)."""
        self._bar = False
        self.show(data, metadata)
        for widget in self._widgets or ():
            widget.close()
        self._widgets = None

    def _progress(self, progress: Progress) -> dict[str, Any]:
        """The progress bar's view (made at the first call), updated to ``progress``."""
        if self._widgets is None:
            import ipywidgets as widgets  # only when a frontend shows it

            bar = widgets.IntProgress(value=0, min=0, max=max(progress.total, 1))
            line = widgets.HTML(value="")
            self._widgets = (widgets.VBox([bar, line]), bar, line)
        box, bar, line = self._widgets
        bar.value = progress.done
        line.value = progress_line(progress)
        return box._repr_mimebundle_()[_WIDGET_MIME]


def _wait(
    run: ProviderBatchRun, view: BatchView, options: CellOptions, timeout: float, every: float
) -> None:
    """Follow the batches in the cell until they end; `BatchPending` past ``timeout`` or on
    Ctrl-C, the pending state left in the output."""
    start = time.monotonic()
    due = start + every
    stopped = ""
    try:
        while not run.finished:
            if time.monotonic() - start >= timeout:
                stopped = f"still running after {timeout:g} s"
                break
            time.sleep(max(min(_SLICE, due - time.monotonic()), 0.0))
            if time.monotonic() >= due:
                problem = _refreshed(run, every)
                view.show(*pending_bundle(run, options, True, problem=problem), progress(run))
                due = time.monotonic() + every
    except KeyboardInterrupt:
        stopped = "no longer waited for (Ctrl-C)"
    if run.finished:
        return
    said = _batches_said(run)
    line = f"Stopped waiting: {said} {stopped}; it goes on at the provider."
    view.finish(*pending_bundle(run, options, waiting=False, problem=line))
    raise BatchPending(
        f"{said[0].upper()}{said[1:]} {stopped}: it goes on at the provider; "
        "run the cell again to pick up its answers."
    )


def _stopped_submitting(run: ProviderBatchRun, options: CellOptions) -> None:
    """Ctrl-C stopped submitting after a batch was made: its pending state in the output (a
    re-run in any kernel picks it up), then `BatchPending`."""
    said = _batches_said(run)
    line = f"Stopped submitting (Ctrl-C): {said} goes on at the provider; the rest was not sent."
    BatchView(bar=False).finish(*pending_bundle(run, options, waiting=False, problem=line))
    raise BatchPending(
        f"Stopped submitting (Ctrl-C): {said} goes on at the provider; run the cell again to "
        "pick up its answers and submit the rest."
    )


def _refreshed(run: ProviderBatchRun, every: float) -> str:
    """One round of status requests; a failure the next round may not meet (the network, the
    server's 5xx or 429 after the retries, a file cut off) is said, not raised: the wait goes
    on, up to its timeout, as the poller's does."""
    try:
        run.refresh()
    except PASSING_ERRORS as error:
        return f"Status check failed: {clip(one_line(str(error)), 200)} (next in {every:g} s)."
    return ""


def _batches_said(run: ProviderBatchRun) -> str:
    """``batch batch-7`` or ``batches batch-7, batch-8``: those still running."""
    running = [known.batch.id for known in run.batches.values() if not known.ended]
    return f"{'batches' if len(running) > 1 else 'batch'} {', '.join(running)}"


def _done(outcome: MapOutcome, view: BatchView, options: CellOptions, *, skipped: str = "") -> Any:
    """Every batch ended with the cell waiting: the summary, then the values (or the cell's
    error naming the failures)."""
    view.finish(*summary_bundle(outcome, lines=[skipped] if skipped else []))
    outcome.raise_for_failures()
    return outcome.values


def _finish_later(
    kernel: ChatKernel,
    outcome: MapOutcome,
    view: BatchView,
    options: CellOptions,
    run: ProviderBatchRun,
) -> None:
    """Every batch ended after the cell returned (the poller's thread): bind ``-o``, and the
    summary says so, listing the failures (no cell error names them now)."""
    lines = [line for line in (skipped_line(run),) if line]
    if options.out:
        kernel.namespace[options.out] = outcome.values
        failed = f", None for {plural(len(outcome.failures), 'failed item')}"
        lines.append(
            f"{options.out} is bound to {plural(outcome.total, 'value')}"
            f"{failed if outcome.failures else ''} (the batch ended after the cell returned)."
        )
    view.finish(*summary_bundle(outcome, lines=lines))


def _place(kernel: ChatKernel, job: MapJob) -> str:
    """Which cell's poller this is: a re-run of the same cell replaces it."""
    cell = kernel.running
    return cell.cell_id or cell.source or job.cell or ""
