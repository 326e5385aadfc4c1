"""Secrets out of messages and displayed URLs: `nbchat.wire.redaction`, and end to end against the
loopback server, a key echoed at every offset around each clip never shows, even in part."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from nbchat.errors import (
    APIError,
    MalformedStreamError,
    NbchatError,
    StreamErrorEvent,
    TruncatedStreamError,
)
from nbchat.wire.client import ChatClient
from nbchat.wire.config import ClientConfig
from nbchat.wire.redaction import MASK, Redactor, mask_url, request_url, split_query

from support.env import TEST_KEY
from support.fake_openai import FakeOpenAI, Fault

KEY = TEST_KEY
BODY = {"model": "peer-small", "messages": [{"role": "user", "content": "hi"}]}
FILLER = "lorem ipsum dolor sit amet " * 12


# -- Redactor ------------------------------------------------------------------------------------


def test_text_replaces_each_secret():
    redactor = Redactor("sk-abcdef123456", ["sig-value-1"])
    assert redactor.text("key sk-abcdef123456, sig sig-value-1.") == "key ***, sig ***."
    assert redactor.text("nothing here") == "nothing here"


def test_the_key_raw_stripped_and_quoted():
    raw = "  sk-abc'def\"123\n"
    redactor = Redactor(raw)
    stripped = raw.strip()
    for form in (raw, stripped, repr(raw)[1:-1], repr(stripped)[1:-1], json.dumps(stripped)[1:-1]):
        assert "abc" not in redactor.text(f"<{form}>"), form


def test_part_of_the_key_is_masked_too():
    redactor = Redactor("sk-proj-Zq8vN3xK7mP2wR9tL5yB")
    stars = "*" * 14
    masked = redactor.text(f"Incorrect API key provided: sk-proj-Zq8v{stars}L5yB. Bye")
    assert masked == f"Incorrect API key provided: {MASK}{stars}L5yB. Bye"
    assert redactor.text("prefix sk-pr") == "prefix sk-pr"  # five characters: not a secret


def test_short_secrets_are_ignored():
    redactor = Redactor("abc12", ["1", "true", "12345"])
    assert not redactor
    assert redactor.text("abc12 1 true 12345") == "abc12 1 true 12345"


def test_json_redacts_every_string_keys_included():
    redactor = Redactor("sk-secret-value")
    value = {"error": {"sk-secret-value": ["a sk-secret-value b", 3, None, {"x": True}]}}
    assert redactor.json(value) == {"error": {MASK: [f"a {MASK} b", 3, None, {"x": True}]}}
    assert value["error"]["sk-secret-value"][0] == "a sk-secret-value b"  # a copy


def test_clip_redacts_first_then_puts_on_one_line():
    redactor = Redactor(KEY)
    text = "x" * 190 + KEY + "\n\x1b[31mred"
    assert redactor.clip(text, 210) == "x" * 190 + MASK + " \ufffd[31mred"
    assert redactor.clip(text, 200) == "x" * 190 + MASK + " \ufffd[31m…"
    assert redactor.clip("a\n\n b " + "c" * 300, 20) == "a b " + "c" * 15 + "…"


def test_for_request_takes_the_query_values():
    redactor = Redactor.for_request(
        "", "https://h/v1?api-version=2024-06-01&sig=a%2Bb%2Fc%3D%3D&x=1"
    )
    assert redactor.text("2024-06-01 a%2Bb%2Fc%3D%3D a+b/c== x=1") == "*** *** *** x=1"


# -- URLs ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        (
            "https://user:pw@h/v1?api-version=2024&key=abc",
            "https://***@h/v1?api-version=***&key=***",
        ),
        ("https://h/v1?token#frag", "https://h/v1?***"),
        ("https://h:8443/v1/", "https://h:8443/v1/"),
        ("http://127.0.0.1:8000/v1?a=&b=2", "http://127.0.0.1:8000/v1?a=***&b=***"),
        ("https://h/v1#secret-fragment", "https://h/v1"),
    ],
)
def test_mask_url(url, shown):
    assert mask_url(url) == shown


@pytest.mark.parametrize(
    ("base", "url"),
    [
        ("https://h/openai/v1?api-version=X", "https://h/openai/v1/chat/completions?api-version=X"),
        ("https://h/v1/", "https://h/v1/chat/completions"),
        ("https://h/v1/?a=1&b=2#f", "https://h/v1/chat/completions?a=1&b=2"),
        ("http://127.0.0.1:9/v1", "http://127.0.0.1:9/v1/chat/completions"),
    ],
)
def test_request_url_joins_the_path_before_the_query(base, url):
    assert request_url(base, "/chat/completions") == url


def test_split_query():
    assert split_query("https://h/v1?api-version=X&k=1") == ("https://h/v1", "api-version=X&k=1")
    assert split_query("https://h/v1") == ("https://h/v1", "")
    assert split_query("https://h/v1#f?not-a-query") == ("https://h/v1", "")


# -- end to end: the key echoed at every offset around a clip ------------------------------------


def no_key_in(exc: NbchatError) -> None:
    texts = [str(exc), repr(exc), *map(str, exc.args), json.dumps(getattr(exc, "body", None))]
    for start in range(len(KEY) - 5):
        piece = KEY[start : start + 6]
        assert not any(piece in text for text in texts), (piece, texts)
    for text in texts:
        for part in text.split("Bearer ")[1:]:
            assert part[:1] in ("*", "…", ""), text


def echo(offset: int) -> str:
    return FILLER[:offset] + f"Authorization: Bearer {KEY}" + " trailing words" * 5


def sse(*objects: Any) -> bytes:
    return b"".join(f"data: {json.dumps(o)}\n\n".encode() for o in objects)


OK = {"id": "c", "choices": [{"index": 0, "delta": {"content": "ok "}, "finish_reason": None}]}


@pytest.fixture
def client(server: FakeOpenAI, monkeypatch: pytest.MonkeyPatch) -> Iterator[ChatClient]:
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    config = ClientConfig(base_url=server.base_url, timeout=5.0, max_retries=0)
    with ChatClient(config) as client:
        yield client


def each_offset(
    server: FakeOpenAI, offsets: range, fault: Callable[[int], Fault], run: Callable[[], Any]
) -> list[NbchatError]:
    errors = []
    for offset in offsets:
        server.script(fault(offset))
        with pytest.raises(NbchatError) as info:
            run()
        no_key_in(info.value)
        assert "\n" not in str(info.value)
        errors.append(info.value)
    return errors


@pytest.mark.parametrize("status", [400, 401, 403, 429, 500])
@pytest.mark.parametrize("streamed", [False, True], ids=["chat", "stream"])
def test_error_statuses(client, server, status, streamed):
    def fault(offset: int) -> Fault:
        return Fault(status=status, body={"error": {"message": echo(offset), "type": "x"}})

    def run() -> Any:
        return list(client.stream(BODY)) if streamed else client.chat(BODY)

    errors = each_offset(server, range(150, 261), fault, run)
    assert all(isinstance(e, APIError) and e.status_code == status for e in errors)
    assert all(MASK in json.dumps(e.body) for e in errors)  # the kept body is redacted too


def test_error_events_in_a_200_stream(client, server):
    def fault(offset: int) -> Fault:
        return Fault(raw_sse=sse(OK, {"error": {"message": echo(offset)}}))

    errors = each_offset(server, range(150, 261), fault, lambda: list(client.stream(BODY)))
    assert all(type(e) is StreamErrorEvent and e.partial_text == "ok " for e in errors)


@pytest.mark.parametrize("shape", ["not-json", "not-a-chunk", "glued"])
def test_malformed_events(client, server, shape):
    def fault(offset: int) -> Fault:
        text = echo(offset)
        data = {
            "not-json": text,
            "not-a-chunk": json.dumps(text),
            "glued": f"{json.dumps(OK)}\ndata: {text}",
        }[shape]
        return Fault(raw_sse=sse(OK) + f"data: {data}\n\n".encode())

    errors = each_offset(server, range(40, 121), fault, lambda: list(client.stream(BODY)))
    assert all(type(e) is MalformedStreamError and e.partial_text == "ok " for e in errors)


def test_an_error_object_in_a_200_body(client, server):
    def fault(offset: int) -> Fault:
        return Fault(status=200, body={"error": {"message": echo(offset)}})

    each_offset(server, range(150, 261), fault, lambda: client.chat(BODY))


def test_a_request_id_header_echoing_the_key(client, server):
    def fault(offset: int) -> Fault:
        return Fault(no_done=True, headers={"x-request-id": echo(offset)[:200]})

    errors = each_offset(server, range(0, 200, 7), fault, lambda: list(client.stream(BODY)))
    assert all(type(e) is TruncatedStreamError for e in errors)


def test_the_key_with_its_newline_is_redacted_in_every_form(server, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", KEY + "\n")  # pasted from a file: still sent, stripped
    server.script(Fault(status=400, body={"error": {"message": f"bad {KEY!r} {KEY + chr(10)!r}"}}))
    client = ChatClient(ClientConfig(base_url=server.base_url, max_retries=0))
    with client, pytest.raises(APIError) as info:
        client.chat(BODY)
    no_key_in(info.value)
    assert server.requests[0].headers["authorization"] == f"Bearer {KEY}"


def brute_masked(text: str, fragments: set[str], size: int) -> str:
    """Every window of ``text`` checked (what the redactor did before it scanned runs only)."""
    spans: list[list[int]] = []
    for i in range(len(text) - size + 1):
        if text[i : i + size] in fragments:
            if spans and i <= spans[-1][1]:
                spans[-1][1] = i + size
            else:
                spans.append([i, i + size])
    for start, end in reversed(spans):
        text = text[:start] + MASK + text[end:]
    return text


def test_scanning_runs_of_the_keys_characters_masks_what_every_window_would():
    import random

    key = 'sk-"pr\\oj_Zq8v-N3xK7mP2wR9tL5yB'  # quotes and backslashes: every form has its own
    redactor = Redactor(key, ["sig=abc/def+ghi0123456"])
    rng = random.Random(5)
    pieces = [key[i : i + rng.randint(6, 12)] for i in range(0, len(key) - 6)]
    pieces += [json.dumps(key)[1:-1][3:15], repr(key)[5:17], "abc/def+ghi0", "é 漢字 "]
    for _ in range(300):
        text = "".join(rng.choice([*pieces, " ", "-", "word", "\n", "xK7m"]) for _ in range(12))
        fragments = redactor._fragments
        secrets_out = text
        for secret in redactor._secrets:
            secrets_out = secrets_out.replace(secret, MASK)
        assert redactor.text(text) == brute_masked(secrets_out, fragments, 6), text
