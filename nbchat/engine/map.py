"""``%%chat --map NAME`` and `nbchat.map`: one template, many items, each its own request.

Each item is a standalone request (no thread context; the thread's system prompt applies) with
its own key, so a re-run replays every stored item and asks only for new or changed ones.
Requests run concurrently on worker threads (`engine.batch.run_batch`: one shared pause on a 429
or Retry-After, ``rpm`` pacing, the client's retry policy per item), never streamed. Every item
takes the session's steps (`ChatSession.lookup`, `replay`, `ask_standalone`, `keep`), as a
cell's turn does. The answered items are stored in one compact record in the cell's output
(`store.batch_record`); what a person is shown of the run (`MapSummary`) is rendered elsewhere.
`MapRun` splits the run into its steps (`begin`, `finish`) for ``--batch``
(`engine.provider_batch`), whose answers come from the provider's batch API instead.

An item that fails (after its retries, cut off by ``max_tokens``, or not fitting ``--schema``)
does not stop the others: the results are bound (None where an item failed), then the cell fails
in one line naming the failures, so Run All stops and a re-run retries only those. Ctrl-C keeps
and stores what completed. Offline, stored items replay and the others fail without a request.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from functools import partial
from typing import Any

from nbchat._gc import gc_paused
from nbchat._text import plural
from nbchat.engine.batch import BatchResult, Progress, run_batch
from nbchat.engine.map_job import MapItem, MapJob, MapOutcome, bound_values
from nbchat.engine.map_report import OFFLINE, MapSummary, summary_line
from nbchat.engine.offline import other_endpoints, shown_endpoint
from nbchat.engine.session import ChatSession
from nbchat.engine.threads import Window
from nbchat.engine.turns import AlikeTurns, PreparedTurn, TurnRequest, at_endpoint, prepare
from nbchat.engine.values import MISFIT, answer_value, stored_value
from nbchat.errors import (
    BatchInterrupted,
    BudgetExceeded,
    ConfigError,
    NbchatError,
    Remedy,
    StructuredOutputError,
)
from nbchat.money.cost import Cost, Total
from nbchat.prompt.template import ItemError, MapTemplate, item_rows
from nbchat.store.batch_record import BatchItem, batch_json
from nbchat.store.keys import CellKey, Endpoint
from nbchat.store.notebook import NotebookRecords
from nbchat.store.record import STANDALONE, Record
from nbchat.wire.completion import finish_problem

__all__ = ["MapItem", "MapJob", "MapOutcome", "MapRun", "MapSummary", "map_items"]


def map_items(
    job: MapJob,
    session: ChatSession,
    notebook: NotebookRecords | None,
    on_progress: Callable[[Progress], None] | None = None,
) -> MapOutcome:
    """Run every item (replayed where an answer is stored, else asked); nothing is shown but
    the progress."""
    return MapRun(job, session, notebook).run(on_progress)


class MapRun:
    """One run's state: the rows, each item's request, what is stored, what failed."""

    def __init__(self, job: MapJob, session: ChatSession, notebook: NotebookRecords | None):
        self.job, self.session, self.notebook = job, session, notebook
        self.rows, self.index = item_rows(job.items, job.name)
        self.failures: dict[int, str] = {}
        self.items: dict[int, MapItem] = {}
        self.remedies: dict[Remedy, None] = {}  # of the failed items, in order, once each
        self.over_budget: set[int] = set()  # items not sent: the session's budget was spent
        self.saved = Total()  # what the replayed items would have cost now
        self.waiting = "not done"  # what the summary calls the items not answered yet
        self.alike: AlikeTurns | None = None  # how the items' turns are made, when alike

    def run(self, on_progress: Callable[[Progress], None] | None) -> MapOutcome:
        with gc_paused():
            template = self.begin()
            order = self.order()
            if all(self.items[n].stored is not None for n in order):  # replays only: no wait
                return self._answer(template, order, on_progress)
        return self._answer(template, order, on_progress)

    def _answer(
        self,
        template: MapTemplate,
        order: list[int],
        on_progress: Callable[[Progress], None] | None,
    ) -> MapOutcome:
        interrupted = None
        try:
            result = self._batch(order, on_progress)
        except BatchInterrupted as error:
            result, interrupted = error.result, error
        if interrupted is None:
            self._not_sent(result, order)  # the items a spent budget stopped
        return self.finish(template, result, order, interrupted, listed=interrupted is not None)

    def begin(self) -> MapTemplate:
        """Each item's request, and the answers stored for them (`order` then says which
        items are to be answered, `MapItem.stored` which of them are stored)."""
        template = self._template()
        job = self.job
        window = self.session.item_window(job.thread, job.cell_id, job.source, self.notebook)
        with gc_paused():  # thousands of requests, kept
            self._prepare(template, window)
            self._find_stored()
        return template

    def order(self) -> list[int]:
        """The items to answer (replayed or asked), in input order."""
        return [n for n in self.items if n not in self.failures]

    def finish(
        self,
        template: MapTemplate,
        result: BatchResult[Record],
        order: list[int],
        interrupted: BatchInterrupted | None = None,
        *,
        listed: bool = False,
    ) -> MapOutcome:
        """The outcome of the answers in ``result`` (by position in ``order``): the values,
        the record of every answered item, the summary (``listed``: naming the failures)."""
        with gc_paused():  # thousands of records, kept
            values, kept, answers = self._collect(result, order)
            record = None
            if kept and self.job.settings.cache:
                record = batch_json(
                    template, kept, thread=self.job.thread, cell_id=self.job.cell_id
                )
            summary = self._summary(result, order, kept, answers, listed=listed)
        bound = bound_values(values, self.index)
        remedies = tuple(self.remedies)
        return MapOutcome(
            bound,
            record,
            summary,
            self.failures,
            len(self.rows),
            interrupted,
            remedies,
            frozenset(self.over_budget),
        )

    def _template(self) -> MapTemplate:
        job = self.job
        template = MapTemplate.compile(job.cell, job.namespace, job.settings.context_chars)
        if job.guard is not None:
            job.guard.check(template.filled)
        for message in template.notes:
            job.note(f"nbchat: {message}")
        return template

    def _prepare(self, template: MapTemplate, window: Window) -> None:
        """Each item's key, its request made when needed (`MapItem.turn`); an item that cannot
        be filled in fails. What was cut from items to fit the budget is said once."""
        job, shortened = self.job, []
        self.items, self.alike = {}, None  # a provider batch may look more than once
        asking = TurnRequest("", STANDALONE, refresh=job.refresh, output=job.output)
        for number, row in enumerate(self.rows):
            try:
                fills, notes = template.fills(row, job.settings.context_chars, f"item {number}")
                if job.guard is not None:
                    job.guard.check((f"item {number}", f) for f in fills if isinstance(f, str))
            except (ItemError, ConfigError) as error:
                self.failures[number] = str(error)
                continue
            shortened += notes[:1]
            content = template.content(fills)
            text_fills = [f for f in fills if isinstance(f, str)]
            whole = text_fills if len(text_fills) == len(fills) else None
            make = partial(self._item_turn, asking, content, number, window)
            if self.alike is not None:
                self.items[number] = MapItem(self.alike.key(content), whole, make)
                continue
            turn = make()  # the first item's (what the others share), or keys that need more
            self.alike = AlikeTurns.of(turn) if not self.items else None
            self.items[number] = MapItem(turn.key, whole, make, _turn=turn)
        if shortened:
            more = ", …" if len(shortened) > 1 else ""
            job.note(
                f"nbchat: {plural(len(shortened), 'item')} shortened to fit "
                f"ChatMagics.context_chars ({shortened[0]}{more})"
            )

    def _item_turn(
        self, asking: TurnRequest, content: str | list[Any], number: int, window: Window
    ) -> PreparedTurn:
        """An item's full request."""
        request, key = asking.asking(content), CellKey.item(self.job.cell_id, number)
        if self.alike is not None:
            return self.alike.turn(request, key)
        return prepare(request, self.job.settings, window, key, file_index=window.index)

    def _find_stored(self) -> None:
        """The items answered already, with their values (`stored_value`: one that no longer
        fits the shape asked for is asked again). Offline, an item is also found as asked of
        another endpoint this cell's stored answers were asked of (said in a note), the others
        fail here, before any worker starts, and a misfit says how to refresh it."""
        offline = self.job.settings.offline
        first = next(iter(self.items.values()), None)
        elsewhere = other_endpoints(first.turn, self.notebook) if first and offline else []
        now = first.turn.endpoint.shown if first else ""
        moved: list[Endpoint] = []
        for number, item in self.items.items():
            if self.alike is not None:  # found by its key alone: no turn made
                found = self.session.lookup_alike(self.alike, item.key, self.notebook)
            else:
                found = self.session.lookup(item.turn, self.notebook)
            for endpoint in elsewhere if found is None else ():
                turn = at_endpoint(item.turn, endpoint)
                found = self.session.lookup(turn, self.notebook)
                if found is not None:
                    item.move(turn)
                    moved.append(endpoint)
                    break
            output = self.job.output
            try:
                value = stored_value(output, found.record, offline=offline) if found else MISFIT
            except StructuredOutputError as error:  # offline: it cannot be asked again
                self.failures[number] = str(error)
                self.remedies.update(dict.fromkeys(error.remedies))
                continue
            if value is not MISFIT and found is not None:
                item.stored, item.value = found.record, value
            elif offline:
                self.failures[number] = OFFLINE
        if moved:
            self.job.note(
                f"nbchat: offline: replayed {plural(len(moved), 'item')} as stored from "
                f"{shown_endpoint(moved[0])} (the endpoint now is {now})."
            )

    def _batch(
        self, order: list[int], on_progress: Callable[[Progress], None] | None
    ) -> BatchResult[Record]:
        items = [self.items[n] for n in order]
        # The client is made here, on the calling thread, and only when some item must be asked
        # (a batch that only replays needs no key), so a setting that cannot work fails the cell
        # once. Retries are run_batch's, with every worker pausing together.
        to_ask = any(item.stored is None for item in items)
        settings = replace(self.job.settings, max_retries=0)
        client = self.session.client(settings) if to_ask else None
        first = items[0].turn if items else None

        def send(position: int) -> Record:
            assert client is not None, "an item to ask, with no client"
            try:
                return self.session.ask_standalone(items[position].turn, client)
            except NbchatError as error:  # what the user can do about it, for the cell's error
                self.remedies.update(dict.fromkeys(error.remedies))
                raise

        return run_batch(
            list(range(len(order))),
            send,
            concurrency=self.job.concurrency,
            rpm=self.job.rpm,
            max_retries=self.job.settings.max_retries,
            replay=lambda position: items[position].stored,
            usage=lambda record: int(record.usage.get("total_tokens") or 0),
            cost=lambda record: self._cost(first, record),
            stop_on=(BudgetExceeded,),
            keep_going=lambda: not self.session.ledger.over_budget(self.job.settings.budget),
            on_progress=on_progress,
        )

    def _not_sent(self, result: BatchResult[Record], order: list[int]) -> None:
        """The items a spent budget stopped before they began: failed as over budget."""
        if not result.pending:
            return
        try:
            self.session.ledger.check_budget(self.job.settings.budget)
            reason = "not sent"
        except BudgetExceeded as error:
            reason = str(error)
            self.remedies.update(dict.fromkeys(error.remedies))
        for position in result.pending:
            self.failures[order[position]] = reason
            self.over_budget.add(order[position])

    def _cost(self, turn: PreparedTurn | None, record: Record) -> Cost:
        """An answered item's cost, for the progress line; a missing price said here, on the
        calling thread."""
        if turn is None:
            return Cost.unknown()
        cost = self.session.cost_of(turn, record)
        self.session.spending.say_unpriced(turn, cost, record.model or "?")
        return cost

    def _collect(
        self, result: BatchResult[Record], order: list[int]
    ) -> tuple[list[Any], list[BatchItem], list[str | None]]:
        """The value of every item (None where it failed or was not done), the answered items
        to store, and each item's answer text; an answer cut off, or not of the shape asked
        for, is a failure."""
        values: list[Any] = [None] * len(self.rows)
        answers: list[str | None] = [None] * len(self.rows)
        kept: list[BatchItem] = []
        replays = self._replay_all(result, order)
        for position, answer in enumerate(result.values):
            number, item = order[position], self.items[order[position]]
            if position in result.errors:
                self.failures[number] = result.errors[position]
                if isinstance(result.exceptions.get(position), BudgetExceeded):
                    self.over_budget.add(number)
                continue
            if answer is None:  # interrupted before it was done
                continue
            record, problem = self._take(item, answer, replays.get(position))
            if problem:
                self.failures[number] = problem
                continue
            answers[number] = answer_text = record.answer
            values[number] = item.value if self.job.output is not None else answer_text
            kept.append(BatchItem(number, item.fills, record))
        return values, kept, answers

    def _replay_all(self, result: BatchResult[Record], order: list[int]) -> dict[int, Record]:
        """The replayed items not taken yet, replayed together (`ChatSession.replay_all`): the
        cell's record of each, by position, in input order (the ledger's rows in that order)."""
        alike: dict[int, Record] = {}  # replayed as the turns `self.alike` makes
        own: dict[int, Record] = {}  # each replayed as its own turn (asked elsewhere, or v1)
        for position in sorted(result.replayed):
            item, answer = self.items[order[position]], result.values[position]
            if answer is not None and (item.taken is None or item.taken[0] is not answer):
                (alike if self.alike is not None and not item.moved else own)[position] = answer
        replays: dict[int, Record] = {}
        for found, turns in ((alike, self.alike), (own, None)):
            if found:
                each = turns if turns is not None else [self.items[order[n]].turn for n in found]
                records, saved = self.session.replay_all([*found.values()], each)
                self.saved = self.saved + saved
                replays.update(zip(found, records, strict=True))
        return replays

    def _take(
        self, item: MapItem, answer: Record, replay: Record | None
    ) -> tuple[Record, str | None]:
        """The item's answer as this cell's record (``replay``: as `_replay_all` made it), or
        why it is a failure, remembered by the session in input order (`%chat raw N` counts
        back through them); taken once (a provider's batch is summed up while it runs, then at
        its end), so the session counts it once."""
        if item.taken is None or item.taken[0] is not answer:
            item.taken = answer, self._taken(item, answer, replay)
        return item.taken[1]

    def _taken(
        self, item: MapItem, answer: Record, replay: Record | None
    ) -> tuple[Record, str | None]:
        if replay is not None:
            self.session.remember_replayed(replay)
            return replay, None
        problem = finish_problem(answer.finish_reason)
        if answer.finish_reason == "length":
            self.remedies[Remedy.MORE_TOKENS] = None
        if problem is None:
            try:
                item.value = answer_value(self.job.output, answer)
            except StructuredOutputError as error:
                problem = str(error)
        self.session.keep(item.turn, answer, store=self.job.settings.cache and not problem)
        return answer, problem

    def _summary(
        self,
        result: BatchResult[Record],
        order: list[int],
        kept: list[BatchItem],
        answers: list[str | None],
        *,
        listed: bool,
    ) -> MapSummary:
        title = self.job.title or f"--map {self.job.name}"
        return MapSummary(
            line=summary_line(
                title,
                len(self.rows),
                kept,
                result,
                self.failures,
                self.saved,
                waiting=self.waiting,
            ),
            name=self.job.name,
            inputs=[str(row) for row in self.rows],  # made one line where shown
            answers=answers,
            # The cell's error names the failures (`raise_for_failures`): listed here too, they
            # would show twice. After Ctrl-C the error is the interruption, so the summary does.
            listed=dict(self.failures) if listed else {},
            labels=[str(label) for label in self.index] if self.index is not None else None,
            pending=[order[position] for position in result.pending],
            replayed=len(result.replayed),
        )
