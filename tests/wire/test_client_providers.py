"""Real providers' shapes (recorded, replayed by the fake server:
tests/support/fake_providers.py) folded by the real client (`nbchat.wire.client`), streamed and
whole, into the answer nbchat stores and sends back."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from nbchat.errors import APIError, StreamErrorEvent
from nbchat.store.record import Record
from nbchat.wire.client import ChatClient
from nbchat.wire.completion import completion_reasoning, completion_text
from nbchat.wire.config import ClientConfig
from nbchat.wire.messages import wire

from support.env import TEST_KEY
from support.fake_openai import FakeOpenAI, Fault, answer_for, thinking_for
from support.fake_providers import (
    ANSWERING_MODEL,
    AZURE_ROUTER_MODEL,
    DETAIL_SIGNATURE,
    ENCRYPTED,
    GEMINI_MODEL,
    MISTRAL_MODEL,
    ROUTER_MODEL,
    SIGNATURE,
    TAGGED_MODEL,
)
from support.nbfactory import make_record

PROMPT = "Why is the sea salty?"
BODY_OF = {"messages": [{"role": "user", "content": PROMPT}]}
ANSWER = answer_for(BODY_OF)
THOUGHT = "".join(thinking_for(BODY_OF))


def body(model: str = "peer-small") -> dict[str, Any]:
    return {"model": model, **BODY_OF}


@pytest.fixture
def client(server: FakeOpenAI, monkeypatch: pytest.MonkeyPatch) -> Iterator[ChatClient]:
    monkeypatch.setenv("OPENAI_API_KEY", TEST_KEY)
    with ChatClient(ClientConfig(base_url=server.base_url, max_retries=0)) as made:
        yield made


def asked(client: ChatClient, model: str, streamed: bool) -> tuple[dict[str, Any], str, str]:
    """The completion, and the answer text and thinking a live view was handed."""
    if not streamed:
        completion = client.chat(body(model))
        return completion, completion_text(completion), completion_reasoning(completion)
    stream = client.stream(body(model))
    batches = list(stream.batches())
    assert stream.completion is not None
    text = "".join(batch.text for batch in batches)
    return stream.completion, text, "".join(batch.reasoning for batch in batches)


def message_of(completion: dict[str, Any]) -> dict[str, Any]:
    return completion["choices"][0]["message"]


both = pytest.mark.parametrize("streamed", [True, False], ids=["streamed", "whole"])


# -- 1. content as typed parts (Mistral) ------------------------------------------------------


@both
def test_typed_parts_fold_into_the_answer_and_the_thinking(client, streamed):
    completion, text, thought = asked(client, MISTRAL_MODEL, streamed)
    assert (text, thought) == (ANSWER, THOUGHT)
    message = message_of(completion)
    assert message["content"] == [
        {"type": "thinking", "thinking": [{"type": "text", "text": THOUGHT}]},
        {"type": "text", "text": ANSWER},
    ], "kept as the provider returned it, streamed or not"
    assert completion_text(completion) == ANSWER
    assert wire(message) == {"role": "assistant", "content": ANSWER}, "no parts to others"
    assert wire(message, reasoning=True)["content"] == message["content"], "Mistral's own shape"


# -- 2, 3. tool calls without index, with extra_content (Gemini) ----------------------------------


@both
def test_tool_calls_without_index_stay_apart_with_their_signature(client, server, streamed):
    server.script(Fault(tool_calls=[("lookup", {"city": "Paris"}), ("lookup", {"city": "Rome"})]))
    completion, _, _ = asked(client, GEMINI_MODEL, streamed)
    first, second = message_of(completion)["tool_calls"]
    assert [json.loads(c["function"]["arguments"]) for c in (first, second)] == [
        {"city": "Paris"},
        {"city": "Rome"},
    ]
    assert [c["function"]["name"] for c in (first, second)] == ["lookup", "lookup"]
    assert first["id"] != second["id"]
    assert first["extra_content"] == {"google": {"thought_signature": SIGNATURE + first["id"]}}
    assert "extra_content" not in second
    assert wire(message_of(completion))["tool_calls"][0] == {
        key: first[key] for key in ("id", "type", "function")
    }, "a strict endpoint gets the protocol's fields only"
    assert wire(message_of(completion), reasoning=True)["tool_calls"][0] == first


# -- 3. reasoning_details (OpenRouter) ----------------------------------------------------------


@both
def test_reasoning_details_are_kept_whole(client, streamed):
    completion, text, thought = asked(client, ROUTER_MODEL, streamed)
    assert (text, thought) == (ANSWER, THOUGHT)
    message = message_of(completion)
    assert message["reasoning"] == THOUGHT
    details = [{k: v for k, v in d.items() if k != "format"} for d in message["reasoning_details"]]
    assert details == [
        {"type": "reasoning.text", "text": THOUGHT, "signature": DETAIL_SIGNATURE, "index": 0},
        {"type": "reasoning.encrypted", "data": ENCRYPTED, "index": 1},
    ]
    assert wire(message, reasoning=True)["reasoning_details"] == message["reasoning_details"]
    assert "reasoning_details" not in wire(message)


# -- 4. a name repeated in every delta -------------------------------------------------------------


def test_a_name_repeated_in_every_delta_is_taken_once(client, server):
    server.script(Fault(tool_calls=[("lookup", {"city": "Paris"})], repeat_tool_names=True))
    stream = client.stream(body())
    list(stream)
    (call,) = message_of(stream.completion)["tool_calls"]
    assert call["function"] == {"name": "lookup", "arguments": '{"city": "Paris"}'}


# -- 5. an error beside the choices (OpenRouter) -------------------------------------------------


@pytest.mark.parametrize("finish", [None, "error"], ids=["finish-null", "finish-error"])
def test_an_error_beside_the_choices_fails_the_stream_keeping_the_partial(client, server, finish):
    error = {"code": 502, "message": "Token limit reached"}
    server.script(Fault(error_after=3, chunk_error=error, finish_reason=finish))
    stream = client.stream(body())
    shown: list[str] = []
    with pytest.raises(StreamErrorEvent) as failed:
        for batch in stream.batches():
            shown.append(batch.text)
    message = str(failed.value)
    assert "Token limit reached" in message and "\n" not in message
    assert "kept but not stored" in message
    assert failed.value.partial_text == "".join(shown) == "Reply #1 to: "
    assert stream.completion is None


def test_finish_reason_error_alone_fails_the_stream(client, server):
    server.script(Fault(finish_reason="error"))
    stream = client.stream(body())
    with pytest.raises(StreamErrorEvent, match="finish_reason: error") as failed:
        list(stream)
    assert failed.value.partial_text == ANSWER
    assert stream.completion is None


def test_a_whole_answer_with_an_error_beside_its_choices_is_an_error(client, server):
    completion = client.chat(body())
    completion["error"] = {"code": 502, "message": "Token limit reached"}
    server.script(Fault(status=200, body=completion))
    with pytest.raises(APIError, match="Token limit reached"):
        client.chat(body())


# -- 6. empty strings and zeros are missing (Azure's model router) ---------------------------------


@both
def test_the_answering_model_named_late_is_recorded(client, streamed):
    completion, text, _ = asked(client, AZURE_ROUTER_MODEL, streamed)
    assert text == ANSWER
    assert completion["model"] == ANSWERING_MODEL
    assert completion["id"] and completion["created"]


# -- 7. <think> tags opening the answer ------------------------------------------------------------


@both
def test_thinking_between_tags_is_thinking(client, streamed):
    completion, text, thought = asked(client, TAGGED_MODEL, streamed)
    assert text == ANSWER, "no tag and no thinking in the answer, live or stored"
    assert thought.strip() == THOUGHT.strip()
    message = message_of(completion)
    assert message["content"] == ANSWER
    assert message["reasoning_content"].strip() == THOUGHT.strip()


def test_an_unclosed_think_is_thinking_cut_off(client):
    stream = client.stream({**body(TAGGED_MODEL), "max_tokens": 3})
    batches = list(stream.batches())
    assert "".join(batch.text for batch in batches) == ""
    message = message_of(stream.completion)
    assert message["content"] == "" and message["reasoning_content"].strip()
    assert "<think>" not in message["reasoning_content"]
    assert stream.completion["choices"][0]["finish_reason"] == "length"


# -- 9. a surrogate pair split across chunks -------------------------------------------------------


def test_split_surrogate_pairs_are_joined_in_text_live_and_stored(client, server):
    text = "Tides 🌊 rise and 🌙 pulls."
    server.script(Fault(text=text, split_surrogates=True, delay=0.002))
    stream = client.stream(body())
    live = "".join(batch.text for batch in stream.batches())
    assert live == text
    assert message_of(stream.completion)["content"] == text
    json.dumps(stream.completion, ensure_ascii=False).encode("utf-8")


def test_split_surrogate_pairs_are_joined_in_thinking_and_tool_arguments(client, server):
    steps = {"reasoning": "Hmm 🤔 ok", "tool_calls": [["echo", '{"text": "wave 🌊"}']]}
    server.responses[PROMPT] = steps
    try:
        server.script(Fault(split_surrogates=True))
        stream = client.stream(body())
        thought = "".join(batch.reasoning for batch in stream.batches())
    finally:
        del server.responses[PROMPT]
    assert thought == "Hmm 🤔 ok"
    message = message_of(stream.completion)
    assert message["reasoning_content"] == "Hmm 🤔 ok"
    assert json.loads(message["tool_calls"][0]["function"]["arguments"]) == {"text": "wave 🌊"}


def test_a_half_pair_with_no_partner_is_replaced(client, server):
    server.script(Fault(text="cut \ud83d here"))
    stream = client.stream(body())
    live = "".join(stream)
    assert live == message_of(stream.completion)["content"] == "cut \ufffd here"


# -- what a record keeps ------------------------------------------------------------------------


def test_a_record_keeps_typed_parts_and_provider_fields_and_reads_them_back():
    record = make_record("Why?", "unused")
    typed = [
        {"type": "thinking", "thinking": [{"type": "text", "text": "Salt."}]},
        {"type": "text", "text": "Rocks."},
    ]
    signed = {"id": "a", "type": "function", "function": {"name": "f", "arguments": "{}"}}
    signed["extra_content"] = {"google": {"thought_signature": "c2ln"}}
    details = [{"type": "reasoning.encrypted", "data": "ZW5j", "index": 0}]
    signed_message = {"role": "assistant", "content": None, "tool_calls": [signed]}
    record.messages[1:] = [
        {**signed_message, "reasoning_details": details},
        {"role": "tool", "tool_call_id": "a", "content": "ok"},
        {"role": "assistant", "content": typed},
    ]
    read = Record.from_json(json.loads(json.dumps(record.to_json())))
    assert read.messages == record.messages
    assert (read.answer, read.reasoning) == ("Rocks.", "Salt.")
    assert read.consistency_problem() is None
