"""Forged records: a stored record whose fields were given the wrong types (or whose tool calls
lost their results) is skipped by every reader with one line, never a traceback; ``nbchat
verify`` names it (exit 1); the other cells still replay with no request (`forgery` holds the
records, the forging and the readers)."""

from __future__ import annotations

import contextlib
import copy
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings

from nbchat.engine.session import Origin
from nbchat.store.batch_record import read_stored

from support.forgery import (
    BASES,
    FORGED_CELL,
    HOSTILE,
    PROMPTS,
    Cell,
    check_notebook,
    child_of,
    forgeries,
    rekeyed,
)


@settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(forgeries())
def test_a_forged_record_never_breaks_a_reader(forgery: tuple[str, Cell]) -> None:
    name, forged = forgery
    with contextlib.suppress(ValueError):  # the one error a reader of records may raise
        read_stored(copy.deepcopy(forged.record), forged.version)
    check_notebook(forged, child_of(name))


@pytest.mark.parametrize("name", sorted(BASES))
def test_the_unforged_records_read_everywhere(name: str) -> None:
    version, data, _ = BASES[name]
    forged = Cell("c-x", PROMPTS.get(name, "?"), HOSTILE, version, copy.deepcopy(data))
    problems, outcomes = check_notebook(forged, child_of(name))
    assert problems == []
    if name in ("tool turn", "provider shapes", "v1 answer"):  # (the image turn's has a picture)
        assert outcomes["c-x"] is Origin.NOTEBOOK and outcomes["c-y"] is Origin.NOTEBOOK


def _drop(messages: list[Any], index: int) -> None:
    del messages[index]


# (base, edit of its JSON, re-keyed, what verify says): the forgeries that crashed a reader.
FORGERIES: dict[str, tuple[str, Any, bool, str]] = {
    "choices[0] a string": (
        "tool turn",
        lambda d: d["responses"][1]["choices"].__setitem__(0, ""),
        False,
        "responses[1].choices[0] is a string, not an object",
    ),
    "tool_call_id a list": (
        "tool turn",
        lambda d: d["messages"][2].update(tool_call_id=["call_0"]),
        False,
        "messages[2].tool_call_id is a list, not text",
    ),
    "parent a list": (
        "tool turn",
        lambda d: d.update(parent=["v2:x"]),
        False,
        "parent is a list, not a string or null",
    ),
    "choices not a list": (
        "tool turn",
        lambda d: d["responses"][1].update(choices=True),
        False,
        "responses[1].choices is a boolean, not a list or null",
    ),
    "history not a digest": (
        "tool turn",
        lambda d: d.update(history="\x80"),
        False,
        "history is not a sha256 digest",
    ),
    "usage of an earlier request": (
        "tool turn",
        lambda d: d["responses"][0]["usage"].update(prompt_tokens={}),
        False,
        "responses[0]: usage.prompt_tokens is an object, not a count",
    ),
    "a tool call without its result": (
        "tool turn",
        lambda d: _drop(d["messages"], 3),
        False,
        "messages[1].tool_calls[1] has no result",
    ),
    "a result of no call": (
        "tool turn",
        lambda d: d["messages"].insert(1, {"role": "tool", "tool_call_id": "x", "content": "?"}),
        False,
        "messages[1] is a tool result of no call",
    ),
    "an image that is text, re-keyed": (
        "image turn",
        lambda d: d["messages"][0]["content"][1].update(image_url="https://x/y.png"),
        True,
        "messages[0].content[1].image_url is text, not an object",
    ),
}


@pytest.mark.parametrize("case", FORGERIES)
def test_a_forgery_that_crashed_readers_is_named_and_skipped(case: str) -> None:
    name, edit, rekey, reason = FORGERIES[case]
    version, data, _ = BASES[name]
    raw = copy.deepcopy(data)
    edit(raw)
    forged = Cell("c-x", PROMPTS[name], HOSTILE, version, rekeyed(raw, version) if rekey else raw)
    (problem,), outcomes = check_notebook(forged, child_of(name))
    assert problem.endswith(f": cell {FORGED_CELL}: malformed record: {reason}"), problem
    miss = str(outcomes["c-x"])
    assert f"the record stored in it was skipped (malformed record: {reason})" in miss, miss
    assert "see `nbchat verify`" in miss
