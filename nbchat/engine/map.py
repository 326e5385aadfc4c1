"""``%%chat --map NAME`` and `nbchat.map`: one template, many items, each its own request.

Each item is a standalone request (no thread context; the thread's system prompt applies) with
its own key, so a re-run replays every stored item and asks only for new or changed ones.
Requests run concurrently on worker threads (`nbchat.engine.batch.run_batch`: one shared pause on a
429 or Retry-After, ``rpm`` pacing, the client's retry policy per item), never streamed. The
answered items are stored in one compact record in the cell's output (`nbchat.store.batch_record`).

An item that fails (after its retries, cut off by ``max_tokens``, or not fitting ``--schema``)
does not stop the others: the results are bound (None where an item failed), then the cell fails
in one line naming the failures, so Run All stops and a re-run retries only those. Ctrl-C keeps
and stores what completed. Offline, stored items replay and the others fail without a request.
"""

from __future__ import annotations

import re
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

from nbchat._text import clip, one_line, plural
from nbchat.engine.batch import BatchResult, Progress, run_batch
from nbchat.engine.offline import other_endpoints, shown_endpoint
from nbchat.engine.session import ChatSession
from nbchat.engine.settings import Settings
from nbchat.engine.threads import Window
from nbchat.engine.turns import (
    PreparedTurn,
    TurnRequest,
    answered,
    at_endpoint,
    prepare,
    replayed,
    split_completion,
)
from nbchat.engine.values import MISFIT, answer_value, stored_value, with_advice
from nbchat.errors import APIError, BatchError, BatchInterrupted, ConfigError, StructuredOutputError
from nbchat.prompt.key_guard import KeyGuard
from nbchat.prompt.template import ItemError, MapTemplate, item_rows
from nbchat.render.batch import BatchSummary, progress_view
from nbchat.render.bundles import Bundle
from nbchat.schema.structured import JsonOutput, OutputSchema
from nbchat.store.batch_record import BatchItem, batch_json
from nbchat.store.keys import Endpoint
from nbchat.store.notebook import NotebookRecords
from nbchat.store.record import RECORD_MIME, STANDALONE, Record, message_text, utc_now
from nbchat.wire.completion import finish_problem

__all__ = ["MapJob", "MapOutcome", "map_items", "run_map"]

_NAMED_FAILURES = 3  # reasons named in the cell's error line
_REQUEST_ID = re.compile(r" \(request id [^()]*\)")
_OFFLINE = "no stored answer, and offline mode is on"


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
    refresh: bool = False  # ask again even where an answer is stored
    frontend: str = "headless"
    title: str = ""  # the summary's heading ("--map reviews"); default: "--map NAME"
    note: Callable[[str], None] = field(default=lambda message: None)
    guard: KeyGuard | None = None  # refuses values that hold a key (None: --allow-secrets)


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
    try:
        outcome = map_items(job, session, notebook, on_progress=view.update)
    except BaseException:
        view.stop()  # an error before the summary: no progress bar left behind
        raise
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
    if job.guard is not None:
        job.guard.check(template.filled)
    for message in template.notes:
        job.note(f"nbchat: {message}")
    window = session.system_window(job.thread, job.cell_id, job.source, notebook)
    failures: dict[int, str] = {}
    prepared = _prepare_items(job, template, rows, window, failures)
    stored = _stored_answers(job, session, prepared, notebook, failures)
    order = [n for n in prepared if n not in failures]
    interrupted: BatchInterrupted | None = None
    try:
        result = run_batch(
            list(range(len(order))),
            _sender(
                job, session, [prepared[n].turn for n in order], any_to_ask=len(stored) < len(order)
            ),
            concurrency=job.concurrency,
            rpm=job.rpm,
            max_retries=job.settings.max_retries,
            replay=lambda position: stored.get(order[position], (None, None))[0],
            usage=lambda record: int(record.usage.get("total_tokens") or 0),
            on_progress=on_progress,
        )
    except BatchInterrupted as error:
        result, interrupted = error.result, error
    session.usage.requests += result.requests
    values, kept, replays = _collect(
        job, session, result, order, prepared, stored, failures, len(rows)
    )
    record = None
    if kept and job.settings.cache:
        record = batch_json(template, kept, thread=job.thread, cell_id=job.cell_id)
    answers: list[str | None] = [None] * len(rows)
    for item in kept:
        answers[item.index] = item.record.answer
    labels = [str(label) for label in index] if index is not None else None
    inputs = [one_line(str(row)) for row in rows]
    # The cell's error names the failures (`raise_for_failures`): listed here too, they would
    # show twice. After Ctrl-C the error is the interruption, so the summary lists them.
    listed = failures if interrupted is not None else {}
    summary = BatchSummary(job.name, inputs, answers, listed, labels)
    line = _summary_line(job.title or f"--map {job.name}", len(rows), kept, result, failures)
    pending = [order[position] for position in result.pending]
    bundle = summary.bundle(line, record, pending=pending, replayed=replays)
    bound = _as_series(values, index) if index is not None else values
    return MapOutcome(bound, bundle, failures, len(rows), interrupted)


def _stored_answers(
    job: MapJob,
    session: ChatSession,
    prepared: dict[int, _Prepared],
    notebook: NotebookRecords | None,
    failures: dict[int, str],
) -> dict[int, tuple[Record, Any]]:
    """The items answered already, as this cell's records with their values (`stored_value`:
    one that no longer fits the shape asked for is asked again). Offline, an item is also found
    as asked of another endpoint this cell's stored answers were asked of (said in a note), the
    others fail here, before any worker starts, and a misfit says how to refresh it."""
    stored: dict[int, tuple[Record, Any]] = {}
    first = next(iter(prepared.values()), None)
    elsewhere = other_endpoints(first.turn, notebook) if first and job.settings.offline else []
    moved: list[Endpoint] = []
    for number, item in prepared.items():
        turn, found = item.turn, session.lookup(item.turn, notebook)
        for endpoint in elsewhere if found is None else ():
            turn = at_endpoint(item.turn, endpoint)
            found = session.lookup(turn, notebook)
            if found is not None:
                moved.append(endpoint)
                break
        try:
            value = stored_value(turn, found[0], offline=job.settings.offline) if found else MISFIT
        except StructuredOutputError as error:  # offline: it cannot be asked again
            failures[number] = str(error)
            continue
        if value is not MISFIT:
            stored[number] = (replayed(turn, found[0]), value)
        elif job.settings.offline:
            failures[number] = _OFFLINE
    if moved and first is not None:
        job.note(
            f"nbchat: offline: replayed {plural(len(moved), 'item')} as stored from "
            f"{shown_endpoint(moved[0])} (the endpoint now is {first.turn.endpoint.shown})."
        )
    return stored


def _sender(
    job: MapJob, session: ChatSession, turns: list[PreparedTurn], *, any_to_ask: bool
) -> Callable[[int], Record]:
    """What a worker thread runs for the item at a position: one non-streamed request. The
    client is made here, on the calling thread, only when some item must be asked (a batch
    that only replays needs no key), so a setting that cannot work fails the cell once."""
    # Retries are run_batch's, with every worker pausing together.
    client = session.client(replace(job.settings, max_retries=0)) if any_to_ask else None

    def send(position: int) -> Record:
        turn = turns[position]
        assert client is not None, "an item to ask, with no client"
        started_at, start = utc_now(), time.perf_counter()
        try:
            completion = client.chat(turn.body())
        except APIError as error:  # a refused json_schema gets its advice, as in a cell
            raise with_advice(error, turn) from None
        message, response = split_completion(completion)
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
    """Each item's request, keyed by its index; an item that cannot be filled in fails. What
    was cut from items to fit the budget is said once."""
    prepared: dict[int, _Prepared] = {}
    cell_key = job.cell_id or "map"
    shortened: list[str] = []
    for number, row in enumerate(rows):
        try:
            fills, notes = template.fills(row, job.settings.context_chars, f"item {number}")
            if job.guard is not None:
                job.guard.check((f"item {number}", f) for f in fills if isinstance(f, str))
        except (ItemError, ConfigError) as error:
            failures[number] = str(error)
            continue
        shortened += notes[:1]
        content = template.content(fills)
        request = TurnRequest(
            message_text({"content": content}),
            STANDALONE,
            refresh=job.refresh,
            content=content if isinstance(content, list) else None,
            output=job.output,
        )
        turn = prepare(
            request, job.settings, window, f"{cell_key}#item{number}", file_index=window.index
        )
        text_fills = [f for f in fills if isinstance(f, str)]
        prepared[number] = _Prepared(turn, text_fills if len(text_fills) == len(fills) else None)
    if shortened:
        job.note(
            f"nbchat: {plural(len(shortened), 'item')} shortened to fit ChatMagics.context_chars "
            f"({shortened[0]}{', …' if len(shortened) > 1 else ''})"
        )
    return prepared


def _collect(
    job: MapJob,
    session: ChatSession,
    result: BatchResult[Record],
    order: list[int],
    prepared: dict[int, _Prepared],
    stored: dict[int, tuple[Record, Any]],
    failures: dict[int, str],
    total: int,
) -> tuple[list[Any], list[BatchItem], int]:
    """The value of every item (None where it failed or was not done), the answered items to
    keep in the record and how many of them were replayed; failures are added to
    ``failures``. An answer cut off, or not of the shape asked for, is a failure: counted, not
    kept."""
    values: list[Any] = [None] * total
    kept: list[BatchItem] = []
    replays = 0
    for position, record in enumerate(result.values):
        number = order[position]
        if position in result.errors:
            failures[number] = result.errors[position]
            continue
        if record is None:  # interrupted before it was done
            continue
        was_replayed = position in result.replayed
        problem, value = finish_problem(record.finish_reason), None
        if problem is None and was_replayed:
            value = stored[number][1]  # checked when it was found
        elif problem is None:
            try:
                value = answer_value(prepared[number].turn, record)
            except StructuredOutputError as error:
                problem = str(error)
        keep = job.settings.cache and not problem
        session.count_answer(record, replayed=was_replayed, store=keep)
        if problem:
            failures[number] = problem
            continue
        values[number] = value if job.output is not None else record.answer
        kept.append(BatchItem(number, prepared[number].fills, record))
        replays += was_replayed
    return values, kept, replays


def _summary_line(
    title: str,
    total: int,
    stored: list[BatchItem],
    result: BatchResult[Record],
    failures: dict[int, str],
) -> str:
    """``--map reviews: 200 items · 197 answered (12 replayed) · 3 failed · 8,400 tokens ·
    9.1 s``."""
    replayed = len(result.replayed)
    parts = [
        f"{title}: {plural(total, 'item')}",
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
    """``3 of 200 items failed: item 4: …; items 9, 12: …; run the cell again to retry them``
    (items that failed alike are named together)."""
    if all(reason == _OFFLINE for reason in failures.values()):
        return (
            f"{len(failures)} of {plural(total, 'item')} have no stored answer and offline mode "
            "is on: unset NBCHAT_OFFLINE to ask for them."
        )
    alike: dict[str, list[int]] = {}
    for number, reason in sorted(failures.items()):
        general = _REQUEST_ID.sub("", one_line(reason))  # each request has its own id
        alike.setdefault(clip(general, 300), []).append(number)
    named = []
    for reason, numbers in list(alike.items())[:_NAMED_FAILURES]:
        shown = ", ".join(map(str, numbers[:5])) + (", …" if len(numbers) > 5 else "")
        named.append(f"item{'s' if len(numbers) > 1 else ''} {shown}: {reason}")
    more = "; and other reasons" if len(alike) > _NAMED_FAILURES else ""
    return (
        f"{len(failures)} of {plural(total, 'item')} failed: {'; '.join(named)}{more}; run the "
        "cell again to retry the failed ones."
    )


def _as_series(values: list[Any], index: Any) -> Any:
    """The results as a pandas Series on the input's index (pandas is loaded: it made it)."""
    pandas = sys.modules["pandas"]
    return pandas.Series(values, index=index, dtype=object)
