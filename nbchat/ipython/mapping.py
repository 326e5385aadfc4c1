"""A ``%%chat --map`` cell or an `nbchat.map` call: the engine's run (`engine.map`) with a live
progress view, then its summary (with the batch record) in the same output slot."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from nbchat.engine.map import MapJob, MapOutcome, map_items
from nbchat.errors import BatchError, ConfigError
from nbchat.ipython.context import ChatKernel
from nbchat.ipython.options import CellOptions
from nbchat.ipython.progress import progress_view
from nbchat.render.batch import BatchSummary
from nbchat.render.bundles import Bundle
from nbchat.store.record import RECORD_MIME

__all__ = ["map_cell", "map_job", "run_map", "summary_bundle"]


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
    if options.map not in kernel.namespace:
        raise ConfigError(f"--map: {options.map!r} is not defined in the notebook")
    job = map_job(kernel, options, text, kernel.namespace[options.map])
    try:
        values = run_map(kernel, job)
    except BatchError as error:
        if options.out:
            kernel.namespace[options.out] = error.values
        raise
    if options.out:
        kernel.namespace[options.out] = values


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


def summary_bundle(outcome: MapOutcome) -> Bundle:
    """The summary shown (and stored, with the batch record) when a run is done."""
    summary = outcome.summary
    shown = BatchSummary(
        summary.name, summary.inputs, summary.answers, summary.listed, summary.labels
    )
    data, metadata = shown.bundle(
        summary.line, outcome.record, pending=summary.pending, replayed=summary.replayed
    )
    assert outcome.record is None or data[RECORD_MIME] is outcome.record
    return data, metadata
