"""Base URLs in `ChatClient`: a query string kept on every request and masked in errors,
credentials and unusable URLs refused."""

from __future__ import annotations

import json

import httpx
import pytest

from nbchat.errors import APIConnectionError, ConfigError, NotFoundError, ProtocolError
from nbchat.wire.client import ChatClient
from nbchat.wire.completion import completion_text
from nbchat.wire.config import ClientConfig

from support.chat_client import ANSWER, BODY, closed_port
from support.fake_openai import DEFAULT_MODELS, Fault

# -- a base URL with a query string (Azure-style api-version) ------------------------------------

QUERY = "api-version=2024-06-01&sig=s3cr3t-signature"


def test_the_query_stays_on_every_request(make_client, fake):
    client = make_client(base_url=f"{fake.base_url}?{QUERY}")
    assert completion_text(client.chat(BODY)) == ANSWER
    assert "".join(client.stream(BODY)) == ANSWER
    assert client.models() == sorted(DEFAULT_MODELS)
    assert [(r.method, r.path) for r in fake.requests] == [
        ("POST", f"/v1/chat/completions?{QUERY}"),
        ("POST", f"/v1/chat/completions?{QUERY}"),
        ("GET", f"/v1/models?{QUERY}"),
    ]


def test_a_trailing_slash_and_fragment_do_not_disturb_the_query(make_client, fake):
    client = make_client(base_url=f"{fake.base_url}/?{QUERY}#part")
    client.chat(BODY)
    assert fake.requests[0].path == f"/v1/chat/completions?{QUERY}"


def test_errors_never_show_the_query_values(make_client, fake):
    client = make_client(base_url=f"{fake.base_url}?{QUERY}", max_retries=0)
    fake.script(Fault(status=404, body={"error": {"message": f"no route for ?{QUERY}"}}))
    with pytest.raises(NotFoundError) as info:
        client.chat(BODY)
    assert "no route for ?api-version=***&sig=***" in str(info.value)
    assert "s3cr3t-signature" not in str(info.value) + json.dumps(info.value.body)
    refused = make_client(base_url=f"http://127.0.0.1:{closed_port()}/v1?{QUERY}", max_retries=0)
    with pytest.raises(APIConnectionError) as info:
        refused.chat(BODY)
    assert "sig=***" in str(info.value)
    assert "s3cr3t-signature" not in str(info.value)


def test_query_in_a_non_json_answer_is_masked():
    def handler(request: httpx.Request) -> httpx.Response:
        assert request.url.query == QUERY.encode()
        return httpx.Response(200, text="<html>", headers={"content-type": "text/html"})

    config = ClientConfig(base_url=f"http://mock.test/v1?{QUERY}", max_retries=0)
    client = ChatClient(config, transport=httpx.MockTransport(handler))
    with client, pytest.raises(ProtocolError) as info:
        client.chat(BODY)
    assert str(info.value).startswith(
        "http://mock.test/v1/chat/completions?api-version=***&sig=*** answered with a body"
    )


def test_credentials_in_the_base_url_are_refused():
    with pytest.raises(ConfigError, match="environment variable"):
        ClientConfig(base_url="https://user:sk-secret@example.com/v1")
    with pytest.raises(ConfigError, match="environment variable"):
        ClientConfig(base_url="https://sk-secret@example.com/v1?api-version=1")


@pytest.mark.parametrize("url", ["sk-proj-abcdefgh123456", "ftp://h/v1", "https:///v1", "http://"])
def test_unusable_base_urls_are_refused_without_quoting_them(url):
    with pytest.raises(ConfigError) as info:
        ClientConfig(base_url=url)
    assert "sk-proj" not in str(info.value)


def test_a_query_is_accepted():
    config = ClientConfig(base_url="https://h.example/openai/v1?api-version=2024-06-01")
    assert config.url("/chat/completions") == (
        "https://h.example/openai/v1/chat/completions?api-version=2024-06-01"
    )
