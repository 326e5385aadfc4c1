"""What the `ChatClient` tests send and expect, a loopback port nothing listens on, and
clients answered by a function instead of a server (`httpx.MockTransport`)."""

from __future__ import annotations

import json
import socket
from collections.abc import Callable
from typing import Any

import httpx

from nbchat.wire.client import ChatClient
from nbchat.wire.config import ClientConfig

from support.env import TEST_KEY
from support.fake_openai import answer_for, split_pieces

KEY = TEST_KEY


def body(text: str = "hello there", model: str = "peer-small", **extra: Any) -> dict[str, Any]:
    return {"model": model, "messages": [{"role": "user", "content": text}], **extra}


BODY = body()
ANSWER = answer_for(BODY)
LONG = body("tell me a story about a cat and a dog")
LONG_PIECES = split_pieces(answer_for(LONG))


def mock_client(handler: Callable[[httpx.Request], httpx.Response]) -> ChatClient:
    config = ClientConfig(base_url="http://mock.test/v1", max_retries=0)
    return ChatClient(config, transport=httpx.MockTransport(handler), sleep=lambda _: None)


def sse_client(raw: bytes) -> ChatClient:
    """A client whose every request streams ``raw`` back as an SSE body."""

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, content=raw, headers={"content-type": "text/event-stream"})

    return mock_client(handler)


def sse(*objects: Any) -> bytes:
    return b"".join(f"data: {json.dumps(o)}\n\n".encode() for o in objects)


def content_chunk(text: str) -> dict[str, Any]:
    return {"id": "c", "choices": [{"index": 0, "delta": {"content": text}, "finish_reason": None}]}


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]
