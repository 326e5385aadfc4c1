"""nbchat: chat with any OpenAI-compatible model from Jupyter.

``%load_ext nbchat`` registers ``%%chat`` (a turn) and ``%chat`` (commands). The notebook is the
conversation (cells above are the context) and the cache (answers are stored in cell outputs).

The public interface is what this module exports; everything in its subpackages is internal.
Names are loaded on first use (PEP 562), so ``import nbchat`` and the ``nbchat`` command load
neither httpx nor IPython until something needs them. ``nbchat.map`` is public too, but left out
of ``__all__`` so that ``from nbchat import *`` never shadows the builtin ``map``.

The layers, each a subpackage that imports only from the levels below it (``tests/test_layers.py``
checks this): 0 ``errors`` and private utilities; 1 ``wire``, ``mcp``; 2 ``prompt``, ``schema``,
``store``; 3 ``engine``, ``render``; 4 ``ipython``, ``cli``.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from nbchat._version import __version__
from nbchat.errors import (
    APIConnectionError,
    APIError,
    APITimeoutError,
    AuthenticationError,
    BadRequestError,
    BatchError,
    BatchInterrupted,
    BatchPending,
    BatchUnsupported,
    BudgetExceeded,
    ConfigError,
    ContextLengthError,
    MalformedStreamError,
    McpServerError,
    NbchatError,
    NotebookError,
    NotFoundError,
    OfflineMiss,
    ProtocolError,
    RateLimitError,
    ServerError,
    StreamError,
    StreamErrorEvent,
    StreamInterrupted,
    StructuredOutputError,
    ToolRoundsExceeded,
    TruncatedStreamError,
    TryAgainError,
)

if TYPE_CHECKING:
    from nbchat.ipython.api import Answer, ask, map  # noqa: F401 (map: not in __all__)
    from nbchat.money.cost import Cost
    from nbchat.store.record import RECORD_MIME, Record
    from nbchat.wire.client import ChatClient, ChatStream
    from nbchat.wire.config import ClientConfig

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
    "BatchPending",
    "BatchUnsupported",
    "BudgetExceeded",
    "ChatClient",
    "ChatStream",
    "ClientConfig",
    "ConfigError",
    "ContextLengthError",
    "Cost",
    "MalformedStreamError",
    "McpServerError",
    "NbchatError",
    "NotFoundError",
    "NotebookError",
    "OfflineMiss",
    "ProtocolError",
    "RateLimitError",
    "Record",
    "ServerError",
    "StreamError",
    "StreamErrorEvent",
    "StreamInterrupted",
    "StructuredOutputError",
    "ToolRoundsExceeded",
    "TruncatedStreamError",
    "TryAgainError",
    "__version__",
    "ask",
    "load_ipython_extension",
    "unload_ipython_extension",
]

# Loaded on first use: name -> the module that defines it.
_LAZY = {
    "Answer": "nbchat.ipython.api",
    "ask": "nbchat.ipython.api",
    "map": "nbchat.ipython.api",
    "RECORD_MIME": "nbchat.store.record",
    "Record": "nbchat.store.record",
    "ChatClient": "nbchat.wire.client",
    "ChatStream": "nbchat.wire.client",
    "ClientConfig": "nbchat.wire.config",
    "Cost": "nbchat.money.cost",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value  # found once, then an ordinary attribute
        return value
    raise AttributeError(f"module 'nbchat' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted({*globals(), *_LAZY})


def load_ipython_extension(ipython: Any) -> None:
    """``%load_ext nbchat``: register the magics."""
    from nbchat.ipython.magics import ChatMagics

    ipython.register_magics(ChatMagics(shell=ipython, parent=ipython))


def unload_ipython_extension(ipython: Any) -> None:
    """``%unload_ext nbchat``: close HTTP connections and remove the magics."""
    manager = ipython.magics_manager
    magics = manager.registry.pop("ChatMagics", None)
    if magics is not None:
        magics.close()
        # Magics register themselves as configurables; a stale one would keep its session
        # alive and could answer `%config ChatMagics`.
        ipython.configurables[:] = [c for c in ipython.configurables if c is not magics]
    for kind in ("line", "cell"):
        manager.magics[kind].pop("chat", None)
