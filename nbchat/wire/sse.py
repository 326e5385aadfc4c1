"""A byte-level Server-Sent Events decoder.

It follows the SSE grammar rather than approximating it: lines end only at ``\\r\\n``, ``\\r`` or
``\\n`` (so a raw U+2028 inside a JSON string does not split a line, unlike ``str.splitlines``),
events may be split across reads at any byte, ``data:`` may or may not be followed by a space,
comment lines (``: keep-alive``) are skipped, and multi-line ``data`` fields are joined
with ``\\n``. A UTF-8 byte order mark at the start of the body is dropped, as the SSE
specification asks, even when its three bytes arrive in separate reads.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import NamedTuple

__all__ = ["SSEDecoder", "ServerSentEvent", "iter_sse"]

BOM = b"\xef\xbb\xbf"


class ServerSentEvent(NamedTuple):
    """One dispatched event (a NamedTuple: cheap to create once per token)."""

    data: str
    event: str = "message"
    id: str | None = None
    retry: int | None = None


class SSEDecoder:
    """Feed bytes in, get complete events out.

    ``bytes.splitlines`` splits on exactly the three SSE line endings and keeps the hot path in C;
    ``data:`` lines, nearly all of a chat stream, are handled inline.
    """

    __slots__ = ("_buffer", "_data", "_event", "_head", "_id", "_retry")

    def __init__(self) -> None:
        self._buffer = b""
        # The body's first bytes while they could still be a byte order mark; None after.
        self._head: bytes | None = b""
        self._data: list[str] = []
        self._event = ""
        self._id: str | None = None
        self._retry: int | None = None

    def feed(self, chunk: bytes) -> list[ServerSentEvent]:
        """Consume a chunk of the body and return the events it completed."""
        if self._head is not None:
            chunk = self._skip_bom(chunk)
        events: list[ServerSentEvent] = []
        data = self._data
        for line in self._lines(chunk):
            if line.startswith(b"data:"):
                value = line[6:] if line[5:6] == b" " else line[5:]
                data.append(value.decode("utf-8", "replace"))
            elif not line:
                if data:
                    events.append(self._dispatch())
                else:
                    self._event = ""
            else:
                self._field(line)
        return events

    def feed_data(self, chunk: bytes) -> list[str]:
        """Like `feed`, but only each event's data: the per-token path of a chat stream, which
        has no use for ``event``, ``id`` or ``retry`` and is spared an object per event.

        When the buffer holds no ``\\r`` (nearly every server), the complete lines are decoded
        in one call and split on ``\\n``, which never occurs inside a UTF-8 sequence; else the
        byte lines of `feed` are used. The loop repeats `feed`'s on purpose: sharing it costs a
        call per line (measured).
        """
        if self._head is not None:
            chunk = self._skip_bom(chunk)
        buffer = self._buffer + chunk if self._buffer else chunk
        if b"\r" in buffer:
            self._buffer = b""
            lines: list[str] = [line.decode("utf-8", "replace") for line in self._lines(buffer)]
        else:
            end = buffer.rfind(b"\n")
            self._buffer = buffer[end + 1 :]
            lines = buffer[:end].decode("utf-8", "replace").split("\n") if end >= 0 else []
        found: list[str] = []
        data = self._data
        for line in lines:
            if line.startswith("data:"):
                data.append(line[6:] if line[5:6] == " " else line[5:])
            elif not line:
                if len(data) == 1:
                    found.append(data.pop())
                elif data:
                    found.append("\n".join(data))
                    data.clear()
                self._event = ""
            else:
                self._field(line.encode("utf-8"))
        return found

    def _skip_bom(self, chunk: bytes) -> bytes:
        """The start of the body without its byte order mark; b"" while it may be one."""
        head = self._head + chunk if self._head else chunk
        if len(head) < len(BOM) and BOM.startswith(head):
            self._head = head  # all of it could be the start of a BOM: wait for more
            return b""
        self._head = None
        return head[len(BOM) :] if head.startswith(BOM) else head

    def _lines(self, chunk: bytes) -> list[bytes]:
        """The complete lines the buffer and this chunk hold; keeps the unfinished rest."""
        buffer = self._buffer + chunk if self._buffer else chunk
        lines = buffer.splitlines()
        if not lines:
            return lines
        # An unterminated last line waits for more bytes; so does one ended by a lone "\r",
        # because the "\n" of a "\r\n" may arrive in the next read.
        end = buffer[-1]
        if end == 0x0A:
            self._buffer = b""
        elif end == 0x0D:
            self._buffer = lines.pop() + b"\r"
        else:
            self._buffer = lines.pop()
        return lines

    def flush(self) -> list[ServerSentEvent]:
        """End of body: finish a last line and dispatch an event left without its blank line."""
        if self._head:  # a body that ended inside what could have been a BOM
            self._buffer, self._head = self._head, None
        events = self.feed(b"\n") if self._buffer else []
        if self._data:
            events.append(self._dispatch())
        return events

    def _field(self, raw: bytes) -> None:
        """Any line but data and blank: a comment, ``event``, ``id``, ``retry`` or unknown."""
        if raw[0] == 0x3A:  # ":" starts a comment, e.g. ": keep-alive"
            return
        line = raw.decode("utf-8", errors="replace")
        name, colon, value = line.partition(":")
        if colon and value.startswith(" "):
            value = value[1:]
        if name == "data":  # "data" with no colon at all
            self._data.append(value)
        elif name == "event":
            self._event = value
        elif name == "id":
            if "\0" not in value:
                self._id = value
        elif name == "retry" and value.isascii() and value.isdigit():
            self._retry = int(value)

    def _dispatch(self) -> ServerSentEvent:
        data = self._data[0] if len(self._data) == 1 else "\n".join(self._data)
        event = ServerSentEvent(data, self._event or "message", self._id, self._retry)
        self._data.clear()
        self._event = ""
        return event


def iter_sse(chunks: Iterable[bytes]) -> Iterator[ServerSentEvent]:
    """Decode an iterable of body chunks into events, flushing at the end."""
    decoder = SSEDecoder()
    for chunk in chunks:
        yield from decoder.feed(chunk)
    yield from decoder.flush()
