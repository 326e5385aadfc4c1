"""``%%chat --map NAME --batch``: the items sent through the provider's batch API instead of in
real time.

A run takes the ``--map`` steps (`engine.map.MapRun`: each item's request and key, the answers
stored for them); then the items no answer and no batch holds are written as JSONL, one line
per distinct request, its ``custom_id`` the request's key and its body exactly what a real-time
run would send (stream off), and submitted (`wire.batches`; a new file above 50,000 lines or
200 MB). Items a batch already holds, one this session submitted or one the saved notebook's
pending state names (`engine.batch_book`), are never sent again: their batch is asked for its
status. When a batch ends, its output and error files are read, each line matched to its item
by ``custom_id`` (never by position; lines of unknown ids and malformed lines are counted and
skipped), each answer checked as a real-time one is (cut off, ``--schema``/``--json``) and made
the record a real-time request would have made, marked with the batch's id
(``timing.batch_id``) and keeping its usage, model and endpoint. The outcome is then the usual
one (`MapRun.finish`): the batch record a real-time re-run (``--no-batch``) replays.

Items a batch failed, or did not answer before it expired or was cancelled, fail with the
reason; no batch holds them any more, so the next run submits them again. Nothing here shows
anything or sleeps: the kernel front end decides when to `refresh`.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from nbchat._gc import gc_paused
from nbchat._text import clip, one_line
from nbchat._version import __version__
from nbchat.engine.batch import BatchResult
from nbchat.engine.batch_book import KnownBatch
from nbchat.engine.map import MapJob, MapOutcome, MapRun
from nbchat.engine.pricing import price_book, record_cost
from nbchat.engine.session import ChatSession
from nbchat.engine.turns import answered, split_completion
from nbchat.errors import PASSING_ERRORS, APIError, NbchatError
from nbchat.money.cost import Total
from nbchat.store.batch_state import BatchState, PendingBatch
from nbchat.store.keys import Endpoint
from nbchat.store.notebook import NotebookRecords
from nbchat.store.record import Record, utc_now
from nbchat.wire.batches import (
    MAX_FILE_BYTES,
    MAX_REQUESTS,
    BatchAPI,
    BatchLine,
    BatchStatus,
    request_line,
)
from nbchat.wire.completion import finish_problem

__all__ = ["BatchLimits", "ProviderBatchRun"]


@dataclass(frozen=True)
class BatchLimits:
    """Most lines and bytes of one batch's input file (the provider's limits)."""

    lines: int = MAX_REQUESTS
    bytes: int = MAX_FILE_BYTES


@dataclass
class _Tally:
    """What a run did at the provider, and what it skipped."""

    requests: int = 0  # calls of the batch API
    malformed: int = 0  # output lines not of the API's shape
    unknown: int = 0  # output lines answering no item of the batch
    started: float = field(default_factory=time.monotonic)


class ProviderBatchRun:
    """One ``--map --batch`` run: the items, what is stored, the batches holding the rest."""

    def __init__(
        self,
        job: MapJob,
        session: ChatSession,
        notebook: NotebookRecords | None,
        *,
        limits: BatchLimits = BatchLimits(),
    ) -> None:
        self.job, self.session, self.notebook = job, session, notebook
        self.run = MapRun(job, session, notebook)
        self.run.waiting = "waiting for the provider's batch"
        self.limits = limits
        self.batches: dict[str, KnownBatch] = {}  # the batches this run waits for, by id
        self.answers: dict[str, Record | str] = {}  # request key -> its record, or why none
        self.asked: dict[str, list[int]] = {}  # request key -> the items asking it
        self.tally = _Tally()
        self.interrupted = False  # Ctrl-C stopped submitting after a batch was made
        self.problem = ""  # why the batches held could not be checked when it started
        self._status: dict[str, BatchStatus] = {}
        self._api: BatchAPI | None = None

    # -- the steps -------------------------------------------------------------------------

    def start(self) -> None:
        """Prepare the items; ask each batch holding some of them for its status (a failed
        request is said in `problem`: they stay pending); submit the others. Raises (submitting
        nothing) when the first file cannot be submitted."""
        for _ in range(3):  # a few looks, while other runs may be collecting
            collected = self.session.batches.collected()
            held = self._look_up()
            # A poller that kept answers then ended their batch meanwhile: look again.
            if self.session.batches.collected() == collected:
                break
        self._say_left(held)
        if not self.asked:
            return
        self.batches.update((known.batch.id, known) for known in held.values())
        try:
            self.refresh()
        except PASSING_ERRORS as error:  # the batches stay pending, to be shown and stored
            self.problem = f"Status check failed: {clip(one_line(str(error)), 200)}"
        holding = {key for known in held.values() for key in known.batch.keys}
        self._submit([key for key in self.asked if key not in holding])

    def _look_up(self) -> dict[str, KnownBatch]:
        """Each item's request and stored answer (`asked`: the keys of the others); the
        batches not collected yet that hold some of them."""
        with gc_paused():  # thousands of requests, kept
            self.template = self.run.begin()
            self.order = self.run.order()
            self.asked = {}
            for number in self.order:
                item = self.run.items[number]
                if item.stored is None:
                    self.asked.setdefault(item.key, []).append(number)
        return self.session.batches.holding(self.asked, self.notebook) if self.asked else {}

    def _say_left(self, held: dict[str, KnownBatch]) -> None:
        """Name the cell's running batches that hold none of its items now (its items or
        template changed): its output stops showing them, and they go on, billed."""
        for batch_id in self.session.batches.left(self.job.cell_id, held, self.notebook):
            self.job.note(
                f"nbchat: batch {batch_id} of this cell's earlier items goes on at the provider "
                f"(%chat batch cancel {batch_id} stops it)."
            )

    def refresh(self) -> None:
        """One status request per batch still running; a batch that ended is collected."""
        for batch_id, known in list(self.batches.items()):
            if known.ended:
                continue
            try:
                status = self._counted().retrieve(batch_id)
            except APIError as error:
                if error.status_code not in (404, 405):
                    raise
                self._lost(known, str(error))  # its items are submitted again next time
                continue
            self._status[batch_id] = status
            batch = known.batch.seen(status.status, status.completed, status.failed)
            self.batches[batch_id] = KnownBatch(batch, known.endpoint, known.cell_id)
            self.session.batches.seen(batch)
            if status.finished:
                with gc_paused():  # thousands of answers, kept
                    self._collect(self.batches[batch_id], status)

    def elapsed(self) -> float:
        """Seconds since the earliest batch of the run was submitted (in any kernel)."""
        times = [_seconds_since(known.batch.submitted_at) for known in self.batches.values()]
        known = [seconds for seconds in times if seconds is not None]
        return max(known) if known else time.monotonic() - self.tally.started

    @property
    def finished(self) -> bool:
        """Whether every batch of the run ended and was collected."""
        return all(known.ended for known in self.batches.values())

    def outcome(self, *, listed: bool = False) -> MapOutcome:
        """What the run has produced so far: the answers stored or collected, the failures,
        and the items still waiting (``summary.pending``)."""
        with gc_paused():  # thousands of records
            result = self._result()
            return self.run.finish(self.template, result, self.order, listed=listed)

    def state(self) -> BatchState | None:
        """The pending state to store in the cell's output (None: no batch is running)."""
        running = [known.batch for known in self.batches.values() if not known.ended]
        if not running:
            return None
        endpoint = next(iter(self.batches.values())).endpoint
        return BatchState(
            base_url=endpoint.shown,
            query_digest=endpoint.query_digest,
            batches=tuple(running),
            cell_id=self.job.cell_id,
        )

    # -- submitting ------------------------------------------------------------------------

    def _submit(self, keys: list[str]) -> None:
        """Submit ``keys`` in files within the limits. A file that cannot be submitted after
        another was fails its items (the batches made stay); the first raises. Ctrl-C after a
        batch was made stops submitting (`interrupted`): the batches made are kept, to be stored
        in the cell's output (a re-run after a restart would otherwise pay for them again)."""
        if not keys:
            return
        endpoint = self.run.items[self.asked[keys[0]][0]].turn.endpoint
        metadata = {"nbchat": __version__, "map": self.job.name[:200]}
        if self.job.cell_id:
            metadata["cell"] = self.job.cell_id[:200]
        try:
            for chunk, content in self._files(keys):
                self._submit_file(chunk, content, endpoint, metadata)
        except KeyboardInterrupt:
            if not self.batches:
                raise
            self.interrupted = True
            held = {key for known in self.batches.values() for key in known.batch.keys}
            rest = [key for key in keys if key not in held and key not in self.answers]
            self.answers.update(dict.fromkeys(rest, "not submitted: interrupted (Ctrl-C)"))

    def _submit_file(
        self, chunk: list[str], content: bytes, endpoint: Endpoint, metadata: dict[str, str]
    ) -> None:
        """Upload one input file and start its batch."""
        try:
            file_id = self._counted().upload(content)
            status = self._counted().create(file_id, metadata)
        except NbchatError as error:
            if not self.batches:
                raise
            self.answers.update(dict.fromkeys(chunk, f"not submitted: {error}"))
            return
        batch = PendingBatch(
            id=status.id,
            input_file_id=file_id,
            submitted_at=utc_now(),
            keys=tuple(chunk),
            status=status.status,
            total=len(chunk),
        )
        self._status[batch.id] = status
        self.session.batches.add(batch, endpoint, self.job.cell_id)
        self.batches[batch.id] = KnownBatch(batch, endpoint, self.job.cell_id)

    def _files(self, keys: list[str]) -> Iterator[tuple[list[str], bytes]]:
        """The input files: each item's request as a real-time run sends it, stream off."""
        client = self._batch_api().client
        chunk: list[str] = []
        lines: list[bytes] = []
        size = 0
        for key in keys:
            turn = self.run.items[self.asked[key][0]].turn
            line = request_line(key, client.wire_body(turn.body(), stream=False))
            if chunk and (len(chunk) >= self.limits.lines or size + len(line) > self.limits.bytes):
                yield chunk, b"".join(lines)
                chunk, lines, size = [], [], 0
            chunk.append(key)
            lines.append(line)
            size += len(line)
        if chunk:
            yield chunk, b"".join(lines)

    # -- collecting ------------------------------------------------------------------------

    def _collect(self, known: KnownBatch, status: BatchStatus) -> None:
        """A batch that ended: its answers (and reasons for the items it did not answer)."""
        batch = known.batch
        wanted = set(batch.keys)
        found: dict[str, BatchLine] = {}
        missing = ""
        for file_id in (status.output_file_id, status.error_file_id):
            if file_id is None:
                continue
            try:
                lines, malformed = self._counted().lines(file_id)
            except APIError as error:
                if error.status_code not in (404, 405):
                    raise  # not collected: the next refresh reads it again (it was paid for)
                missing = f"its file {file_id} could not be read ({error})"
                continue
            self.tally.malformed += malformed
            for line in lines:
                before = found.get(line.custom_id)
                if line.custom_id not in wanted:
                    self.tally.unknown += 1
                elif before is None or (before.completion is None and line.completion):
                    found[line.custom_id] = line  # the first answer, over any error line
        for number, key in enumerate(batch.keys, start=1):
            if key not in self.asked:
                continue  # an item this run no longer has (the list changed)
            line = found.get(key)
            if line is not None and line.completion is not None:
                record = self._record(key, line.completion, batch, status)
                self.answers[key] = record
                turn = self.run.items[self.asked[key][0]].turn
                if self.session.batches.first_payment(batch.id, key):
                    self.session.spending.paid_record(turn, record)  # at the batch rate
                # In the session at once: a re-run that stops this run's poller finds it.
                if finish_problem(record.finish_reason) is None:
                    self.session.cache.remember(record, store=self.job.settings.cache)
            elif line is not None:
                self.answers[key] = line.error or "no answer"
            else:
                self.answers[key] = _unanswered(batch, status, number, missing)
        self.batches[batch.id] = KnownBatch(batch, known.endpoint, known.cell_id, ended=True)
        self.session.batches.end(batch.id)

    def _lost(self, known: KnownBatch, reason: str) -> None:
        """A batch the provider does not know (any more): its items fail with ``reason``."""
        for key in known.batch.keys:
            if key in self.asked:
                self.answers[key] = reason
        self.batches[known.batch.id] = KnownBatch(known.batch, known.endpoint, known.cell_id, True)
        self.session.batches.end(known.batch.id)

    def _record(
        self, key: str, completion: dict[str, Any], batch: PendingBatch, status: BatchStatus
    ) -> Record:
        """The record a real-time request would have made, marked as the batch's."""
        turn = self.run.items[self.asked[key][0]].turn
        message, response = split_completion(completion)
        timing: dict[str, Any] = {
            "started_at": batch.submitted_at,
            "streamed": False,
            "batch_id": batch.id,
        }
        if status.created_at is not None and status.ended_at is not None:
            timing["elapsed_s"] = max(status.ended_at - status.created_at, 0)
        return answered(turn, [message], [response], timing)

    def _result(self) -> BatchResult[Record]:
        """The answers by position in the run's order."""
        values: list[Record | None] = [None] * len(self.order)
        errors: dict[int, str] = {}
        replayed: set[int] = set()
        pending: list[int] = []
        for position, number in enumerate(self.order):
            item = self.run.items[number]
            got = item.stored if item.stored is not None else self.answers.get(item.key)
            if item.stored is not None:
                replayed.add(position)
            if isinstance(got, Record):
                values[position] = got
            elif isinstance(got, str):
                errors[position] = got
            else:
                pending.append(position)
        answered = [record for record in self.answers.values() if isinstance(record, Record)]
        tokens = sum(int(record.usage.get("total_tokens") or 0) for record in answered)
        book = price_book(self.job.settings)
        return BatchResult(
            values=values,
            errors=errors,
            exceptions={},
            replayed=frozenset(replayed),
            pending=tuple(pending),
            requests=self.tally.requests,
            retries=0,
            tokens=tokens,
            elapsed=self.elapsed(),
            paused=0.0,
            spent=Total.of(record_cost(record, book) for record in answered),
            real_time=Total.of(record_cost(record, book, batch=False) for record in answered),
        )

    # -- the API ---------------------------------------------------------------------------

    def _batch_api(self) -> BatchAPI:
        if self._api is None:
            self._api = BatchAPI(self.session.client(self.job.settings))
        return self._api

    def _counted(self) -> BatchAPI:
        """The batch API, for one request (counted)."""
        self.tally.requests += 1
        return self._batch_api()


def _unanswered(batch: PendingBatch, status: BatchStatus, line: int, missing: str) -> str:
    """Why a batch that ended has no line for an item (its ``line`` of the input file)."""
    if status.status == "failed":
        rejected = dict(status.problems)
        if line in rejected:
            return f"the batch {batch.id} rejected its line {line}: {rejected[line]}"
        first = status.problems[0] if status.problems else (None, "no reason given")
        where = f"line {first[0]}: " if first[0] is not None else ""
        return f"the batch {batch.id} failed: {where}{first[1]}"
    if status.status in ("expired", "cancelled"):
        return f"the batch {batch.id} {status.status} before answering it"
    if missing:
        return f"the batch {batch.id} {status.status}, but {missing}"
    return f"the batch {batch.id} {status.status} without a line for it"


def _seconds_since(stamp: str) -> float | None:
    try:
        when = datetime.fromisoformat(stamp.replace("Z", "+00:00"))
    except ValueError:
        return None
    return max((datetime.now(when.tzinfo) - when).total_seconds(), 0.0)
