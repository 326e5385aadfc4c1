"""Ctrl-C during a `ChatClient` stream: the response is closed and the partial answer kept."""

from __future__ import annotations

import signal
import socket
import threading
import time
from collections.abc import Iterator

import httpx
import pytest

from nbchat.wire.completion import completion_text

from support.chat_client import ANSWER, BODY, content_chunk, mock_client, sse
from support.fake_openai import Fault

# -- Ctrl-C ----------------------------------------------------------------------------------------


def test_ctrl_c_while_blocked_reading_the_loopback_stream(client, fake):
    # A real SIGINT to the main thread, as Ctrl-C in a kernel would be: it interrupts the
    # blocking socket read, unlike _thread.interrupt_main which waits for the read to return.
    fake.script(Fault(delay=0.3, text=" ".join(f"w{i}" for i in range(8))))
    main = threading.main_thread().ident
    timer = threading.Timer(0.05, signal.pthread_kill, (main, signal.SIGINT))
    stream = client.stream(BODY)
    received: list[str] = []
    try:
        for text in stream:
            received.append(text)
            if len(received) == 2:
                interrupted_at = time.monotonic()
                timer.start()  # lands while the client waits 0.3 s for the third piece
    except KeyboardInterrupt as exc:  # caught here so a bare one fails the test, not the run
        error = exc
    else:
        pytest.fail("no KeyboardInterrupt")
    finally:
        timer.cancel()
        timer.join()
    assert time.monotonic() - interrupted_at < 0.25  # raised at once, not at the next chunk
    assert type(error) is KeyboardInterrupt  # not converted: the session is the one place
    assert received == ["w0 ", "w1 "]
    assert completion_text(stream.partial()) == "w0 w1 "
    assert stream.first_token_at is not None
    assert stream.completion is None
    assert stream._response.is_closed
    # The server sees the close: its socket for this request reads EOF right away.
    with fake._cond:
        connections = list(fake._connections)
    deadline = time.monotonic() + 1.0
    while connections and time.monotonic() < deadline:
        connections = [c for c in connections if not _peer_closed(c)]
        time.sleep(0.01)
    assert connections == []
    assert len(fake.chat_requests) == 1
    assert completion_text(client.chat(BODY)) == ANSWER  # the pool survived the interrupt


def _peer_closed(conn: socket.socket) -> bool:
    try:
        return conn.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT) == b""
    except BlockingIOError:
        return False
    except OSError:
        return True


class Interrupting(httpx.SyncByteStream):
    """A body that delivers some bytes and then sees Ctrl-C, recording whether it was closed."""

    def __init__(self, parts: list[bytes]) -> None:
        self.parts = parts
        self.closed = False

    def __iter__(self) -> Iterator[bytes]:
        yield from self.parts
        raise KeyboardInterrupt

    def close(self) -> None:
        self.closed = True


def test_ctrl_c_mock_transport_closes_the_response():
    body_stream = Interrupting([sse(content_chunk("one ")), sse(content_chunk("two "))])

    def handler(request: httpx.Request) -> httpx.Response:
        headers = {"content-type": "text/event-stream"}
        return httpx.Response(200, headers=headers, stream=body_stream)

    with mock_client(handler) as client:
        stream = client.stream(BODY)
        with pytest.raises(KeyboardInterrupt) as info:
            list(stream)
    assert type(info.value) is KeyboardInterrupt
    assert completion_text(stream.partial()) == "one two "
    assert stream.first_token_at is not None
    assert stream._response.is_closed
    assert body_stream.closed


def test_ctrl_c_before_anything_arrived_says_so():
    body_stream = Interrupting([b": keep-alive\n\n"])

    def handler(request: httpx.Request) -> httpx.Response:
        headers = {"content-type": "text/event-stream"}
        return httpx.Response(200, headers=headers, stream=body_stream)

    with mock_client(handler) as client:
        stream = client.stream(BODY)
        with pytest.raises(KeyboardInterrupt) as info:
            list(stream)
    assert type(info.value) is KeyboardInterrupt
    assert stream.first_token_at is None
    assert completion_text(stream.partial()) == ""
    assert body_stream.closed
