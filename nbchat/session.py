"""The engine behind ``%%chat`` and `nbchat.ask`: context, cache lookup, sending, recording.

It knows nothing of display: the caller passes a ``sink`` that receives text deltas as they arrive.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from nbchat.client import ChatClient, ClientConfig
from nbchat.completion import completion_text
from nbchat.errors import ConfigError, OfflineMiss, StreamInterrupted, TruncatedStreamError
from nbchat.notebook import NotebookRecords, NotebookWatcher, find_notebook
from nbchat.record import Record, normalise_base_url, request_key, utc_now
from nbchat.settings import Settings
from nbchat.stream import parse_event
from nbchat.threads import STANDALONE, ThreadStore, Turn

__all__ = ["STANDALONE", "ChatSession", "Outcome", "PreparedTurn", "TurnRequest", "Usage"]

# Receives the new text of each network read and how many deltas (≈ tokens) it joins.
Sink = Callable[[str, int], None]


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


@dataclass(frozen=True)
class PreparedTurn:
    """A turn with its full context, ready to send or to find in the cache."""

    request: TurnRequest
    settings: Settings
    cell_key: str
    messages: list[dict[str, str]]
    params: dict[str, Any]
    key: str

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


@dataclass(frozen=True)
class Outcome:
    """A complete answer: fresh from the server, or replayed (``source`` says from where)."""

    record: Record
    source: str | None = None  # None (fresh), "session" or "notebook"

    @property
    def replayed(self) -> bool:
        """Whether no request was sent for this answer."""
        return self.source is not None


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

    def __init__(self, *, warn: Callable[[str], None] | None = None) -> None:
        self.threads = ThreadStore()
        self.answers: dict[str, Record] = {}
        self.history: list[Record] = []
        self.usage = Usage()
        # The last stream's raw events (strings), not the stream: its response would keep the
        # request, Authorization header included, alive.
        self._last_events: list[str] = []
        self.notebook_path: Path | None = None  # set by `%chat notebook PATH` or config
        self._warn = warn or (lambda message: None)
        self._clients: dict[ClientConfig, ChatClient] = {}
        self._watcher: NotebookWatcher | None = None
        self._warned: set[str] = set()

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

    def notebook(self, user_ns: Mapping[str, Any] | None = None) -> NotebookRecords | None:
        """The saved notebook's records, if the file is known and readable."""
        path = self.notebook_path or find_notebook(user_ns or {}, os.environ)[0]
        if path is None:
            self._warn_once(
                "nbchat: the notebook file is unknown, so only this session's answers can be "
                "reused. Point nbchat at it with %chat notebook PATH or $NBCHAT_NOTEBOOK."
            )
            return None
        if self._watcher is None or self._watcher.path != path:
            self._watcher = NotebookWatcher(path)
        records = self._watcher.get()
        if records is None and self._watcher.error:
            self._warn_once(f"nbchat: not reading stored answers: {self._watcher.error}")
        return records

    @property
    def last_chunks(self) -> list[Any]:
        """The raw chunks of the last streamed answer (kept as strings, parsed on demand)."""
        return [parse_event(data) for data in self._last_events]

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
        if request.new_thread or request.thread == STANDALONE:
            system = settings.system_prompt
            context = [{"role": "system", "content": system}] if system else []
        else:
            context = self.threads.context(
                request.thread,
                cell_key,
                notebook,
                default_system=settings.system_prompt,
                use_notebook=request.cell_id is not None or request.follow_notebook,
            )
        messages = [*context, {"role": "user", "content": request.prompt}]
        params = settings.request_params()
        key = request_key(settings.base_url, settings.model, messages, params)
        return PreparedTurn(request, settings, cell_key, messages, params, key)

    def lookup(self, turn: PreparedTurn, notebook: NotebookRecords | None) -> Outcome | None:
        """A stored answer for exactly this request, from this session or the saved file."""
        if not turn.settings.cache:
            return None
        if turn.request.refresh and not turn.settings.offline:  # offline cannot ask again
            return None
        if turn.key in self.answers:
            return Outcome(self.answers[turn.key], "session")
        if notebook is not None and turn.key in notebook.by_key:
            return Outcome(notebook.by_key[turn.key], "notebook")
        return None

    def answer(
        self,
        turn: PreparedTurn,
        notebook: NotebookRecords | None,
        sink: Sink | None = None,
    ) -> Outcome:
        """Replay a stored answer or ask the server; record the turn either way."""
        found = self.lookup(turn, notebook)
        if found is not None:
            return Outcome(self.replay(turn, found), found.source)
        self.check_online(turn, notebook)
        return Outcome(self.send(turn, sink))

    def replay(self, turn: PreparedTurn, found: Outcome) -> Record:
        """A stored answer as this cell's turn; no request is sent.

        The key covers what was sent, not where: an answer stored by another cell or thread
        (two threads that open with the same prompt) is re-labelled for this one, so the saved
        notebook rebuilds each thread correctly after a restart.
        """
        record = replace(
            found.record,
            thread=turn.request.thread,
            cell_id=turn.request.cell_id,
            new_thread=turn.request.new_thread,
        )
        self.usage.replays += 1
        self.usage.add(self.usage.saved, record.usage)
        self._remember(turn, record, store=True)
        return record

    def check_online(self, turn: PreparedTurn, notebook: NotebookRecords | None) -> None:
        """Raise `OfflineMiss` (saying what changed) when offline mode forbids a request."""
        if turn.settings.offline:
            raise OfflineMiss(self.explain_miss(turn, notebook))

    def send(self, turn: PreparedTurn, sink: Sink | None = None) -> Record:
        """Ask the server. A failed or interrupted answer leaves a turn with no answer."""
        client = self.client(turn.settings)
        started_at, start = utc_now(), time.perf_counter()
        self.usage.requests += 1
        try:
            if turn.settings.stream:
                completion, first_token_at = self._stream(client, turn, sink)
            else:
                completion, first_token_at = client.chat(turn.body()), None
                if sink is not None:
                    sink(completion_text(completion), 1)
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

    def _stream(
        self, client: ChatClient, turn: PreparedTurn, sink: Sink | None
    ) -> tuple[dict[str, Any], float | None]:
        stream = client.stream(turn.body(), keep_chunks=True)
        self._last_events = stream.raw_events
        try:
            for text, pieces in stream.batches():
                if sink is not None:
                    sink(text, pieces)
        except KeyboardInterrupt as interrupt:
            stream.close()
            if isinstance(interrupt, StreamInterrupted) or stream.first_token_at is None:
                raise  # (nothing arrived yet: the caller says "before the answer started")
            # Ctrl-C landed in the sink (our display code), not in the socket read.
            raise StreamInterrupted(
                "Interrupted: the partial answer is kept but not stored.", partial=stream.partial()
            ) from None
        if stream.completion is None:  # every complete path sets it; never store a partial
            raise TruncatedStreamError(
                "The stream ended without a complete answer.", partial=stream.partial()
            )
        return stream.completion, stream.first_token_at

    def add_system(self, request: TurnRequest, settings: Settings) -> Record:
        """A ``--system`` cell: nothing is sent; the text governs the turns below it."""
        cell_key = request.cell_id or self.threads.anonymous_key()
        record = Record(
            kind="system",
            thread=request.thread,
            prompt=request.prompt,
            cell_id=request.cell_id,
            new_thread=request.new_thread,
        )
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

    def explain_miss(self, turn: PreparedTurn, notebook: NotebookRecords | None) -> str:
        """Offline mode and no stored answer: say which thread and what changed."""
        thread = turn.request.thread
        head = f"Offline (NBCHAT_OFFLINE): no stored answer for this cell in thread {thread!r}"
        if not turn.settings.cache:
            return f"{head}: --no-cache answers are never stored, so they cannot run offline."
        previous = self._previous_record(turn, notebook)
        if previous is None or previous.request is None:
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

    def _previous_record(
        self, turn: PreparedTurn, notebook: NotebookRecords | None
    ) -> Record | None:
        """The answer this cell stored last time: by cell id when known, else the stored turn
        of the same thread with the same context (its prompt changed) or the same prompt."""
        cell_id = turn.request.cell_id
        stored = [r for r in reversed(self.history) if r.kind == "answer"]
        if notebook is not None:
            position = notebook.position.get(turn.cell_key)
            for cell, record in notebook.records():
                if record.kind == "answer" and position is not None and cell.index == position:
                    return record
            stored += [r for _, r in notebook.records() if r.kind == "answer"]
        if cell_id:
            for record in stored:
                if record.cell_id == cell_id:
                    return record
        same_thread = [r for r in stored if r.thread == turn.request.thread and r.request]
        context = turn.messages[:-1]
        for record in same_thread:
            if record.request["messages"][:-1] == context:
                return record
        for record in same_thread:
            if record.prompt == turn.request.prompt:
                return record
        return None
