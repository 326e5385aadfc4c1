"""Error translation: short, actionable messages that never leak the key."""

from __future__ import annotations

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
    MalformedStreamError,
    NbchatError,
    NotFoundError,
    ProtocolError,
    RateLimitError,
    ServerError,
    StreamError,
    StreamInterrupted,
    TruncatedStreamError,
    error_from_response,
    error_from_transport,
)

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
    assert "%%chat --new" in str(exc)


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


def test_hierarchy():
    assert issubclass(StreamInterrupted, KeyboardInterrupt)
    assert issubclass(StreamInterrupted, StreamError)
    assert issubclass(MalformedStreamError, ProtocolError)
    assert issubclass(APITimeoutError, APIConnectionError)
    for cls in (APIError, APIConnectionError, StreamError, ProtocolError):
        assert issubclass(cls, NbchatError)


def test_stream_error_partial_text():
    partial = {"choices": [{"message": {"role": "assistant", "content": "half"}}]}
    assert TruncatedStreamError("x", partial=partial).partial_text == "half"
    assert TruncatedStreamError("x").partial_text == ""
    assert TruncatedStreamError("x", partial={"choices": []}).partial_text == ""
