"""The record schema and the cache key."""

from __future__ import annotations

import copy
import re

import pytest
from nbfactory import MALFORMED, make_record, make_system_record

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
        ({"schema": 1, "kind": "answer", "thread": "t", "prompt": "p"}, 1, "^key is missing$"),
        ({"schema": ["x"] * 10_000}, 1, "^record schema must be an integer, not a list$"),
    ],
)
def test_malformed_records_are_rejected_with_a_reason(raw, version, problem):
    with pytest.raises(ValueError, match=problem):
        Record.from_json(raw, version=version)


def test_unknown_fields_from_a_newer_minor_writer_are_ignored():
    data = {**make_record("a", "b").to_json(), "future_field": 1}
    assert Record.from_json(data).prompt == "a"


def edited(edit) -> dict:
    """A consistent answer record's JSON (a deep copy) with ``edit`` applied."""
    data = copy.deepcopy(make_record("What is 2+2?", "4", usage=(11, 1)).to_json())
    edit(data)
    return data


@pytest.mark.parametrize("case", MALFORMED)
def test_a_wrongly_typed_field_is_named(case):
    edit, reason = MALFORMED[case]
    with pytest.raises(ValueError) as caught:
        Record.from_json(edited(edit))
    assert str(caught.value) == reason


def _choice(data: dict) -> dict:
    return data["response"]["choices"][0]


@pytest.mark.parametrize(
    ("edit", "reason"),
    [
        (lambda d: d["response"].update(choices=[]), "response.choices is an empty list"),
        (lambda d: d["response"].update(choices="x"), "response.choices is a string, not a list"),
        (lambda d: d["response"].update(choices=[1]), "response.choices[0] is an integer, not"),
        (lambda d: _choice(d).update(index=True), "index is a boolean, not an integer"),
        (lambda d: _choice(d).update(index="0"), "index is a string, not an integer"),
        (lambda d: _choice(d).pop("message"), "response.choices[0].message is missing"),
        (lambda d: _choice(d)["message"].update(role=3), "message.role is an integer, not"),
        (lambda d: d["response"].update(model=["m"]), "response.model is a list, not a string"),
        (lambda d: d["response"]["usage"].update(total_tokens=1.5), "total_tokens is a number"),
        (lambda d: d["response"]["usage"].update(total_tokens=None), "total_tokens is null"),
        (
            lambda d: d["response"]["usage"].update(completion_tokens_details={"x_tokens": "1"}),
            "response.usage.completion_tokens_details.x_tokens is a string, not an integer or null",
        ),
        (lambda d: d.update(new_thread="yes"), "new_thread is a string, not a boolean"),
        (lambda d: d.update(cell_id=7), "cell_id is an integer, not a string or null"),
        (lambda d: d.update(thread=None), "thread is null, not a string"),
        (lambda d: d.update(key=None), "key is null, not a string"),
        (lambda d: d.update(nbchat_version=1), "nbchat_version is an integer, not a string"),
        (lambda d: d.update(timing=[]), "timing is a list, not an object"),
        (
            lambda d: d["timing"].update(streamed="yes"),
            "timing.streamed is a string, not a boolean",
        ),
        (lambda d: d["timing"].update(first_token_s=False), "timing.first_token_s is a boolean"),
        (lambda d: d["request"].update(params=[]), "request.params is a list, not an object"),
        (lambda d: d["request"].update(base_url=None), "request.base_url is null, not a string"),
        (lambda d: d["request"]["messages"].append("hi"), "request.messages[1] is a string"),
        (lambda d: d["request"]["messages"][0].pop("role"), "request.messages[0].role is missing"),
        (
            lambda d: d["request"]["messages"][0].update(content=5),
            "request.messages[0].content is an integer, not a string or a list",
        ),
        (
            lambda d: d["request"]["messages"][0].update(content=["x"]),
            "request.messages[0].content[0] is a string, not an object",
        ),
    ],
)
def test_every_field_is_checked(edit, reason):
    with pytest.raises(ValueError, match=re.escape(reason)):
        Record.from_json(edited(edit))


@pytest.mark.parametrize(
    "edit",
    [
        lambda d: d["response"].pop("usage"),  # the server reported none
        lambda d: d["response"].update(usage=None),
        lambda d: d["response"]["usage"].update(prompt_tokens_details=None),
        lambda d: d["response"]["usage"].update(prompt_tokens_details={"cached_tokens": None}),
        lambda d: d["response"]["usage"].update(cost=0.001, is_byok=False),  # not token counts
        lambda d: _choice(d).pop("index"),
        lambda d: _choice(d).update(finish_reason=None),
        lambda d: _choice(d)["message"].update(content=None, tool_calls=[]),
        lambda d: d["request"]["messages"].insert(0, {"role": "user", "content": [{"type": "x"}]}),
        lambda d: d["timing"].update(elapsed_s=1, later_field="anything"),
        lambda d: d.pop("timing"),
        lambda d: d.update(cell_id="abc"),
    ],
)
def test_what_the_protocol_allows_is_accepted(edit):
    Record.from_json(edited(edit))


def test_a_system_record_needs_no_request():
    record = make_system_record("Be brief.")
    assert Record.from_json(record.to_json()) == record
    with pytest.raises(ValueError, match=r"^request is a string, not an object$"):
        Record.from_json({**record.to_json(), "request": "x"})
