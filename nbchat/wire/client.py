"""A small, typed client for any OpenAI-compatible chat-completions server, over ``httpx``.

    client = ChatClient(ClientConfig(base_url="http://127.0.0.1:8000/v1"))
    stream = client.stream({"model": "m", "messages": [{"role": "user", "content": "hi"}]})
    for text in stream:
        print(text, end="")
    stream.completion   # the whole answer, shaped like a non-streamed chat.completion

The key is read from the environment variable named by ``ClientConfig.api_key_env`` at each request
and is never stored on the client or the config. A query string in the base URL (Azure-style
``?api-version=...``) stays on every request URL; its values are treated as secrets.

The client sends (retries, the ``stream_options`` fallback) and hands a streamed answer over as
an `OpenResponse` (`open_stream`); `ChatStream` reads it. httpx errors become nbchat errors in
`nbchat.wire.transport`.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import httpx

from nbchat._version import __version__
from nbchat.errors import APIError, ConfigError, ProtocolError
from nbchat.wire.config import ClientConfig
from nbchat.wire.redaction import Redactor, mask_url
from nbchat.wire.retry import retry_delay, should_retry_status
from nbchat.wire.stream import ChatStream
from nbchat.wire.transport import OpenResponse, error_from_response, error_from_transport

__all__ = ["ChatClient", "ChatStream", "ClientConfig", "Upload"]


@dataclass(frozen=True)
class Upload:
    """A multipart form of one file: its fields (``purpose``), the file's name, content and
    type."""

    fields: dict[str, str]
    name: str
    content: bytes
    content_type: str = "application/octet-stream"

    def files(self) -> dict[str, tuple[str, bytes, str]]:
        """The file as httpx takes it."""
        return {"file": (self.name, self.content, self.content_type)}


class ChatClient:
    """Sends chat-completions requests with retries and translates failures into nbchat errors."""

    def __init__(
        self,
        config: ClientConfig | None = None,
        *,
        transport: httpx.BaseTransport | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.config = config or ClientConfig()
        self._sleep = sleep
        self._http = httpx.Client(
            transport=transport,
            timeout=httpx.Timeout(self.config.timeout, connect=self.config.connect_timeout),
            headers={"User-Agent": f"nbchat/{__version__}"},
        )
        # Learned once per client: the server rejects stream_options with a 400.
        self.usage_option_rejected = False

    def close(self) -> None:
        """Close the connection pool."""
        self._http.close()

    def __enter__(self) -> ChatClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # -- public calls ----------------------------------------------------------------------

    def wire_body(self, body: Mapping[str, Any], *, stream: bool) -> dict[str, Any]:
        """``body`` as this client sends it: with ``stream``, and ``stream_options`` asking
        for usage when streaming (unless this server rejected it before)."""
        request = {**body, "stream": stream}
        request.pop("stream_options", None)
        if stream and not self.usage_option_rejected:
            request["stream_options"] = {"include_usage": True}
        return request

    def chat(self, body: Mapping[str, Any]) -> dict[str, Any]:
        """One non-streamed answer as a ``chat.completion`` dict."""
        request = self.wire_body(body, stream=False)
        response = self._send("POST", "/chat/completions", request, stream=False)
        try:
            return response.completion()
        finally:
            response.close()

    def stream(self, body: Mapping[str, Any], *, keep_chunks: bool = False) -> ChatStream:
        """A streamed answer: iterate it for text deltas; ``.completion`` holds the whole answer.

        Nothing is sent until the iteration starts."""
        return ChatStream(self.open_stream, body, keep_chunks=keep_chunks)

    def open_stream(self, body: Mapping[str, Any]) -> OpenResponse:
        """Send ``body`` as a streamed request and return the open, successful response.

        Usage is asked for (``stream_options``) unless this server rejected it before; a
        server that rejects it gets the request again without it, once. Raises nbchat errors
        (after the retries); the caller must close the response.
        """
        request = self.wire_body(body, stream=True)
        try:
            return self._send("POST", "/chat/completions", request, stream=True)
        except APIError as exc:  # 400 from most servers, 422 from FastAPI-style validation
            rejected = exc.status_code in (400, 422) and "stream_options" in str(exc.body)
            if "stream_options" not in request or not rejected:
                raise
        self.usage_option_rejected = True
        request.pop("stream_options")
        return self._send("POST", "/chat/completions", request, stream=True)

    def request(
        self,
        method: str,
        path: str,
        body: Mapping[str, Any] | None = None,
        *,
        upload: Upload | None = None,
        resend: bool = True,
    ) -> OpenResponse:
        """Any other call of the API (``GET /models``, the batch API's files and batches): a
        JSON ``body``, or an ``upload`` (a multipart form: its fields and one file), sent with
        the key, the retries and the error translation of a chat request. ``resend=False``: a
        connection lost once the request may have reached the server is not retried (what it
        makes, it bills). The caller reads and closes the response."""
        return self._send(method, path, body, stream=False, upload=upload, resend=resend)

    def models(self) -> list[str]:
        """The model ids the server lists at ``GET /models``."""
        response = self.request("GET", "/models")
        try:
            payload = response.json()
        finally:
            response.close()
        data = payload.get("data") if isinstance(payload, dict) else payload
        if not isinstance(data, list):
            raise ProtocolError(f"{response.url} did not answer with a model list.")
        ids = (item.get("id") for item in data if isinstance(item, dict))
        return sorted(model for model in ids if isinstance(model, str))

    # -- transport -------------------------------------------------------------------------

    def _headers(self, raw_key: str) -> dict[str, str]:
        # Surrounding whitespace (a key pasted from a file with its newline) is dropped.
        key = raw_key.strip()
        if not key:
            return {}
        if not (key.isascii() and key.isprintable()):
            raise ConfigError(
                f"${self.config.api_key_env} holds characters an HTTP header cannot carry "
                "(check for quotes or stray text around the key)."
            )
        return {"Authorization": f"Bearer {key}"}

    def redactor(self) -> Redactor:
        """What removes this client's secrets (its key, its URL's credentials) from text."""
        return self.config.redactor()

    def _send(
        self,
        method: str,
        path: str,
        body: Mapping[str, Any] | None,
        *,
        stream: bool,
        upload: Upload | None = None,
        resend: bool = True,
    ) -> OpenResponse:
        """Send with retries; return a successful response (streaming ones still open)."""
        url, raw_key = self.config.url(path), self.config.raw_key()
        redactor = Redactor.for_request(raw_key, self.config.base_url)
        headers = self._headers(raw_key)
        retries = self.config.max_retries
        for attempt in range(retries + 1):
            try:
                if upload is None:
                    request = self._http.build_request(method, url, json=body, headers=headers)
                else:
                    request = self._http.build_request(
                        method, url, data=upload.fields, files=upload.files(), headers=headers
                    )
                response = self._http.send(request, stream=stream)
            except (httpx.LocalProtocolError, httpx.UnsupportedProtocol, httpx.InvalidURL) as exc:
                # Nothing left our side: a retry would fail the same way.
                raise self._transport_error(exc, url, redactor) from None
            except (TypeError, ValueError) as exc:  # a body json cannot encode
                detail = redactor.clip(str(exc), 120)
                raise ConfigError(f"The request cannot be encoded as JSON: {detail}") from None
            except httpx.HTTPError as exc:
                if attempt < retries and _retried(exc, resend):
                    self._sleep(retry_delay(attempt))
                    continue
                raise self._transport_error(exc, url, redactor, attempt) from None
            if response.is_success:
                return OpenResponse(response, redactor)
            _read_and_close(response)
            if attempt < retries and should_retry_status(response.status_code, response.headers):
                self._sleep(retry_delay(attempt, response.headers))
                continue
            raise error_from_response(
                response,
                key_env=self.config.api_key_env,
                redactor=redactor,
                key_sent=bool(headers),
                model=body.get("model") if body else None,
                retries=attempt,
            )
        raise AssertionError("unreachable")  # pragma: no cover

    @staticmethod
    def _transport_error(
        exc: httpx.HTTPError | httpx.InvalidURL, url: str, redactor: Redactor, attempt: int = 0
    ) -> Exception:
        if isinstance(exc, httpx.InvalidURL):  # not an HTTPError, but refused before sending
            return ConfigError(f"The request URL is not valid: {mask_url(url)}")
        return error_from_transport(exc, url=url, redactor=redactor, retries=attempt)


_UNSENT = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)


def _retried(exc: httpx.HTTPError, resend: bool) -> bool:
    """Whether a failed send is tried again: a transport error, unless the request may have
    reached the server and must not be sent twice (``resend`` False)."""
    return isinstance(exc, httpx.TransportError) and (resend or isinstance(exc, _UNSENT))


def _read_and_close(response: httpx.Response) -> None:
    """Read an error response's body for its message; a connection lost meanwhile is fine."""
    try:
        response.read()
    except httpx.TransportError:
        pass
    finally:
        response.close()
