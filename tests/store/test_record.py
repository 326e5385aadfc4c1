"""The record schema (2, and 1 as nbchat 0.1 wrote it): round trips, checks, and every field
of an old record."""

from __future__ import annotations

import copy
import re

import pytest

from nbchat.store.keys import history_of, turn_digest
from nbchat.store.reading import read_record
from nbchat.store.record import SCHEMA_VERSION, Record

from support.nbfactory import MALFORMED, make_record, make_system_record, make_v1_record

USER = {"role": "user", "content": "Hi"}
PAIR = [USER, {"role": "assistant", "content": "Hello"}]


def test_a_record_round_trips_through_json_and_checks_itself():
    record = make_record("Hello", "World", usage=(3, 4))
    again = Record.from_json(record.to_json())
    assert again == record
    assert again.answer == "World" and again.usage["prompt_tokens"] == 3
    assert again.consistency_problem() is None
    again.messages[0]["content"] = "Changed"
    assert again.consistency_problem() == "key does not match its request"


@pytest.mark.parametrize(
    ("raw", "version", "problem"),
    [
        ([], 2, "JSON object"),
        ({"schema": None}, 2, "integer"),
        ({"schema": 1}, 2, "stored as version 2"),
        ({"schema": SCHEMA_VERSION + 1}, SCHEMA_VERSION + 1, "not one this nbchat understands"),
        ({"schema": 2, "kind": "turn", "thread": "t"}, 2, "^stored_at is missing$"),
        ({"schema": 1, "kind": "answer", "thread": "t", "prompt": "p"}, 1, "^key is missing$"),
        ({"schema": ["x"] * 10_000}, 2, "^record schema must be an integer$"),
    ],
)
def test_malformed_records_are_rejected_with_a_reason(raw, version, problem):
    with pytest.raises(ValueError, match=problem):
        read_record(raw, version=version)


def test_unknown_fields_from_a_newer_minor_writer_are_ignored():
    data = {**make_record("a", "b").to_json(), "future_field": 1}
    assert Record.from_json(data).prompt == "a"


def edited(edit) -> dict:
    """A consistent answer record's JSON (a deep copy) with ``edit`` applied."""
    data = copy.deepcopy(make_record("What is 2+2?", "4", usage=(11, 1)).to_json())
    edit(data)
    return data


def edited_v1(edit) -> dict:
    """A schema 1 record's JSON, as nbchat 0.1 wrote it, with ``edit`` applied."""
    data = make_v1_record("What is 2+2?", "4")
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


def _v2_choice(data: dict) -> dict:
    return data["responses"][0]["choices"][0]


@pytest.mark.parametrize(
    ("edit", "reason"),
    [
        (lambda d: d["response"].update(choices=[]), "response.choices is an empty list"),
        (lambda d: d["response"].update(choices="x"), "response.choices is text, not a list"),
        (
            lambda d: d["response"].update(choices=[1]),
            "response.choices[0] is a number, not an object",
        ),
        (lambda d: _choice(d).update(index=True), "index is a boolean, not an index"),
        (lambda d: _choice(d).update(index="0"), "index is text, not an index"),
        (lambda d: _choice(d).pop("message"), "response.choices[0].message is missing"),
        (lambda d: _choice(d)["message"].update(role=3), "message.role is a number, not text"),
        (lambda d: d["response"].update(model=["m"]), "response.model is a list, not text"),
        (
            lambda d: d["response"]["usage"].update(total_tokens=1.5),
            "total_tokens is a number, not a count",
        ),
        (
            lambda d: d["response"]["usage"].update(completion_tokens_details={"x_tokens": "1"}),
            "response.usage.completion_tokens_details.x_tokens is text, not a count",
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
def test_every_field_of_a_v1_record_is_checked(edit, reason):
    with pytest.raises(ValueError, match=re.escape(reason)):
        read_record(edited_v1(edit), version=1)


@pytest.mark.parametrize(
    "edit",
    [
        lambda d: d["response"].pop("usage"),  # the server reported none
        lambda d: d["response"].update(usage=None),
        lambda d: d["response"]["usage"].update(prompt_tokens_details=None),
        lambda d: d["response"]["usage"].update(prompt_tokens_details={"cached_tokens": None}),
        lambda d: d["response"]["usage"].update(cost=0.001, is_byok=False),  # not token counts
        lambda d: d["response"]["usage"].update(total_tokens=None),  # not reported
        lambda d: _choice(d).pop("index"),
        lambda d: _choice(d).update(finish_reason=None),
        lambda d: _choice(d)["message"].update(content=None, tool_calls=[]),
        lambda d: d["request"]["messages"].insert(0, {"role": "user", "content": [{"type": "x"}]}),
        lambda d: d["timing"].update(elapsed_s=1, later_field="anything"),
        lambda d: d.pop("timing"),
        lambda d: d.update(cell_id="abc"),
    ],
)
def test_what_the_protocol_allows_is_accepted_in_a_v1_record(edit):
    read_record(edited_v1(edit), version=1)


def test_a_system_record_is_its_system_message():
    record = make_system_record("Be brief.")
    assert Record.from_json(record.to_json()) == record and record.prompt == "Be brief."
    with pytest.raises(ValueError, match="not a system message"):
        Record.from_json({**record.to_json(), "messages": [{"role": "user", "content": "x"}]})


def test_a_v1_record_reads_as_the_same_turn():
    context = [{"role": "system", "content": "Be brief."}, *PAIR]
    data = make_v1_record(
        "Again?", "Yes.", messages=[*context, {"role": "user", "content": "Again?"}]
    )
    record = read_record(data, version=1)
    assert (record.schema, record.prompt, record.answer) == (1, "Again?", "Yes.")
    assert record.request.system == "Be brief." and record.earlier == PAIR
    assert record.history == history_of([turn_digest(PAIR)])
    assert record.consistency_problem() is None and record.to_json() is data
    data["request"]["messages"][-1]["content"] = "Changed"
    with pytest.raises(ValueError, match="prompt does not match"):
        read_record(data, version=1)


def test_usage_of_a_turn_of_several_requests_adds_up_nested_counts_too():
    record = make_record("q", "a")
    details = {"reasoning_tokens": 40}
    first = {"prompt_tokens": 10, "completion_tokens": 50, "completion_tokens_details": details}
    second = {"prompt_tokens": 12, "completion_tokens": 5, "completion_tokens_details": details}
    record.responses = [{"usage": first}, {"usage": second}]
    assert record.usage == {
        "prompt_tokens": 22,
        "completion_tokens": 55,
        "completion_tokens_details": {"reasoning_tokens": 80},
    }


def test_message_text_puts_text_parts_a_line_apart_and_images_in_place():
    from nbchat.store.record import message_text

    parts = [{"type": "text", "text": "Hello"}, {"type": "text", "text": "World"}]
    assert message_text({"content": parts}) == "Hello\nWorld"
    link = {"type": "image_url", "image_url": {"url": "https://u:pw@x.test/a.png?sig=SECRET"}}
    shown = message_text({"content": [parts[0], link, parts[1]]})
    assert shown.startswith("Hello[image at https://") and shown.endswith("]World")
    assert "pw" not in shown and "SECRET" not in shown


@pytest.mark.parametrize(("name", "value"), [("thinking_s", "4 s"), ("tool_s", 0.5)])
def test_the_timing_nbchat_writes_is_checked_when_read(name, value):
    data = make_record("q", "a").to_json()
    data["timing"][name] = value
    with pytest.raises(ValueError, match=f"timing.{name} is "):
        Record.from_json(data)


def test_the_mcp_tools_a_turn_offered_are_kept_outside_its_key():
    record = make_record("Read a.txt", "Done")
    assert "mcp" not in record.to_json(), "a turn without MCP tools writes no mcp field"
    assert Record.from_json(record.to_json()).mcp is None
    record.mcp = {"read": ["files", "read"], "web__read": ["web", "read"]}
    again = Record.from_json(record.to_json())
    assert again.mcp == record.mcp and again.consistency_problem() is None


@pytest.mark.parametrize(
    ("mcp", "reason"),
    [
        (["files"], "mcp is a list, not an object or null"),
        ({"read": "files/read"}, "mcp['read'] is not [server, tool]"),
        ({"read": ["files"]}, "mcp['read'] is not [server, tool]"),
        ({"read": ["files", 3]}, "mcp['read'] is not [server, tool]"),
    ],
)
def test_a_malformed_mcp_field_is_named(mcp, reason):
    data = {**make_record("a", "b").to_json(), "mcp": mcp}
    with pytest.raises(ValueError) as caught:
        Record.from_json(data)
    assert str(caught.value) == reason
