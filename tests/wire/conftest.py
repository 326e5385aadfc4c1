"""`ChatClient`s against the loopback fake server, with the sleeps of their retries recorded
instead of slept."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from nbchat.wire.client import ChatClient
from nbchat.wire.config import ClientConfig

from support.chat_client import KEY
from support.fake_openai import FakeOpenAI


@pytest.fixture
def fake(server: FakeOpenAI) -> FakeOpenAI:
    """The shared loopback server (conftest), reset for this test."""
    return server


@pytest.fixture
def sleeps() -> list[float]:
    return []


@pytest.fixture
def make_client(
    fake: FakeOpenAI, sleeps: list[float], monkeypatch: pytest.MonkeyPatch
) -> Iterator[Callable[..., ChatClient]]:
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    clients: list[ChatClient] = []

    def make(**config: Any) -> ChatClient:
        config = {"base_url": fake.base_url, "timeout": 5.0, **config}
        client = ChatClient(ClientConfig(**config), sleep=sleeps.append)
        clients.append(client)
        return client

    yield make
    for client in clients:
        client.close()


@pytest.fixture
def client(make_client: Callable[..., ChatClient]) -> ChatClient:
    return make_client()
