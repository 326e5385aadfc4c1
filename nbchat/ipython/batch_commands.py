"""``%chat batches`` and ``%chat batch cancel ID``: the provider batches of this notebook.

The batches are those this session submitted or re-attached to, and those the saved notebook's
``--map --batch`` outputs still wait for. Listing them asks the provider for the status of each
one not collected yet, at the endpoint cells are sent to now (one at another endpoint, or any
when offline, is shown as last seen); cancelling one (never offline) asks the provider to stop
it: what it answered before is kept, and the cell's poller (or its next run) collects it.
"""

from __future__ import annotations

from typing import Any

from IPython.display import display

from nbchat._text import clip, one_line, plural, render_table
from nbchat.engine.batch_book import KnownBatch
from nbchat.errors import ConfigError, NbchatError
from nbchat.ipython.context import ChatKernel
from nbchat.render.html import document, escape, table
from nbchat.store.keys import Endpoint
from nbchat.wire.batches import BatchAPI
from nbchat.wire.redaction import mask_url

__all__ = ["cancel_batch", "list_batches"]

_HEADERS = ["batch", "cell", "status", "done", "failed", "submitted", "checked"]


def list_batches(kernel: ChatKernel, args: Any) -> None:
    """``%chat batches``: one row per batch, its status asked for now where it can be."""
    book = kernel.session.batches
    known = book.listed(kernel.notebook())
    if not known:
        _show("No provider batches: a %%chat --map NAME --batch cell makes them.")
        return
    settings = kernel.settings()
    here = Endpoint.of(settings.base_url)
    checkable = any(entry.endpoint == here and not entry.ended for entry in known)
    online = checkable and not settings.offline  # offline: nothing is sent, not even this
    api = BatchAPI(kernel.session.client(settings)) if online else None
    rows = []
    for entry in known:
        checked = "collected" if entry.ended else "as last seen"
        if not entry.ended and api is not None and entry.endpoint == here:
            try:
                status = api.retrieve(entry.batch.id)
            except NbchatError as error:
                checked = f"check failed: {clip(one_line(str(error)), 80)}"
            else:
                batch = entry.batch.seen(status.status, status.completed, status.failed)
                book.seen(batch)
                entry, checked = KnownBatch(batch, entry.endpoint, entry.cell_id), "now"
        elif not entry.ended and entry.endpoint != here:
            checked = f"at {entry.endpoint.shown}: not checked"
        elif not entry.ended and settings.offline:
            checked = "as last seen (offline: not checked)"
        rows.append(_row(entry, checked))
    title = f"{plural(len(rows), 'provider batch', 'provider batches')} of this notebook"
    _show(title, rows)


def cancel_batch(kernel: ChatKernel, args: Any) -> None:
    """``%chat batch cancel ID``."""
    settings = kernel.settings()
    if settings.offline:
        raise ConfigError(
            f"Offline mode is on: nothing is sent, so {clip(one_line(args.id), 80)} is not "
            "cancelled (unset NBCHAT_OFFLINE to cancel it)."
        )
    status = BatchAPI(kernel.session.client(settings)).cancel(args.id)
    known = kernel.session.batches.get(status.id)
    if known is not None:
        kernel.session.batches.seen(
            known.batch.seen(status.status, status.completed, status.failed)
        )
    where = mask_url(settings.base_url)
    print(
        f"{status.id} at {where}: {status.status}. What it answered before stays in its output; "
        "the cell collects it when the batch has stopped (its poller, or its next run)."
    )


def _row(entry: KnownBatch, checked: str) -> list[str]:
    batch = entry.batch
    total = batch.total or len(batch.keys)
    return [
        batch.id,
        entry.cell_id or "-",
        batch.status,
        f"{batch.completed + batch.failed:,} / {total:,}",
        f"{batch.failed:,}",
        batch.submitted_at,
        checked,
    ]


def _show(title: str, rows: list[list[str]] | None = None) -> None:
    html = f"<p>{escape(title)}</p>" + (table(_HEADERS, rows) if rows else "")
    plain = "\n".join([title, *(render_table(_HEADERS, rows) if rows else [])])
    display({"text/html": document(html), "text/plain": plain}, raw=True)
