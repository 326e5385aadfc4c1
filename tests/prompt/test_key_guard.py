"""KeyGuard: a filled-in value that holds an API key is refused, naming the variable only."""

from __future__ import annotations

import pytest

from nbchat.errors import ConfigError
from nbchat.prompt.key_guard import KeyGuard

KEYS = {
    "OPENAI_API_KEY": "sk-proj-abcdefghijklmnop0123",
    "DASHSCOPE_API_KEY": "sk-dash-0123456789abcdef",
    "GITHUB_TOKEN": "ghp_0123456789abcdefABCDEF",
    "MY_ENDPOINT_KEY": "not-named-like-a-secret-value",
    "SHORT_TOKEN": "abc",
    "HOME": "/root",
}


def test_a_value_holding_any_key_is_refused_by_placeholder_and_variable():
    guard = KeyGuard(KEYS)
    with pytest.raises(ConfigError) as refused:
        guard.check([("df", "no key here"), ("cfg", f"{{'key': '{KEYS['DASHSCOPE_API_KEY']}'}}")])
    message = str(refused.value)
    assert message.startswith("{cfg} holds the value of $DASHSCOPE_API_KEY: not sent")
    assert "--allow-secrets" in message and KEYS["DASHSCOPE_API_KEY"] not in message


def test_profile_key_variables_count_whatever_their_names():
    assert KeyGuard(KEYS).variable_in(KEYS["MY_ENDPOINT_KEY"]) is None
    guard = KeyGuard(KEYS, ["MY_ENDPOINT_KEY", ""])
    assert guard.variable_in(f"x {KEYS['MY_ENDPOINT_KEY']} y") == "MY_ENDPOINT_KEY"


def test_short_values_and_ordinary_variables_never_match():
    guard = KeyGuard(KEYS)
    assert guard.variable_in("abc /root abc") is None
    guard.check([("path", "/root/abc")])  # nothing raised


def test_a_key_with_surrounding_whitespace_in_the_environment_still_matches():
    guard = KeyGuard({"OPENAI_API_KEY": "  sk-spaced-0123456789abc\n"})
    assert guard.variable_in("key=sk-spaced-0123456789abc") == "OPENAI_API_KEY"


def test_a_long_run_of_a_key_counts_as_the_key():
    """A DataFrame cell cuts a value at 40 columns; a clipped dict keeps part of it."""
    key = "sk-proj-" + "abcdefghij" * 16
    guard = KeyGuard({"OPENAI_API_KEY": key})
    assert guard.variable_in(f"| 0 | {key[:39]}… |") == "OPENAI_API_KEY"
    assert guard.variable_in(f"... {key[40:56]} ...") == "OPENAI_API_KEY"
    assert guard.variable_in(key[:15]) is None  # shorter runs are ordinary text


def test_the_message_speaks_the_callers_language():
    guard = KeyGuard(KEYS, flag="allow_secrets=True")
    with pytest.raises(ConfigError, match="allow_secrets=True sends it anyway"):
        guard.check([("item 0", KEYS["OPENAI_API_KEY"])])


def test_scanning_runs_of_the_keys_characters_finds_what_every_window_would():
    import random

    guard = KeyGuard(KEYS)
    keys = {value: name for value, name in guard._keys.items()}  # the variables it guards
    rng = random.Random(3)
    parts = [key[i : i + rng.randint(10, 20)] for key in KEYS.values() for i in range(0, 20, 3)]
    for _ in range(300):
        text = "".join(rng.choice([*parts, " ", "_", "-", "x", "é"]) for _ in range(10))
        whole = [name for value, name in keys.items() if value in text]
        windows = [
            name
            for i in range(len(text) - 15)
            for value, name in keys.items()
            if len(value) >= 16 and text[i : i + 16] in value
        ]
        found = guard.variable_in(text)
        assert (found is None) == (not whole and not windows), text
        assert found is None or found in whole + windows
