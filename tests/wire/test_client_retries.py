"""`ChatClient` retries (`nbchat.wire.client`, `nbchat.wire.retry`): 429 and 5xx retried with the
server's delay, exhausted retries named, connection errors and timeouts retried, a stream that
started never re-sent."""

from __future__ import annotations

import time

import pytest

from nbchat.errors import (
    PASSING_ERRORS,
    APIConnectionError,
    APITimeoutError,
    AuthenticationError,
    BadRequestError,
    NotFoundError,
    RateLimitError,
    ServerError,
    TruncatedStreamError,
    TryAgainError,
)
from nbchat.wire.completion import completion_text

from support.chat_client import ANSWER, BODY, LONG, LONG_PIECES, body, closed_port
from support.fake_openai import Fault

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


@pytest.mark.parametrize("status", [408, 409])
def test_408_and_409_exhausted_are_a_try_again_error(make_client, fake, sleeps, status):
    """Passing failures (a batch's poller tries again at its next tick), not a refusal."""
    client = make_client(max_retries=1)
    fake.script(Fault(status=status), Fault(status=status))
    with pytest.raises(TryAgainError, match="after 2 attempts") as info:
        client.chat(BODY)
    assert isinstance(info.value, PASSING_ERRORS) and info.value.status_code == status
    assert len(fake.chat_requests) == 2


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
