"""The engine behind ``%%chat`` and `nbchat.ask`: context, cache lookup, sending, recording.

Every turn takes one path, `ChatSession.run`: build the request from the turns above the cell,
look it up among this session's and the saved notebook's answers, and only then (unless
offline) send it. The magic and the API are thin callers. It knows nothing of display: the
caller passes a `LiveSink`, which is started when a request is sent and receives the text of
each network read.
"""

from __future__ import annotations

import enum
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from nbchat.engine.offline import asked_elsewhere, explain_miss
from nbchat.engine.reasoning import ReasoningPolicy
from nbchat.engine.settings import Settings
from nbchat.engine.threads import STANDALONE, Message, ThreadStore, Turn, Window
from nbchat.engine.tool_loop import ToolSink, converse
from nbchat.engine.turns import PreparedTurn, TurnRequest, answered, prepare, replayed
from nbchat.engine.usage import Usage
from nbchat.engine.values import MISFIT, answer_value, other_form, stored_value, with_advice
from nbchat.errors import (
    APIError,
    BadRequestError,
    ConfigError,
    OfflineMiss,
    StreamInterrupted,
    StructuredOutputError,
    TruncatedStreamError,
)
from nbchat.ipython.locator import SavedNotebook
from nbchat.ipython.server_sessions import ServerSessionLookup
from nbchat.store.chain import rebuild
from nbchat.store.notebook import NotebookRecords
from nbchat.store.record import SYSTEM, TURN, Record, utc_now
from nbchat.wire.client import ChatClient, ChatStream, ClientConfig
from nbchat.wire.completion import completion_reasoning, completion_text
from nbchat.wire.messages import carries_passback
from nbchat.wire.redaction import Redactor, request_url
from nbchat.wire.stream import parse_event

__all__ = [
    "STANDALONE",
    "ChatSession",
    "LiveSink",
    "Origin",
    "Outcome",
    "PreparedTurn",
    "TurnRequest",
    "Usage",
]

_UNPLACED = (
    "nbchat: this cell cannot be found in the saved notebook, whose cells have no ids (nbformat "
    "< 4.5), so the stored turns of such cells are left out of its context. Save the notebook "
    "(JupyterLab then gives every cell an id) and run the cell again."
)


class LiveSink(ToolSink, Protocol):
    """Where a streamed answer goes while it arrives (a live view), with its tool calls."""

    def start(self, redact: Callable[[str], str]) -> None:
        """A request is about to be sent; ``redact`` takes its secrets out of what is shown."""

    def on_delta(self, text: str, pieces: int, reasoning: str = "") -> None:
        """The new text of one network read, joining ``pieces`` deltas (about a token each),
        and the new thinking of a reasoning model."""


class Origin(enum.Enum):
    """Where an answer came from."""

    SERVER = "server"  # asked now
    SESSION = "session"  # replayed from an answer given earlier in this kernel session
    NOTEBOOK = "notebook"  # replayed from the saved notebook


@dataclass(frozen=True)
class Outcome:
    """A complete answer, where it came from, and the request it answers."""

    record: Record
    origin: Origin
    turn: PreparedTurn
    value: Any = None  # the answer as a Python object, when the turn asked for a shape

    @property
    def replayed(self) -> bool:
        """Whether no request was sent for this answer."""
        return self.origin is not Origin.SERVER


class ChatSession:
    """Per-kernel state: threads, answers given, clients, the notebook file, usage."""

    def __init__(
        self,
        *,
        warn: Callable[[str], None] | None = None,
        server_session: ServerSessionLookup | None = None,
    ) -> None:
        self.threads = ThreadStore()
        self.answers: dict[str, Record] = {}
        self._unstored: dict[str, Record] = {}  # --no-cache answers: context, never replayed
        self.history: list[Record] = []
        self.usage = Usage()
        # The last stream's raw events (strings) and what redacts them, not the stream: its
        # response would keep the request, Authorization header included, alive.
        self._last_events: list[str] = []
        self._last_redactor = Redactor()
        self.saved = SavedNotebook(server_session)
        self._warn = warn or (lambda message: None)
        self._clients: dict[ClientConfig, ChatClient] = {}
        self._warned: set[str] = set()
        self._headless_cells = 0  # %%chat cells run without a cell id (nbclient runs in order)
        self._headless_ordinal: int | None = None  # the running one's place among them
        self.reasoning = ReasoningPolicy()

    def close(self) -> None:
        """Close every HTTP client."""
        for client in self._clients.values():
            client.close()
        self._clients.clear()

    def client(self, settings: Settings) -> ChatClient:
        """One pooled client per endpoint configuration."""
        config = settings.client_config()
        if config not in self._clients:
            self._clients[config] = ChatClient(config)
        return self._clients[config]

    # -- the saved notebook ----------------------------------------------------------------

    def notebook(
        self, user_ns: Mapping[str, Any] | None = None, *, headless: bool = False
    ) -> NotebookRecords | None:
        """The saved notebook's records, if the file is known and readable."""
        return self.saved.records(user_ns or {}, headless=headless, warn=self._warn_once)

    @property
    def last_chunks(self) -> list[Any]:
        """The raw chunks of the last streamed answer (kept as strings, parsed on demand), with
        any secret of the request a server echoed redacted."""
        redact = self._last_redactor.text
        return [parse_event(redact(data)) for data in self._last_events]

    def _warn_once(self, message: str) -> None:
        if message not in self._warned:
            self._warned.add(message)
            self._warn(message)

    # -- a turn: the one path every turn takes ----------------------------------------------

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
        turn = self.prepare(request, settings, notebook)
        found = self.lookup(turn, notebook)
        if found is not None:
            record, origin = found
            as_stored = turn
            if record.key is not None and record.key == turn.other_key:
                as_stored = other_form(turn)  # stored with the thinking above sent the other way
            value = stored_value(as_stored, record, offline=settings.offline)
            if value is not MISFIT:  # else asked again, the thinking sent as decided
                return Outcome(self._replay(as_stored, record), origin, as_stored, value)
        if settings.offline:  # an answer asked of another endpoint, else nothing to replay
            elsewhere = asked_elsewhere(turn, notebook, self.threads)
            if elsewhere is None:
                raise OfflineMiss(explain_miss(turn, notebook, self.threads))
            value = stored_value(elsewhere.turn, elsewhere.record, offline=True)
            self._warn(elsewhere.note)
            origin = Origin.SESSION if elsewhere.in_session else Origin.NOTEBOOK
            record = self._replay(elsewhere.turn, elsewhere.record)
            return Outcome(record, origin, elsewhere.turn, value)
        try:
            record, turn, value = self._send(turn, sink)
        except APIError as error:
            raise with_advice(error, turn) from None
        return Outcome(record, Origin.SERVER, turn, value)

    def prepare(
        self, request: TurnRequest, settings: Settings, notebook: NotebookRecords | None
    ) -> PreparedTurn:
        """The full request of a cell's turn, and its key."""
        if not settings.model:
            raise ConfigError(
                f"Profile {settings.profile!r} names no model: add -m MODEL to the cell, or set "
                "%config ChatMagics.model or $NBCHAT_MODEL (`%chat models` lists them)."
            )
        if request.ask_in is not None:
            cell_key = self.threads.ask_key(*request.ask_in)
        else:
            cell_key = request.cell_id or self.threads.anonymous_key()
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
                    self._warn_once(_UNPLACED)
        if request.cell_id is None and request.source is not None:
            file_index = self._headless_index(notebook)
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
        """A ``%%chat`` cell starts (whatever becomes of it): one without a cell id takes the
        next place among the file's %%chat cells, since headless runners run every cell in
        order, failed ones included."""
        self._headless_ordinal = None
        if cell_id is None and source is not None:
            self._headless_ordinal = self._headless_cells
            self._headless_cells += 1

    def _headless_index(self, notebook: NotebookRecords | None) -> int | None:
        """Where the running cell without a cell id is in the file: the n-th %%chat cell run is
        the file's n-th %%chat cell (`start_cell`)."""
        ordinal = self._headless_ordinal
        if notebook is None or ordinal is None or ordinal >= len(notebook.chat_cells):
            return None
        return notebook.chat_cells[ordinal]

    def lookup(
        self, turn: PreparedTurn, notebook: NotebookRecords | None
    ) -> tuple[Record, Origin] | None:
        """A stored answer for exactly this request, from this session or the saved file (where
        nbchat 0.1's answers are found by the key 0.1 gave them)."""
        if not turn.settings.cache:
            return None
        if turn.request.refresh and not turn.settings.offline:  # offline cannot ask again
            return None
        own = self.threads.turn(turn.cell_key)  # this cell's own stored answer comes first
        mine = own.record if own is not None else None
        if mine is not None and mine.key in turn.keys and self._unstored.get(mine.key) is not mine:
            return mine, Origin.SESSION
        for key in turn.keys:
            if key in self.answers:
                return self.answers[key], Origin.SESSION
        for key in turn.keys if notebook is not None else ():
            found = notebook.stored(key, turn.file_index)
            if found is not None:
                return found, Origin.NOTEBOOK
        return None

    def _replay(self, turn: PreparedTurn, found: Record) -> Record:
        record = replayed(turn, found)
        self.usage.replays += 1
        self.usage.add(self.usage.saved, record.usage)
        self._remember(turn, record, store=True)
        return record

    def _send(self, turn: PreparedTurn, sink: LiveSink | None) -> tuple[Record, PreparedTurn, Any]:
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
                return self._request(client, current, added, sink, streams)
            except BadRequestError as error:
                flipped = self._flipped(current, added, error)
                if flipped is None:
                    raise
            current = flipped
            return self._request(client, current, added, sink, streams)

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
        timing = _timing(started_at, start, streams)
        if exchange.tool_seconds:
            timing["tool_s"] = exchange.tool_seconds
        record = answered(current, exchange.messages, exchange.responses, timing)
        self.usage.add(self.usage.spent, record.usage)
        try:
            value = answer_value(current, record)
        except StructuredOutputError as error:  # a whole answer, but not the one asked for
            self._put_turn(turn, None)
            error.exchange = exchange.messages[:-1]
            raise
        self._remember(current, record, store=turn.settings.cache)
        return record, current, value

    def _request(
        self,
        client: ChatClient,
        turn: PreparedTurn,
        added: list[Message],
        sink: LiveSink | None,
        streams: list[ChatStream],
    ) -> dict[str, Any]:
        """One request of the turn, with the messages its earlier rounds added. This is the one
        place where Ctrl-C becomes `StreamInterrupted`, carrying whatever part of the answer had
        arrived, wherever it landed (the socket read, the live view)."""
        body = turn.body(added)
        self.usage.requests += 1
        stream = None
        try:
            if not turn.settings.stream:
                completion = client.chat(body)
                if sink is not None:
                    thought = completion_reasoning(completion)
                    sink.on_delta(completion_text(completion), 1, thought)
                return completion
            stream = client.stream(body, keep_chunks=True)
            streams.append(stream)
            return self._stream(stream, sink)
        except KeyboardInterrupt as interrupt:
            if stream is not None:
                stream.close()
            raise _interrupted(interrupt, stream) from None

    def _flipped(
        self, turn: PreparedTurn, added: list[Message], error: BadRequestError
    ) -> PreparedTurn | None:
        """The turn with the thinking above sent the other way, when the provider's 400 names
        the thinking's field (and the thinking was there to send or leave out, or answers
        without it to pad); else None."""
        window = turn.window
        differs = (window is not None and window.has_reasoning) or any(
            carries_passback(message) for message in added
        )
        answers = any(m.get("role") == "assistant" for m in turn.body(added)["messages"])
        if not differs and (turn.send_reasoning or not answers):
            return None
        if self.reasoning.learn(turn.settings, error, turn.send_reasoning) is None:
            return None
        pad = self.reasoning.padding(turn.settings)
        return other_form(turn, pad) if differs or pad is not None else None

    def _stream(self, stream: ChatStream, sink: LiveSink | None) -> dict[str, Any]:
        self._last_events = stream.raw_events
        try:
            for batch in stream.batches():
                if sink is not None:
                    sink.on_delta(batch.text, batch.pieces, batch.reasoning)
        finally:
            self._last_redactor = stream.redactor
        if stream.completion is None:  # every complete path sets it; never store a partial
            raise TruncatedStreamError(
                "The stream ended without a complete answer.", partial=stream.partial()
            )
        return stream.completion

    def system_window(
        self,
        thread: str,
        cell_id: str | None,
        source: str | None,
        notebook: NotebookRecords | None,
    ) -> Window:
        """What a ``--map`` cell's items are sent with: the system prompt its thread has at the
        cell (a window with no turns to send), and the cell's place in the file."""
        cell_key = cell_id or self.threads.anonymous_key()
        file_index = None
        if cell_id is None and source is not None:
            file_index = self._headless_index(notebook)
        full = self.threads.window(
            thread, cell_key, notebook, source=source, use_notebook=cell_id is not None
        )
        # The cell is no turn: one it held before (edited into --map) is no longer context.
        self.threads.put(Turn(cell_key, thread, TURN, (), False, None))
        systems = [turn for turn in full.turns if turn.kind == SYSTEM]
        return Window(systems, full.index if file_index is None else file_index, full.unplaced)

    def count_answer(self, record: Record, *, replayed: bool, store: bool) -> None:
        """A standalone answer given outside `run` (an item of ``--map``): its tokens are counted
        as spent or saved, and, when ``store``, it is found again by its key."""
        if replayed:
            self.usage.replays += 1
            self.usage.add(self.usage.saved, record.usage)
        else:
            self.usage.add(self.usage.spent, record.usage)
        if store and record.key:
            self.answers[record.key] = record
        self.history.append(record)

    def add_system(self, request: TurnRequest) -> Record:
        """A ``--system`` cell: nothing is sent; the text governs the turns below it."""
        cell_key = request.cell_id or self.threads.anonymous_key()
        record = Record(
            SYSTEM,
            request.thread,
            [{"role": "system", "content": request.prompt}],
            cell_id=request.cell_id,
            new_thread=request.new_thread,
        )
        self.threads.see(cell_key, request.source)
        self.threads.put(Turn.from_record(cell_key, record))
        self.history.append(record)
        return record

    def _remember(self, turn: PreparedTurn, record: Record, *, store: bool) -> None:
        if record.key:
            # --no-cache answers are never replayed, but the turns below refer to them
            (self.answers if store else self._unstored)[record.key] = record
        self.history.append(record)
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

    # -- what the commands show ------------------------------------------------------------

    def context_at(
        self,
        thread: str,
        notebook: NotebookRecords | None,
        settings: Settings,
        *,
        cell_id: str | None,
        source: str | None = None,
        use_notebook: bool,
    ) -> tuple[Window, list[dict[str, Any]]]:
        """What a ``%%chat`` cell of ``thread`` in cell ``cell_id``'s place (None: below the
        last cell run) would send before its own message, and the turns they come from."""
        window = self.threads.window(
            thread, cell_id, notebook, source=source, use_notebook=use_notebook
        )
        reasoning = self.reasoning.decide(settings)
        return window, window.messages(settings.system_prompt, reasoning)

    def thread_summary(
        self, notebook: NotebookRecords | None, *, use_notebook: bool
    ) -> dict[str, tuple[int, bool]]:
        """Each thread's answered turns and whether it has a system prompt, by name."""
        summary: dict[str, tuple[int, bool]] = {}
        for turn in self.threads.turns(notebook, use_notebook=use_notebook):
            answered, system = summary.get(turn.thread, (0, False))
            summary[turn.thread] = (answered + turn.answered, system or turn.kind == SYSTEM)
        return summary

    def forget(self, thread: str | None) -> int:
        """Forget this session's turns of a thread (None: every thread), so the saved notebook's
        answers stand for those cells until they run again; how many turns went."""
        return self.threads.reset(thread)

    @property
    def answers_given(self) -> list[Record]:
        """The answers of this session, oldest first (replayed ones included)."""
        return [record for record in self.history if record.kind == TURN]

    def sent(self, record: Record, turn: PreparedTurn | None = None) -> dict[str, Any]:
        """The last request of ``record``'s turn, as it was sent (never the key or a header):
        from the prepared turn when there is one, else rebuilt from the records it refers to;
        a turn that ran tools sent its earlier rounds with it."""
        if record.request is None:
            return {}
        url = request_url(record.request.base_url, "/chat/completions")
        if turn is not None:
            body = turn.body(record.messages[1:-1])
            stream = turn.settings.stream
            if not turn.settings.key_problem:  # every field the client adds, as it adds them
                body = self.client(turn.settings).wire_body(body, stream=stream)
            return {"url": url, "body": body}
        rebuilt = rebuild(record, self.find)
        body = {"model": record.request.model, "messages": rebuilt.messages}
        shown: dict[str, Any] = {"url": url, "body": {**body, **record.request.params}}
        if rebuilt.missing:
            shown["incomplete"] = rebuilt.missing
        return shown

    def find(self, key: str) -> Record | None:
        """A record by its key: this session's answers, then the saved notebook's."""
        found = self.answers.get(key) or self._unstored.get(key)
        if found is None and self.saved.last is not None:
            found = self.saved.last.by_key.get(key)
        return found


def _timing(started_at: str, start: float, streams: list[ChatStream]) -> dict[str, Any]:
    """When the answer started and ended, its first token, and how long the model thought
    before its final answer."""
    end = time.perf_counter()
    first, last = (streams[0], streams[-1]) if streams else (None, None)
    timing: dict[str, Any] = {
        "started_at": started_at,
        "elapsed_s": round(end - start, 3),
        "first_token_s": (
            round(first.first_token_at - start, 3)
            if first is not None and first.first_token_at is not None
            else None
        ),
        "streamed": bool(streams),
    }
    if last is not None and last.first_thought_at is not None:
        thought_until = last.first_token_at or end
        timing["thinking_s"] = round(thought_until - last.first_thought_at, 3)
    return timing


def _interrupted(interrupt: KeyboardInterrupt, stream: Any) -> StreamInterrupted:
    """Ctrl-C as one error that keeps whatever part of the answer had arrived."""
    if isinstance(interrupt, StreamInterrupted):
        return interrupt
    partial = stream.partial() if stream is not None else None
    if stream is None or stream.first_token_at is None:
        return StreamInterrupted(
            "Interrupted before the answer started; nothing was stored.", partial=partial
        )
    return StreamInterrupted(
        "Interrupted: the partial answer is kept but not stored.", partial=partial
    )
