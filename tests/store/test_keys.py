"""The cache key (`nbchat.store.keys`): what changes it, what does not, the history chain, and
the key nbchat 0.1 computed."""

from __future__ import annotations

import copy
import os
import pickle
import subprocess
import sys

import pytest
from hypothesis import given
from hypothesis import strategies as st

from nbchat.store.keys import (
    HISTORY_START,
    CellKey,
    Endpoint,
    extend_history,
    history_of,
    key_maker,
    request_key,
    request_key_v1,
    turn_digest,
)

USER = {"role": "user", "content": "Hi"}
PAIR = [USER, {"role": "assistant", "content": "Hello"}]
BASE = {
    "endpoint": Endpoint.of("https://api.example.com/v1"),
    "model": "m",
    "params": {"temperature": 0},
    "system": None,
    "history": HISTORY_START,
    "user_message": USER,
}


def test_the_key_ignores_transport_fields_and_url_spelling():
    spelled = Endpoint.of(" HTTPS://API.example.com/v1/ ")
    transport = {"temperature": 0, "stream": True, "stream_options": {"include_usage": True}}
    same = request_key(**{**BASE, "endpoint": spelled, "params": transport})
    assert same == request_key(**BASE) and same.startswith("v2:")


ANY_CHARACTER = st.characters(blacklist_categories=())  # lone surrogates too


@given(
    role=st.text(max_size=8),
    content=st.one_of(
        st.text(ANY_CHARACTER), st.lists(st.dictionaries(st.text(max_size=4), st.text()))
    ),
    extra=st.dictionaries(st.sampled_from(["name", "role"]), st.text(max_size=4)),
)
def test_a_key_made_for_many_is_the_key_of_each(role, content, extra):
    """`key_maker` writes a text message's bytes itself: the key is `request_key`'s, for any
    text (lone surrogates, quotes, control characters) and any other shape of message, and
    another model's is another."""
    message = {"role": role, "content": content, **extra}
    shared = {name: value for name, value in BASE.items() if name != "user_message"}
    expected = request_key(**shared, user_message=message)
    assert key_maker(**shared)(message) == expected
    assert key_maker(**shared)(dict(message)) == expected
    other = {**shared, "model": "m2"}
    assert key_maker(**other)(message) == request_key(**other, user_message=message) != expected


@pytest.mark.parametrize(
    "change",
    [
        {"endpoint": Endpoint.of("https://other.example.com/v1")},
        {"endpoint": Endpoint.of("https://api.example.com/v1?api-version=2024-10-21")},
        {"model": "m2"},
        {"user_message": {"role": "user", "content": "Hi!"}},
        {"system": "x"},
        {"history": extend_history(HISTORY_START, turn_digest(PAIR))},
        {"params": {"temperature": 0.5}},
        {"params": {"temperature": 0, "response_format": {"type": "json_object"}}},
        {"params": {"temperature": 0, "tools": [{"type": "function"}]}},
    ],
)
def test_everything_that_changes_the_answer_changes_the_key(change):
    assert request_key(**BASE) != request_key(**{**BASE, **change})


def test_the_history_chains_turn_digests_in_order():
    other = [{"role": "user", "content": "Bye"}, {"role": "assistant", "content": "Bye"}]
    forward = history_of([turn_digest(PAIR), turn_digest(other)])
    assert forward != history_of([turn_digest(other), turn_digest(PAIR)])
    assert forward == extend_history(
        extend_history(HISTORY_START, turn_digest(PAIR)), turn_digest(other)
    )


def test_a_query_string_is_kept_as_a_digest_and_shown_masked():
    endpoint = Endpoint.of("https://h.example.com/openai/v1?api-version=2024-10-21&key=abcdef123")
    assert endpoint.url == "https://h.example.com/openai/v1"
    assert endpoint.shown == "https://h.example.com/openai/v1?api-version=***&key=***"
    assert endpoint.query_digest and "abcdef123" not in endpoint.query_digest
    assert Endpoint.stored(endpoint.shown, endpoint.query_digest) == endpoint


def test_the_v1_key_is_the_one_nbchat_0_1_computed():
    # Pinned from a record written by nbchat 0.1 (tests/support/fixtures/nbchat-0.1.ipynb,
    # cell "m1").
    messages = [{"role": "user", "content": "Name a moon of Jupiter."}]
    key = request_key_v1("http://127.0.0.1:38227/v1", "peer-small", messages, {})
    assert key == "v1:e5b0b573b215254ee467e0a44ddce7d9c54fe3e147d922cd17bd9ab8d661ce2a"


def made_keys() -> list[CellKey]:
    """One key of each kind, made afresh at each call."""
    return [
        CellKey.cell("a#ask1"),
        CellKey.cell("a"),
        CellKey.index(3),
        CellKey.run(3),
        CellKey.ask("a", 1),
        CellKey.item("a", 1),
        CellKey.item(None, 1),
        CellKey.cell("a").record(2),
        CellKey.cell("b").record(2),
    ]


KEYS = made_keys()


def test_cell_keys_are_equal_when_made_alike_and_only_then() -> None:
    again = made_keys()
    for key, twin in zip(KEYS, again, strict=True):
        assert key == twin and hash(key) == hash(twin) and key is not twin
    assert len(set(KEYS) | set(again)) == len(KEYS)
    assert CellKey.ask("a", 1).host == CellKey.cell("a")
    assert CellKey.cell("a") != "a" and CellKey.index(3) != (3,)


def test_a_cell_key_copied_or_pickled_is_the_same_key() -> None:
    for key in KEYS:
        for made in (copy.copy(key), copy.deepcopy(key), pickle.loads(pickle.dumps(key))):
            assert made == key and hash(made) == hash(key)


def test_a_cell_key_pickled_by_another_process_hashes_as_this_ones() -> None:
    """A str's hash differs between processes: the cached hash is not carried over."""
    code = (
        "import pickle, sys; from nbchat.store.keys import CellKey; "
        "sys.stdout.buffer.write(pickle.dumps(CellKey.cell('a').record(2)))"
    )
    made = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        check=True,
        env={**os.environ, "PYTHONHASHSEED": "7"},
    ).stdout
    assert {pickle.loads(made): 1}[CellKey.cell("a").record(2)] == 1
