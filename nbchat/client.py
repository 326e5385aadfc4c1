"""A small, typed client for any OpenAI-compatible chat-completions server, over ``httpx``.

    client = ChatClient(ClientConfig(base_url="http://127.0.0.1:8000/v1"))
    stream = client.stream({"model": "m", "messages": [{"role": "user", "content": "hi"}]})
    for text in stream:
        print(text, end="")
    stream.completion   # the whole answer, shaped like a non-streamed chat.completion

The key is read from the environment variable named by ``ClientConfig.api_key_env`` at each request
and is never stored on the client or the config.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any
from urllib.parse import urlsplit

import httpx

from nbchat._version import __version__
from nbchat.completion import CompletionBuilder, completion_text
from nbchat.errors import (
    APIError,
    ConfigError,
    MalformedStreamError,
    NbchatError,
    ProtocolError,
    StreamErrorEvent,
    StreamInterrupted,
    TruncatedStreamError,
    error_from_response,
    error_from_transport,
)
from nbchat.retry import retry_delay, should_retry_status
from nbchat.sse import SSEDecoder

__all__ = ["DEFAULT_BASE_URL", "ChatClient", "ChatStream", "ClientConfig", "default_base_url"]

DEFAULT_BASE_URL = "https://api.openai.com/v1"


def default_base_url() -> str:
    """``$OPENAI_BASE_URL``, else OpenAI's own endpoint."""
    return os.environ.get("OPENAI_BASE_URL") or DEFAULT_BASE_URL


@dataclass(frozen=True)
class ClientConfig:
    """Where and how to connect. Holds the *name* of the key's variable, never the key."""

    base_url: str = field(default_factory=default_base_url)
    api_key_env: str = "OPENAI_API_KEY"
    timeout: float = 600.0
    connect_timeout: float = 10.0
    max_retries: int = 2
    headers: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}), hash=False)

    def __post_init__(self) -> None:
        if not self.base_url.startswith(("http://", "https://")):
            raise ConfigError(f"The base URL must start with http(s)://, not {self.base_url!r}")
        if "@" in urlsplit(self.base_url).netloc:
            raise ConfigError(
                "The base URL carries credentials: put the key in an environment variable "
                "and name it with api_key_env, so it never reaches the notebook."
            )
        if self.max_retries < 0 or self.timeout <= 0 or self.connect_timeout <= 0:
            raise ConfigError("max_retries must be >= 0 and timeouts > 0.")

    @property
    def endpoint(self) -> str:
        """The base URL without a trailing slash."""
        return self.base_url.rstrip("/")


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
            headers={"User-Agent": f"nbchat/{__version__}", **self.config.headers},
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

    def chat(self, body: Mapping[str, Any]) -> dict[str, Any]:
        """One non-streamed answer as a ``chat.completion`` dict."""
        request = {**body, "stream": False}
        request.pop("stream_options", None)
        response = self._send("POST", "/chat/completions", request, stream=False)
        return _completion(response)

    def stream(self, body: Mapping[str, Any], *, keep_chunks: bool = False) -> ChatStream:
        """A streamed answer: iterate it for text deltas; ``.completion`` holds the whole answer."""
        return ChatStream(self, body, keep_chunks=keep_chunks)

    def models(self) -> list[str]:
        """The model ids the server lists at ``GET /models``."""
        response = self._send("GET", "/models", None, stream=False)
        payload = _json_body(response)
        data = payload.get("data") if isinstance(payload, dict) else payload
        if not isinstance(data, list):
            raise ProtocolError(f"{self.config.endpoint}/models did not answer with a model list.")
        return sorted(str(item.get("id")) for item in data if isinstance(item, dict))

    # -- transport -------------------------------------------------------------------------

    def _key(self) -> str:
        """The key, read now from its variable; surrounding whitespace (a key pasted from a
        file with its newline) is dropped. Never stored."""
        return (
            os.environ.get(self.config.api_key_env, "").strip() if self.config.api_key_env else ""
        )

    def _headers(self) -> dict[str, str]:
        key = self._key()
        if not key:
            return {}
        if not (key.isascii() and key.isprintable()):
            raise ConfigError(
                f"${self.config.api_key_env} holds characters an HTTP header cannot carry "
                "(check for quotes or stray text around the key)."
            )
        return {"Authorization": f"Bearer {key}"}

    def _send(
        self, method: str, path: str, body: Mapping[str, Any] | None, *, stream: bool
    ) -> httpx.Response:
        """Send with retries; return a successful response (streaming ones still open)."""
        url = self.config.endpoint + path
        model = body.get("model") if body else None
        retries = self.config.max_retries
        for attempt in range(retries + 1):
            try:
                request = self._http.build_request(method, url, json=body, headers=self._headers())
                response = self._http.send(request, stream=stream)
            except (httpx.LocalProtocolError, httpx.UnsupportedProtocol, httpx.InvalidURL) as exc:
                # Nothing left our side: a retry would fail the same way.
                raise self._scrub(error_from_transport(exc, url=url)) from None
            except (TypeError, ValueError) as exc:  # a body json cannot encode
                raise ConfigError(f"The request cannot be encoded as JSON: {exc}") from None
            except httpx.HTTPError as exc:
                if attempt < retries and isinstance(exc, httpx.TransportError):
                    self._sleep(retry_delay(attempt))
                    continue
                raise self._scrub(error_from_transport(exc, url=url, retries=attempt)) from exc
            if response.is_success:
                return response
            try:
                response.read()
            except httpx.TransportError:
                pass
            finally:
                response.close()
            if attempt < retries and should_retry_status(response.status_code, response.headers):
                self._sleep(retry_delay(attempt, response.headers))
                continue
            raise self._scrub(
                error_from_response(
                    response, key_env=self.config.api_key_env, model=model, retries=attempt
                )
            )
        raise AssertionError("unreachable")  # pragma: no cover

    def _scrub(self, error: NbchatError) -> NbchatError:
        """Remove the key from a message, as sent or as quoted, should anything echo it back."""
        raw = os.environ.get(self.config.api_key_env, "") if self.config.api_key_env else ""
        forms = {form for form in (raw, raw.strip(), repr(raw)[1:-1]) if len(form) >= 8}
        texts = [str(arg) for arg in error.args]
        for form in forms:
            texts = [text.replace(form, "***") for text in texts]
        error.args = tuple(texts)
        return error


def _json_body(response: httpx.Response) -> Any:
    try:
        return response.json()
    except ValueError as exc:
        url = response.request.url
        raise ProtocolError(f"{url} answered with a body that is not JSON.") from exc


_scan_json = json.JSONDecoder().scan_once


def _loads(data: str) -> Any:
    """`json.loads` for the per-token path: the C scanner is called directly, skipping the
    two Python frames and two whitespace regex matches `json.loads` adds to every chunk.
    Anything unusual (surrounding whitespace, trailing data, not JSON) goes to `json.loads`,
    which gives the same value or raises the same `ValueError`."""
    try:
        value, end = _scan_json(data, 0)
    except StopIteration:
        return json.loads(data)
    return value if end == len(data) else json.loads(data)


def _parse_event(data: str) -> Any:
    try:
        return json.loads(data)
    except ValueError:
        return data  # shown as received


def _completion(response: httpx.Response) -> dict[str, Any]:
    """A whole ``chat.completion`` body; an ``error`` object in a 200 body keeps its message."""
    payload = _json_body(response)
    if isinstance(payload, dict) and isinstance(payload.get("choices"), list):
        return payload
    if isinstance(payload, dict) and "error" in payload:
        error = payload["error"]
        message = error.get("message") if isinstance(error, dict) else str(error)
        raise APIError(
            f"The server reported an error: {message}",
            status_code=response.status_code,
            request_id=response.headers.get("x-request-id"),
            body=payload,
        )
    raise ProtocolError(f"{response.request.url} did not answer with a chat completion.")


class ChatStream:
    """One streamed answer. Iterating yields text deltas of the first choice as they arrive.

    After a complete iteration ``completion`` holds the folded answer. On failure a
    `StreamError` carrying the partial answer is raised, and ``partial()`` still returns it.
    """

    def __init__(self, client: ChatClient, body: Mapping[str, Any], *, keep_chunks: bool) -> None:
        self._client = client
        self.body = dict(body)
        self.builder = CompletionBuilder()
        self.keep_chunks = keep_chunks
        # Event data as received: strings, which the garbage collector does not have to scan
        # (30,000 parsed chunk dicts kept alive cost more than parsing them).
        self.raw_events: list[str] = []
        self.completion: dict[str, Any] | None = None
        self.request_id: str | None = None
        self.first_token_at: float | None = None
        self._started = False
        self._response: httpx.Response | None = None

    @property
    def chunks(self) -> list[Any]:
        """The chunks received (parsed now), when ``keep_chunks`` was asked for."""
        return [_parse_event(data) for data in self.raw_events]

    def partial(self) -> dict[str, Any]:
        """Whatever has arrived so far, completion-shaped."""
        return self.builder.result()

    def close(self) -> None:
        """Drop the connection now (e.g. when the consumer was interrupted between deltas)."""
        if self._response is not None:
            self._response.close()

    def __iter__(self) -> Iterator[str]:
        """Text deltas of the first choice, one per chunk, as they arrive."""
        for texts in self._run():
            yield from texts

    def batches(self) -> Iterator[tuple[str, int]]:
        """The new text of each network read, with how many deltas it joins: for a display,
        which needs no more than that and is spared a call per token."""
        for texts in self._run():
            yield "".join(texts), len(texts)

    def _run(self) -> Iterator[list[str]]:
        if self._started:
            raise RuntimeError("a ChatStream can be iterated only once")
        self._started = True
        response = self._response = self._open()
        self.request_id = response.headers.get("x-request-id")
        try:
            content_type = response.headers.get("content-type", "")
            if "text/event-stream" in content_type.lower():
                yield from self._events(response)
            else:  # a server that ignored "stream": true and sent one whole completion
                yield from self._whole(response)
        except KeyboardInterrupt:
            raise StreamInterrupted(
                "Interrupted: the partial answer is kept but not stored.", partial=self.partial()
            ) from None
        except httpx.HTTPError as exc:
            raise self._client._scrub(
                TruncatedStreamError(
                    f"The connection dropped mid-answer ({type(exc).__name__}){self._ref()}; "
                    "the partial answer is kept but not stored. Run the cell again.",
                    partial=self.partial(),
                )
            ) from exc
        except NbchatError as exc:  # server text may be quoted: scrub it once, here
            self._client._scrub(exc)
            raise
        finally:
            response.close()

    def _ref(self) -> str:
        return f" (request id {self.request_id})" if self.request_id else ""

    def _open(self) -> httpx.Response:
        client = self._client
        request = {**self.body, "stream": True}
        if not client.usage_option_rejected:
            request["stream_options"] = {"include_usage": True}
        try:
            return client._send("POST", "/chat/completions", request, stream=True)
        except APIError as exc:  # 400 from most servers, 422 from FastAPI-style validation
            rejected = exc.status_code in (400, 422) and "stream_options" in str(exc.body)
            if "stream_options" not in request or not rejected:
                raise
        client.usage_option_rejected = True
        request.pop("stream_options")
        return client._send("POST", "/chat/completions", request, stream=True)

    def _events(self, response: httpx.Response) -> Iterator[list[str]]:
        """The texts of each network read. The per-token loop is kept flat; the rare cases
        (lists, errors, glued or malformed events) go to `_texts`."""
        decoder = SSEDecoder()
        add = self.builder.add
        loads = _loads
        keep = self.raw_events.append if self.keep_chunks else None
        done = False
        for raw in response.iter_bytes():
            texts: list[str] = []
            try:
                for data in decoder.feed_data(raw):
                    if data == "[DONE]":
                        done = True
                        break
                    if keep is not None:
                        keep(data)
                    try:
                        chunk = loads(data)
                    except ValueError:
                        chunk = None
                    if type(chunk) is not dict or "choices" not in chunk:
                        texts += self._texts(data)
                        continue
                    try:
                        text = add(chunk)
                    except (AttributeError, TypeError) as exc:
                        raise self._not_a_chunk(data) from exc
                    if text:
                        texts.append(text)
            except NbchatError:
                if texts:  # what arrived before the bad event still reaches the consumer
                    yield texts
                raise
            if texts:
                self._mark_first_token()
                yield texts
            if done:
                break
        else:
            texts = []
            for event in decoder.flush():
                if event.data == "[DONE]":
                    done = True
                else:
                    texts += self._texts(event.data)
            if texts:
                self._mark_first_token()
                yield texts
        if not done and self.builder.finish_reason is None:
            raise TruncatedStreamError(
                f"The stream ended before the answer was complete (no [DONE]){self._ref()}; "
                "the partial answer is kept but not stored.",
                partial=self.partial(),
            )
        if not self.builder.has_answer:
            raise TruncatedStreamError(
                f"The server ended the stream without an answer{self._ref()}; nothing is stored.",
                partial=self.partial(),
            )
        self.completion = self.builder.result()

    def _mark_first_token(self) -> None:
        if self.first_token_at is None:
            self.first_token_at = time.perf_counter()

    def _texts(self, data: str) -> list[str]:
        """Fold one event in (any shape) and return its new texts."""
        texts = []
        for chunk in self._decode(data):
            try:
                text = self.builder.add(chunk)
            except (AttributeError, TypeError) as exc:
                raise self._not_a_chunk(data) from exc
            if text:
                texts.append(text)
        return texts

    def _decode(self, data: str) -> list[dict[str, Any]]:
        """One event's data as chunks; an ``error`` object raises with the partial answer."""
        try:
            chunk = json.loads(data)
        except ValueError:
            chunk = self._decode_joined(data)
        if isinstance(chunk, list) and all(isinstance(item, dict) for item in chunk):
            return chunk
        if not isinstance(chunk, dict):
            raise self._not_a_chunk(data)
        if "error" in chunk and "choices" not in chunk:
            error = chunk["error"]
            message = error.get("message") if isinstance(error, dict) else str(error)
            raise StreamErrorEvent(
                f"The server reported an error mid-answer: {message}. "
                "The partial answer is kept but not stored.",
                partial=self.partial(),
            )
        return [chunk]

    def _not_a_chunk(self, data: str) -> MalformedStreamError:
        return MalformedStreamError(
            f"The server sent an event that is not a chunk: {data[:80]!r}", partial=self.partial()
        )

    def _decode_joined(self, data: str) -> Any:
        """Servers that omit the blank line between events glue them into one multi-line event."""
        if "\n" in data:
            try:
                return [json.loads(line) for line in data.split("\n") if line and line != "[DONE]"]
            except ValueError:
                pass
        raise MalformedStreamError(
            f"The server sent an event that is not JSON: {data[:80]!r}", partial=self.partial()
        )

    def _whole(self, response: httpx.Response) -> Iterator[list[str]]:
        response.read()
        self.completion = completion = _completion(response)
        text = completion_text(completion)
        if text:
            self._mark_first_token()
            yield [text]
