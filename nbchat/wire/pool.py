"""The session's HTTP clients: one per endpoint configuration, made on first use. httpx is
imported with the first client, so a session that only replays stored answers never loads it."""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING

from nbchat.wire.config import ClientConfig

if TYPE_CHECKING:
    from nbchat.wire.client import ChatClient

__all__ = ["ClientPool"]


class ClientPool:
    """One client (and so one connection pool) per endpoint configuration, kept for the session:
    a thread's requests reuse their connections."""

    def __init__(self) -> None:
        self._clients: dict[ClientConfig, ChatClient] = {}
        self._lock = threading.Lock()  # --map's workers may ask for one at once

    def get(self, config: ClientConfig) -> ChatClient:
        """The client for ``config``, made on first use."""
        with self._lock:
            client = self._clients.get(config)
            if client is None:
                from nbchat.wire.client import ChatClient

                client = self._clients[config] = ChatClient(config)
            return client

    def close(self) -> None:
        """Close every client's connections."""
        with self._lock:
            clients, self._clients = list(self._clients.values()), {}
        for client in clients:
            client.close()
