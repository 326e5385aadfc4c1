"""One streamed answer: SSE in, text deltas out, the whole answer folded at the end.

The seam with the client: a `ChatStream` is given a function that sends the request and
returns an `OpenResponse` (`ChatClient.open_stream`); it reads and parses that response and
never touches httpx. The per-token path lives here (`ChatStream._fold`); wrongly shaped chunks
are named by `nbchat.wire.protocol` off that path.

Ctrl-C is not converted here: the stream closes its response and lets the `KeyboardInterrupt`
through unchanged; ``partial()`` and ``first_token_at`` say what had arrived.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator, Mapping
from typing import TYPE_CHECKING, Any, NamedTuple

from nbchat.errors import (
    MalformedStreamError,
    NbchatError,
    StreamError,
    StreamErrorEvent,
    TruncatedStreamError,
)
from nbchat.wire.completion import CompletionBuilder, completion_reasoning, completion_text
from nbchat.wire.protocol import error_detail, is_error_body
from nbchat.wire.redaction import Redactor
from nbchat.wire.sse import SSEDecoder
from nbchat.wire.surrogates import SplitPairs, repaired_json

if TYPE_CHECKING:
    from nbchat.wire.transport import OpenResponse

__all__ = ["Batch", "ChatStream", "parse_event"]

_EVENT_LIMIT = 80  # characters of a bad event quoted in a message
# One network read as handed on: its text deltas, how many it joins, its new thinking.
_Read = tuple[list[str], int, str]

_scan_json = json.JSONDecoder().scan_once


def _loads(data: str) -> Any:
    """`json.loads` for the per-token path: the C scanner is called directly, skipping the
    two Python frames and two whitespace regex matches `json.loads` adds to every chunk.
    Anything unusual (surrounding whitespace, trailing data, not JSON) goes to `json.loads`,
    which gives the same value or raises the same `ValueError`."""
    try:
        value, end = _scan_json(data, 0)
    except StopIteration:
        return json.loads(data)
    return value if end == len(data) else json.loads(data)


def parse_event(data: str) -> Any:
    """A kept raw event as JSON, or as the text received when it is not JSON."""
    try:
        return repaired_json(json.loads(data))  # a half surrogate pair shown would fail
    except (ValueError, RecursionError):
        return data  # shown as received


class ChatStream:
    """One streamed answer. Iterating yields text deltas of the first choice as they arrive.

    ``open_response(body)`` sends the request when the iteration starts and returns the open
    response (or raises). After a complete iteration ``completion`` holds the folded answer. On
    failure a `StreamError` carrying the partial answer is raised; ``partial()`` still returns it.
    """

    def __init__(
        self,
        open_response: Callable[[Mapping[str, Any]], OpenResponse],
        body: Mapping[str, Any],
        *,
        keep_chunks: bool = False,
    ) -> None:
        self._open = open_response
        self.body = dict(body)
        self.builder = CompletionBuilder()
        self.keep_chunks = keep_chunks
        # Event data as received: strings, which the garbage collector does not have to scan
        # (30,000 parsed chunk dicts kept alive cost more than parsing them).
        self.raw_events: list[str] = []
        self.completion: dict[str, Any] | None = None
        self.request_id: str | None = None
        self.first_token_at: float | None = None  # the answer's first text
        self.first_thought_at: float | None = None  # a reasoning model's first thinking
        # The request's secrets, known once it is sent: for anyone showing ``raw_events``.
        self.redactor = Redactor()
        self._started = False
        self._response: OpenResponse | None = None
        self._text_pairs = SplitPairs()  # surrogate pairs split across reads, for live text
        self._thought_pairs = SplitPairs()

    def partial(self) -> dict[str, Any]:
        """Whatever has arrived so far, completion-shaped (any secret of the request a server
        echoed redacted: it is shown, and a complete answer is stored)."""
        result = self.builder.result()
        return self.redactor.json(result) if self.redactor else result

    def close(self) -> None:
        """Drop the connection now (e.g. when the consumer was interrupted between deltas)."""
        if self._response is not None:
            self._response.close()

    def __iter__(self) -> Iterator[str]:
        """Text deltas of the first choice, one per chunk, as they arrive (thinking apart)."""
        for texts, _, _ in self._run():
            yield from texts

    def batches(self) -> Iterator[Batch]:
        """The new text (and thinking) of each network read, with how many deltas it joins:
        for a display, which needs no more than that and is spared a call per token."""
        for texts, pieces, thought in self._run():
            yield Batch("".join(texts), pieces, thought)

    def _run(self) -> Iterator[_Read]:
        if self._started:
            raise RuntimeError("a ChatStream can be iterated only once")
        self._started = True
        response = self._response = self._open(self.body)
        self.request_id = response.request_id
        self.redactor = response.redactor
        try:
            if "text/event-stream" in response.content_type:
                yield from self._events(response)
            else:  # a server that ignored "stream": true and sent one whole completion
                yield from self._whole(response)
        except StreamError as exc:  # e.g. a connection lost: add what had arrived
            if exc.partial is None:
                exc.partial = self.partial()
            raise
        finally:  # also on Ctrl-C, which goes on up unchanged
            response.close()

    def _events(self, response: OpenResponse) -> Iterator[_Read]:
        """The texts (and thinking) of each network read, then the checks of a complete
        answer."""
        done = False
        take_reasoning = self.builder.take_reasoning
        for datas in _reads(response):
            texts, done, error = self._fold(datas)
            thought = take_reasoning()
            if error is None and self.builder.error is not None:
                error = self._reported(self.builder.error)
            if texts or thought:
                pieces = len(texts)
                texts, thought = self._repaired(texts, thought)
                self._mark(texts, thought)
                # what arrived before a bad event still reaches the consumer
                yield texts, pieces, thought
            if error is not None:
                raise self._stream_error(error)
            if done:
                break
        text, thought = self._text_pairs.flush(), self._thought_pairs.flush()
        if text or thought:  # half a pair that never completed: shown as the answer stores it
            yield ([text] if text else []), 0, thought
        if not done and self.builder.finish_reason is None:
            raise TruncatedStreamError(
                f"The stream ended before the answer was complete (no [DONE]){self._ref()}; "
                "the partial answer is kept but not stored.",
                partial=self.partial(),
            )
        if not self.builder.has_answer:
            raise TruncatedStreamError(
                f"The server ended the stream without an answer{self._ref()}; nothing is stored.",
                partial=self.partial(),
            )
        self.completion = self.partial()

    def _fold(self, datas: list[str]) -> tuple[list[str], bool, NbchatError | None]:
        """Fold one read's events in: their texts, whether ``[DONE]`` came, and the error that
        stopped them (returned, so the texts before it are not lost). The per-token loop is
        kept flat; the rare cases (lists, errors, glued or malformed events) go to `_texts`,
        wrongly typed fields to the builder's checked path."""
        texts: list[str] = []
        add = self.builder.add
        loads = _loads
        keep = self.raw_events.append if self.keep_chunks else None
        try:
            for data in datas:
                if data == "[DONE]":
                    return texts, True, None
                if keep is not None:
                    keep(data)
                try:
                    chunk = loads(data)
                except (ValueError, RecursionError):
                    chunk = None
                if type(chunk) is not dict or "choices" not in chunk:
                    texts += self._texts(data)
                    continue
                text = add(chunk)
                if text:
                    texts.append(text)
        except NbchatError as exc:
            return texts, False, exc
        return texts, False, None

    def _repaired(self, texts: list[str], thought: str) -> tuple[list[str], str]:
        """One read's text and thinking with surrogate pairs joined (`nbchat.wire.surrogates`): a
        read rarely holds any, and then the deltas go on as they came."""
        text = "".join(texts)
        joined = self._text_pairs.take(text)
        if joined is not text:
            texts = [joined] if joined else []
        return texts, self._thought_pairs.take(thought)

    def _reported(self, error: dict[str, Any]) -> StreamErrorEvent:
        """The error a chunk reported beside its choices, or a finish reason of ``error``."""
        detail = self.redactor.clip(error_detail({"error": error})) if error else ""
        return StreamErrorEvent(
            f"The server reported an error mid-answer{self._ref()}: "
            f"{detail or 'finish_reason: error'}. The partial answer is kept but not stored.",
            partial=self.partial(),
        )

    def _mark(self, texts: list[str], thought: str) -> None:
        now = time.perf_counter()  # one read: its thinking came before its text
        if thought and self.first_thought_at is None:
            self.first_thought_at = now
        if texts and self.first_token_at is None:
            self.first_token_at = now

    def _ref(self) -> str:
        return self._response.ref() if self._response is not None else ""

    def _stream_error(self, error: NbchatError) -> StreamError:
        """A stream error with the partial answer; a builder's `ProtocolError` names a field."""
        if isinstance(error, StreamError):
            if error.partial is None:
                error.partial = self.partial()
            return error
        problem = self.redactor.clip(str(error))
        return MalformedStreamError(
            f"The server sent a malformed chunk: {problem}. "
            "The partial answer is kept but not stored.",
            partial=self.partial(),
        )

    def _texts(self, data: str) -> list[str]:
        """Fold one event in (any shape), in order, and return its new texts; an ``error``
        object raises with the partial answer (what came before it in the event included)."""
        texts = []
        for chunk in self._decode(data):
            if is_error_body(chunk):
                detail = self.redactor.clip(error_detail(chunk)) or "no details"
                raise StreamErrorEvent(
                    f"The server reported an error mid-answer{self._ref()}: {detail}. "
                    "The partial answer is kept but not stored.",
                    partial=self.partial(),
                )
            text = self.builder.add(chunk)
            if text:
                texts.append(text)
        return texts

    def _decode(self, data: str) -> list[dict[str, Any]]:
        """One event's data as chunk-like objects (several when events came glued)."""
        try:
            value = json.loads(data)
        except RecursionError:
            raise self._not_a_chunk(data) from None
        except ValueError:
            value = self._decode_joined(data)
        chunks = value if isinstance(value, list) else [value]
        if not all(isinstance(chunk, dict) for chunk in chunks):
            raise self._not_a_chunk(data)
        return chunks

    def _not_a_chunk(self, data: str) -> MalformedStreamError:
        shown = self.redactor.clip(data, _EVENT_LIMIT)
        return MalformedStreamError(
            f"The server sent an event that is not a chunk: {shown!r}", partial=self.partial()
        )

    def _decode_joined(self, data: str) -> list[Any]:
        """Servers that omit the blank line between events glue them into one multi-line event."""
        if "\n" in data:
            try:
                return [json.loads(line) for line in data.split("\n") if line and line != "[DONE]"]
            except (ValueError, RecursionError):
                pass
        shown = self.redactor.clip(data, _EVENT_LIMIT)
        raise MalformedStreamError(
            f"The server sent an event that is not JSON: {shown!r}", partial=self.partial()
        )

    def _whole(self, response: OpenResponse) -> Iterator[_Read]:
        self.completion = completion = response.completion()
        texts = [text] if (text := completion_text(completion)) else []
        thought = completion_reasoning(completion)
        if texts or thought:
            self._mark(texts, thought)
            yield texts, len(texts), thought


class Batch(NamedTuple):
    """What one network read brought: new answer text, how many deltas it joins, new thinking."""

    text: str
    pieces: int
    reasoning: str = ""


def _reads(response: OpenResponse) -> Iterator[list[str]]:
    """The data of the events each network read completes, then those the end of body does."""
    decoder = SSEDecoder()
    for raw in response.iter_bytes():
        yield decoder.feed_data(raw)
    yield [event.data for event in decoder.flush()]
