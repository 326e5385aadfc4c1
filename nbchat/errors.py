"""Every error nbchat raises, and the one place where httpx errors are translated.

    NbchatError
    ├── ConfigError                 settings that cannot work (no key, bad option)
    ├── APIError                    the server answered with an error status
    │   ├── BadRequestError         400
    │   │   └── ContextLengthError  400, the conversation is too long for the model
    │   ├── AuthenticationError     401 / 403: wrong or missing key
    │   ├── NotFoundError           404: usually a model that does not exist
    │   ├── RateLimitError          429, after the retries
    │   └── ServerError             5xx, after the retries
    ├── APIConnectionError          the server could not be reached, after the retries
    │   └── APITimeoutError         no answer in time
    ├── StreamError                 an answer that started but did not finish
    │   ├── TruncatedStreamError    the connection ended before the answer did
    │   ├── StreamErrorEvent        the server sent an error inside the stream
    │   ├── StreamInterrupted       Ctrl-C while streaming (also a KeyboardInterrupt)
    │   └── MalformedStreamError    an event that is not a chunk (also a ProtocolError)
    ├── ProtocolError               a body that is not the protocol (bad JSON, wrong shape)
    ├── OfflineMiss                 offline mode and no stored answer for this request
    └── NotebookError               a notebook file that cannot be read

Every message is one short line that says what to do next; it never contains an API key.
A `StreamError` carries the partial answer received so far (`.partial`, completion-shaped).
"""

from __future__ import annotations

from typing import Any

import httpx

__all__ = [
    "APIConnectionError",
    "APIError",
    "APITimeoutError",
    "AuthenticationError",
    "BadRequestError",
    "ConfigError",
    "ContextLengthError",
    "MalformedStreamError",
    "NbchatError",
    "NotFoundError",
    "NotebookError",
    "OfflineMiss",
    "ProtocolError",
    "RateLimitError",
    "ServerError",
    "StreamError",
    "StreamErrorEvent",
    "StreamInterrupted",
    "TruncatedStreamError",
    "error_from_response",
    "error_from_transport",
]


class NbchatError(Exception):
    """Base class of every nbchat error."""

    def _render_traceback_(self) -> list[str]:
        """IPython shows this instead of a stack: the cell fails with one short line.

        (A ``UsageError`` would print the same way but leave the execute reply "ok", so
        "Run All" would not stop.)
        """
        return [f"\x1b[0;31m{type(self).__name__}\x1b[0m: {self}"]


class ConfigError(NbchatError):
    """The settings cannot work as given."""


class NotebookError(NbchatError):
    """A notebook file is missing, unreadable or not a notebook."""


class OfflineMiss(NbchatError):
    """Offline mode is on and no stored answer matches the request."""


class ProtocolError(NbchatError):
    """The server's answer does not follow the chat-completions protocol."""


class APIError(NbchatError):
    """The server answered with an error status."""

    def __init__(
        self,
        message: str,
        *,
        status_code: int,
        request_id: str | None = None,
        body: Any = None,
        retries: int = 0,
    ) -> None:
        if request_id:
            message = f"{message} (request id {request_id})"
        super().__init__(message)
        self.status_code = status_code
        self.request_id = request_id
        self.body = body
        self.retries = retries


class BadRequestError(APIError):
    """400: the request was rejected as invalid."""


class ContextLengthError(BadRequestError):
    """400: the conversation does not fit in the model's context window."""


class AuthenticationError(APIError):
    """401/403: the key is wrong, missing or lacks permission."""


class NotFoundError(APIError):
    """404: usually a model name the server does not know."""


class RateLimitError(APIError):
    """429 after all retries."""


class ServerError(APIError):
    """5xx after all retries."""


class APIConnectionError(NbchatError):
    """The server could not be reached."""


class APITimeoutError(APIConnectionError):
    """The server did not answer in time."""


class StreamError(NbchatError):
    """An answer that started streaming but did not complete.

    `partial` is the answer received so far, folded into a `chat.completion`-shaped dict.
    """

    def __init__(self, message: str, *, partial: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.partial = partial

    @property
    def partial_text(self) -> str:
        """The text of the first choice received before the failure."""
        if not self.partial or not self.partial.get("choices"):
            return ""
        return self.partial["choices"][0]["message"].get("content") or ""


class TruncatedStreamError(StreamError):
    """The connection closed before the answer finished."""


class StreamErrorEvent(StreamError):
    """The server reported an error inside a 200 stream."""


class StreamInterrupted(StreamError, KeyboardInterrupt):
    """Ctrl-C while the answer streamed; still a `KeyboardInterrupt` for code that expects one."""


class MalformedStreamError(StreamError, ProtocolError):
    """An event in the stream is not valid JSON or not a chunk."""


_STATUS_ERRORS: dict[int, type[APIError]] = {
    400: BadRequestError,
    401: AuthenticationError,
    403: AuthenticationError,
    404: NotFoundError,
    429: RateLimitError,
}


def _server_message(body: Any) -> str:
    """The error message a server put in an OpenAI-style body, if any."""
    if isinstance(body, dict):
        error = body.get("error", body)
        if isinstance(error, dict):
            message = error.get("message") or error.get("detail")
            if isinstance(message, str):
                return message.strip()
        elif isinstance(error, str):
            return error.strip()
    return ""


def _error_code(body: Any) -> str:
    if isinstance(body, dict) and isinstance(body.get("error"), dict):
        return str(body["error"].get("code") or body["error"].get("type") or "")
    return ""


def _clip(text: str, limit: int = 200) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


_CONTEXT_LENGTH_HINTS = (
    "context_length",  # OpenAI, DashScope, DeepSeek: code context_length_exceeded
    "maximum context length",  # vLLM
    "exceed_context_size",  # llama.cpp server
    "context window",
)


def _is_context_length(code: str, detail: str) -> bool:
    text = f"{code} {detail}".lower()
    return any(hint in text for hint in _CONTEXT_LENGTH_HINTS)


def error_from_response(
    response: httpx.Response,
    *,
    key_env: str,
    model: str | None = None,
    retries: int = 0,
) -> APIError:
    """Translate an error response into one short, actionable `APIError`.

    The body must already be read. `key_env` is the *name* of the variable holding the key.
    """
    status = response.status_code
    try:
        body: Any = response.json()
    except ValueError:
        body = response.text
    except httpx.ResponseNotRead:  # the connection dropped while the body was read
        body = ""
    detail = _clip(_server_message(body) or (body if isinstance(body, str) else ""))
    code = _error_code(body)
    request_id = response.headers.get("x-request-id")
    tried = f" after {retries + 1} attempts" if retries else ""

    if status in (401, 403):
        message = (
            f"The server rejected the API key ({status}). Check that ${key_env} holds a valid key "
            f"for {response.request.url.host}."
        )
    elif status == 404:
        what = f"model {model!r}" if model else str(response.request.url.path)
        message = f"Not found (404): {what}. List the available models with `%chat models`."
    elif status == 400 and _is_context_length(code, detail):
        message = (
            "The conversation is too long for the model (context_length_exceeded). "
            "Start afresh with `%%chat --new`, or use a model with a larger context."
        )
    elif status == 429:
        message = f"Rate limited (429){tried}. Wait a moment and run the cell again."
    elif status >= 500:
        message = f"The server failed ({status}){tried}. Try again later."
    else:
        message = f"The server rejected the request ({status})."
    if detail and status != 401:
        message = f"{message} Server said: {detail}"
    cls = _STATUS_ERRORS.get(status, ServerError if status >= 500 else APIError)
    if status == 400 and _is_context_length(code, detail):
        cls = ContextLengthError
    return cls(message, status_code=status, request_id=request_id, body=body, retries=retries)


def error_from_transport(exc: httpx.HTTPError, *, url: str, retries: int = 0) -> NbchatError:
    """Translate an httpx failure that is not an HTTP status into an nbchat error.

    The message never quotes a protocol error's text: h11 quotes the offending header value,
    which for a malformed key is the key.
    """
    tried = f" after {retries + 1} attempts" if retries else ""
    if isinstance(exc, httpx.LocalProtocolError | httpx.UnsupportedProtocol):
        return APIConnectionError(
            f"The request to {url} could not be sent ({type(exc).__name__}): check the base URL "
            "and that the key's variable holds nothing but the key."
        )
    if isinstance(exc, httpx.DecodingError):
        return ProtocolError(
            f"{url} sent a body that could not be decoded ({exc.__class__.__name__})."
        )
    if isinstance(exc, httpx.TimeoutException):
        kind = type(exc).__name__.replace("Timeout", " timeout").lower()
        return APITimeoutError(
            f"No answer from {url}{tried} ({kind}). Raise the timeout or try again."
        )
    if isinstance(exc, httpx.ConnectError):
        return APIConnectionError(
            f"Cannot connect to {url}{tried}. Is the server running and the base URL right?"
        )
    return APIConnectionError(f"Connection to {url} failed{tried}: {_clip(str(exc), 120)}")
