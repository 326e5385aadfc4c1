"""One streamed answer: SSE in, text deltas out, the whole answer folded at the end.

The per-token path lives here (`ChatStream._events`), together with parsing of response bodies
that both streamed and non-streamed requests share.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, Any

import httpx

from nbchat.completion import CompletionBuilder, completion_text
from nbchat.errors import (
    APIError,
    MalformedStreamError,
    NbchatError,
    ProtocolError,
    StreamErrorEvent,
    StreamInterrupted,
    TruncatedStreamError,
)
from nbchat.sse import SSEDecoder

if TYPE_CHECKING:
    from nbchat.client import ChatClient

__all__ = ["ChatStream", "parse_event"]


def json_body(response: httpx.Response) -> Any:
    try:
        return response.json()
    except ValueError as exc:
        url = response.request.url
        raise ProtocolError(f"{url} answered with a body that is not JSON.") from exc


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
        return json.loads(data)
    except ValueError:
        return data  # shown as received


def completion_body(response: httpx.Response) -> dict[str, Any]:
    """A whole ``chat.completion`` body; an ``error`` object in a 200 body keeps its message."""
    payload = json_body(response)
    if isinstance(payload, dict) and isinstance(payload.get("choices"), list):
        return payload
    if isinstance(payload, dict) and "error" in payload:
        error = payload["error"]
        message = error.get("message") if isinstance(error, dict) else str(error)
        raise APIError(
            f"The server reported an error: {message}",
            status_code=response.status_code,
            request_id=response.headers.get("x-request-id"),
            body=payload,
        )
    raise ProtocolError(f"{response.request.url} did not answer with a chat completion.")


class ChatStream:
    """One streamed answer. Iterating yields text deltas of the first choice as they arrive.

    After a complete iteration ``completion`` holds the folded answer. On failure a
    `StreamError` carrying the partial answer is raised, and ``partial()`` still returns it.
    """

    def __init__(self, client: ChatClient, body: Mapping[str, Any], *, keep_chunks: bool) -> None:
        self._client = client
        self.body = dict(body)
        self.builder = CompletionBuilder()
        self.keep_chunks = keep_chunks
        # Event data as received: strings, which the garbage collector does not have to scan
        # (30,000 parsed chunk dicts kept alive cost more than parsing them).
        self.raw_events: list[str] = []
        self.completion: dict[str, Any] | None = None
        self.request_id: str | None = None
        self.first_token_at: float | None = None
        self._started = False
        self._response: httpx.Response | None = None

    @property
    def chunks(self) -> list[Any]:
        """The chunks received (parsed now), when ``keep_chunks`` was asked for."""
        return [parse_event(data) for data in self.raw_events]

    def partial(self) -> dict[str, Any]:
        """Whatever has arrived so far, completion-shaped."""
        return self.builder.result()

    def close(self) -> None:
        """Drop the connection now (e.g. when the consumer was interrupted between deltas)."""
        if self._response is not None:
            self._response.close()

    def __iter__(self) -> Iterator[str]:
        """Text deltas of the first choice, one per chunk, as they arrive."""
        for texts in self._run():
            yield from texts

    def batches(self) -> Iterator[tuple[str, int]]:
        """The new text of each network read, with how many deltas it joins: for a display,
        which needs no more than that and is spared a call per token."""
        for texts in self._run():
            yield "".join(texts), len(texts)

    def _run(self) -> Iterator[list[str]]:
        if self._started:
            raise RuntimeError("a ChatStream can be iterated only once")
        self._started = True
        response = self._response = self._open()
        self.request_id = response.headers.get("x-request-id")
        try:
            content_type = response.headers.get("content-type", "")
            if "text/event-stream" in content_type.lower():
                yield from self._events(response)
            else:  # a server that ignored "stream": true and sent one whole completion
                yield from self._whole(response)
        except KeyboardInterrupt:
            raise StreamInterrupted(
                "Interrupted: the partial answer is kept but not stored.", partial=self.partial()
            ) from None
        except httpx.HTTPError as exc:
            raise self._client._scrub(
                TruncatedStreamError(
                    f"The connection dropped mid-answer ({type(exc).__name__}){self._ref()}; "
                    "the partial answer is kept but not stored. Run the cell again.",
                    partial=self.partial(),
                )
            ) from exc
        except NbchatError as exc:  # server text may be quoted: scrub it once, here
            self._client._scrub(exc)
            raise
        finally:
            response.close()

    def _ref(self) -> str:
        return f" (request id {self.request_id})" if self.request_id else ""

    def _open(self) -> httpx.Response:
        client = self._client
        request = {**self.body, "stream": True}
        if not client.usage_option_rejected:
            request["stream_options"] = {"include_usage": True}
        try:
            return client._send("POST", "/chat/completions", request, stream=True)
        except APIError as exc:  # 400 from most servers, 422 from FastAPI-style validation
            rejected = exc.status_code in (400, 422) and "stream_options" in str(exc.body)
            if "stream_options" not in request or not rejected:
                raise
        client.usage_option_rejected = True
        request.pop("stream_options")
        return client._send("POST", "/chat/completions", request, stream=True)

    def _events(self, response: httpx.Response) -> Iterator[list[str]]:
        """The texts of each network read. The per-token loop is kept flat; the rare cases
        (lists, errors, glued or malformed events) go to `_texts`."""
        decoder = SSEDecoder()
        add = self.builder.add
        loads = _loads
        keep = self.raw_events.append if self.keep_chunks else None
        done = False
        for raw in response.iter_bytes():
            texts: list[str] = []
            try:
                for data in decoder.feed_data(raw):
                    if data == "[DONE]":
                        done = True
                        break
                    if keep is not None:
                        keep(data)
                    try:
                        chunk = loads(data)
                    except ValueError:
                        chunk = None
                    if type(chunk) is not dict or "choices" not in chunk:
                        texts += self._texts(data)
                        continue
                    try:
                        text = add(chunk)
                    except (AttributeError, TypeError) as exc:
                        raise self._not_a_chunk(data) from exc
                    if text:
                        texts.append(text)
            except NbchatError:
                if texts:  # what arrived before the bad event still reaches the consumer
                    yield texts
                raise
            if texts:
                self._mark_first_token()
                yield texts
            if done:
                break
        else:
            texts = []
            for event in decoder.flush():
                if event.data == "[DONE]":
                    done = True
                else:
                    texts += self._texts(event.data)
            if texts:
                self._mark_first_token()
                yield texts
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
        self.completion = self.builder.result()

    def _mark_first_token(self) -> None:
        if self.first_token_at is None:
            self.first_token_at = time.perf_counter()

    def _texts(self, data: str) -> list[str]:
        """Fold one event in (any shape) and return its new texts."""
        texts = []
        for chunk in self._decode(data):
            try:
                text = self.builder.add(chunk)
            except (AttributeError, TypeError) as exc:
                raise self._not_a_chunk(data) from exc
            if text:
                texts.append(text)
        return texts

    def _decode(self, data: str) -> list[dict[str, Any]]:
        """One event's data as chunks; an ``error`` object raises with the partial answer."""
        try:
            chunk = json.loads(data)
        except ValueError:
            chunk = self._decode_joined(data)
        if isinstance(chunk, list) and all(isinstance(item, dict) for item in chunk):
            return chunk
        if not isinstance(chunk, dict):
            raise self._not_a_chunk(data)
        if "error" in chunk and "choices" not in chunk:
            error = chunk["error"]
            message = error.get("message") if isinstance(error, dict) else str(error)
            raise StreamErrorEvent(
                f"The server reported an error mid-answer: {message}. "
                "The partial answer is kept but not stored.",
                partial=self.partial(),
            )
        return [chunk]

    def _not_a_chunk(self, data: str) -> MalformedStreamError:
        return MalformedStreamError(
            f"The server sent an event that is not a chunk: {data[:80]!r}", partial=self.partial()
        )

    def _decode_joined(self, data: str) -> Any:
        """Servers that omit the blank line between events glue them into one multi-line event."""
        if "\n" in data:
            try:
                return [json.loads(line) for line in data.split("\n") if line and line != "[DONE]"]
            except ValueError:
                pass
        raise MalformedStreamError(
            f"The server sent an event that is not JSON: {data[:80]!r}", partial=self.partial()
        )

    def _whole(self, response: httpx.Response) -> Iterator[list[str]]:
        response.read()
        self.completion = completion = completion_body(response)
        text = completion_text(completion)
        if text:
            self._mark_first_token()
            yield [text]
