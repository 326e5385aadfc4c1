"""Tests for the offline fake OpenAI server (``tests/support/fake_openai.py``), via plain httpx."""

from __future__ import annotations

import http.client
import json
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from support.fake_openai import (
    DEMO_THINKING_MODEL,
    NO_IMAGES,
    PASS_IT_BACK,
    TEXT_ONLY_MODEL,
    FakeOpenAI,
    Fault,
    answer_for,
    canned_key,
    load_responses,
)
from support.paths import FAKE_SERVER

KEY = "sk-test-key"
MODELS = ("peer-small", "peer-large", TEXT_ONLY_MODEL)
CONVERSATION = [
    {"role": "system", "content": "You are terse"},
    {"role": "user", "content": "hello there"},
    {"role": "assistant", "content": "hi"},
    {"role": "user", "content": "how are you"},
]
EXPECTED = "Reply #2 to: how are you"


@pytest.fixture(scope="module")
def server() -> Iterator[FakeOpenAI]:
    with FakeOpenAI(api_key=KEY, models=MODELS) as srv:
        yield srv


@pytest.fixture
def fake(server: FakeOpenAI) -> Iterator[FakeOpenAI]:
    server.reset()
    yield server
    server.reset()


@pytest.fixture
def client(fake: FakeOpenAI) -> Iterator[httpx.Client]:
    headers = {"Authorization": f"Bearer {KEY}"}
    with httpx.Client(base_url=fake.base_url, headers=headers, timeout=5.0) as c:
        yield c


def body(**extra: Any) -> dict[str, Any]:
    return {"model": "peer-small", "messages": CONVERSATION, **extra}


def stream(client: httpx.Client, **extra: Any) -> tuple[list[Any], httpx.Response]:
    """POST a streamed chat; return the decoded ``data:`` payloads ("[DONE]" kept as str)."""
    events: list[Any] = []
    with client.stream("POST", "/chat/completions", json=body(stream=True, **extra)) as resp:
        for line in resp.iter_lines():
            if line.startswith("data: "):
                data = line[len("data: ") :]
                events.append(data if data == "[DONE]" else json.loads(data))
    return events, resp


def content_of(events: list[Any]) -> str:
    return "".join(
        e["choices"][0]["delta"].get("content") or ""
        for e in events
        if isinstance(e, dict) and e.get("choices")
    )


def test_models_listing(client: httpx.Client) -> None:
    resp = client.get("/models")
    assert resp.status_code == 200
    assert [m["id"] for m in resp.json()["data"]] == list(MODELS)
    assert resp.json()["data"][0] == {
        "id": "peer-small",
        "object": "model",
        "created": 1700000000,
        "owned_by": "fake",
    }
    assert resp.headers["x-request-id"].startswith("req_")


def test_auth_and_routing_errors(fake: FakeOpenAI, client: httpx.Client) -> None:
    bad = httpx.post(
        f"{fake.base_url}/chat/completions", json=body(), headers={"Authorization": "Bearer nope"}
    )
    assert bad.status_code == 401
    assert bad.json()["error"]["code"] == "invalid_api_key"
    assert httpx.get(f"{fake.base_url}/models").status_code == 401
    missing = client.post("/chat/completions", json={**body(), "model": "gpt-9"})
    assert missing.status_code == 404
    assert missing.json()["error"]["code"] == "model_not_found"
    assert "`gpt-9`" in missing.json()["error"]["message"]
    assert client.post("/chat/completions", content=b"{nope").status_code == 400
    assert client.get("/nowhere").status_code == 404
    root = f"http://127.0.0.1:{fake.port}"
    assert client.get(f"{root}/models").status_code == 200  # without /v1


def test_non_streamed_shape(client: httpx.Client) -> None:
    data = client.post("/chat/completions", json=body()).json()
    assert data["object"] == "chat.completion"
    assert data["id"].startswith("chatcmpl-") and data["model"] == "peer-small"
    assert data["system_fingerprint"] == "fp_fake" and isinstance(data["created"], int)
    assert data["choices"] == [
        {
            "index": 0,
            "finish_reason": "stop",
            "logprobs": None,
            "message": {"role": "assistant", "content": EXPECTED},
        }
    ]
    assert data["usage"] == {"prompt_tokens": 9, "completion_tokens": 6, "total_tokens": 15}


def test_answer_for_is_deterministic() -> None:
    parts = [
        {"type": "text", "text": "look"},
        {"type": "image_url"},
        {"type": "text", "text": "here"},
    ]
    messages = [{"role": "user", "content": parts}]
    assert answer_for({"messages": messages}) == "Reply #1 to: look here (seeing 1 image)"
    assert answer_for({"messages": CONVERSATION}) == EXPECTED


PNG_URL = "data:image/png;base64,iVBORw0KGgoAAAAN"  # a PNG's first bytes, base64


@pytest.mark.parametrize(
    ("model", "url", "refusal"),
    [
        ("peer-small", "https://x.test/a.png", "expected a PNG or JPEG data URL"),
        ("peer-small", "data:image/png;base64,@@@", "the data is not base64"),
        ("peer-small", "data:image/png;base64,R0lGODlh", "the data is not a PNG or JPEG"),
        (TEXT_ONLY_MODEL, PNG_URL, NO_IMAGES),
        ("peer-small", PNG_URL, None),
    ],
)
def test_images_are_checked_like_a_provider_would(
    client: httpx.Client, model: str, url: str, refusal: str | None
) -> None:
    parts = [{"type": "text", "text": "see"}, {"type": "image_url", "image_url": {"url": url}}]
    request = {"model": model, "messages": [{"role": "user", "content": parts}]}
    response = client.post("/chat/completions", json=request)
    if refusal is None:
        assert response.status_code == 200
        assert response.json()["choices"][0]["message"]["content"].endswith("(seeing 1 image)")
    else:
        assert response.status_code == 400 and refusal in response.json()["error"]["message"]


def test_stream_matches_non_stream(client: httpx.Client) -> None:
    events, resp = stream(client)
    assert resp.headers["content-type"] == "text/event-stream"
    assert resp.headers["transfer-encoding"] == "chunked"
    assert events[0]["choices"][0]["delta"] == {"role": "assistant", "content": ""}
    assert content_of(events) == EXPECTED
    assert events[-2]["choices"][0] == {
        "index": 0,
        "delta": {},
        "logprobs": None,
        "finish_reason": "stop",
    }
    assert events[-1] == "[DONE]"
    chunks = events[:-1]
    assert all(e["object"] == "chat.completion.chunk" and "usage" not in e for e in chunks)
    assert len({(e["id"], e["created"], e["system_fingerprint"]) for e in chunks}) == 1


def test_include_usage_and_no_usage(fake: FakeOpenAI, client: httpx.Client) -> None:
    events, _ = stream(client, stream_options={"include_usage": True})
    assert events[-2]["choices"] == []
    assert events[-2]["usage"] == {"prompt_tokens": 9, "completion_tokens": 6, "total_tokens": 15}
    assert all(e["usage"] is None for e in events[:-2])
    fake.script(Fault(no_usage=True))
    events, _ = stream(client, stream_options={"include_usage": True})
    assert all(e == "[DONE]" or e["choices"] for e in events)


def test_keep_alive_across_streams(fake: FakeOpenAI) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", fake.port, timeout=5)
    headers = {"Authorization": f"Bearer {KEY}", "Content-Type": "application/json"}
    socks = []
    for _ in range(2):
        conn.request("POST", "/v1/chat/completions", json.dumps(body(stream=True)), headers)
        resp = conn.getresponse()
        assert b"data: [DONE]\n\n" in resp.read() and not resp.will_close
        socks.append(conn.sock)
    conn.close()
    assert socks[0] is socks[1]


def test_status_fault_then_normal(fake: FakeOpenAI, client: httpx.Client) -> None:
    fake.script(Fault(status=429, headers={"retry-after": "0"}), Fault(status=500, body={"x": 1}))
    first = client.post("/chat/completions", json=body())
    assert first.status_code == 429 and first.headers["retry-after"] == "0"
    assert "429" in first.json()["error"]["message"]
    second = client.post("/chat/completions", json=body())
    assert second.status_code == 500 and second.json() == {"x": 1}
    assert client.post("/chat/completions", json=body()).status_code == 200


def test_drop_after(fake: FakeOpenAI, client: httpx.Client) -> None:
    fake.script(Fault(drop_after=3), Fault(drop_after=0))
    pieces = []
    with pytest.raises(httpx.RemoteProtocolError):  # noqa: SIM117
        with client.stream("POST", "/chat/completions", json=body(stream=True)) as resp:
            for line in resp.iter_lines():
                if line.startswith("data: "):
                    pieces.append(json.loads(line[6:])["choices"][0]["delta"].get("content"))
    assert pieces == ["", "Reply ", "#2 ", "to: "]
    with pytest.raises(httpx.RemoteProtocolError):
        client.post("/chat/completions", json=body())
    assert client.post("/chat/completions", json=body()).status_code == 200


def test_error_after_and_no_done(fake: FakeOpenAI, client: httpx.Client) -> None:
    fake.script(Fault(error_after=2), Fault(no_done=True))
    events, _ = stream(client)
    assert content_of(events) == "Reply #2 "
    assert events[-1]["error"]["type"] == "server_error" and "[DONE]" not in events
    events, _ = stream(client)
    assert content_of(events) == EXPECTED and "[DONE]" not in events
    assert all(e["choices"][0]["finish_reason"] is None for e in events)


def test_huge_answer(fake: FakeOpenAI, client: httpx.Client) -> None:
    fake.default_fault = Fault(chunks=5000)
    events, _ = stream(client, stream_options={"include_usage": True})
    assert (
        len([e for e in events[1:] if e != "[DONE]" and e["choices"] and e["choices"][0]["delta"]])
        == 5000
    )
    assert events[-2]["usage"]["completion_tokens"] == 5000
    assert content_of(events).endswith("w4999 ")
    text = client.post("/chat/completions", json=body()).json()["choices"][0]["message"]["content"]
    assert text.startswith("w0 w1 ") and len(text.split()) == 5000


def test_max_tokens_and_finish_override(fake: FakeOpenAI, client: httpx.Client) -> None:
    data = client.post("/chat/completions", json=body(max_tokens=2)).json()
    assert data["choices"][0]["message"]["content"] == "Reply #2 "
    assert data["choices"][0]["finish_reason"] == "length"
    events, _ = stream(client, max_tokens=2)
    assert content_of(events) == "Reply #2 "
    assert events[-2]["choices"][0]["finish_reason"] == "length"
    fake.script(Fault(finish_reason="content_filter", text="nope."))
    events, _ = stream(client)
    assert content_of(events) == "nope."
    assert events[-2]["choices"][0]["finish_reason"] == "content_filter"


def test_raw_sse_write_sizes(fake: FakeOpenAI, client: httpx.Client) -> None:
    raw = b'data: {"choices": []}\n\ndata: [DONE]\n\n'
    fake.script(Fault(raw_sse=raw, write_sizes=[3, 10, 1]))
    with client.stream("POST", "/chat/completions", json=body(stream=True)) as resp:
        reads = list(resp.iter_raw())
    assert resp.status_code == 200 and resp.headers["content-type"] == "text/event-stream"
    assert b"".join(reads) == raw and len(reads) >= 3


def test_reject_stream_options_sticky(fake: FakeOpenAI, client: httpx.Client) -> None:
    fake.default_fault = Fault(reject_stream_options=True)
    for _ in range(2):
        resp = client.post("/chat/completions", json=body(stream=True, stream_options={}))
        assert resp.status_code == 400 and "stream_options" in resp.json()["error"]["message"]
        events, resp = stream(client)
        assert resp.status_code == 200 and content_of(events) == EXPECTED


def test_delay_and_hang(fake: FakeOpenAI, client: httpx.Client) -> None:
    fake.script(Fault(delay=0.03), Fault(hang=0.5))
    start = time.monotonic()
    events, _ = stream(client)
    assert content_of(events) == EXPECTED and time.monotonic() - start >= 6 * 0.03
    with pytest.raises(httpx.ReadTimeout):
        client.post("/chat/completions", json=body(), timeout=0.1)


def test_stop_does_not_wait_for_hanging_handler() -> None:
    with FakeOpenAI(api_key=None) as srv:
        srv.default_fault = Fault(hang=30)
        with pytest.raises(httpx.ReadTimeout):
            httpx.post(f"{srv.base_url}/chat/completions", json=body(), timeout=0.1)
        start = time.monotonic()
    assert time.monotonic() - start < 1.0
    assert srv.wait_for_requests(1, timeout=0)


def test_requests_recorded(fake: FakeOpenAI, client: httpx.Client) -> None:
    client.get("/models")
    client.post("/chat/completions", json=body(), headers={"X-Custom": "yes"})
    assert fake.wait_for_requests(2, timeout=1)
    assert not fake.wait_for_requests(3, timeout=0.01)
    assert [r.method for r in fake.requests] == ["GET", "POST"]
    (chat,) = fake.chat_requests
    assert chat.path == "/v1/chat/completions" and chat.body == body()
    assert json.loads(chat.raw_body) == body()
    assert chat.headers["x-custom"] == "yes"
    assert chat.headers["authorization"] == f"Bearer {KEY}"
    assert fake.requests[0].body is None and fake.requests[0].raw_body == b""


def test_cli_subprocess() -> None:
    script = FAKE_SERVER
    args = [sys.executable, str(script), "--port", "0", "--any-key", "--chunks", "7"]
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        ready = proc.stdout.readline().split()
        assert ready[0] == "READY" and ready[1].startswith("http://127.0.0.1:")
        with httpx.Client(base_url=ready[1], timeout=5) as c:
            assert c.get("/models").status_code == 200
            events, _ = stream(c)
            assert content_of(events) == "".join(f"w{i} " for i in range(7))
    finally:
        proc.terminate()
        assert proc.wait(timeout=5) == 0
        proc.stdout.close()


def test_canned_responses_answer_matching_prompts_only() -> None:
    canned = {"how are you": "Fine, **thanks**.\n\n- one\n- two"}
    with FakeOpenAI(api_key=None, responses=canned) as srv:
        with httpx.Client(base_url=srv.base_url, timeout=5) as c:
            events, _ = stream(c)
            assert content_of(events) == canned["how are you"]
            plain = c.post("/chat/completions", json=body()).json()
            assert plain["choices"][0]["message"]["content"] == canned["how are you"]
            other = {"model": "peer-small", "messages": [{"role": "user", "content": "hi"}]}
            reply = c.post("/chat/completions", json=other).json()
            assert reply["choices"][0]["message"]["content"] == "Reply #1 to: hi"
        srv.script(Fault(text="scripted wins"))
        scripted = httpx.post(f"{srv.base_url}/chat/completions", json=body(), timeout=5)
        assert scripted.json()["choices"][0]["message"]["content"] == "scripted wins"


def test_cli_responses_file(tmp_path: Path) -> None:
    answers = tmp_path / "answers.json"
    answers.write_text(json.dumps({"how are you": "Canned."}))
    script = FAKE_SERVER
    args = [sys.executable, str(script), "--port", "0", "--any-key", "--responses", str(answers)]
    proc = subprocess.Popen(
        [*args, "--models", "demo-a,peer-small"], stdout=subprocess.PIPE, text=True
    )
    try:
        assert proc.stdout is not None
        url = proc.stdout.readline().split()[1]
        with httpx.Client(base_url=url, timeout=5) as c:
            assert [m["id"] for m in c.get("/models").json()["data"]] == ["demo-a", "peer-small"]
            assert content_of(stream(c)[0]) == "Canned."
    finally:
        proc.terminate()
        assert proc.wait(timeout=5) == 0
        proc.stdout.close()


STEPS = {
    "Levels?": [
        {
            "reasoning": "Two stations, so two calls.",
            "tool_calls": [["level", {"station": "Brest"}], ["level", {"station": "Cadiz"}]],
        },
        "Brest 4.2 m, Cadiz 1.1 m.",
    ]
}


def turn(*after: dict[str, Any], model: str = "peer-small") -> dict[str, Any]:
    """A request asking "Levels?", then the messages ``after`` it."""
    return {"model": model, "messages": [{"role": "user", "content": "Levels?"}, *after]}


def test_canned_steps_call_tools_then_answer_their_results() -> None:
    with (
        FakeOpenAI(api_key=None, responses=STEPS) as srv,
        httpx.Client(base_url=srv.base_url, timeout=5) as c,
    ):
        first = c.post("/chat/completions", json=turn()).json()["choices"][0]
        assert first["finish_reason"] == "tool_calls"
        calls = first["message"]["tool_calls"]
        assert [json.loads(call["function"]["arguments"]) for call in calls] == [
            {"station": "Brest"},
            {"station": "Cadiz"},
        ]
        assert first["message"]["reasoning_content"] == "Two stations, so two calls."
        results = [
            {"role": "tool", "tool_call_id": call["id"], "content": level}
            for call, level in zip(calls, ["4.2", "1.1"], strict=True)
        ]
        assistant = {"role": "assistant", "content": None, "tool_calls": calls}
        events = []
        request = {**turn(assistant, *results), "stream": True}
        with c.stream("POST", "/chat/completions", json=request) as resp:
            for line in resp.iter_lines():
                if line.startswith("data: {"):
                    events.append(json.loads(line[len("data: ") :]))
        assert content_of(events) == "Brest 4.2 m, Cadiz 1.1 m."
        assert not any("reasoning_content" in str(e) for e in events), "no thinking canned"
        again = turn(assistant, *results, {"role": "assistant", "content": "x"})
        last = c.post("/chat/completions", json=again).json()["choices"][0]
        assert last["message"]["content"] == "Brest 4.2 m, Cadiz 1.1 m.", "the last step"


def test_canned_thinking_streams_first_and_the_demo_thinker_wants_it_back() -> None:
    canned = {"Levels?": {"reasoning": "Think first.", "text": "Then answer."}}
    models = ("peer-small", DEMO_THINKING_MODEL)
    with (
        FakeOpenAI(api_key=None, models=models, responses=canned) as srv,
        httpx.Client(base_url=srv.base_url, timeout=5) as c,
    ):
        request = {**turn(model=DEMO_THINKING_MODEL), "stream": True}
        request["stream_options"] = {"include_usage": True}
        with c.stream("POST", "/chat/completions", json=request) as resp:
            lines = [line for line in resp.iter_lines() if line.startswith("data: {")]
        deltas = [json.loads(line[6:])["choices"] for line in lines]
        thought = [d[0]["delta"].get("reasoning_content") for d in deltas if d]
        assert "".join(t for t in thought if t) == "Think first."
        assert json.loads(lines[-1][6:])["usage"]["completion_tokens_details"] == {
            "reasoning_tokens": 2
        }
        answer = {"role": "assistant", "content": "Then answer."}
        later = turn(answer, {"role": "user", "content": "Levels?"}, model=DEMO_THINKING_MODEL)
        refused = c.post("/chat/completions", json=later)
        assert refused.status_code == 400 and PASS_IT_BACK in refused.text
        answer["reasoning_content"] = "Think first."
        assert c.post("/chat/completions", json=later).status_code == 200


def test_a_canned_key_writes_images_as_image() -> None:
    parts = [
        {"type": "text", "text": "Describe "},
        {"type": "image_url", "image_url": {"url": PNG_URL}},
        {"type": "text", "text": " briefly."},
    ]
    assert canned_key({"messages": [{"role": "user", "content": parts}]}) == (
        "Describe [image] briefly."
    )
    assert canned_key({"messages": CONVERSATION}) == "how are you"
    with FakeOpenAI(api_key=None, responses={"Describe [image] briefly.": "A curve."}) as srv:
        request = {"model": "peer-small", "messages": [{"role": "user", "content": parts}]}
        reply = httpx.post(f"{srv.base_url}/chat/completions", json=request, timeout=5).json()
        assert reply["choices"][0]["message"]["content"] == "A curve."


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        ([], "must not be empty"),
        ({"txt": "typo"}, 'an object of "text", "reasoning", "tool_calls"'),
        ({"reasoning": "only thinking"}, "needs a text or tool calls"),
        ({"tool_calls": [["level"]]}, "[name, arguments] pairs"),
        ({"text": 3}, "are strings"),
    ],
)
def test_a_malformed_canned_value_is_refused(tmp_path: Path, value: Any, problem: str) -> None:
    with pytest.raises(ValueError, match=re.escape(problem)):
        FakeOpenAI(responses={"Levels?": value})
    answers = tmp_path / "answers.json"
    answers.write_text(json.dumps({"Levels?": value}))
    with pytest.raises(SystemExit, match=re.escape(problem)):
        load_responses(str(answers))


@pytest.mark.parametrize("spelling", ["openai", "deepseek"])
def test_a_prompt_cache_reports_the_leading_messages_sent_before(
    fake: FakeOpenAI, client: httpx.Client, spelling: str
) -> None:
    fake.prompt_cache = spelling
    first = [{"role": "system", "content": f"Be {spelling}."}, {"role": "user", "content": "a b c"}]
    later = [*first, {"role": "assistant", "content": "d"}, {"role": "user", "content": "e f"}]
    reports = []
    for messages in (first, later, later):
        answer = client.post(
            "/chat/completions", json={"model": "peer-small", "messages": messages}
        )
        reports.append(answer.json()["usage"])
    cached = [
        report["prompt_tokens_details"]["cached_tokens"]
        if spelling == "openai"
        else report["prompt_cache_hit_tokens"]
        for report in reports
    ]
    # nothing the first time; then "Be terse." and "a b c" (5 words); then all but the last
    assert cached == [0, 5, 6]
    if spelling == "deepseek":
        assert all(
            r["prompt_cache_hit_tokens"] + r["prompt_cache_miss_tokens"] == r["prompt_tokens"]
            for r in reports
        )
