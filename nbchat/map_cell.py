"""``%%chat --map NAME`` and `nbchat.map`: one template, many items, each its own request.

Each item is a standalone request (no thread context; the thread's system prompt applies) with
its own key, so a re-run replays every stored item and asks only for new or changed ones.
Requests run concurrently on worker threads (`nbchat.batch.run_batch`: one shared pause on a
429 or Retry-After, ``rpm`` pacing, the client's retry policy per item), never streamed. The
answered items are stored in one compact record in the cell's output (`nbchat.batch_record`).

An item that fails (after its retries, or because its answer does not fit ``--schema``) does not
stop the others: the results are bound (None where an item failed), then the cell fails in one
line naming the failures, so Run All stops and a re-run retries only those. Ctrl-C keeps and
stores what completed.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

from nbchat.batch import BatchResult, Progress, run_batch
from nbchat.batch_record import BatchItem, batch_json
from nbchat.batch_view import BatchSummary, progress_view
from nbchat.errors import (
    BatchError,
    BatchInterrupted,
    ConfigError,
    OfflineMiss,
    StructuredOutputError,
)
from nbchat.map_template import ItemError, MapTemplate, item_rows
from nbchat.notebook import NotebookRecords
from nbchat.record import RECORD_MIME, STANDALONE, Record, message_text, utc_now
from nbchat.render import Bundle
from nbchat.session import ChatSession
from nbchat.settings import Settings
from nbchat.structured import JsonOutput, OutputSchema
from nbchat.text import clip, one_line, plural
from nbchat.threads import Window
from nbchat.turns import PreparedTurn, TurnRequest, answered, prepare, replayed, split_completion

__all__ = ["MapJob", "MapOutcome", "map_items", "run_map"]

_NAMED_FAILURES = 3  # failures named in the cell's error line


@dataclass
class MapJob:
    """What one ``--map`` run needs besides the session."""

    name: str  # what the items are called (the variable's name)
    items: Any  # the iterable as given
    cell: str  # the template
    namespace: dict[str, Any]
    settings: Settings
    output: OutputSchema | JsonOutput | None = None
    thread: str = "default"
    cell_id: str | None = None
    source: str | None = None  # the cell's code, to find it in a file without cell ids
    concurrency: int = 8
    rpm: float | None = None
    frontend: str = "headless"
    note: Callable[[str], None] = field(default=lambda message: None)


@dataclass
class _Prepared:
    turn: PreparedTurn
    fills: list[str] | None  # None when an item is an image


@dataclass
class MapOutcome:
    """What a batch produced: the values to bind, its summary bundle and its failures."""

    values: Any  # in input order; None where an item failed (a Series for Series/DataFrame input)
    bundle: Bundle  # the summary, with the batch record when one is stored
    failures: dict[int, str]
    total: int
    interrupted: BatchInterrupted | None = None

    @property
    def record(self) -> dict[str, Any] | None:
        """The batch record stored with the summary, if any."""
        return self.bundle[0].get(RECORD_MIME)

    def raise_for_failures(self) -> None:
        """`BatchInterrupted` after Ctrl-C, `BatchError` (with ``values``) when items failed."""
        if self.interrupted is not None:
            raise self.interrupted
        if self.failures:
            raise BatchError(_failure_line(self.failures, self.total), values=self.values)


def run_map(job: MapJob, session: ChatSession, notebook: NotebookRecords | None) -> Any:
    """Run every item with a live progress view, show the summary, and return the values.
    Raises `BatchError` (with ``.values``) when some items failed, `BatchInterrupted` on Ctrl-C,
    after showing the summary either way."""
    view = progress_view(job.frontend)
    outcome = map_items(job, session, notebook, on_progress=view.update)
    view.finish(*outcome.bundle)
    outcome.raise_for_failures()
    return outcome.values


def map_items(
    job: MapJob,
    session: ChatSession,
    notebook: NotebookRecords | None,
    on_progress: Callable[[Progress], None] | None = None,
) -> MapOutcome:
    """Run every item (replayed where an answer is stored, else asked); nothing is shown but
    the progress."""
    rows, index = item_rows(job.items, job.name)
    template = MapTemplate.compile(job.cell, job.namespace, job.settings.context_chars)
    for message in template.notes:
        job.note(f"nbchat: {message}")
    window = session.system_window(job.thread, job.cell_id, job.source, notebook)
    failures: dict[int, str] = {}
    prepared = _prepare_items(job, template, rows, window, failures)
    order = list(prepared)
    interrupted: BatchInterrupted | None = None
    try:
        result = run_batch(
            list(range(len(order))),
            _sender(job, session, [prepared[number].turn for number in order]),
            concurrency=job.concurrency,
            rpm=job.rpm,
            max_retries=job.settings.max_retries,
            replay=lambda position: _stored(session, prepared[order[position]].turn, notebook),
            usage=lambda record: int(record.usage.get("total_tokens") or 0),
            on_progress=on_progress,
        )
    except BatchInterrupted as error:
        result, interrupted = error.result, error
    session.usage.requests += result.requests
    values, stored = _collect(job, session, result, order, prepared, failures, len(rows))
    record = None
    if stored and job.settings.cache:
        record = batch_json(template, stored, thread=job.thread, cell_id=job.cell_id)
    answers: list[str | None] = [None] * len(rows)
    for item in stored:
        answers[item.index] = item.record.answer
    summary = BatchSummary(job.name, [one_line(str(row)) for row in rows], answers, failures)
    line = _summary_line(job.name, len(rows), stored, result, failures)
    bundle = summary.bundle(line, record, pending=[order[p] for p in result.pending])
    bound = _as_series(values, index) if index is not None else values
    return MapOutcome(bound, bundle, failures, len(rows), interrupted)


def _stored(
    session: ChatSession, turn: PreparedTurn, notebook: NotebookRecords | None
) -> Record | None:
    """An item's stored answer, as this cell's record (None when it must be asked)."""
    found = session.lookup(turn, notebook)
    return replayed(turn, found[0]) if found is not None else None


def _sender(
    job: MapJob, session: ChatSession, turns: list[PreparedTurn]
) -> Callable[[int], Record]:
    """What a worker thread runs for the item at a position: one non-streamed request."""
    client = session.client(replace(job.settings, max_retries=0))  # retries: run_batch's

    def send(position: int) -> Record:
        turn = turns[position]
        if job.settings.offline:
            raise OfflineMiss("offline, and no answer is stored for it")
        started_at, start = utc_now(), time.perf_counter()
        message, response = split_completion(client.chat(turn.body()))
        timing = {"started_at": started_at, "elapsed_s": round(time.perf_counter() - start, 3)}
        return answered(turn, [message], [response], {**timing, "streamed": False})

    return send


def _prepare_items(
    job: MapJob,
    template: MapTemplate,
    rows: list[Any],
    window: Window,
    failures: dict[int, str],
) -> dict[int, _Prepared]:
    """Each item's request, keyed by its index; an item that cannot be filled in fails."""
    prepared: dict[int, _Prepared] = {}
    cell_key = job.cell_id or "map"
    for number, row in enumerate(rows):
        try:
            fills = template.fills(row, job.settings.context_chars, f"item {number}")
        except (ItemError, ConfigError) as error:
            failures[number] = str(error)
            continue
        content = template.content(fills)
        request = TurnRequest(
            message_text({"content": content}),
            STANDALONE,
            content=content if isinstance(content, list) else None,
            output=job.output,
        )
        turn = prepare(
            request, job.settings, window, f"{cell_key}#item{number}", file_index=window.index
        )
        text_fills = [f for f in fills if isinstance(f, str)]
        prepared[number] = _Prepared(turn, text_fills if len(text_fills) == len(fills) else None)
    return prepared


def _collect(
    job: MapJob,
    session: ChatSession,
    result: BatchResult[Record],
    order: list[int],
    prepared: dict[int, _Prepared],
    failures: dict[int, str],
    total: int,
) -> tuple[list[Any], list[BatchItem]]:
    """The value of every item (None where it failed or was not done) and the answered items
    to store; failures are added to ``failures``."""
    values: list[Any] = [None] * total
    stored: list[BatchItem] = []
    for position, record in enumerate(result.values):
        number = order[position]
        if position in result.errors:
            failures[number] = result.errors[position]
            continue
        if record is None:  # interrupted before it was done
            continue
        was_replayed = position in result.replayed
        try:
            value = job.output.parse(record.answer) if job.output is not None else record.answer
        except StructuredOutputError as error:
            session.count_answer(record, replayed=was_replayed, store=False)
            failures[number] = f"the answer does not fit {job.output.name}: {error}"
            continue
        session.count_answer(record, replayed=was_replayed, store=job.settings.cache)
        values[number] = value
        stored.append(BatchItem(number, prepared[number].fills, record))
    return values, stored


def _summary_line(
    name: str,
    total: int,
    stored: list[BatchItem],
    result: BatchResult[Record],
    failures: dict[int, str],
) -> str:
    """``--map reviews: 200 items · 197 answered (12 replayed) · 3 failed · 8,400 tokens ·
    9.1 s``."""
    replayed = len(result.replayed)
    parts = [
        f"--map {name}: {plural(total, 'item')}",
        f"{len(stored)} answered ({replayed} replayed)" if replayed else f"{len(stored)} answered",
    ]
    if failures:
        parts.append(f"{len(failures)} failed")
    if result.pending:
        parts.append(f"{len(result.pending)} not done")
    if result.tokens:
        parts.append(f"{result.tokens:,} tokens")
    parts.append(f"{result.elapsed:.1f} s")
    return " · ".join(parts)


def _failure_line(failures: dict[int, str], total: int) -> str:
    """``3 of 200 items failed: item 4: …; item 9: …; run the cell again to retry them``."""
    named = sorted(failures.items())[:_NAMED_FAILURES]
    reasons = "; ".join(f"item {number}: {clip(one_line(reason), 120)}" for number, reason in named)
    more = f"; and {len(failures) - len(named)} more" if len(failures) > len(named) else ""
    return (
        f"{len(failures)} of {plural(total, 'item')} failed: {reasons}{more}. The others are "
        "bound and stored; run the cell again to retry the failed ones."
    )


def _as_series(values: list[Any], index: Any) -> Any:
    """The results as a pandas Series on the input's index (pandas is loaded: it made it)."""
    pandas = sys.modules["pandas"]
    return pandas.Series(values, index=index, dtype=object)
