"""The fake server's provider shapes on the wire, read with plain httpx: what each recorded
provider sends, so the client tests run against those shapes and not against nbchat's idea of
them."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from support.fake_openai import FakeOpenAI, Fault
from support.fake_providers import (
    AZURE_ROUTER_MODEL,
    GEMINI_MODEL,
    MISTRAL_MODEL,
    NO_SIGNATURE,
    ROUTER_MODEL,
    TAGGED_MODEL,
)


@pytest.fixture(scope="module")
def fake() -> Any:
    with FakeOpenAI(api_key=None) as server:
        yield server


def chunks(fake: FakeOpenAI, model: str, *faults: Fault) -> list[Any]:
    """The data of every event of one streamed answer, parsed (``[DONE]`` as text)."""
    fake.script(*faults)
    body = {"model": model, "stream": True, "messages": [{"role": "user", "content": "Hi"}]}
    response = httpx.post(f"{fake.base_url}/chat/completions", json=body, timeout=5)
    datas = [line[6:] for line in response.text.split("\n") if line.startswith("data: ")]
    return [data if data == "[DONE]" else json.loads(data) for data in datas]


def deltas(events: list[Any]) -> list[dict[str, Any]]:
    return [e["choices"][0]["delta"] for e in events if isinstance(e, dict) and e.get("choices")]


def test_mistral_streams_typed_parts(fake):
    contents = [d["content"] for d in deltas(chunks(fake, MISTRAL_MODEL)) if d.get("content")]
    assert contents[0][0]["type"] == "thinking"
    assert isinstance(contents[0][0]["thinking"][0]["text"], str)
    assert any(isinstance(c, list) and c[0]["type"] == "text" for c in contents)


def test_gemini_streams_each_call_whole_without_index_and_stops(fake):
    calls = [("f", {"a": 1}), ("g", {"b": 2})]
    events = chunks(fake, GEMINI_MODEL, Fault(tool_calls=calls))
    made = [call for d in deltas(events) for call in d.get("tool_calls") or []]
    assert [call["function"]["name"] for call in made] == ["f", "g"]
    assert all("index" not in call for call in made)
    assert "thought_signature" in made[0]["extra_content"]["google"]
    finishes = [e["choices"][0]["finish_reason"] for e in events if isinstance(e, dict)]
    assert "tool_calls" not in finishes and "stop" in finishes


def test_gemini_refuses_calls_back_without_their_signature(fake):
    call = {"id": "a", "type": "function", "function": {"name": "f", "arguments": "{}"}}
    messages = [
        {"role": "user", "content": "Hi"},
        {"role": "assistant", "content": None, "tool_calls": [call]},
        {"role": "tool", "tool_call_id": "a", "content": "1"},
    ]
    body = {"model": GEMINI_MODEL, "messages": messages}
    refused = httpx.post(f"{fake.base_url}/chat/completions", json=body, timeout=5)
    assert refused.status_code == 400 and NO_SIGNATURE in refused.text
    call["extra_content"] = {"google": {"thought_signature": "x"}}
    assert httpx.post(f"{fake.base_url}/chat/completions", json=body, timeout=5).is_success


def test_openrouter_streams_reasoning_details_beside_the_reasoning(fake):
    found = deltas(chunks(fake, ROUTER_MODEL))
    assert found[1]["reasoning"] and found[1]["reasoning_details"][0]["index"] == 0
    types = [d["type"] for delta in found for d in delta.get("reasoning_details") or []]
    assert "reasoning.encrypted" in types


def test_openrouter_reports_a_mid_stream_error_beside_the_choices(fake):
    error = {"code": 502, "message": "Token limit reached"}
    events = chunks(fake, "peer-small", Fault(error_after=2, chunk_error=error))
    failed = events[-2]
    assert failed["error"] == error and failed["choices"][0]["finish_reason"] is None
    assert events[-1] == "[DONE]"


def test_azure_opens_with_a_chunk_that_names_nothing(fake):
    first, second = chunks(fake, AZURE_ROUTER_MODEL)[:2]
    assert (first["model"], first["id"], first["created"], first["choices"]) == ("", "", 0, [])
    assert second["model"] and second["model"] != AZURE_ROUTER_MODEL


def test_r1_puts_its_thinking_in_the_content_between_split_tags(fake):
    contents = [d.get("content") or "" for d in deltas(chunks(fake, TAGGED_MODEL))]
    assert "<think>" not in contents and "<th" in contents
    assert "".join(contents).startswith("<think>\n") and "</think>" in "".join(contents)


def test_split_surrogates_send_each_half_escaped_in_its_own_chunk(fake):
    fake.script(Fault(text="a 🌊 b", split_surrogates=True))
    body = {"model": "peer-small", "stream": True, "messages": [{"role": "user", "content": "x"}]}
    raw = httpx.post(f"{fake.base_url}/chat/completions", json=body, timeout=5).text
    assert raw.isascii()
    lines = [line for line in raw.split("\n") if "\\ud83c" in line or "\\udf0a" in line]
    assert len(lines) == 2 and "\\udf0a" not in lines[0]
