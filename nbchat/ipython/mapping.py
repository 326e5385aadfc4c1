"""A ``%%chat --map`` cell or an `nbchat.map` call: the engine's run (`engine.map`) with a live
progress view, then its summary (with the batch record) in the same output slot; with
``--batch``, the provider's batch API instead (`ipython.batch_cell`)."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from nbchat.engine.map import MapJob, map_items
from nbchat.errors import BatchError, ConfigError
from nbchat.ipython.context import ChatKernel
from nbchat.ipython.options import CellOptions
from nbchat.ipython.progress import progress_view, summary_bundle

__all__ = ["map_cell", "map_job", "run_job", "run_map"]


def map_job(
    kernel: ChatKernel, options: CellOptions, template: str, items: Any, *, title: str = ""
) -> MapJob:
    """What one run needs: the template, the items and the cell's options."""
    settings = kernel.settings(options.flags())
    cell = kernel.running
    return MapJob(
        name=options.map or "items",
        items=items,
        cell=template,
        namespace=kernel.namespace,
        settings=replace(settings, stream=False),
        output=kernel.output_shape(options),
        thread=options.thread,
        cell_id=cell.cell_id,
        source=cell.source,
        concurrency=options.concurrency,
        rpm=options.rpm,
        refresh=options.refresh,
        title=title,
        note=kernel.note,
        guard=None if options.allow_secrets else kernel.key_guard(settings, options),
    )


def map_cell(kernel: ChatKernel, options: CellOptions, text: str) -> None:
    """``%%chat --map NAME``: the cell once per item; ``-o`` gets the values (those that
    completed, when some failed)."""
    assert options.map is not None
    try:
        if options.map not in kernel.namespace:
            raise ConfigError(f"--map: {options.map!r} is not defined in the notebook")
        job = map_job(kernel, options, text, kernel.namespace[options.map])
    except BaseException:
        if options.batch:  # the output held this cell's pending batches: kept in the new one
            from nbchat.ipython.batch_cell import keep_pending

            keep_pending(kernel)
        raise
    try:
        values, pending = run_job(kernel, options, job)
        if pending:  # bound by the poller when the batch ends
            return
    except BatchError as error:
        if options.out:
            kernel.namespace[options.out] = error.values
        raise
    if options.out:
        kernel.namespace[options.out] = values


def run_job(kernel: ChatKernel, options: CellOptions, job: MapJob) -> tuple[Any, bool]:
    """The values of a run in real time, or with ``--batch`` through the provider's batch
    API; and whether they are still to come (a poller follows the batch and binds them)."""
    if not options.batch:
        return run_map(kernel, job), False
    from nbchat.ipython.batch_cell import PENDING, batch_map  # the batch API: only when used

    values = batch_map(kernel, options, job)
    return values, values is PENDING


def run_map(kernel: ChatKernel, job: MapJob) -> Any:
    """Run every item with a live progress view, show the summary, and return the values.
    Raises `BatchError` (with ``.values``) when some items failed, `BatchInterrupted` on Ctrl-C,
    after showing the summary either way."""
    view = progress_view(kernel.running.frontend)
    try:
        outcome = map_items(job, kernel.session, kernel.notebook(), on_progress=view.update)
    except BaseException:
        view.stop()  # an error before the summary: no progress bar left behind
        raise
    view.finish(*summary_bundle(outcome))
    outcome.raise_for_failures()
    return outcome.values
