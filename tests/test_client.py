"""`ChatClient` end to end against the loopback `FakeOpenAI`, plus a few MockTransport cases."""

from __future__ import annotations

import json
import signal
import socket
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
from support.env import TEST_KEY
from support.fake_openai import DEFAULT_MODELS, FakeOpenAI, Fault, answer_for, split_pieces

from nbchat.errors import (
    APIConnectionError,
    APIError,
    APITimeoutError,
    AuthenticationError,
    BadRequestError,
    ConfigError,
    MalformedStreamError,
    NotFoundError,
    ProtocolError,
    RateLimitError,
    ServerError,
    StreamErrorEvent,
    TruncatedStreamError,
)
from nbchat.wire.client import ChatClient, ChatStream, ClientConfig
from nbchat.wire.completion import completion_text, finish_reason

KEY = TEST_KEY


def body(text: str = "hello there", model: str = "peer-small", **extra: Any) -> dict[str, Any]:
    return {"model": model, "messages": [{"role": "user", "content": text}], **extra}


BODY = body()
ANSWER = answer_for(BODY)
LONG = body("tell me a story about a cat and a dog")
LONG_PIECES = split_pieces(answer_for(LONG))


@pytest.fixture
def fake(server: FakeOpenAI) -> FakeOpenAI:
    """The shared loopback server (conftest), reset for this test."""
    return server


@pytest.fixture
def sleeps() -> list[float]:
    return []


@pytest.fixture
def make_client(
    fake: FakeOpenAI, sleeps: list[float], monkeypatch: pytest.MonkeyPatch
) -> Iterator[Callable[..., ChatClient]]:
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    clients: list[ChatClient] = []

    def make(**config: Any) -> ChatClient:
        config = {"base_url": fake.base_url, "timeout": 5.0, **config}
        client = ChatClient(ClientConfig(**config), sleep=sleeps.append)
        clients.append(client)
        return client

    yield make
    for client in clients:
        client.close()


@pytest.fixture
def client(make_client: Callable[..., ChatClient]) -> ChatClient:
    return make_client()


def mock_client(handler: Callable[[httpx.Request], httpx.Response]) -> ChatClient:
    config = ClientConfig(base_url="http://mock.test/v1", max_retries=0)
    return ChatClient(config, transport=httpx.MockTransport(handler), sleep=lambda _: None)


def sse_client(raw: bytes) -> ChatClient:
    """A client whose every request streams ``raw`` back as an SSE body."""

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, content=raw, headers={"content-type": "text/event-stream"})

    return mock_client(handler)


def sse(*objects: Any) -> bytes:
    return b"".join(f"data: {json.dumps(o)}\n\n".encode() for o in objects)


def content_chunk(text: str) -> dict[str, Any]:
    return {"id": "c", "choices": [{"index": 0, "delta": {"content": text}, "finish_reason": None}]}


# -- the happy paths -----------------------------------------------------------------------------


def test_chat_non_streamed(client, fake):
    completion = client.chat(BODY)
    assert completion_text(completion) == ANSWER
    assert finish_reason(completion) == "stop"
    assert completion["object"] == "chat.completion"
    assert completion["usage"]["completion_tokens"] == len(split_pieces(ANSWER))
    [request] = fake.chat_requests
    assert request.body == {**BODY, "stream": False}
    assert request.headers["authorization"] == f"Bearer {KEY}"
    assert request.headers["user-agent"].startswith("nbchat/")


def test_chat_drops_stream_options(client, fake):
    client.chat({**BODY, "stream": True, "stream_options": {"include_usage": True}})
    assert fake.chat_requests[0].body == {**BODY, "stream": False}


def test_stream_matches_chat(client, fake):
    chat = client.chat(BODY)
    stream = client.stream(BODY)
    deltas = list(stream)
    assert deltas == split_pieces(ANSWER)
    assert "".join(deltas) == ANSWER
    streamed = stream.completion
    assert streamed is not None
    assert streamed.keys() == chat.keys()
    assert streamed["choices"][0].keys() == chat["choices"][0].keys()
    assert streamed["choices"][0]["message"] == chat["choices"][0]["message"]
    for key in ("object", "model", "system_fingerprint", "usage"):
        assert streamed[key] == chat[key], key
    assert finish_reason(streamed) == "stop"
    # id and created belong to the streamed request, not to the earlier one
    number = int(stream.request_id.removeprefix("req_"))
    assert streamed["id"] == f"chatcmpl-{number}" != chat["id"]
    assert streamed["created"] == 1700000000 + number
    assert stream.first_token_at is not None
    assert stream.partial() == streamed


def test_stream_asks_for_usage(client, fake):
    stream = client.stream(BODY)
    list(stream)
    [request] = fake.chat_requests
    assert request.body["stream"] is True
    assert request.body["stream_options"] == {"include_usage": True}
    assert stream.completion["usage"] == {
        "prompt_tokens": 2,
        "completion_tokens": len(split_pieces(ANSWER)),
        "total_tokens": 2 + len(split_pieces(ANSWER)),
    }


def test_stream_without_usage_chunk(client, fake):
    fake.script(Fault(no_usage=True))
    stream = client.stream(BODY)
    assert "".join(stream) == ANSWER
    assert "usage" not in stream.completion
    assert finish_reason(stream.completion) == "stop"


def test_stream_options_rejected_once_then_remembered(client, fake, sleeps):
    fake.default_fault = Fault(reject_stream_options=True)
    first = client.stream(BODY)
    assert "".join(first) == ANSWER
    with_option, without = fake.chat_requests
    assert "stream_options" in with_option.body
    assert "stream_options" not in without.body
    assert "usage" not in first.completion
    assert client.usage_option_rejected
    second = client.stream(BODY)
    assert "".join(second) == ANSWER
    assert len(fake.chat_requests) == 3
    assert "stream_options" not in fake.chat_requests[2].body
    assert sleeps == []


def test_other_400_on_stream_is_not_retried_without_options(client, fake):
    fake.script(Fault(status=400))
    with pytest.raises(BadRequestError):
        list(client.stream(BODY))
    assert len(fake.chat_requests) == 1
    assert not client.usage_option_rejected


def test_models(client, fake):
    assert client.models() == sorted(DEFAULT_MODELS)
    [request] = fake.requests
    assert (request.method, request.path) == ("GET", "/v1/models")


def test_length_finish_reason_is_visible(client):
    stream = client.stream({**LONG, "max_tokens": 2})
    assert list(stream) == LONG_PIECES[:2]
    assert finish_reason(stream.completion) == "length"


def test_huge_answer(client, fake):
    fake.script(Fault(chunks=20000))
    stream = client.stream(BODY)
    deltas = list(stream)
    assert len(deltas) == 20000
    assert deltas[0] == "w0 " and deltas[-1] == "w19999 "
    assert completion_text(stream.completion) == "".join(f"w{i} " for i in range(20000))
    assert stream.completion["usage"]["completion_tokens"] == 20000


def test_stream_can_be_iterated_once(client):
    stream = client.stream(BODY)
    list(stream)
    with pytest.raises(RuntimeError):
        list(stream)


def test_abandoned_stream_closes_its_response(client):
    stream = client.stream(LONG)
    for _ in stream:
        break
    assert stream._response is not None
    assert stream._response.is_closed


# -- retries before the first byte -----------------------------------------------------------------


def test_429_with_retry_after_ms_then_success(client, fake, sleeps):
    fake.script(Fault(status=429, headers={"retry-after-ms": "120"}))
    assert completion_text(client.chat(BODY)) == ANSWER
    assert len(fake.chat_requests) == 2
    assert sleeps == [0.12]


def test_429_retry_on_a_stream(client, fake, sleeps):
    fake.script(Fault(status=429, headers={"retry-after": "2"}))
    assert "".join(client.stream(BODY)) == ANSWER
    assert len(fake.chat_requests) == 2
    assert sleeps == [2.0]


def test_503_twice_then_success(client, fake, sleeps):
    fake.script(Fault(status=503), Fault(status=503))
    assert "".join(client.stream(BODY)) == ANSWER
    assert len(fake.chat_requests) == 3
    assert len(sleeps) == 2
    assert 0.375 <= sleeps[0] <= 0.5
    assert 0.75 <= sleeps[1] <= 1.0


def test_500_three_times_gives_up(client, fake, sleeps):
    fake.script(*[Fault(status=500)] * 3, Fault())
    with pytest.raises(ServerError) as info:
        client.chat(BODY)
    assert len(fake.chat_requests) == 3
    assert len(sleeps) == 2
    assert "after 3 attempts" in str(info.value)
    assert info.value.status_code == 500
    assert info.value.retries == 2
    assert info.value.request_id.startswith("req_")
    assert info.value.request_id in str(info.value)


def test_429_exhausted_is_a_rate_limit_error(make_client, fake, sleeps):
    client = make_client(max_retries=1)
    fake.script(Fault(status=429), Fault(status=429))
    with pytest.raises(RateLimitError, match="after 2 attempts"):
        client.chat(BODY)
    assert len(fake.chat_requests) == 2
    assert len(sleeps) == 1


def test_x_should_retry_false_is_honoured(client, fake, sleeps):
    fake.script(Fault(status=503, headers={"x-should-retry": "false"}))
    with pytest.raises(ServerError):
        client.chat(BODY)
    assert len(fake.chat_requests) == 1
    assert sleeps == []


@pytest.mark.parametrize(
    ("fault", "model", "error"),
    [
        (Fault(status=400), "peer-small", BadRequestError),
        (Fault(status=401), "peer-small", AuthenticationError),
        (Fault(), "no-such-model", NotFoundError),
    ],
    ids=["400", "401", "404"],
)
@pytest.mark.parametrize("streamed", [False, True], ids=["chat", "stream"])
def test_client_errors_are_not_retried(client, fake, sleeps, fault, model, error, streamed):
    fake.script(fault)
    request = body(model=model)
    with pytest.raises(error):
        if streamed:
            list(client.stream(request))
        else:
            client.chat(request)
    assert len(fake.requests) == 1
    assert sleeps == []


def test_dropped_connection_before_the_answer_is_retried(client, fake, sleeps):
    fake.script(Fault(drop_after=0))  # non-streamed: close without any response
    assert completion_text(client.chat(BODY)) == ANSWER
    assert len(fake.chat_requests) == 2
    assert len(sleeps) == 1


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_connection_refused(make_client, sleeps):
    client = make_client(base_url=f"http://127.0.0.1:{closed_port()}/v1", max_retries=2)
    with pytest.raises(APIConnectionError) as info:
        client.chat(BODY)
    assert type(info.value) is APIConnectionError
    assert len(sleeps) == 2  # three attempts
    message = str(info.value)
    assert "Cannot connect to http://127.0.0.1:" in message
    assert "after 3 attempts" in message
    assert "\n" not in message
    for noise in ("Traceback", "Errno", "httpx", "httpcore"):
        assert noise not in message


def test_timeout(make_client, fake, sleeps):
    client = make_client(timeout=0.2, max_retries=1)
    fake.script(Fault(hang=0.6), Fault(hang=0.6))
    started = time.monotonic()
    with pytest.raises(APITimeoutError, match="after 2 attempts") as info:
        client.chat(BODY)
    assert time.monotonic() - started < 1.5  # two 0.2 s timeouts, no real backoff sleep
    assert "read timeout" in str(info.value)
    assert len(fake.chat_requests) == 2
    assert len(sleeps) == 1


# -- a stream that started is never re-sent --------------------------------------------------------


@pytest.mark.parametrize("after", [0, 3])
def test_dropped_stream_is_not_resent(client, fake, sleeps, after):
    fake.script(Fault(drop_after=after))
    stream = client.stream(LONG)
    received: list[str] = []
    with pytest.raises(TruncatedStreamError) as info:
        received.extend(stream)
    assert received == LONG_PIECES[:after]
    assert info.value.partial_text == "".join(LONG_PIECES[:after])
    assert stream.partial() == info.value.partial
    assert stream.completion is None
    assert len(fake.chat_requests) == 1
    assert sleeps == []
    assert completion_text(client.chat(BODY)) == ANSWER  # the client is still usable


def test_error_event_mid_stream(client, fake):
    fake.script(Fault(error_after=2))
    with pytest.raises(StreamErrorEvent) as info:
        list(client.stream(LONG))
    assert info.value.partial_text == "".join(LONG_PIECES[:2])
    assert "The server had an error while processing your request." in str(info.value)
    assert len(fake.chat_requests) == 1


def test_stream_without_done_is_truncated(client, fake):
    fake.script(Fault(no_done=True))
    stream = client.stream(LONG)
    with pytest.raises(TruncatedStreamError, match="DONE") as info:
        list(stream)
    assert info.value.partial_text == answer_for(LONG)
    assert finish_reason(info.value.partial) is None
    assert len(fake.chat_requests) == 1


def test_raw_sse_odd_splits(client, fake):
    base = {"id": "chatcmpl-raw", "object": "chat.completion.chunk", "created": 1, "model": "m"}
    pieces = ["Line\u2028sep ", "para\u2029sep ", "nel\x85 ", '😀 "quoted" ', "end"]

    def event(delta: dict[str, Any], finish: str | None = None, space: str = " ") -> bytes:
        chunk = {**base, "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}
        return f"data:{space}{json.dumps(chunk, ensure_ascii=False)}\r\n\r\n".encode()

    raw = b"".join(
        [
            b": keep-alive\r\n\r\n",
            event({"role": "assistant", "content": ""}, space=""),
            *(event({"content": p}, space=" " * (i % 2)) for i, p in enumerate(pieces)),
            b": keep-alive\n\n",
            event({}, "stop"),
            b"data:[DONE]\r\n\r\n",
        ]
    )
    assert "\u2028".encode() in raw  # raw, not escaped
    fake.script(Fault(raw_sse=raw, write_sizes=[1, 2, 3, 5, 8, 13, 21, 34, 55, 89, 144, 1, 1]))
    stream = client.stream(BODY)
    assert list(stream) == pieces
    assert completion_text(stream.completion) == "".join(pieces)
    assert stream.completion["id"] == "chatcmpl-raw"


def test_malformed_event(client, fake):
    raw = sse(content_chunk("ok ")) + b"data: {not json\n\n" + sse(content_chunk("never"))
    fake.script(Fault(raw_sse=raw + b"data: [DONE]\n\n"))
    stream = client.stream(BODY)
    received: list[str] = []
    with pytest.raises(MalformedStreamError) as info:
        received.extend(stream)
    assert received == ["ok "]
    assert info.value.partial_text == "ok "
    assert stream._response.is_closed


# -- the key ---------------------------------------------------------------------------------------


def test_wrong_key_message(client, fake, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-wrong-key-123")
    with pytest.raises(AuthenticationError) as info:
        client.chat(BODY)
    assert "$OPENAI_API_KEY" in str(info.value)
    for text in (str(info.value), repr(info.value)):
        assert "sk-wrong" not in text
    assert len(fake.requests) == 1


def test_server_echoing_the_key_is_not_repeated(client, fake):
    echo = {"error": {"message": f"Incorrect API key provided: {KEY[:5]}***{KEY[-3:]} / {KEY}"}}
    fake.script(Fault(status=401, body=echo))
    with pytest.raises(AuthenticationError) as info:
        list(client.stream(BODY))
    for text in (str(info.value), repr(info.value)):
        assert KEY not in text
        assert KEY[:5] + "***" not in text
    assert "$OPENAI_API_KEY" in str(info.value)


def test_configured_key_variable(make_client, fake, monkeypatch):
    monkeypatch.setenv("MY_LLM_KEY", KEY)
    client = make_client(api_key_env="MY_LLM_KEY")
    assert completion_text(client.chat(BODY)) == ANSWER
    monkeypatch.setenv("MY_LLM_KEY", "sk-nope-nope")
    with pytest.raises(AuthenticationError) as info:
        client.chat(BODY)
    assert "$MY_LLM_KEY" in str(info.value)
    assert "sk-nope-nope" not in str(info.value) + repr(info.value)


def test_missing_key_sends_no_authorization(client, fake, monkeypatch):
    monkeypatch.delenv("OPENAI_API_KEY")
    with pytest.raises(AuthenticationError, match=r"\$OPENAI_API_KEY"):
        client.chat(BODY)
    assert "authorization" not in fake.requests[0].headers


@pytest.mark.parametrize("value", [None, "", " \n"], ids=["unset", "empty", "blank"])
@pytest.mark.parametrize("streamed", [False, True], ids=["chat", "stream"])
def test_a_missing_key_is_reported_as_not_set(client, fake, monkeypatch, value, streamed):
    if value is None:
        monkeypatch.delenv("OPENAI_API_KEY")
    else:
        monkeypatch.setenv("OPENAI_API_KEY", value)
    with pytest.raises(AuthenticationError) as info:
        list(client.stream(BODY)) if streamed else client.chat(BODY)
    assert str(info.value).startswith(
        "$OPENAI_API_KEY is not set, so no key was sent to 127.0.0.1 (401). Set it,"
    )
    assert "rejected" not in str(info.value)
    assert "authorization" not in fake.requests[0].headers


def test_a_profile_that_sends_no_key_names_api_key_env(make_client, fake):
    client = make_client(api_key_env="")
    with pytest.raises(AuthenticationError) as info:
        client.chat(BODY)
    message = str(info.value)
    assert message.startswith("127.0.0.1 wants an API key (401), but none is configured")
    assert "api_key_env" in message
    assert "$" not in message
    assert "authorization" not in fake.requests[0].headers


def test_a_wrong_key_keeps_the_rejected_message(client, fake, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-wrong-key-123")
    with pytest.raises(AuthenticationError) as info:
        client.chat(BODY)
    assert str(info.value).startswith(
        "The server rejected the API key (401). Check that $OPENAI_API_KEY holds a valid key "
        "for 127.0.0.1."
    )


def test_key_is_read_at_request_time_and_never_stored(client, fake, monkeypatch):
    config = client.config
    assert KEY not in repr(config)
    assert all(KEY not in str(getattr(config, f)) for f in config.__dataclass_fields__)
    assert "authorization" not in client._http.headers
    assert all(KEY not in repr(v) for v in vars(client).values())
    client.chat(BODY)
    monkeypatch.setenv("OPENAI_API_KEY", "sk-rotated-key")
    with pytest.raises(AuthenticationError):
        client.chat(BODY)
    assert [r.headers["authorization"] for r in fake.requests] == [
        f"Bearer {KEY}",
        "Bearer sk-rotated-key",
    ]


def test_unknown_model(client, fake):
    with pytest.raises(NotFoundError) as info:
        client.chat(body(model="gpt-nope"))
    message = str(info.value)
    assert "'gpt-nope'" in message
    assert "%chat models" in message
    assert info.value.status_code == 404


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


# -- servers that bend the protocol (MockTransport) ------------------------------------------------


def test_server_ignoring_stream_true_still_yields_the_text():
    completion = {
        "id": "chatcmpl-1",
        "object": "chat.completion",
        "created": 1,
        "model": "m",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": "whole"}}],
    }
    seen: list[dict[str, Any]] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(json.loads(request.content))
        return httpx.Response(200, json=completion)

    with mock_client(handler) as client:
        stream = client.stream(BODY)
        assert list(stream) == ["whole"]
    assert stream.completion == completion
    assert seen[0]["stream"] is True


def test_stream_answered_with_non_json():
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, text="<html>hi</html>", headers={"content-type": "text/html"})

    with mock_client(handler) as client, pytest.raises(ProtocolError):
        list(client.stream(BODY))


def test_chat_answered_with_something_else():
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json={"object": "list"})

    with mock_client(handler) as client, pytest.raises(ProtocolError):
        client.chat(BODY)


def test_events_glued_without_blank_lines():
    raw = (
        b"data: " + json.dumps(content_chunk("a ")).encode() + b"\n"
        b"data: " + json.dumps(content_chunk("b")).encode() + b"\n\n"
        b'data: {"choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]}\n\n'
        b"data: [DONE]\n\n"
    )

    with sse_client(raw) as client:
        stream = client.stream(BODY)
        assert list(stream) == ["a ", "b"]
    assert finish_reason(stream.completion) == "stop"


def test_stream_ending_after_finish_reason_without_done_is_accepted():
    raw = sse(content_chunk("x"), {"choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]})

    with sse_client(raw) as client:
        stream = client.stream(BODY)
        assert list(stream) == ["x"]
    assert completion_text(stream.completion) == "x"


def test_last_event_without_blank_line_is_flushed():
    raw = sse(content_chunk("x")) + b'data: {"choices": [{"index": 0, "delta": {"content": "y"}}]}'

    with sse_client(raw) as client:
        stream = client.stream(BODY)
        with pytest.raises(TruncatedStreamError) as info:
            list(stream)
    assert info.value.partial_text == "xy"


@pytest.mark.parametrize(
    "data",
    [b"[1, 2]", b'"text"', b"42", b'{"choices": "oops"}', b'{"choices": [{"delta": "x"}]}'],
)
def test_events_that_are_not_chunks(data):
    raw = sse(content_chunk("ok")) + b"data: " + data + b"\n\ndata: [DONE]\n\n"

    with sse_client(raw) as client:
        stream = client.stream(BODY)
        with pytest.raises(MalformedStreamError) as info:
            list(stream)
    assert info.value.partial_text == "ok"


def test_a_stream_with_no_answer_is_not_a_complete_answer(make_client, fake):
    fake.script(Fault(raw_sse=b"data: [DONE]\n\n"))
    stream = make_client().stream(BODY)
    with pytest.raises(TruncatedStreamError, match="without an answer"):
        list(stream)
    assert stream.completion is None


def test_error_object_in_a_200_body_is_an_api_error_clipped_to_one_line(client, fake):
    message = "quota exceeded\n" + "for this project " * 40
    fake.script(Fault(status=200, body={"error": {"message": message, "type": "quota"}}))
    with pytest.raises(APIError) as info:
        client.chat(BODY)
    assert type(info.value) is APIError
    text = str(info.value)
    assert text.startswith("The server reported an error: quota exceeded for this project")
    assert "\n" not in text and len(text) < 260
    assert info.value.request_id and info.value.request_id in text


def test_error_glued_among_events_is_reported():
    error = {"error": {"message": "overloaded"}}
    raw = (
        b"data: " + json.dumps(content_chunk("a ")).encode() + b"\n"
        b"data: " + json.dumps(error).encode() + b"\n\n"
    )
    with sse_client(raw) as client, pytest.raises(StreamErrorEvent, match="overloaded") as info:
        list(client.stream(BODY))
    assert info.value.partial_text == "a "


@pytest.mark.parametrize("where", ["event", "body"])
def test_json_nested_too_deeply_is_a_protocol_error(where):
    deep = b"[" * 100_000 + b"]" * 100_000
    raw = sse(content_chunk("a ")) + b"data: " + deep + b"\n\n"

    def handler(request: httpx.Request) -> httpx.Response:
        if where == "body":
            return httpx.Response(200, content=deep, headers={"content-type": "application/json"})
        return httpx.Response(200, content=raw, headers={"content-type": "text/event-stream"})

    with mock_client(handler) as client, pytest.raises(ProtocolError) as info:
        list(client.stream(BODY))
    assert "\n" not in str(info.value)
    assert len(str(info.value)) < 300


def test_a_bom_before_the_first_event_keeps_it(client, fake):
    # The byte order mark arrives split over three reads: the first answer chunk must survive.
    raw = b"\xef\xbb\xbf" + sse(content_chunk("first "), content_chunk("second"))
    fake.script(Fault(raw_sse=raw + b"data: [DONE]\n\n", write_sizes=[1, 1, 1, 4]))
    stream = client.stream(BODY)
    assert list(stream) == ["first ", "second"]
    assert completion_text(stream.completion) == "first second"


# -- a base URL with a query string (Azure-style api-version) ------------------------------------

QUERY = "api-version=2024-06-01&sig=s3cr3t-signature"


def test_the_query_stays_on_every_request(make_client, fake):
    client = make_client(base_url=f"{fake.base_url}?{QUERY}")
    assert completion_text(client.chat(BODY)) == ANSWER
    assert "".join(client.stream(BODY)) == ANSWER
    assert client.models() == sorted(DEFAULT_MODELS)
    assert [(r.method, r.path) for r in fake.requests] == [
        ("POST", f"/v1/chat/completions?{QUERY}"),
        ("POST", f"/v1/chat/completions?{QUERY}"),
        ("GET", f"/v1/models?{QUERY}"),
    ]


def test_a_trailing_slash_and_fragment_do_not_disturb_the_query(make_client, fake):
    client = make_client(base_url=f"{fake.base_url}/?{QUERY}#part")
    client.chat(BODY)
    assert fake.requests[0].path == f"/v1/chat/completions?{QUERY}"


def test_errors_never_show_the_query_values(make_client, fake):
    client = make_client(base_url=f"{fake.base_url}?{QUERY}", max_retries=0)
    fake.script(Fault(status=404, body={"error": {"message": f"no route for ?{QUERY}"}}))
    with pytest.raises(NotFoundError) as info:
        client.chat(BODY)
    assert "no route for ?api-version=***&sig=***" in str(info.value)
    assert "s3cr3t-signature" not in str(info.value) + json.dumps(info.value.body)
    refused = make_client(base_url=f"http://127.0.0.1:{closed_port()}/v1?{QUERY}", max_retries=0)
    with pytest.raises(APIConnectionError) as info:
        refused.chat(BODY)
    assert "sig=***" in str(info.value)
    assert "s3cr3t-signature" not in str(info.value)


def test_query_in_a_non_json_answer_is_masked():
    def handler(request: httpx.Request) -> httpx.Response:
        assert request.url.query == QUERY.encode()
        return httpx.Response(200, text="<html>", headers={"content-type": "text/html"})

    config = ClientConfig(base_url=f"http://mock.test/v1?{QUERY}", max_retries=0)
    client = ChatClient(config, transport=httpx.MockTransport(handler))
    with client, pytest.raises(ProtocolError) as info:
        client.chat(BODY)
    assert str(info.value).startswith(
        "http://mock.test/v1/chat/completions?api-version=***&sig=*** answered with a body"
    )


def test_credentials_in_the_base_url_are_refused():
    with pytest.raises(ConfigError, match="environment variable"):
        ClientConfig(base_url="https://user:sk-secret@example.com/v1")
    with pytest.raises(ConfigError, match="environment variable"):
        ClientConfig(base_url="https://sk-secret@example.com/v1?api-version=1")


@pytest.mark.parametrize("url", ["sk-proj-abcdefgh123456", "ftp://h/v1", "https:///v1", "http://"])
def test_unusable_base_urls_are_refused_without_quoting_them(url):
    with pytest.raises(ConfigError) as info:
        ClientConfig(base_url=url)
    assert "sk-proj" not in str(info.value)


def test_a_query_is_accepted():
    config = ClientConfig(base_url="https://h.example/openai/v1?api-version=2024-06-01")
    assert config.url("/chat/completions") == (
        "https://h.example/openai/v1/chat/completions?api-version=2024-06-01"
    )


def test_dead_code_is_gone():
    assert "headers" not in ClientConfig.__dataclass_fields__
    assert not hasattr(ChatStream, "chunks")
    defaults = ClientConfig(base_url="http://h/v1")
    assert (defaults.timeout, defaults.connect_timeout, defaults.max_retries) == (600.0, 10.0, 2)


# -- wrongly typed whole completions ----------------------------------------------------------


def whole(**changes: Any) -> dict[str, Any]:
    """A valid non-streamed completion with ``changes`` applied (dotted paths into choice 0)."""
    completion: dict[str, Any] = {
        "id": "chatcmpl-1",
        "object": "chat.completion",
        "created": 1,
        "model": "peer-small",
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": "hi"},
                "finish_reason": "stop",
            }
        ],
        "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2},
    }
    for path, value in changes.items():
        *parents, name = path.split("__")
        target = completion
        for parent in parents:
            target = target["choices"][0] if parent == "choice" else target[parent]
        target[name] = value
    return completion


@pytest.mark.parametrize(
    ("completion", "named"),
    [
        (whole(usage={"prompt_tokens": "12"}), "usage.prompt_tokens is text, not a count"),
        (whole(usage="lots"), "usage is text, not an object"),
        (whole(choice__index=None), "choices[0].index is null, not an index"),
        (whole(choice__message__content=["a"]), "message.content[0] is text, not an object"),
        (whole(choice__finish_reason=["stop"]), "choices[0].finish_reason is a list, not text"),
        (whole(choice__message=None), "choices[0].message is missing"),
        (whole(choices={"0": {}}), "choices is an object, not a list"),
    ],
)
@pytest.mark.parametrize("streamed", [False, True], ids=["chat", "stream-ignored"])
def test_a_wrongly_typed_completion_is_a_protocol_error(client, fake, completion, named, streamed):
    fake.script(Fault(status=200, body=completion))
    with pytest.raises(ProtocolError) as info:
        if streamed:  # the server ignores "stream": true and answers a whole completion
            list(client.stream(BODY))
        else:
            client.chat(BODY)
    assert type(info.value) is ProtocolError
    assert named in str(info.value)
    assert "\n" not in str(info.value)


def test_models_with_odd_ids_are_skipped():
    payload = {"data": [{"id": "a"}, {"id": ["x"]}, "b", {"id": None}, {"id": "c"}]}
    with mock_client(lambda request: httpx.Response(200, json=payload)) as client:
        assert client.models() == ["a", "c"]
