"""Where and how to connect: the base URL, the key's variable, timeouts and retries.

Apart from the client so that settings can be read and checked without importing httpx.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from nbchat.errors import ConfigError
from nbchat.wire.redaction import Redactor, mask_url, request_url

__all__ = ["DEFAULT_BASE_URL", "ClientConfig", "check_base_url", "default_base_url"]

DEFAULT_BASE_URL = "https://api.openai.com/v1"


def default_base_url() -> str:
    """``$OPENAI_BASE_URL``, else OpenAI's own endpoint."""
    return os.environ.get("OPENAI_BASE_URL") or DEFAULT_BASE_URL


def check_base_url(url: str) -> None:
    """Raise `ConfigError` for a base URL nbchat must not use. A query string is fine."""
    if not url.startswith(("http://", "https://")):
        # Not quoted: a value pasted into the wrong setting may be the key itself.
        raise ConfigError("The base URL must start with http:// or https://.")
    try:
        parts = urlsplit(url)
    except ValueError:  # e.g. an unbalanced "[" in the host
        raise ConfigError("The base URL is not a valid URL.") from None
    if "@" in parts.netloc:
        raise ConfigError(
            "The base URL carries credentials: put the key in an environment variable "
            "and name it with api_key_env, so it never reaches the notebook."
        )
    if not parts.hostname:
        raise ConfigError(f"The base URL names no host: {mask_url(url)}")


@dataclass(frozen=True, kw_only=True)
class ClientConfig:
    """Where and how to connect. Holds the *name* of the key's variable, never the key.

    The field defaults are nbchat's defaults (other modules read them from here).
    ``api_key_env=""`` means the server needs no key and none is sent.
    """

    base_url: str = field(default_factory=default_base_url)
    api_key_env: str = "OPENAI_API_KEY"
    timeout: float = 600.0
    connect_timeout: float = 10.0
    max_retries: int = 2

    def __post_init__(self) -> None:
        check_base_url(self.base_url)
        if self.max_retries < 0 or self.timeout <= 0 or self.connect_timeout <= 0:
            raise ConfigError("max_retries must be >= 0 and timeouts > 0.")

    def url(self, path: str) -> str:
        """The request URL for ``path`` (e.g. ``/chat/completions``), base URL query kept."""
        return request_url(self.base_url, path)

    def raw_key(self) -> str:
        """The key's variable as set, read now and never stored ("" when unset or unnamed)."""
        return os.environ.get(self.api_key_env, "") if self.api_key_env else ""

    def redactor(self) -> Redactor:
        """What removes this endpoint's secrets (its key, its URL's credentials) from text;
        no client needed (a replayed answer's output is redacted without one)."""
        return Redactor.for_request(self.raw_key(), self.base_url)
