"""`ChatClient` end to end against the loopback `FakeOpenAI` (`nbchat.wire.client`): whole and
streamed answers, usage, stream options, models, and a stream's life."""

from __future__ import annotations

import httpx
import pytest

from nbchat.errors import BadRequestError, NotFoundError
from nbchat.wire.client import ChatStream
from nbchat.wire.completion import completion_text, finish_reason
from nbchat.wire.config import ClientConfig

from support.chat_client import ANSWER, BODY, KEY, LONG, LONG_PIECES, body, mock_client
from support.fake_openai import DEFAULT_MODELS, Fault, split_pieces

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


def test_unknown_model(client, fake):
    with pytest.raises(NotFoundError) as info:
        client.chat(body(model="gpt-nope"))
    message = str(info.value)
    assert "'gpt-nope'" in message
    assert "%chat models" in message
    assert info.value.status_code == 404


def test_dead_code_is_gone():
    assert "headers" not in ClientConfig.__dataclass_fields__
    assert not hasattr(ChatStream, "chunks")
    defaults = ClientConfig(base_url="http://h/v1")
    assert (defaults.timeout, defaults.connect_timeout, defaults.max_retries) == (600.0, 10.0, 2)


def test_models_with_odd_ids_are_skipped():
    payload = {"data": [{"id": "a"}, {"id": ["x"]}, "b", {"id": None}, {"id": "c"}]}
    with mock_client(lambda request: httpx.Response(200, json=payload)) as client:
        assert client.models() == ["a", "c"]
