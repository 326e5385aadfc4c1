"""A byte-level Server-Sent Events decoder.

It follows the SSE grammar rather than approximating it: lines end only at ``\\r\\n``, ``\\r`` or
``\\n`` (so a raw U+2028 inside a JSON string does not split a line, unlike ``str.splitlines``),
events may be split across reads at any byte, ``data:`` may or may not be followed by a space,
comment lines (``: keep-alive``) are skipped, and multi-line ``data`` fields are joined
with ``\\n``.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass

__all__ = ["SSEDecoder", "ServerSentEvent", "iter_sse"]


@dataclass(frozen=True, slots=True)
class ServerSentEvent:
    """One dispatched event."""

    data: str
    event: str = "message"
    id: str | None = None
    retry: int | None = None


class SSEDecoder:
    """Feed bytes in, get complete events out.

    ``bytes.splitlines`` splits on exactly the three SSE line endings and keeps the hot path in C.
    """

    __slots__ = ("_buffer", "_data", "_event", "_id", "_retry")

    def __init__(self) -> None:
        self._buffer = b""
        self._data: list[str] = []
        self._event = ""
        self._id: str | None = None
        self._retry: int | None = None

    def feed(self, chunk: bytes) -> list[ServerSentEvent]:
        """Consume a chunk of the body and return the events it completed."""
        buffer = self._buffer + chunk if self._buffer else chunk
        lines = buffer.splitlines(keepends=True)
        if not lines:
            return []
        last = lines[-1]
        # An unterminated last line waits for more bytes; so does a lone trailing "\r",
        # because the "\n" of a "\r\n" may arrive in the next read.
        if last.endswith(b"\n"):
            self._buffer = b""
        else:
            self._buffer = lines.pop()
        events: list[ServerSentEvent] = []
        for line in lines:
            event = self._line(line.rstrip(b"\r\n"))
            if event is not None:
                events.append(event)
        return events

    def flush(self) -> list[ServerSentEvent]:
        """End of body: finish a last line and dispatch an event left without its blank line."""
        events: list[ServerSentEvent] = []
        if self._buffer:
            line, self._buffer = self._buffer.rstrip(b"\r\n"), b""
            event = self._line(line)
            if event is not None:
                events.append(event)
        event = self._dispatch()
        if event is not None:
            events.append(event)
        return events

    def _line(self, raw: bytes) -> ServerSentEvent | None:
        if not raw:
            return self._dispatch()
        if raw[0] == 0x3A:  # ":" starts a comment, e.g. ": keep-alive"
            return None
        line = raw.decode("utf-8", errors="replace")
        name, colon, value = line.partition(":")
        if colon and value.startswith(" "):
            value = value[1:]
        if name == "data":
            self._data.append(value)
        elif name == "event":
            self._event = value
        elif name == "id":
            if "\0" not in value:
                self._id = value
        elif name == "retry" and value.isascii() and value.isdigit():
            self._retry = int(value)
        return None

    def _dispatch(self) -> ServerSentEvent | None:
        if not self._data:
            self._event = ""
            return None
        data = self._data[0] if len(self._data) == 1 else "\n".join(self._data)
        event = ServerSentEvent(data, self._event or "message", self._id, self._retry)
        self._data = []
        self._event = ""
        return event


def iter_sse(chunks: Iterable[bytes]) -> Iterator[ServerSentEvent]:
    """Decode an iterable of body chunks into events, flushing at the end."""
    decoder = SSEDecoder()
    for chunk in chunks:
        yield from decoder.feed(chunk)
    yield from decoder.flush()
