"""The record schema and the cache key."""

from __future__ import annotations

import pytest
from nbfactory import make_record

from nbchat.record import SCHEMA_VERSION, Record, normalise_base_url, request_key

MESSAGES = [{"role": "user", "content": "Hi"}]


def test_the_key_ignores_transport_fields_and_url_spelling():
    base = request_key("https://API.example.com/v1/", "m", MESSAGES, {"temperature": 0})
    same = request_key(
        "https://api.example.com/v1",
        "m",
        MESSAGES,
        {"temperature": 0, "stream": True, "stream_options": {"include_usage": True}},
    )
    assert base == same and base.startswith("v1:")


@pytest.mark.parametrize(
    "change",
    [
        {"base_url": "https://other.example.com/v1"},
        {"model": "m2"},
        {"messages": [{"role": "user", "content": "Hi!"}]},
        {"messages": [{"role": "system", "content": "x"}, *MESSAGES]},
        {"params": {"temperature": 0.5}},
        {"params": {"temperature": 0, "response_format": {"type": "json_object"}}},
        {"params": {"temperature": 0, "tools": [{"type": "function"}]}},
    ],
)
def test_everything_that_changes_the_answer_changes_the_key(change):
    request = {
        "base_url": "https://api.example.com/v1",
        "model": "m",
        "messages": MESSAGES,
        "params": {"temperature": 0},
    }
    assert request_key(**request) != request_key(**{**request, **change})


def test_normalise_base_url():
    assert normalise_base_url(" HTTP://Host:8000/v1/ ") == "http://host:8000/v1"


def test_a_record_round_trips_through_json_and_checks_itself():
    record = make_record("Hello", "World", usage=(3, 4))
    again = Record.from_json(record.to_json())
    assert again == record
    assert again.answer == "World" and again.usage["prompt_tokens"] == 3
    assert again.consistency_problem() is None
    again.request["messages"][0]["content"] = "Changed"
    assert again.consistency_problem() == "key does not match its request"
    tampered = make_record("Hello", "World")
    tampered.prompt = "Something else"
    assert "prompt" in tampered.consistency_problem()


@pytest.mark.parametrize(
    ("raw", "version", "problem"),
    [
        ([], 1, "JSON object"),
        ({"schema": None}, 1, "integer"),
        ({"schema": 1}, 2, "stored as version 2"),
        ({"schema": SCHEMA_VERSION + 1}, SCHEMA_VERSION + 1, "newer"),
        ({"schema": 1, "kind": "answer", "thread": "t", "prompt": "p"}, 1, "request"),
    ],
)
def test_malformed_records_are_rejected_with_a_reason(raw, version, problem):
    with pytest.raises(ValueError, match=problem):
        Record.from_json(raw, version=version)


def test_unknown_fields_from_a_newer_minor_writer_are_ignored():
    data = {**make_record("a", "b").to_json(), "future_field": 1}
    assert Record.from_json(data).prompt == "a"
