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

import os
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any
from urllib.parse import urlsplit

import httpx

from nbchat._version import __version__
from nbchat.errors import (
    ConfigError,
    NbchatError,
    ProtocolError,
    error_from_response,
    error_from_transport,
)
from nbchat.retry import retry_delay, should_retry_status
from nbchat.stream import ChatStream, completion_body, json_body

__all__ = [
    "DEFAULT_BASE_URL",
    "ChatClient",
    "ChatStream",
    "ClientConfig",
    "check_base_url",
    "default_base_url",
]

DEFAULT_BASE_URL = "https://api.openai.com/v1"


def default_base_url() -> str:
    """``$OPENAI_BASE_URL``, else OpenAI's own endpoint."""
    return os.environ.get("OPENAI_BASE_URL") or DEFAULT_BASE_URL


def check_base_url(url: str) -> None:
    """Raise `ConfigError` for a base URL nbchat must not use."""
    if not url.startswith(("http://", "https://")):
        raise ConfigError(f"The base URL must start with http(s)://, not {url!r}")
    if "@" in urlsplit(url).netloc:
        raise ConfigError(
            "The base URL carries credentials: put the key in an environment variable "
            "and name it with api_key_env, so it never reaches the notebook."
        )


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
        check_base_url(self.base_url)
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
        return completion_body(response)

    def stream(self, body: Mapping[str, Any], *, keep_chunks: bool = False) -> ChatStream:
        """A streamed answer: iterate it for text deltas; ``.completion`` holds the whole answer."""
        return ChatStream(self, body, keep_chunks=keep_chunks)

    def models(self) -> list[str]:
        """The model ids the server lists at ``GET /models``."""
        response = self._send("GET", "/models", None, stream=False)
        payload = json_body(response)
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
