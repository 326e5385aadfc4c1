"""The translation of httpx failures and error responses (`nbchat.wire.transport`):
short, actionable messages that never leak the key."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from nbchat.errors import (
    APIConnectionError,
    APIError,
    APITimeoutError,
    AuthenticationError,
    BadRequestError,
    ContextLengthError,
    NbchatError,
    NotFoundError,
    RateLimitError,
    Remedy,
    ServerError,
)
from nbchat.wire.redaction import Redactor
from nbchat.wire.transport import error_from_response as translate_response
from nbchat.wire.transport import error_from_transport as translate_transport

KEY = "sk-proj-Zq8vN3xK7mP2wR9tL5yB1cF6hJ4dG0sA"

URL = "https://api.example.com/v1/chat/completions"
LEAKY = "Incorrect API key provided: sk-proj-abc*******************wxyz. You can find your key."


def response(
    status: int,
    body: Any = None,
    *,
    text: str | None = None,
    headers: dict[str, str] | None = None,
    url: str = URL,
) -> httpx.Response:
    request = httpx.Request("POST", url)
    if text is not None:
        return httpx.Response(status, text=text, headers=headers, request=request)
    return httpx.Response(status, json=body, headers=headers, request=request)


def err(message: str, code: str | None = None, type_: str = "invalid_request_error") -> dict:
    return {"error": {"message": message, "type": type_, "param": None, "code": code}}


def error_from_response(response: httpx.Response, **options: Any) -> APIError:
    """The translation with the test key as the request's secret (unless a test says otherwise)."""
    return translate_response(response, **{"redactor": Redactor(KEY), **options})


def error_from_transport(exc: httpx.HTTPError, **options: Any) -> NbchatError:
    return translate_transport(exc, **{"redactor": Redactor(KEY), **options})


def no_key_in(exc: Exception, key: str = KEY) -> None:
    """Not even 6 characters of the key anywhere the error shows or keeps text."""
    texts = [str(exc), repr(exc), *map(str, exc.args), json.dumps(getattr(exc, "body", None))]
    texts.append(str(getattr(exc, "request_id", "")))
    for start in range(len(key) - 5):
        piece = key[start : start + 6]
        assert not any(piece in text for text in texts), (piece, texts)
    # Redacted before the clip: what follows "Bearer " is the mask (or the clip), never a
    # first character or two of the key.
    for text in texts:
        for part in text.split("Bearer ")[1:]:
            assert part[:1] in ("*", "…", ""), text


def single_line(exc: Exception) -> str:
    message = str(exc)
    assert "\n" not in message
    assert "Traceback" not in message
    return message


def test_401_names_the_variable_and_never_the_servers_message():
    exc = error_from_response(
        response(401, err(LEAKY, "invalid_api_key")), key_env="DASHSCOPE_API_KEY"
    )
    assert type(exc) is AuthenticationError
    message = single_line(exc)
    assert "$DASHSCOPE_API_KEY" in message
    assert "api.example.com" in message
    assert "sk-proj" not in message and "wxyz" not in message
    assert "sk-proj" not in repr(exc)
    assert exc.status_code == 401


def test_403_is_an_authentication_error():
    exc = error_from_response(response(403, err("forbidden")), key_env="OPENAI_API_KEY")
    assert isinstance(exc, AuthenticationError)
    assert "$OPENAI_API_KEY" in str(exc)


def test_404_names_the_model_and_suggests_chat_models():
    body = err("The model `gpt-9` does not exist", "model_not_found")
    exc = error_from_response(response(404, body), key_env="OPENAI_API_KEY", model="gpt-9")
    assert type(exc) is NotFoundError
    message = single_line(exc)
    assert "'gpt-9'" in message
    assert "%chat models" in message


def test_404_without_model_names_the_path():
    exc = error_from_response(
        response(404, err("Invalid URL"), url="http://h/v1/models"), key_env="K"
    )
    assert "/v1/models" in str(exc)


@pytest.mark.parametrize(
    "body",
    [
        err("This model's maximum context length is 8192 tokens.", "context_length_exceeded"),
        err("context_length_exceeded: too many tokens"),
    ],
)
def test_context_length(body):
    exc = error_from_response(response(400, body), key_env="K", model="m")
    assert type(exc) is ContextLengthError
    assert isinstance(exc, BadRequestError)
    assert "too long" in str(exc)
    assert exc.remedies == (Remedy.NEW_THREAD,), "the caller says how to start afresh"


def test_other_400_keeps_the_servers_reason():
    exc = error_from_response(response(400, err("temperature must be <= 2")), key_env="K")
    assert type(exc) is BadRequestError
    assert "temperature must be <= 2" in str(exc)


@pytest.mark.parametrize(
    ("status", "cls", "words"),
    [(429, RateLimitError, "Rate limited (429)"), (503, ServerError, "failed (503)")],
)
def test_429_and_5xx_mention_the_retries(status, cls, words):
    exc = error_from_response(response(status, err("slow down")), key_env="K", retries=2)
    assert type(exc) is cls
    message = single_line(exc)
    assert words in message
    assert "after 3 attempts" in message
    assert exc.retries == 2
    first = error_from_response(response(status, err("slow down")), key_env="K")
    assert "attempts" not in str(first)


def test_other_5xx_and_odd_statuses():
    assert type(error_from_response(response(502, None), key_env="K")) is ServerError
    odd = error_from_response(response(418, err("teapot")), key_env="K")
    assert type(odd) is APIError
    assert "418" in str(odd)


def test_request_id_is_kept():
    exc = error_from_response(
        response(500, err("boom"), headers={"x-request-id": "req_123"}), key_env="K"
    )
    assert exc.request_id == "req_123"
    assert "req_123" in str(exc)


def test_non_json_body():
    html = "<html><body><h1>502 Bad Gateway</h1>\n<hr>nginx</body></html>"
    exc = error_from_response(response(502, text=html), key_env="K")
    assert type(exc) is ServerError
    assert exc.body == html
    single_line(exc)


def test_long_body_is_clipped():
    exc = error_from_response(response(400, err("x" * 5000)), key_env="K")
    assert len(str(exc)) < 400


def test_empty_body():
    exc = error_from_response(response(500, text=""), key_env="K")
    assert "500" in str(exc)


def test_body_that_was_never_read():
    # The client reads error bodies but tolerates a connection dropped while reading: the
    # translation must still work on a response whose body is unavailable.
    class Broken(httpx.SyncByteStream):
        def __iter__(self):
            raise httpx.ReadError("connection reset")
            yield b""  # pragma: no cover

    resp = httpx.Response(503, stream=Broken(), request=httpx.Request("POST", URL))
    with pytest.raises(httpx.ReadError):
        resp.read()
    exc = error_from_response(resp, key_env="K", retries=2)
    assert type(exc) is ServerError
    assert "503" in str(exc)


def test_string_error_body():
    exc = error_from_response(response(400, {"error": "bad thing"}), key_env="K")
    assert "bad thing" in str(exc)


def test_transport_errors():
    timeout = error_from_transport(httpx.ReadTimeout("timed out"), url=URL, retries=2)
    assert type(timeout) is APITimeoutError
    assert "read timeout" in str(timeout)
    assert "after 3 attempts" in str(timeout)
    connect = error_from_transport(httpx.ConnectError("[Errno 111] refused"), url=URL)
    assert type(connect) is APIConnectionError
    assert "Cannot connect to " + URL in single_line(connect)
    assert "Errno" not in str(connect)
    other = error_from_transport(httpx.RemoteProtocolError("bad\n" * 100), url=URL)
    assert type(other) is APIConnectionError
    single_line(other)


# -- a missing key -------------------------------------------------------------------------------


@pytest.mark.parametrize("status", [401, 403])
def test_no_key_sent_says_the_variable_is_not_set(status):
    exc = error_from_response(response(status, err("no auth")), key_env="MY_KEY", key_sent=False)
    assert type(exc) is AuthenticationError
    message = single_line(exc)
    assert message.startswith(
        f"$MY_KEY is not set, so no key was sent to api.example.com ({status}). Set it, or point "
        "api_key_env at the variable that holds the key."
    )


def test_colabs_proxy_key_not_set_says_where_colab_keeps_it():
    exc = error_from_response(
        response(401, err("no auth")), key_env="MODEL_PROXY_API_KEY", key_sent=False
    )
    assert single_line(exc).startswith(
        "$MODEL_PROXY_API_KEY is not set, so no key was sent to api.example.com (401). Set it (in "
        "Colab: google.colab.userdata.get('MODEL_PROXY_API_KEY')), or point api_key_env at"
    )


@pytest.mark.parametrize("key_sent", [False, True])
def test_no_key_variable_says_none_is_configured(key_sent):
    exc = error_from_response(response(401, err("no auth")), key_env="", key_sent=key_sent)
    message = single_line(exc)
    assert message.startswith("api.example.com wants an API key (401), but none is configured")
    assert "api_key_env" in message


def test_a_sent_key_that_is_refused_keeps_the_message():
    exc = error_from_response(response(401, err("bad")), key_env="MY_KEY", key_sent=True)
    assert str(exc).startswith("The server rejected the API key (401). Check that $MY_KEY")


# -- the key never leaks, even in part -----------------------------------------------------------

FILLER = "the quick brown fox jumps over the lazy dog " * 10


def echo(offset: int, key: str = KEY) -> str:
    """Server text with ``Authorization: Bearer KEY`` starting ``offset`` characters in."""
    return FILLER[:offset] + f"Authorization: Bearer {key} was refused" + FILLER


@pytest.mark.parametrize("status", [400, 401, 403, 404, 418, 429, 500])
@pytest.mark.parametrize("shape", ["json", "text", "string-error"])
def test_an_echoed_key_is_redacted_before_the_clip(status, shape):
    for offset in range(150, 261):
        if shape == "json":
            resp = response(status, err(echo(offset)))
        elif shape == "string-error":
            resp = response(status, {"error": echo(offset)})
        else:
            resp = response(status, text=echo(offset))
        exc = error_from_response(resp, key_env="K", model="m", retries=1)
        no_key_in(exc)
        single_line(exc)


@pytest.mark.parametrize(
    "key", [KEY, "\n" + KEY + "\n", f"{KEY}'\"\\"], ids=["plain", "with-newlines", "quotes"]
)
def test_the_key_in_its_quoted_forms_is_redacted(key):
    stripped = key.strip()
    body = {"error": {"message": f"got {key!r} / {json.dumps(key)} / {stripped}"}}
    exc = translate_response(response(400, body), key_env="K", redactor=Redactor(key))
    no_key_in(exc, stripped)


def test_an_echoed_request_id_is_redacted_and_short():
    headers = {"x-request-id": f"req_{KEY}" + "x" * 500}
    exc = error_from_response(response(500, err("boom"), headers=headers), key_env="K")
    no_key_in(exc)
    assert exc.request_id is not None and len(exc.request_id) <= 64
    single_line(exc)


def test_transport_error_text_is_redacted_before_the_clip():
    for offset in range(60, 141):
        exc = error_from_transport(httpx.RemoteProtocolError(echo(offset)), url=URL)
        no_key_in(exc)
        assert len(single_line(exc)) < 260


def test_urls_in_transport_errors_are_masked():
    url = "https://h.example/v1/chat/completions?api-version=2024-06-01&sig=abcdefgh"
    for exc in (
        httpx.ConnectError("refused"),
        httpx.ReadTimeout("slow"),
        httpx.LocalProtocolError("bad header"),
        httpx.DecodingError("gzip"),
        httpx.RemoteProtocolError("reset"),
    ):
        message = str(error_from_transport(exc, url=url))
        assert "https://h.example/v1/chat/completions?api-version=***&sig=***" in message
        assert "abcdefgh" not in message and "2024-06-01" not in message
