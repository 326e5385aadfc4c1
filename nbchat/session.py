"""The engine behind ``%%chat`` and `nbchat.ask`: context, cache lookup, sending, recording.

Every turn takes one path, `ChatSession.answer`: build the context, look the request up among
this session's and the saved notebook's answers, and only then (unless offline) send it. It knows
nothing of display: the caller passes a `LiveSink`, which is started when a request is sent and
receives the text of each network read.
"""

from __future__ import annotations

import enum
import os
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Protocol

from nbchat.client import ChatClient, ClientConfig
from nbchat.completion import completion_text
from nbchat.errors import ConfigError, OfflineMiss, StreamInterrupted, TruncatedStreamError
from nbchat.notebook import NotebookRecords, NotebookWatcher, find_notebook
from nbchat.record import Record, normalise_base_url, request_key, utc_now
from nbchat.redaction import Redactor
from nbchat.server_session import ServerSessionLookup
from nbchat.settings import Settings
from nbchat.stream import parse_event
from nbchat.threads import STANDALONE, ThreadStore, Turn

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

_UNKNOWN_FILE = (
    "nbchat: the notebook file is unknown, so only this session's answers can be reused. "
    "Point nbchat at it with %chat notebook PATH or $NBCHAT_NOTEBOOK."
)
_HEADLESS_UNKNOWN_FILE = (
    "nbchat: running headless (nbclient, papermill or nbconvert) without $NBCHAT_NOTEBOOK, so the "
    "answers stored in this notebook cannot be replayed: every %%chat cell is sent again. Run it "
    "with `nbchat run NOTEBOOK`, or set NBCHAT_NOTEBOOK=path/to/the.ipynb for the run."
)
_UNPLACED = (
    "nbchat: this cell cannot be found in the saved notebook, whose cells have no ids (nbformat "
    "< 4.5), so the stored turns of such cells are left out of its context. Save the notebook "
    "(JupyterLab then gives every cell an id) and run the cell again."
)


class LiveSink(Protocol):
    """Where a streamed answer goes while it arrives (a live view)."""

    def start(self) -> None:
        """A request is about to be sent."""

    def on_delta(self, text: str, pieces: int) -> None:
        """The new text of one network read, joining ``pieces`` deltas (about a token each)."""


@dataclass(frozen=True)
class TurnRequest:
    """What one cell (or one `ask` call) asks for."""

    prompt: str
    thread: str = "default"
    cell_id: str | None = None
    new_thread: bool = False
    refresh: bool = False
    # Rebuild the thread from the saved notebook even without a cell id (`ask` with a thread).
    follow_notebook: bool = False
    source: str | None = None  # the cell's code as executed: finds it in a file without cell ids


@dataclass(frozen=True)
class PreparedTurn:
    """A turn with its full context, ready to send or to find in the cache."""

    request: TurnRequest
    settings: Settings
    cell_key: str
    messages: list[dict[str, str]]
    params: dict[str, Any]
    key: str
    file_index: int | None = None  # where the cell is in the saved notebook, when known

    def body(self) -> dict[str, Any]:
        """The JSON body for ``/chat/completions`` (stream flags are added by the client)."""
        return {"model": self.settings.model, "messages": self.messages, **self.params}

    def stored_request(self) -> dict[str, Any]:
        """The request as the record keeps it: no key, no headers."""
        return {
            "base_url": self.settings.base_url,
            "model": self.settings.model,
            "messages": self.messages,
            "params": self.params,
        }


class Origin(enum.Enum):
    """Where an answer came from."""

    SERVER = "server"  # asked now
    SESSION = "session"  # replayed from an answer given earlier in this kernel session
    NOTEBOOK = "notebook"  # replayed from the saved notebook


@dataclass(frozen=True)
class Outcome:
    """A complete answer and where it came from."""

    record: Record
    origin: Origin = Origin.SERVER

    @property
    def replayed(self) -> bool:
        """Whether no request was sent for this answer."""
        return self.origin is not Origin.SERVER


@dataclass
class Usage:
    """Tokens spent on fresh answers and saved by replayed ones, this session."""

    requests: int = 0
    replays: int = 0
    spent: dict[str, int] = field(default_factory=lambda: {"prompt": 0, "completion": 0})
    saved: dict[str, int] = field(default_factory=lambda: {"prompt": 0, "completion": 0})

    def add(self, bucket: dict[str, int], usage: Mapping[str, Any]) -> None:
        """Count one answer's usage into ``bucket``."""
        bucket["prompt"] += int(usage.get("prompt_tokens") or 0)
        bucket["completion"] += int(usage.get("completion_tokens") or 0)


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
        self.history: list[Record] = []
        self.usage = Usage()
        # The last stream's raw events (strings) and what redacts them, not the stream: its
        # response would keep the request, Authorization header included, alive.
        self._last_events: list[str] = []
        self._last_redactor = Redactor()
        self.notebook_path: Path | None = None  # set by `%chat notebook PATH` or config
        self._warn = warn or (lambda message: None)
        self._clients: dict[ClientConfig, ChatClient] = {}
        self._watcher: NotebookWatcher | None = None
        self._warned: set[str] = set()
        self._server_session = server_session or ServerSessionLookup()
        self._headless_cells = 0  # %%chat cells run without a cell id (nbclient runs in order)

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

    def locate_notebook(self, user_ns: Mapping[str, Any] | None = None) -> tuple[Path | None, str]:
        """The notebook file and how it was found (``(None, "")`` when unknown)."""
        if self.notebook_path is not None:
            return self.notebook_path, "%chat notebook / ChatMagics.notebook"
        return find_notebook(user_ns or {}, os.environ, self._server_session.path)

    def notebook(
        self, user_ns: Mapping[str, Any] | None = None, *, headless: bool = False
    ) -> NotebookRecords | None:
        """The saved notebook's records, if the file is known and readable."""
        path, _ = self.locate_notebook(user_ns)
        if path is None:
            self._warn_once(_HEADLESS_UNKNOWN_FILE if headless else _UNKNOWN_FILE)
            return None
        if self._watcher is None or self._watcher.path != path:
            self._watcher = NotebookWatcher(path)
        records = self._watcher.get()
        if records is None and self._watcher.error:
            self._warn_once(f"nbchat: not reading stored answers: {self._watcher.error}")
        return records

    @property
    def last_chunks(self) -> list[Any]:
        """The raw chunks of the last streamed answer (kept as strings, parsed on demand), with
        any secret of the request a server echoed redacted."""
        redact = self._last_redactor.text
        return [parse_event(redact(data)) for data in self._last_events]

    @property
    def parse_count(self) -> int:
        """How many times the notebook file was parsed."""
        return self._watcher.parse_count if self._watcher else 0

    def _warn_once(self, message: str) -> None:
        if message not in self._warned:
            self._warned.add(message)
            self._warn(message)

    # -- a turn ----------------------------------------------------------------------------

    def prepare(
        self, request: TurnRequest, settings: Settings, notebook: NotebookRecords | None
    ) -> PreparedTurn:
        """Build the messages (context above the cell plus this prompt) and the cache key."""
        if not settings.model:
            raise ConfigError(
                f"Profile {settings.profile!r} names no model: add -m MODEL to the cell, or set "
                "%config ChatMagics.model or $NBCHAT_MODEL (`%chat models` lists them)."
            )
        cell_key = request.cell_id or self.threads.anonymous_key()
        use_notebook = request.cell_id is not None or request.follow_notebook
        window = self.threads.window(
            request.thread,
            cell_key,
            notebook,
            source=request.source,
            use_notebook=use_notebook,
        )
        if request.new_thread or request.thread == STANDALONE:
            system = settings.system_prompt
            context = [{"role": "system", "content": system}] if system else []
        else:
            if window.unplaced:
                self._warn_once(_UNPLACED)
            context = window.messages(settings.system_prompt)
        messages = [*context, {"role": "user", "content": request.prompt}]
        params = settings.request_params()
        key = request_key(settings.base_url, settings.model, messages, params)
        file_index = window.index
        if request.cell_id is None and request.source is not None:
            file_index = self._headless_index(notebook)
        return PreparedTurn(request, settings, cell_key, messages, params, key, file_index)

    def _headless_index(self, notebook: NotebookRecords | None) -> int | None:
        """Where a cell run without a cell id is in the file. nbclient, papermill and nbconvert
        run every cell in order, so the n-th %%chat cell run is the file's n-th %%chat cell."""
        ordinal = self._headless_cells
        self._headless_cells += 1
        if notebook is None or ordinal >= len(notebook.chat_cells):
            return None
        return notebook.chat_cells[ordinal]

    def answer(
        self,
        turn: PreparedTurn,
        notebook: NotebookRecords | None,
        sink: LiveSink | None = None,
    ) -> Outcome:
        """Replay a stored answer or ask the server; record the turn either way."""
        found = self.lookup(turn, notebook)
        if found is not None:
            return Outcome(self.replay(turn, found.record), found.origin)
        if turn.settings.offline:
            raise OfflineMiss(self.explain_miss(turn, notebook))
        return Outcome(self.send(turn, sink))

    def lookup(self, turn: PreparedTurn, notebook: NotebookRecords | None) -> Outcome | None:
        """A stored answer for exactly this request, from this session or the saved file."""
        if not turn.settings.cache:
            return None
        if turn.request.refresh and not turn.settings.offline:  # offline cannot ask again
            return None
        if turn.key in self.answers:
            return Outcome(self.answers[turn.key], Origin.SESSION)
        if notebook is not None and turn.key in notebook.by_key:
            return Outcome(notebook.by_key[turn.key], Origin.NOTEBOOK)
        return None

    def replay(self, turn: PreparedTurn, found: Record) -> Record:
        """A stored answer as this cell's turn; no request is sent.

        The key covers what was sent, not where: an answer stored by another cell or thread
        (two threads that open with the same prompt) is re-labelled for this one, so the saved
        notebook rebuilds each thread correctly after a restart.
        """
        record = replace(
            found,
            thread=turn.request.thread,
            cell_id=turn.request.cell_id,
            new_thread=turn.request.new_thread,
        )
        self.usage.replays += 1
        self.usage.add(self.usage.saved, record.usage)
        self._remember(turn, record, store=True)
        return record

    def send(self, turn: PreparedTurn, sink: LiveSink | None = None) -> Record:
        """Ask the server. A failed or interrupted answer leaves a turn with no answer.

        This is the one place where Ctrl-C becomes `StreamInterrupted`, carrying whatever part
        of the answer had arrived, wherever it landed (the socket read, the live view).
        """
        client = self.client(turn.settings)
        started_at, start = utc_now(), time.perf_counter()
        self.usage.requests += 1
        stream = None
        try:
            if sink is not None:
                sink.start()
            if turn.settings.stream:
                stream = client.stream(turn.body(), keep_chunks=True)
                self._last_events = stream.raw_events
                try:
                    for text, pieces in stream.batches():
                        if sink is not None:
                            sink.on_delta(text, pieces)
                finally:
                    self._last_redactor = stream.redactor
                completion, first_token_at = stream.completion, stream.first_token_at
                if completion is None:  # every complete path sets it; never store a partial
                    raise TruncatedStreamError(
                        "The stream ended without a complete answer.", partial=stream.partial()
                    )
            else:
                completion, first_token_at = client.chat(turn.body()), None
                if sink is not None:
                    sink.on_delta(completion_text(completion), 1)
        except KeyboardInterrupt as interrupt:
            self._forget_answer(turn)
            if stream is not None:
                stream.close()
            raise _interrupted(interrupt, stream) from None
        except BaseException:
            self._forget_answer(turn)
            raise
        first_token_s = round(first_token_at - start, 3) if first_token_at else None
        record = Record(
            kind="answer",
            thread=turn.request.thread,
            prompt=turn.request.prompt,
            cell_id=turn.request.cell_id,
            new_thread=turn.request.new_thread,
            key=turn.key,
            request=turn.stored_request(),
            response=completion,
            timing={
                "started_at": started_at,
                "elapsed_s": round(time.perf_counter() - start, 3),
                "first_token_s": first_token_s,
                "streamed": turn.settings.stream,
            },
        )
        self.usage.add(self.usage.spent, record.usage)
        self._remember(turn, record, store=turn.settings.cache)
        return record

    def add_system(self, request: TurnRequest, settings: Settings) -> Record:
        """A ``--system`` cell: nothing is sent; the text governs the turns below it."""
        cell_key = request.cell_id or self.threads.anonymous_key()
        if request.cell_id is None and request.source is not None:
            self._headless_cells += 1  # it is one of the file's %%chat cells too
        record = Record(
            kind="system",
            thread=request.thread,
            prompt=request.prompt,
            cell_id=request.cell_id,
            new_thread=request.new_thread,
        )
        self.threads.see(cell_key, request.source)
        self.threads.put(Turn.from_record(cell_key, record))
        self.history.append(record)
        return record

    def _remember(self, turn: PreparedTurn, record: Record, *, store: bool) -> None:
        if store:
            self.answers[turn.key] = record
        self.history.append(record)
        self._put_turn(turn, record)

    def _forget_answer(self, turn: PreparedTurn) -> None:
        self._put_turn(turn, None)

    def _put_turn(self, turn: PreparedTurn, record: Record | None) -> None:
        """This cell's turn: with the answer, or with none (failed, so no context below)."""
        if turn.request.thread == STANDALONE:
            return
        request = turn.request
        answer = record.answer if record is not None else None
        self.threads.put(
            Turn(
                turn.cell_key,
                request.thread,
                "answer",
                request.prompt,
                answer,
                request.new_thread,
                record,
            )
        )

    # -- offline ---------------------------------------------------------------------------

    def explain_miss(self, turn: PreparedTurn, notebook: NotebookRecords | None) -> str:
        """Offline mode and no stored answer: say which thread and what changed."""
        thread = turn.request.thread
        head = f"Offline (NBCHAT_OFFLINE): no stored answer for this cell in thread {thread!r}"
        if not turn.settings.cache:
            return f"{head}: --no-cache answers are never stored, so they cannot run offline."
        previous = self._own_stored_answer(turn, notebook)
        if previous is None or previous.request is None:
            if notebook is None:
                return (
                    f"{head}, and the notebook file is unknown, so its stored answers cannot be "
                    "read: set $NBCHAT_NOTEBOOK (or %chat notebook PATH), or run it with "
                    "`nbchat run NOTEBOOK`."
                )
            return f"{head}; nothing is stored for it. Run it online once to store an answer."
        before, now = previous.request, turn.stored_request()
        changes = []
        if previous.prompt != turn.request.prompt:
            changes.append("the prompt")
        if before.get("messages", [])[:-1] != now["messages"][:-1]:
            changes.append("the context above it")
        if before.get("model") != now["model"]:
            changes.append(f"the model ({before.get('model')} -> {now['model']})")
        if before.get("params") != now["params"]:
            changes.append("the parameters")
        if normalise_base_url(before.get("base_url", "")) != normalise_base_url(now["base_url"]):
            changes.append("the endpoint")
        what = ", ".join(changes) or "the request"
        return f"{head}: {what} changed since the answer was stored."

    def _own_stored_answer(
        self, turn: PreparedTurn, notebook: NotebookRecords | None
    ) -> Record | None:
        """The answer this very cell stored last time: its turn in this session, else the record
        saved in its place in the notebook. Never another cell's answer."""
        session_turn = self.threads.turn(turn.cell_key)
        if session_turn is not None and session_turn.record is not None:
            return session_turn.record
        if notebook is None or turn.file_index is None:
            return None
        for cell, record in notebook.records():
            if cell.index == turn.file_index and record.kind == "answer":
                return record
        return None


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
