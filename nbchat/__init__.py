"""nbchat: chat with any OpenAI-compatible model from Jupyter.

``%load_ext nbchat`` registers ``%%chat`` (a turn) and ``%chat`` (commands). The notebook is the
conversation (cells above are the context) and the cache (answers are stored in cell outputs).
"""

from __future__ import annotations

from typing import Any

from nbchat._version import __version__
from nbchat.api import Answer, ask, map
from nbchat.client import ChatClient, ChatStream, ClientConfig
from nbchat.errors import (
    APIConnectionError,
    APIError,
    APITimeoutError,
    AuthenticationError,
    BadRequestError,
    BatchError,
    BatchInterrupted,
    ConfigError,
    NbchatError,
    NotFoundError,
    OfflineMiss,
    RateLimitError,
    StreamError,
    StructuredOutputError,
    ToolRoundsExceeded,
)
from nbchat.record import RECORD_MIME, Record

__all__ = [
    "RECORD_MIME",
    "APIConnectionError",
    "APIError",
    "APITimeoutError",
    "Answer",
    "AuthenticationError",
    "BadRequestError",
    "BatchError",
    "BatchInterrupted",
    "ChatClient",
    "ChatStream",
    "ClientConfig",
    "ConfigError",
    "NbchatError",
    "NotFoundError",
    "OfflineMiss",
    "RateLimitError",
    "Record",
    "StreamError",
    "StructuredOutputError",
    "ToolRoundsExceeded",
    "__version__",
    "ask",
    "load_ipython_extension",
    "map",
    "unload_ipython_extension",
]


def load_ipython_extension(ipython: Any) -> None:
    """``%load_ext nbchat``: register the magics."""
    from nbchat.magics import ChatMagics

    ipython.register_magics(ChatMagics(shell=ipython, parent=ipython))


def unload_ipython_extension(ipython: Any) -> None:
    """``%unload_ext nbchat``: close HTTP connections and remove the magics."""
    manager = ipython.magics_manager
    magics = manager.registry.pop("ChatMagics", None)
    if magics is not None:
        magics.session.close()
        # Magics register themselves as configurables; a stale one would keep its session
        # alive and could answer `%config ChatMagics`.
        ipython.configurables[:] = [c for c in ipython.configurables if c is not magics]
    for kind in ("line", "cell"):
        manager.magics[kind].pop("chat", None)
