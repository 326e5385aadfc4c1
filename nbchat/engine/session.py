"""The engine behind ``%%chat``, `nbchat.ask` and ``--map``: one path for every turn.

A turn's steps are this class's methods, and every caller takes them: `prepare` builds the
request from the turns above the cell, `lookup` finds a stored answer for exactly that request,
`replay` makes it this cell's answer, `send` asks the server (streamed, with tools),
`ask_standalone` asks once for a standalone turn (an item of ``--map``), and `keep` records a
fresh answer. `run` is the whole path of a cell. Answers are counted, and priced, only here:
spent when they arrive, saved when they are replayed; a session that has spent its budget
sends nothing more.

It knows nothing of display or of where the notebook file is: callers pass the saved
notebook's records and a `LiveSink` (started when a request is sent, given the text of each
network read).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from nbchat.engine.batch_book import BatchBook
from nbchat.engine.cache import AnswerCache, Found, Origin
from nbchat.engine.ledger import Ledger
from nbchat.engine.offline import asked_elsewhere, explain_miss
from nbchat.engine.placement import UNPLACED, CellPlacement
from nbchat.engine.reasoning import ReasoningPolicy
from nbchat.engine.sending import LastStream, LiveSink, ask_once, timing_of
from nbchat.engine.settings import Settings
from nbchat.engine.spending import Spending
from nbchat.engine.threads import STANDALONE, Message, ThreadStore, Turn, Window
from nbchat.engine.tool_loop import converse
from nbchat.engine.turns import (
    AlikeTurns,
    PreparedTurn,
    TurnRequest,
    answered,
    prepare,
    replayed,
    split_completion,
    with_tools,
)
from nbchat.engine.unlisted import find_turn
from nbchat.engine.values import (
    MISFIT,
    answer_value,
    flipped_turn,
    other_form,
    stored_value,
    with_advice,
)
from nbchat.errors import (
    APIError,
    BadRequestError,
    ConfigError,
    OfflineMiss,
    Remedy,
    StructuredOutputError,
)
from nbchat.money.cost import Cost, Total
from nbchat.store.notebook import NotebookRecords
from nbchat.store.record import SYSTEM, TURN, Record, utc_now
from nbchat.wire.pool import ClientPool

if TYPE_CHECKING:  # httpx is loaded with the first client, not by a replay
    from nbchat.wire.client import ChatClient, ChatStream

__all__ = [
    "STANDALONE",
    "ChatSession",
    "Found",
    "LiveSink",
    "Origin",
    "Outcome",
    "PreparedTurn",
    "TurnRequest",
]


@dataclass(frozen=True)
class Outcome:
    """A complete answer, where it came from, and the request it answers."""

    record: Record
    origin: Origin
    turn: PreparedTurn
    value: Any = None  # the answer as a Python object, when the turn asked for a shape
    cost: Cost = field(default_factory=Cost.unknown)  # spent, or (replayed) saved

    @property
    def replayed(self) -> bool:
        """Whether no request was sent for this answer."""
        return self.origin is not Origin.SERVER


class ChatSession:
    """Per-kernel state of the turn path: threads, answers given, clients, the ledger."""

    def __init__(self, *, warn: Callable[[str], None] | None = None) -> None:
        self.threads = ThreadStore()
        self.cache = AnswerCache()
        self.ledger = Ledger()
        self.spending = Spending(self.ledger, self.warn_once)
        self.reasoning = ReasoningPolicy()
        self._clients = ClientPool()
        self.last_stream = LastStream()  # for `%chat raw --chunks`
        self._warn = warn or (lambda message: None)
        self._warned: set[str] = set()
        self._warning = threading.Lock()  # --map's workers ask from their own threads
        self.placement = CellPlacement()
        self.batches = BatchBook()  # the provider batches --map --batch cells wait for

    def close(self) -> None:
        """Close every HTTP client."""
        self._clients.close()

    def client(self, settings: Settings) -> ChatClient:
        """One pooled client per endpoint configuration."""
        return self._clients.get(settings.client_config())

    def warn_once(self, message: str) -> None:
        """A warning said once per session."""
        with self._warning:
            if message in self._warned:
                return
            self._warned.add(message)
        self._warn(message)

    # -- a turn: its steps, which every caller takes ----------------------------------------

    def run(
        self,
        request: TurnRequest,
        settings: Settings,
        notebook: NotebookRecords | None,
        sink: LiveSink | None = None,
    ) -> Outcome:
        """One turn: build its request from the turns above, replay a stored answer for exactly
        that request, or (unless offline) ask the server; the cell's turn is recorded either
        way. A failed or interrupted answer leaves the cell a turn with no answer."""
        turn, found = find_turn(self, request, settings, notebook)
        if found is not None:
            record, as_stored = found.record, turn
            if record.key is not None and record.key == turn.other_key:
                as_stored = other_form(turn)  # stored with the thinking above sent the other way
            value = stored_value(as_stored.request.output, record, offline=settings.offline)
            if value is not MISFIT:  # else asked again, the thinking sent as decided
                record, saved = self.replay(as_stored, record)
                return Outcome(record, found.origin, as_stored, value, saved)
        if settings.offline:  # an answer asked of another endpoint, else nothing to replay
            elsewhere = asked_elsewhere(turn, notebook, self.threads)
            if elsewhere is None:
                raise OfflineMiss(explain_miss(turn, notebook, self.threads))
            value = stored_value(elsewhere.turn.request.output, elsewhere.record, offline=True)
            self._warn(elsewhere.note)
            origin = Origin.SESSION if elsewhere.in_session else Origin.NOTEBOOK
            record, saved = self.replay(elsewhere.turn, elsewhere.record)
            return Outcome(record, origin, elsewhere.turn, value, saved)
        if request.tools is not None and request.tools.unlisted:  # MCP servers, to send only
            self.ledger.check_budget(settings.budget)
            turn = with_tools(turn, request.tools.listed())
        try:
            record, turn, value = self.send(turn, sink)
        except APIError as error:
            raise with_advice(error, turn) from None
        return Outcome(record, Origin.SERVER, turn, value, self.cost_of(turn, record))

    def prepare(
        self, request: TurnRequest, settings: Settings, notebook: NotebookRecords | None
    ) -> PreparedTurn:
        """The full request of a cell's turn, and its key."""
        if not settings.model:
            nameless = ConfigError(f"Profile {settings.profile!r} names no model")
            nameless.remedies = (Remedy.NAME_MODEL,)
            raise nameless
        if request.ask_in is not None:
            cell_key = self.threads.ask_key(*request.ask_in)
        else:
            cell_key = self.threads.key_of(request.cell_id)
        window = None
        file_index = None
        if request.thread != STANDALONE:
            # Without cell ids (nbclient, a terminal) the turns of this session are the thread:
            # headless runs go in order, and the file's cells cannot be told apart from them.
            use_notebook = request.cell_id is not None or request.ask_in is not None
            full = self.threads.window(
                request.thread, cell_key, notebook, source=request.source, use_notebook=use_notebook
            )
            file_index = full.index
            if not request.new_thread:
                window = full
                if full.unplaced:
                    self.warn_once(UNPLACED)
        if request.cell_id is None and request.source is not None:
            file_index = self.placement.index(notebook)
        return prepare(
            request,
            settings,
            window,
            cell_key,
            reasoning=self.reasoning.decide(settings),
            pad=self.reasoning.padding(settings),
            file_index=file_index,
            with_v1_key=notebook is not None and notebook.has_v1,
        )

    def start_cell(self, cell_id: str | None, source: str | None) -> None:
        """A ``%%chat`` cell starts, whatever becomes of it (`CellPlacement.start`)."""
        self.placement.start(cell_id, source)

    def lookup(self, turn: PreparedTurn, notebook: NotebookRecords | None) -> Found | None:
        """A stored answer for exactly this request, from this session or the saved file (the
        cell's own answer first)."""
        own = self.threads.turn(turn.cell_key)
        return self.cache.lookup(turn, notebook, own.record if own is not None else None)

    def replay(self, turn: PreparedTurn, found: Record) -> tuple[Record, Cost]:
        """A stored answer as this cell's (re-recorded for its request), and what asking again
        would cost now, counted as saved."""
        record = replayed(turn, found)
        saved = self.spending.saved(turn, record)
        self._remember(turn, record, store=True)
        return record, saved

    def replay_all(
        self, found: Sequence[Record], turns: Sequence[PreparedTurn] | AlikeTurns
    ) -> tuple[list[Record], Total]:
        """`replay` of many standalone turns (a ``--map`` run's items: each of ``turns``, or
        those `AlikeTurns` makes with the keys they were found by), what they saved counted
        together. The caller remembers each (`remember_replayed`) in the order of its items,
        among its fresh answers (`%chat raw N` counts back through them)."""
        if isinstance(turns, AlikeTurns):
            records, first = [turns.replayed(record) for record in found], turns.first
        else:
            records = [replayed(turn, record) for turn, record in zip(turns, found, strict=True)]
            first = turns[0] if turns else None
        saved = self.spending.saved_all(first, records) if first is not None else Total()
        return records, saved

    def remember_replayed(self, record: Record) -> None:
        """A record `replay_all` made, found again by its key (standalone: no thread holds
        it)."""
        self.cache.remember(record, store=True)

    def lookup_alike(
        self, alike: AlikeTurns, key: str, notebook: NotebookRecords | None
    ) -> Found | None:
        """`lookup` of the turn ``alike`` makes with ``key`` (a standalone turn: this session
        holds no turn of its own for it)."""
        return self.cache.lookup(alike.first, notebook, None, keys=(key,))

    def keep(self, turn: PreparedTurn, record: Record, *, store: bool) -> None:
        """A fresh answer (counted when it arrived), found again by its key when ``store``."""
        self._remember(turn, record, store=store)

    def cost_of(self, turn: PreparedTurn, record: Record, *, now: bool = False) -> Cost:
        """What ``record`` cost when asked (``now``: what asking again would cost)."""
        return self.spending.cost_of(turn, record, now=now)

    def ask_standalone(self, turn: PreparedTurn, client: ChatClient) -> Record:
        """One non-streamed request of a standalone turn (an item of ``--map``, from a worker
        thread; ``client`` made on the calling thread), as a record not yet kept."""
        self.spending.before(turn)
        started_at, start = utc_now(), time.perf_counter()
        try:
            completion = client.chat(turn.body())
        except APIError as error:  # a refused json_schema gets its advice, as in a cell
            raise with_advice(error, turn) from None
        self.spending.paid(turn, completion, say=False)  # said by --map, on its own thread
        message, response = split_completion(completion)
        timing = {"started_at": started_at, "elapsed_s": round(time.perf_counter() - start, 3)}
        record = answered(turn, [message], [response], {**timing, "streamed": False})
        self.spending.answered(record)
        return record

    def send(self, turn: PreparedTurn, sink: LiveSink | None) -> tuple[Record, PreparedTurn, Any]:
        """Ask the server, and again after each round of tool calls (`nbchat.engine.tool_loop`). The
        turn comes back as sent: a provider that names the thinking's field in a 400 has the
        turn sent the other way, once (and the choice is learned for its endpoint and model)."""
        client = self.client(turn.settings)
        started_at, start = utc_now(), time.perf_counter()
        streams: list[ChatStream] = []
        current = turn

        def request(added: list[Message]) -> dict[str, Any]:
            nonlocal current
            try:
                return ask_once(
                    client, current, added, sink, streams, self.spending, self.last_stream
                )
            except BadRequestError as error:
                flipped = flipped_turn(self.reasoning, current, added, error)
                if flipped is None:
                    raise
            current = flipped
            return ask_once(client, current, added, sink, streams, self.spending, self.last_stream)

        try:
            if sink is not None:
                sink.start(client.redactor().text)
            exchange = converse(
                request,
                turn.request.tools,
                max_rounds=turn.request.max_tool_rounds,
                max_calls=turn.request.max_tool_calls,
                sink=sink,
                redactor=client.redactor() if turn.request.tools is not None else None,
                note=self._warn,
            )
        except BaseException:
            self._put_turn(turn, None)
            raise
        timing = timing_of(started_at, start, streams)
        if exchange.tool_seconds:
            timing["tool_s"] = exchange.tool_seconds
        record = answered(current, exchange.messages, exchange.responses, timing)
        self.spending.answered(record)  # its requests were counted as they arrived
        try:
            value = answer_value(current.request.output, record)
        except StructuredOutputError as error:  # a whole answer, but not the one asked for
            self._put_turn(turn, None)
            error.exchange = exchange.messages[:-1]
            raise
        self.keep(current, record, store=turn.settings.cache)
        return record, current, value

    def item_window(
        self,
        thread: str,
        cell_id: str | None,
        source: str | None,
        notebook: NotebookRecords | None,
    ) -> Window:
        """What a ``--map`` cell's items are sent with: the system prompt its thread has at the
        cell (a window with no turns to send), and the cell's place in the file."""
        cell_key = self.threads.key_of(cell_id)
        file_index = None
        if cell_id is None and source is not None:
            file_index = self.placement.index(notebook)
        full = self.threads.window(
            thread, cell_key, notebook, source=source, use_notebook=cell_id is not None
        )
        # The cell is no turn: one it held before (edited into --map) is no longer context.
        self.threads.put(Turn(cell_key, thread, TURN, (), False, None))
        systems = [turn for turn in full.turns if turn.kind == SYSTEM]
        return Window(systems, full.index if file_index is None else file_index, full.unplaced)

    def add_system(self, request: TurnRequest) -> Record:
        """A ``--system`` cell: nothing is sent; the text governs the turns below it."""
        cell_key = self.threads.key_of(request.cell_id)
        record = Record(
            kind=SYSTEM,
            thread=request.thread,
            messages=[{"role": "system", "content": request.prompt}],
            cell_id=request.cell_id,
            new_thread=request.new_thread,
        )
        self.threads.see(cell_key, request.source)
        self.threads.put(Turn.from_record(cell_key, record))
        self.cache.remember(record, store=False)
        return record

    def _remember(self, turn: PreparedTurn, record: Record, *, store: bool) -> None:
        # --no-cache answers are never replayed, but the turns below refer to them
        self.cache.remember(record, store=store)
        self._put_turn(turn, record)

    def _put_turn(self, turn: PreparedTurn, record: Record | None) -> None:
        """This cell's turn: with its record, or with none (failed, so no context below)."""
        request = turn.request
        if request.thread == STANDALONE:
            return
        messages = tuple(record.messages) if record is not None else (turn.user,)
        self.threads.put(
            Turn(turn.cell_key, request.thread, TURN, messages, request.new_thread, record)
        )
