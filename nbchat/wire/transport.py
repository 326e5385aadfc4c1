"""The edge between httpx and nbchat: the one place where httpx failures and error responses
become nbchat errors (`nbchat.errors` stays a leaf that knows nothing of httpx).

`ChatClient` sends requests and calls `error_from_response` / `error_from_transport`; what it
hands on is an `OpenResponse`, whose reads raise nbchat errors only. Every message quoting
server text (an error body, a header, an exception's text) is redacted first, then clipped,
with the `Redactor` of the request; URLs are shown masked.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx

from nbchat.errors import (
    APIConnectionError,
    APIError,
    APITimeoutError,
    AuthenticationError,
    BadRequestError,
    ContextLengthError,
    NbchatError,
    NotFoundError,
    ProtocolError,
    RateLimitError,
    ServerError,
    TruncatedStreamError,
    TryAgainError,
)
from nbchat.wire.checked import checked_completion
from nbchat.wire.protocol import error_code, error_detail
from nbchat.wire.redaction import Redactor, mask_url

__all__ = ["OpenResponse", "error_from_response", "error_from_transport"]

_ID_LIMIT = 64  # a request id is a short token; a longer header is not one

_STATUS_ERRORS: dict[int, type[APIError]] = {
    400: BadRequestError,
    401: AuthenticationError,
    403: AuthenticationError,
    404: NotFoundError,
    408: TryAgainError,
    409: TryAgainError,
    429: RateLimitError,
}

_CONTEXT_LENGTH_HINTS = (
    "context_length",  # OpenAI, DashScope, DeepSeek: code context_length_exceeded
    "maximum context length",  # vLLM
    "exceed_context_size",  # llama.cpp server
    "context window",
)


def _is_context_length(code: str, detail: str) -> bool:
    text = f"{code} {detail}".lower()
    return any(hint in text for hint in _CONTEXT_LENGTH_HINTS)


def request_id_of(response: httpx.Response, redactor: Redactor) -> str | None:
    """The ``x-request-id`` header: server text like any other, so redacted and clipped."""
    value = response.headers.get("x-request-id")
    return redactor.clip(value, _ID_LIMIT) if value else None


def _parse_json(text: str) -> Any:
    """A body as JSON; `ValueError` for anything that is not (too deep a nesting included)."""
    try:
        return json.loads(text)
    except RecursionError:
        raise ValueError("nested too deeply") from None


def _error_body(response: httpx.Response) -> Any:
    """An error response's body: JSON if it is JSON, else its text ("" if it was never read)."""
    try:
        text = response.text
    except httpx.ResponseNotRead:  # the connection dropped while the body was read
        return ""
    try:
        return _parse_json(text)
    except ValueError:
        return text


# Where a key comes from when it is not the user's own: Colab keeps its model proxy's key among
# the notebook's secrets, and its environment does not always hold it.
_KEY_SOURCES = {
    "MODEL_PROXY_API_KEY": " (in Colab: google.colab.userdata.get('MODEL_PROXY_API_KEY'))",
}


def _auth_message(status: int, host: str, key_env: str, key_sent: bool) -> str:
    if not key_env:
        return (
            f"{host} wants an API key ({status}), but none is configured: "
            "name the variable that holds it with api_key_env."
        )
    if not key_sent:
        where = _KEY_SOURCES.get(key_env, "")
        return (
            f"${key_env} is not set, so no key was sent to {host} ({status}). Set it{where}, or "
            "point api_key_env at the variable that holds the key."
        )
    return (
        f"The server rejected the API key ({status}). "
        f"Check that ${key_env} holds a valid key for {host}."
    )


RETRY_HEADERS = ("retry-after", "retry-after-ms", "x-should-retry")


def error_from_response(
    response: httpx.Response,
    *,
    key_env: str,
    redactor: Redactor,
    key_sent: bool = True,
    model: str | None = None,
    retries: int = 0,
) -> APIError:
    """Translate an error response into one short, actionable `APIError`.

    The body should already be read. `key_env` is the *name* of the key's variable ("" when
    the configuration sends no key); `key_sent` says whether an Authorization header went out.
    The message, the request id and the kept ``body`` are redacted with `redactor`.
    """
    status = response.status_code
    body = redactor.json(_error_body(response))
    detail = redactor.clip(error_detail(body) or (body if isinstance(body, str) else ""))
    code = error_code(body)
    context_length = status == 400 and _is_context_length(code, detail)
    message = _status_message(response, key_env, key_sent, model, retries, context_length)
    if detail and status != 401:  # a 401's text is about the key, and may quote part of it
        message = f"{message} Server said: {detail}"
    cls = _STATUS_ERRORS.get(status, ServerError if status >= 500 else APIError)
    if context_length:
        cls = ContextLengthError
    return cls(
        message,
        status_code=status,
        request_id=request_id_of(response, redactor),
        body=body,
        retries=retries,
        retry_headers={
            name: response.headers[name] for name in RETRY_HEADERS if name in response.headers
        },
    )


def _status_message(
    response: httpx.Response,
    key_env: str,
    key_sent: bool,
    model: str | None,
    retries: int,
    context_length: bool,
) -> str:
    """What an error status means, in one line (the server's own words are added after)."""
    status = response.status_code
    tried = f" after {retries + 1} attempts" if retries else ""
    if status in (401, 403):
        return _auth_message(status, response.request.url.host, key_env, key_sent)
    if status == 404:
        what = f"model {model!r}" if model else str(response.request.url.path)
        return f"Not found (404): {what}. List the available models with `%chat models`."
    if context_length:
        return (
            "The conversation is too long for the model (context_length_exceeded); a model "
            "with a larger context would take it"
        )
    if status == 429:
        return f"Rate limited (429){tried}. Wait a moment and run the cell again."
    if status >= 500:
        return f"The server failed ({status}){tried}. Try again later."
    if status in (408, 409):
        return f"The server asked for a new try ({status}){tried}. Try again in a moment."
    return f"The server rejected the request ({status})."


def error_from_transport(
    exc: httpx.HTTPError, *, url: str, redactor: Redactor, retries: int = 0
) -> NbchatError:
    """Translate an httpx failure that is not an HTTP status into an nbchat error.

    ``url`` is shown masked. The message never quotes a protocol error's text: h11 quotes the
    offending header value, which for a malformed key is the key.
    """
    shown = mask_url(url)
    tried = f" after {retries + 1} attempts" if retries else ""
    if isinstance(exc, httpx.LocalProtocolError | httpx.UnsupportedProtocol):
        return APIConnectionError(
            f"The request to {shown} could not be sent ({type(exc).__name__}): check the base URL "
            "and that the key's variable holds nothing but the key."
        )
    if isinstance(exc, httpx.DecodingError):
        return ProtocolError(f"{shown} sent a body that could not be decoded (DecodingError).")
    if isinstance(exc, httpx.TimeoutException):
        kind = type(exc).__name__.replace("Timeout", " timeout").lower()
        return APITimeoutError(
            f"No answer from {shown}{tried} ({kind}). Raise the timeout or try again."
        )
    if isinstance(exc, httpx.ConnectError):
        return APIConnectionError(
            f"Cannot connect to {shown}{tried}. Is the server running and the base URL right?"
        )
    detail = redactor.clip(str(exc), 120)
    return APIConnectionError(f"Connection to {shown} failed{tried}: {detail}")


class OpenResponse:
    """A successful response whose body is still to be read: what the client hands a reader.

    Reading it (`iter_bytes`, `json`, `completion`) raises nbchat errors only. ``redactor``
    is the request's, for the reader's own messages; ``url`` is masked and ``request_id``
    redacted, both fit to quote. The reader closes it.
    """

    __slots__ = ("_response", "redactor", "request_id", "url")

    def __init__(self, response: httpx.Response, redactor: Redactor) -> None:
        self._response = response
        self.redactor = redactor
        self.url = mask_url(str(response.request.url))
        self.request_id = request_id_of(response, redactor)

    @property
    def status_code(self) -> int:
        return self._response.status_code

    @property
    def content_type(self) -> str:
        return self._response.headers.get("content-type", "").lower()

    @property
    def is_closed(self) -> bool:
        """Whether the connection was dropped or handed back (what a reader must leave)."""
        return self._response.is_closed

    def close(self) -> None:
        """Drop the connection (or hand it back to the pool once the body was read)."""
        self._response.close()

    def ref(self) -> str:
        """`` (request id ...)`` for a message, or "" when the server sent none."""
        return f" (request id {self.request_id})" if self.request_id else ""

    def iter_bytes(self) -> Iterator[bytes]:
        """The body as it arrives; a connection lost on the way is a `TruncatedStreamError`
        (without a partial answer: the reader adds what it has)."""
        try:
            yield from self._response.iter_bytes()
        except httpx.HTTPError as exc:
            raise self._lost(exc) from exc

    def json(self) -> Any:
        """The whole body as JSON, or `ProtocolError`."""
        try:
            self._response.read()
        except httpx.HTTPError as exc:
            raise self._lost(exc) from exc
        try:
            return _parse_json(self._response.text)
        except ValueError:
            raise ProtocolError(f"{self.url} answered with a body that is not JSON.") from None

    def read(self) -> bytes:
        """The whole body as bytes (a file's content); a connection lost on the way is a
        `TruncatedStreamError`."""
        try:
            return self._response.read()
        except httpx.HTTPError as exc:
            raise self._lost(exc) from exc

    def completion(self) -> dict[str, Any]:
        """The body as a ``chat.completion`` (`checked_completion`)."""
        return checked_completion(
            self.json(),
            self.redactor,
            url=self.url,
            status_code=self.status_code,
            request_id=self.request_id,
        )

    def _lost(self, exc: httpx.HTTPError) -> TruncatedStreamError:
        if isinstance(exc, httpx.TimeoutException):
            what = "The server went quiet mid-answer (read timeout)"
        else:
            what = f"The connection dropped mid-answer ({type(exc).__name__})"
        return TruncatedStreamError(
            f"{what}{self.ref()}; the partial answer is kept but not stored. Run the cell again."
        )
