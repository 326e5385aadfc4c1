"""The API key in `ChatClient`: read at request time, never stored, never repeated in an error,
and errors that name the variable to set."""

from __future__ import annotations

import pytest

from nbchat.errors import AuthenticationError
from nbchat.wire.completion import completion_text

from support.chat_client import ANSWER, BODY, KEY
from support.fake_openai import Fault

# -- the key ---------------------------------------------------------------------------------------


def test_wrong_key_message(client, fake, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-wrong-key-123")
    with pytest.raises(AuthenticationError) as info:
        client.chat(BODY)
    assert "$OPENAI_API_KEY" in str(info.value)
    for text in (str(info.value), repr(info.value)):
        assert "sk-wrong" not in text
    assert len(fake.requests) == 1


def test_server_echoing_the_key_is_not_repeated(client, fake):
    echo = {"error": {"message": f"Incorrect API key provided: {KEY[:5]}***{KEY[-3:]} / {KEY}"}}
    fake.script(Fault(status=401, body=echo))
    with pytest.raises(AuthenticationError) as info:
        list(client.stream(BODY))
    for text in (str(info.value), repr(info.value)):
        assert KEY not in text
        assert KEY[:5] + "***" not in text
    assert "$OPENAI_API_KEY" in str(info.value)


def test_configured_key_variable(make_client, fake, monkeypatch):
    monkeypatch.setenv("MY_LLM_KEY", KEY)
    client = make_client(api_key_env="MY_LLM_KEY")
    assert completion_text(client.chat(BODY)) == ANSWER
    monkeypatch.setenv("MY_LLM_KEY", "sk-nope-nope")
    with pytest.raises(AuthenticationError) as info:
        client.chat(BODY)
    assert "$MY_LLM_KEY" in str(info.value)
    assert "sk-nope-nope" not in str(info.value) + repr(info.value)


def test_missing_key_sends_no_authorization(client, fake, monkeypatch):
    monkeypatch.delenv("OPENAI_API_KEY")
    with pytest.raises(AuthenticationError, match=r"\$OPENAI_API_KEY"):
        client.chat(BODY)
    assert "authorization" not in fake.requests[0].headers


@pytest.mark.parametrize("value", [None, "", " \n"], ids=["unset", "empty", "blank"])
@pytest.mark.parametrize("streamed", [False, True], ids=["chat", "stream"])
def test_a_missing_key_is_reported_as_not_set(client, fake, monkeypatch, value, streamed):
    if value is None:
        monkeypatch.delenv("OPENAI_API_KEY")
    else:
        monkeypatch.setenv("OPENAI_API_KEY", value)
    with pytest.raises(AuthenticationError) as info:
        list(client.stream(BODY)) if streamed else client.chat(BODY)
    assert str(info.value).startswith(
        "$OPENAI_API_KEY is not set, so no key was sent to 127.0.0.1 (401). Set it,"
    )
    assert "rejected" not in str(info.value)
    assert "authorization" not in fake.requests[0].headers


def test_a_profile_that_sends_no_key_names_api_key_env(make_client, fake):
    client = make_client(api_key_env="")
    with pytest.raises(AuthenticationError) as info:
        client.chat(BODY)
    message = str(info.value)
    assert message.startswith("127.0.0.1 wants an API key (401), but none is configured")
    assert "api_key_env" in message
    assert "$" not in message
    assert "authorization" not in fake.requests[0].headers


def test_a_wrong_key_keeps_the_rejected_message(client, fake, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-wrong-key-123")
    with pytest.raises(AuthenticationError) as info:
        client.chat(BODY)
    assert str(info.value).startswith(
        "The server rejected the API key (401). Check that $OPENAI_API_KEY holds a valid key "
        "for 127.0.0.1."
    )


def test_key_is_read_at_request_time_and_never_stored(client, fake, monkeypatch):
    config = client.config
    assert KEY not in repr(config)
    assert all(KEY not in str(getattr(config, f)) for f in config.__dataclass_fields__)
    assert "authorization" not in client._http.headers
    assert all(KEY not in repr(v) for v in vars(client).values())
    client.chat(BODY)
    monkeypatch.setenv("OPENAI_API_KEY", "sk-rotated-key")
    with pytest.raises(AuthenticationError):
        client.chat(BODY)
    assert [r.headers["authorization"] for r in fake.requests] == [
        f"Bearer {KEY}",
        "Bearer sk-rotated-key",
    ]
