"""A scriptable, offline imitation of an OpenAI-compatible chat-completions server.

Real HTTP/1.1 on 127.0.0.1 (stdlib only), so tests and benchmarks never touch the
internet.  Faults are queued with :meth:`FakeOpenAI.script` (one popped per chat
request, FIFO) or made sticky with :attr:`FakeOpenAI.default_fault`.

Canned answers: ``FakeOpenAI(responses={"What is 2+2?": "4"})`` answers a request whose last
user message is exactly a key with that text (other requests get :func:`answer_for`); in a
message with images, each image counts as the text ``[image]`` (see :func:`canned_key`).  A
value may also be a step or a list of steps, for answers with thinking or tool calls::

    {"Levels in Brest and Cadiz?": [
        {"reasoning": "Two stations: one call each.",
         "tool_calls": [["level", {"station": "Brest"}], ["level", {"station": "Cadiz"}]]},
        "Brest: 4.2 m, Cadiz: 1.1 m."]}

Step *i* answers the *i*-th request of the turn (the first calls the tools, the second answers
their results); ``fake_shapes`` documents the format.  The demo notebooks are recorded this way.

Real providers' shapes (``fake_providers``): the models ``peer-magistral`` (Mistral's typed
content parts), ``peer-gemini`` (tool calls without ``index``, thought signatures it wants
back), ``peer-router`` (OpenRouter's ``reasoning_details``), ``model-router`` (Azure's empty first
chunk) and ``peer-r1`` (thinking between ``<think>`` tags) answer as those providers were
recorded answering; the faults ``chunk_error``, ``repeat_tool_names`` and ``split_surrogates``
reproduce OpenRouter's mid-stream errors, an upstream that repeats tool-call names and a
JavaScript proxy that cuts surrogate pairs.

Load: :attr:`FakeOpenAI.latency` delays every chat answer (no fault to queue per request);
:attr:`FakeOpenAI.rate_limit` ``= (n, seconds)`` answers 429 with ``retry-after-ms`` to a chat
request beyond ``n`` in any ``seconds``; :attr:`FakeOpenAI.peak_in_flight` is the most requests
handled at once, and each :class:`RecordedRequest` has its arrival time (``received``).

Batches: :attr:`FakeOpenAI.batch_api` serves OpenAI's batch API (``/files``, ``/batches``),
each line answered as a chat request would be; ``fake_batches`` says how a test moves a batch
on and makes it fail.

Run ``python tests/support/fake_openai.py --port 0`` to serve in the foreground; it prints
``READY http://127.0.0.1:PORT/v1`` once listening.  ``--responses FILE.json`` (an object of
prompt -> canned value) and ``--models a,b`` set the canned answers and the model names;
``--latency SECONDS`` delays every chat answer; ``--batch-steps N`` keeps a batch in progress
for N status reads.
"""

from __future__ import annotations

import argparse
import base64
import collections
import contextlib
import json
import math
import re
import signal
import socket
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from socketserver import TCPServer
from typing import Any

if __package__ in (None, ""):  # run as a program: the support package is found from tests/
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from support.fake_batches import LOST, FakeBatches
from support.fake_providers import (
    PROVIDER_MODELS,
    THINKING_SHAPES,
    answering_model,
    error_chunk,
    opening_chunk,
    provider_deltas,
    provider_finish,
    provider_message,
    provider_refusal,
    repeated_names,
    split_argument_deltas,
    split_pairs,
)
from support.fake_shapes import (
    CannedStep,
    ToolCallScript,
    canned_steps,
    shaped_answer,
    step_for,
    tool_call_deltas,
    tool_calls_message,
    tool_results_answer,
)

DEFAULT_API_KEY = "sk-test-key"
# Reasoning models that stream their thinking (``reasoning_content``) before the answer and, like
# DeepSeek's thinking mode, refuse a request whose earlier answers lack their thinking (the demo
# notebooks' endpoint serves the second); a model that, like OpenAI's, refuses message fields the
# protocol does not define; and a model that, like a text-only one, refuses images. Every model
# refuses an image part that is not a PNG or JPEG data URL.
THINKING_MODEL = "peer-thinker"
DEMO_THINKING_MODEL = "nbchat-demo-thinker"
THINKING_MODELS = frozenset({THINKING_MODEL, DEMO_THINKING_MODEL})
STRICT_MODEL = "peer-strict"
TEXT_ONLY_MODEL = "peer-text"
DEFAULT_MODELS = (
    "peer-small",
    "peer-large",
    THINKING_MODEL,
    STRICT_MODEL,
    TEXT_ONLY_MODEL,
    *PROVIDER_MODELS,  # answer in a real provider's shape (fake_providers)
)
NO_IMAGES = "Image input is not supported for model peer-text."
PASS_IT_BACK = "The reasoning_content in the thinking mode must be passed back to the API."
_MESSAGE_FIELDS = frozenset({"role", "content", "name", "tool_calls", "tool_call_id"})
CREATED_BASE = 1700000000
FINGERPRINT = "fp_fake"
BLOCK_SIZE = 64 * 1024
PIECE_RE = re.compile(r"\S+\s*|\s+")
STREAM_ERROR = {
    "error": {
        "message": "The server had an error while processing your request.",
        "type": "server_error",
    }
}


@dataclass
class Fault:
    """How to misbehave for one chat request; every default means "behave normally".

    ``headers`` are added to whatever response this fault produces.  A queued
    ``reject_stream_options`` fault is consumed by the next chat request even if
    that request has no ``stream_options``; use it as ``default_fault`` to make it
    sticky.  On non-streamed requests only ``status``, ``hang``, ``text``,
    ``chunks``, ``finish_reason`` and ``drop_after`` (close, no response) apply.
    """

    status: int | None = None  # answer this HTTP status with `body` (default: an error naming it)
    body: dict[str, Any] | None = None
    headers: dict[str, str] = field(default_factory=dict)  # extra response headers
    reject_stream_options: bool = False  # 400 if the request carries stream_options
    chunks: int | None = None  # huge answer: exactly N pieces "w0 ", "w1 ", ...
    delay: float = 0.0  # sleep before each content chunk (disables the block-write fast path)
    drop_after: int | None = None  # close the socket after N content chunks
    error_after: int | None = None  # after N content chunks send an error event, no [DONE]
    no_done: bool = False  # end after the content: no finish_reason chunk, usage or [DONE]
    no_usage: bool = False  # never send the usage chunk
    finish_reason: str | None = None  # override "stop"/"length"
    raw_sse: bytes | None = None  # send exactly these bytes as the SSE body
    write_sizes: list[int] | None = None  # split raw_sse into these write sizes
    hang: float = 0.0  # sleep before sending response headers
    text: str | None = None  # answer this text instead of answer_for(body)
    pieces: list[str] | None = None  # answer exactly these content chunks (a word cut in two)
    # call these tools, [(name, arguments as a dict or raw text)], instead of answering
    tool_calls: list[ToolCallScript] | None = None
    # Shapes of real providers' failures (fake_providers): with error_after, this error object in
    # a chunk that also has choices (finish_reason: the fault's), then [DONE]; every tool-call
    # delta repeating the call's id, type and name; every character outside the BMP streamed
    # as two JSON-escaped halves in two chunks (text, thinking and tool arguments).
    chunk_error: dict[str, Any] | None = None
    repeat_tool_names: bool = False
    split_surrogates: bool = False
    tool_call_ids: list[str | None] | None = None  # their ids (None: no id); default unique


@dataclass(frozen=True)
class RecordedRequest:
    """One HTTP request as the server received it."""

    method: str
    path: str
    headers: dict[str, str]
    body: dict[str, Any] | None
    raw_body: bytes
    received: float = field(default=0.0, compare=False)  # time.monotonic() on arrival


@dataclass
class _Plan:
    """The answer to send: pieces (one per content chunk), finish reason, usage."""

    pieces: list[str]
    finish_reason: str
    usage: dict[str, Any]
    thinking: list[str] = field(default_factory=list)  # reasoning pieces, before the answer
    tool_calls: list[dict[str, Any]] = field(default_factory=list)  # after the text, if any


def _content_text(content: Any) -> str:
    """Flatten a message ``content`` (string or list of parts) to plain text."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        texts = [
            p.get("text") if isinstance(p, dict) and p.get("type") == "text" else p for p in content
        ]
        return " ".join(t for t in texts if isinstance(t, str))
    return ""


def _messages(body: dict[str, Any]) -> list[dict[str, Any]]:
    """The request's messages, ignoring anything malformed."""
    messages = body.get("messages")
    return [m for m in messages if isinstance(m, dict)] if isinstance(messages, list) else []


def _last_user_text(body: dict[str, Any]) -> str:
    """The text of the request's last user message ("" when there is none)."""
    users = [m for m in _messages(body) if m.get("role") == "user"]
    return _content_text(users[-1].get("content")) if users else ""


def canned_key(body: dict[str, Any]) -> str:
    """The key of a request's canned answer: its last user message's text, each image part
    written ``[image]`` ("" when there is no user message)."""
    users = [m for m in _messages(body) if m.get("role") == "user"]
    content = users[-1].get("content") if users else ""
    if not isinstance(content, list):
        return _content_text(content)
    return "".join(
        "[image]" if part.get("type") == "image_url" else str(part.get("text", ""))
        for part in content
        if isinstance(part, dict)
    )


def answer_for(body: dict[str, Any]) -> str:
    """The deterministic reply: ``Reply #<user count> to: <last user text>``, and ``(seeing N
    images)`` when the last user message holds images."""
    users = [m for m in _messages(body) if m.get("role") == "user"]
    seen = len(_image_urls(users[-1])) if users else 0
    images = f" (seeing {seen} image{'s' if seen != 1 else ''})" if seen else ""
    return f"Reply #{len(users)} to: {_last_user_text(body)}{images}"


def _image_urls(message: dict[str, Any]) -> list[Any]:
    """The URLs of a message's ``image_url`` parts."""
    content = message.get("content")
    parts = content if isinstance(content, list) else []
    return [
        (p.get("image_url") or {}).get("url") if isinstance(p.get("image_url"), dict) else None
        for p in parts
        if isinstance(p, dict) and p.get("type") == "image_url"
    ]


def _image_problem(url: Any) -> str | None:
    """Why an image URL is refused: only PNG and JPEG data URLs holding such bytes are read."""
    head, _, payload = url.partition(",") if isinstance(url, str) else ("", "", "")
    if head not in ("data:image/png;base64", "data:image/jpeg;base64"):
        return "Invalid image_url: expected a PNG or JPEG data URL."
    try:
        data = base64.b64decode(payload, validate=True)
    except ValueError:
        return "Invalid image_url: the data is not base64."
    if not data.startswith((b"\x89PNG\r\n\x1a\n", b"\xff\xd8\xff")):
        return "Invalid image_url: the data is not a PNG or JPEG image."
    return None


def split_pieces(text: str) -> list[str]:
    """Split ``text`` into stream pieces that re-join to exactly ``text``."""
    return PIECE_RE.findall(text)


def _err(message: str, type_: str = "invalid_request_error", **extra: Any) -> dict[str, Any]:
    """An OpenAI-style error body."""
    return {"error": {"message": message, "type": type_, **extra}}


def _status_error(status: int) -> dict[str, Any]:
    """Default error body for a scripted ``Fault(status=...)``."""
    phrase = BaseHTTPRequestHandler.responses.get(status, ("Error",))[0]
    kind = "server_error" if status >= 500 else "invalid_request_error"
    code = "rate_limit_exceeded" if status == 429 else None
    return _err(f"Fake error: HTTP {status} {phrase}", kind, param=None, code=code)


def _route_of(path: str) -> str:
    """Strip the query string and an optional ``/v1`` prefix."""
    route = path.split("?", 1)[0].rstrip("/") or "/"
    if route == "/v1" or route.startswith("/v1/"):
        route = route[3:] or "/"
    return route


def _plan(
    body: dict[str, Any], fault: Fault, responses: dict[str, Any] | None = None, number: int = 0
) -> _Plan:
    """Decide pieces, tool calls, finish reason and usage for chat request ``number``."""
    step = _canned_step_for(body, responses or {})
    scripted = fault.tool_calls or (list(step.tool_calls) if step else None)
    calls = tool_calls_message(scripted, number, fault.tool_call_ids) if scripted else []
    if fault.chunks is not None:
        pieces = [f"w{i} " for i in range(fault.chunks)]
    elif fault.pieces is not None:
        pieces = list(fault.pieces)
    elif fault.text is not None:
        pieces = split_pieces(fault.text)
    elif fault.tool_calls:
        pieces = []
    elif step is not None:
        pieces = split_pieces(step.text)
    else:
        default = (
            shaped_answer(body, _last_user_text(body))
            or tool_results_answer(_messages(body))
            or answer_for(body)
        )
        pieces = split_pieces(default)
    if step is not None and step.reasoning is not None:
        thinking = split_pieces(step.reasoning)
    else:
        thinks = body.get("model") in THINKING_MODELS or body.get("model") in THINKING_SHAPES
        thinking = thinking_for(body) if thinks else []
    finish = "tool_calls" if calls else "stop"
    limit = body.get("max_completion_tokens", body.get("max_tokens"))
    if isinstance(limit, int) and not isinstance(limit, bool):
        if len(thinking) > limit:  # cut off while thinking: no answer yet
            thinking, pieces, finish = thinking[: max(limit, 0)], [], "length"
        elif len(thinking) + len(pieces) > limit:
            pieces, finish = pieces[: max(limit - len(thinking), 0)], "length"
    prompt = sum(len(_content_text(m.get("content")).split()) for m in _messages(body))
    completion = len(thinking) + len(pieces)
    usage: dict[str, Any] = {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
    }
    if thinking:
        usage["completion_tokens_details"] = {"reasoning_tokens": len(thinking)}
    return _Plan(pieces, fault.finish_reason or finish, usage, thinking, calls)


def _canned_step_for(body: dict[str, Any], responses: dict[str, Any]) -> CannedStep | None:
    """The canned step that answers this request, if its prompt has a canned answer."""
    value = responses.get(canned_key(body))
    return None if value is None else step_for(canned_steps(value), _messages(body))


def thinking_for(body: dict[str, Any]) -> list[str]:
    """The thinking pieces of the thinking model: deterministic, like its answers."""
    return split_pieces(f"The user asks: {_last_user_text(body)}. I will answer briefly. ")


def _refusal(body: dict[str, Any]) -> str | None:
    """Why a model refuses this request (an image it cannot read, thinking not passed back,
    an unknown message field), if it does."""
    messages = _messages(body)
    urls = [url for message in messages for url in _image_urls(message)]
    if urls and body.get("model") == TEXT_ONLY_MODEL:
        return NO_IMAGES
    for url in urls:
        problem = _image_problem(url)
        if problem:
            return problem
    if body.get("model") in THINKING_MODELS:  # V4 Pro refuses an empty one too
        answers = [m for m in messages if m.get("role") == "assistant"]
        if any(not isinstance(m.get("reasoning_content"), str) for m in answers):
            return PASS_IT_BACK
        if any(not m["reasoning_content"] for m in answers):
            return PASS_IT_BACK
    if (refused := provider_refusal(str(body.get("model")), messages)) is not None:
        return refused
    if body.get("model") == STRICT_MODEL:
        for number, message in enumerate(messages):
            extra = sorted(set(message) - _MESSAGE_FIELDS)
            if extra:
                return (
                    f"Additional properties are not allowed ('{extra[0]}' was unexpected) - "
                    f"'messages.{number}'"
                )
    return None


def completion_body(model: str, plan: _Plan, meta: dict[str, Any]) -> dict[str, Any]:
    """The non-streamed ``chat.completion`` of a plan (``meta``: its ``id`` and ``created``)."""
    message: dict[str, Any] = {"role": "assistant", "content": "".join(plan.pieces)}
    if plan.tool_calls:
        message["content"] = message["content"] or None
        message["tool_calls"] = plan.tool_calls
    if plan.thinking or model in THINKING_MODELS:
        message["reasoning_content"] = "".join(plan.thinking)
    choice = {
        "index": 0,
        "message": provider_message(model, message, plan.thinking, plan.tool_calls),
        "finish_reason": provider_finish(model, plan.finish_reason),
        "logprobs": None,
    }
    return {
        **meta,
        "object": "chat.completion",
        "model": answering_model(model),
        "system_fingerprint": FINGERPRINT,
        "choices": [choice],
        "usage": plan.usage,
    }


def _event(obj: Any) -> str:
    """One SSE event carrying ``obj`` as JSON."""
    return f"data: {json.dumps(obj)}\n\n"


def _content_events(template: dict[str, Any], pieces: list[str]) -> list[str]:
    """Render content chunks fast by splicing each piece into a pre-rendered template."""
    pre, post = _event(template).split('"\\u0000"', 1)
    return [f"{pre}{json.dumps(piece)}{post}" for piece in pieces]


class _Server(ThreadingHTTPServer):
    """ThreadingHTTPServer that knows its :class:`FakeOpenAI` and stays quiet."""

    daemon_threads = True
    block_on_close = False

    def __init__(self, address: tuple[str, int], fake: FakeOpenAI) -> None:
        self.fake = fake
        super().__init__(address, _Handler)

    def server_bind(self) -> None:
        """Bind without HTTPServer's (possibly slow) reverse DNS lookup."""
        TCPServer.server_bind(self)
        self.server_name, self.server_port = self.server_address[:2]

    def handle_error(self, request: Any, client_address: Any) -> None:
        """Ignore socket errors (client went away); report real bugs."""
        if not isinstance(sys.exc_info()[1], OSError):
            super().handle_error(request, client_address)


class _Handler(BaseHTTPRequestHandler):
    """Routes requests and writes (possibly faulty) responses."""

    protocol_version = "HTTP/1.1"
    server_version = "FakeOpenAI/1.0"
    disable_nagle_algorithm = True
    server: _Server
    fault: Fault = Fault()
    counter: int = 0

    def log_message(self, format: str, *args: Any) -> None:
        """Silence per-request logging."""

    def setup(self) -> None:
        super().setup()
        self.server.fake._track(self.connection, add=True)

    def finish(self) -> None:
        self.server.fake._track(self.connection, add=False)
        with contextlib.suppress(OSError):
            super().finish()

    def do_GET(self) -> None:
        """Handle any method (all ``do_*`` aliases point here)."""
        fake = self.server.fake
        fake._count_in_flight(+1)
        try:
            self._handle()
        except ConnectionError:
            self.close_connection = True
        finally:
            fake._count_in_flight(-1)

    do_POST = do_PUT = do_PATCH = do_DELETE = do_GET

    def _handle(self) -> None:
        fake = self.server.fake
        self.counter = fake._next_counter()
        raw = self._read_body()
        body = _parse_json(raw)
        headers = {k.lower(): v for k, v in self.headers.items()}
        fake._record(RecordedRequest(self.command, self.path, headers, body, raw, time.monotonic()))
        route = _route_of(self.path)
        is_chat = self.command == "POST" and route == "/chat/completions"
        wait = fake._over_rate_limit() if is_chat else None
        if wait is not None:  # rejected at once, as a real limiter does; no fault is used up
            self.fault = Fault(headers={"retry-after-ms": str(max(1, math.ceil(wait * 1000)))})
            return self._send_json(429, _status_error(429))
        self.fault = fake._pop_fault() if is_chat else Fault()
        if self.fault.hang and fake._pause(self.fault.hang):
            return self._drop()
        if is_chat and fake.latency and fake._pause(fake.latency):
            return self._drop()
        if fake.api_key is not None and headers.get("authorization") != f"Bearer {fake.api_key}":
            return self._send_json(401, _err("Incorrect API key provided.", code="invalid_api_key"))
        if is_chat:
            return self._chat(body)
        if fake.batch_api.serves(route):
            content_type = self.headers.get("Content-Type", "")
            reply = fake.batch_api.handle(self.command, route, content_type, raw)
            return self._drop() if reply == LOST else self._send_bytes(*reply)
        if self.command == "GET" and route == "/models":
            return self._send_json(200, fake.models_payload())
        message = f"Invalid URL ({self.command} {self.path})"
        self._send_json(404, _err(message, param=None, code=None))

    def _read_body(self) -> bytes:
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            parts = []
            while size := int(self.rfile.readline().split(b";")[0].strip() or b"0", 16):
                parts.append(self.rfile.read(size))
                self.rfile.readline()
            while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                pass
            return b"".join(parts)
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length > 0 else b""

    def _chat(self, body: dict[str, Any] | None) -> None:
        fault, models = self.fault, self.server.fake.models
        if body is None:
            return self._send_json(
                400,
                _err("We could not parse the JSON body of your request.", param=None, code=None),
            )
        model = body.get("model")
        if not isinstance(model, str):
            message = "you must provide a model parameter"
            return self._send_json(400, _err(message, param=None, code=None))
        if model not in models:
            message = f"The model `{model}` does not exist or you do not have access to it."
            return self._send_json(404, _err(message, code="model_not_found"))
        if fault.status is not None:
            return self._send_json(fault.status, fault.body or _status_error(fault.status))
        if fault.reject_stream_options and "stream_options" in body:
            message = "Unrecognized request argument supplied: stream_options"
            return self._send_json(400, _err(message))
        if fault.raw_sse is not None:
            return self._raw_sse(fault.raw_sse, fault.write_sizes or [])
        refusal = _refusal(body)
        if refusal is not None:
            return self._send_json(400, _err(refusal, param="messages", code="invalid_request"))
        plan = _plan(body, fault, self.server.fake.responses, self.counter)
        self.server.fake.report_cache(body, plan.usage)
        if body.get("stream"):
            return self._stream(body, plan)
        if fault.drop_after is not None:
            return self._drop()
        self._send_json(200, self._completion(model, plan))

    def _meta(self) -> dict[str, Any]:
        return {"id": f"chatcmpl-{self.counter}", "created": CREATED_BASE + self.counter}

    def _completion(self, model: str, plan: _Plan) -> dict[str, Any]:
        return completion_body(model, plan, self._meta())

    def _stream(self, body: dict[str, Any], plan: _Plan) -> None:
        fault, meta = self.fault, self._meta()
        options = body.get("stream_options")
        include_usage = isinstance(options, dict) and bool(options.get("include_usage"))
        base = {
            "id": meta["id"],
            "object": "chat.completion.chunk",
            "created": meta["created"],
            "model": answering_model(body["model"]),
            "system_fingerprint": FINGERPRINT,
        }

        def chunk(delta: dict[str, Any], finish: str | None) -> dict[str, Any]:
            choice = {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}
            return {**base, "choices": [choice], **({"usage": None} if include_usage else {})}

        cuts = [n for n in (fault.drop_after, fault.error_after) if n is not None]
        cut = min(cuts) if cuts else None
        dropping = fault.drop_after is not None and fault.drop_after == cut
        content = self._content(body["model"], plan, chunk, cut)
        tail: list[str] = []
        if dropping:
            pass
        elif fault.error_after is not None and fault.chunk_error is not None:
            failed = {**chunk({}, None), **error_chunk(fault.chunk_error, fault.finish_reason)}
            tail = [_event(failed), "data: [DONE]\n\n"]
        elif fault.error_after is not None:
            tail = [_event(STREAM_ERROR)]
        elif not fault.no_done:
            finish = provider_finish(body["model"], plan.finish_reason)
            tail = [_event(chunk({}, fault.finish_reason or finish))]
            if include_usage and not fault.no_usage:
                tail.append(_event({**base, "choices": [], "usage": plan.usage}))
            tail.append("data: [DONE]\n\n")
        self._start_sse()
        head = _event(chunk({"role": "assistant", "content": ""}, None))
        if (opening := opening_chunk(body["model"])) is not None:
            head = _event(opening) + head
        if not self._write_events(head, content, tail, fault.delay) or dropping:
            return self._drop()
        self.wfile.write(b"0\r\n\r\n")

    def _content(
        self, model: str, plan: _Plan, chunk: Callable[..., dict[str, Any]], cut: int | None
    ) -> list[str]:
        """The events of the thinking, the text (the first ``cut`` pieces) and the tool calls,
        in the model's shape (fake_providers) or OpenAI's."""
        fault = self.fault
        pieces, thinking, calls = plan.pieces[:cut], plan.thinking, plan.tool_calls
        if fault.split_surrogates:
            pieces, thinking = split_pairs(pieces), split_pairs(thinking)
        shaped = provider_deltas(model, pieces, thinking, calls)
        if shaped is not None:
            return [_event(chunk(delta, None)) for delta in shaped]
        call_deltas = tool_call_deltas(calls)
        if fault.repeat_tool_names:
            call_deltas = repeated_names(call_deltas)
        if fault.split_surrogates:
            call_deltas = split_argument_deltas(call_deltas)
        content = _content_events(chunk({"content": "\x00"}, None), pieces)
        content += [_event(chunk(delta, None)) for delta in call_deltas]
        if thinking:  # the thinking streams first, in its own field
            thought = chunk({"reasoning_content": "\x00"}, None)
            content = _content_events(thought, thinking) + content
        return content

    def _write_events(self, head: str, content: list[str], tail: list[str], delay: float) -> bool:
        """Write the events; False if the server is stopping mid-stream."""
        if not delay:
            data = "".join([head, *content, *tail]).encode()
            for start in range(0, len(data), BLOCK_SIZE):
                self._write_chunk(data[start : start + BLOCK_SIZE])
            return True
        self._write_chunk(head.encode())
        for event in content:
            if self.server.fake._pause(delay):
                return False
            self._write_chunk(event.encode())
        for event in tail:
            self._write_chunk(event.encode())
        return True

    def _raw_sse(self, data: bytes, sizes: list[int]) -> None:
        self._start_sse()
        start = 0
        for size in [*sizes, len(data)]:
            if start >= len(data):
                break
            if start:
                time.sleep(0.005)
            self._write_chunk(data[start : start + size])
            start += max(size, 0)
        self.wfile.write(b"0\r\n\r\n")

    def _begin(self, status: int, headers: dict[str, str]) -> None:
        self.send_response(status)
        headers = {**headers, "x-request-id": f"req_{self.counter}", **self.fault.headers}
        for name, value in headers.items():
            self.send_header(name, value)
        self.end_headers()

    def _send_bytes(
        self, status: int, content_type: str, data: bytes, headers: dict[str, str]
    ) -> None:
        length = str(len(data))
        self._begin(status, {"Content-Type": content_type, "Content-Length": length, **headers})
        self.wfile.write(data)

    def _send_json(self, status: int, obj: Any) -> None:
        data = json.dumps(obj).encode()
        self._begin(status, {"Content-Type": "application/json", "Content-Length": str(len(data))})
        self.wfile.write(data)

    def _start_sse(self) -> None:
        self._begin(
            200,
            {
                "Content-Type": "text/event-stream",
                "Cache-Control": "no-cache",
                "Transfer-Encoding": "chunked",
            },
        )

    def _write_chunk(self, data: bytes) -> None:
        if data:
            self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))

    def _drop(self) -> None:
        """Abruptly close the connection (no response / unterminated body)."""
        self.close_connection = True
        with contextlib.suppress(OSError):
            self.connection.shutdown(socket.SHUT_RDWR)
        self.connection.close()


def _parse_json(raw: bytes) -> dict[str, Any] | None:
    """Parse a JSON object body; None if empty, invalid or not an object."""
    try:
        body = json.loads(raw) if raw else None
    except ValueError:
        return None
    return body if isinstance(body, dict) else None


class FakeOpenAI:
    """The fake server; see the module docstring.  Usable as a context manager."""

    def __init__(
        self,
        api_key: str | None = DEFAULT_API_KEY,
        models: tuple[str, ...] = DEFAULT_MODELS,
        port: int = 0,
        responses: dict[str, Any] | None = None,
    ) -> None:
        self.api_key = api_key
        self.models = tuple(models)
        self.port = port
        self.responses: dict[str, Any] = dict(responses or {})  # canned key -> text or steps
        for value in self.responses.values():
            canned_steps(value)  # a malformed value fails here, not in a request handler
        self.requests: list[RecordedRequest] = []
        self.default_fault = Fault()
        self.latency = 0.0  # seconds every chat request waits before its answer
        self.rate_limit: tuple[int, float] | None = None  # (requests, per seconds)
        # A provider's prompt cache: a request whose leading messages an earlier request sent
        # reports their tokens as cached, spelled as OpenAI ("openai": prompt_tokens_details)
        # or DeepSeek ("deepseek": prompt_cache_hit/miss_tokens) do; None reports no cache.
        self.prompt_cache: str | None = None
        self._prefixes: set[str] = set()
        self.peak_in_flight = 0  # the most requests handled at once (since reset)
        self._in_flight = 0
        self._accepted: collections.deque[float] = collections.deque()  # for rate_limit
        self._faults: collections.deque[Fault] = collections.deque()
        self._cond = threading.Condition()
        self._counter = 0
        self.batch_api = FakeBatches(self._batch_answer)  # /files and /batches (fake_batches)
        self._connections: set[socket.socket] = set()
        self._stopping = threading.Event()
        self._httpd: _Server | None = None
        self._thread: threading.Thread | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    @property
    def chat_requests(self) -> list[RecordedRequest]:
        with self._cond:
            return [
                r
                for r in self.requests
                if r.method == "POST" and _route_of(r.path) == "/chat/completions"
            ]

    def report_cache(self, body: dict[str, Any], usage: dict[str, Any]) -> None:
        """Add the cached part of the prompt to ``usage`` (see ``prompt_cache``): the tokens of
        the longest run of leading messages an earlier request sent."""
        messages = _messages(body)
        prefixes = [
            json.dumps(messages[:length], sort_keys=True) for length in range(1, len(messages) + 1)
        ]
        with self._cond:
            seen = [
                n for n, prefix in enumerate(prefixes[:-1], start=1) if prefix in self._prefixes
            ]
            self._prefixes.update(prefixes)
        if self.prompt_cache is None:
            return
        hit = max(seen, default=0)
        cached = sum(len(_content_text(m.get("content")).split()) for m in messages[:hit])
        if self.prompt_cache == "deepseek":
            usage["prompt_cache_hit_tokens"] = cached
            usage["prompt_cache_miss_tokens"] = usage["prompt_tokens"] - cached
        else:
            usage["prompt_tokens_details"] = {"cached_tokens": cached}

    @property
    def batch_requests(self) -> list[RecordedRequest]:
        """The requests to the batch API (``/files``, ``/batches``)."""
        with self._cond:
            return [r for r in self.requests if self.batch_api.serves(_route_of(r.path))]

    def _batch_answer(self, body: dict[str, Any], number: int) -> dict[str, Any]:
        """A batch line's answer: what a non-streamed chat request with ``body`` gets."""
        plan = _plan(body, Fault(), self.responses, number)
        meta = {"id": f"chatcmpl-batch-{number}", "created": CREATED_BASE + number}
        return completion_body(body["model"], plan, meta)

    def start(self) -> FakeOpenAI:
        """Bind 127.0.0.1 (``port`` 0 = any free port) and serve in a daemon thread."""
        if self._httpd is not None:
            raise RuntimeError("FakeOpenAI already started")
        self._stopping.clear()
        self._httpd = _Server(("127.0.0.1", self.port), self)
        self.port = self._httpd.server_address[1]
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, args=(0.05,), name="fake-openai", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving, close the listening socket and shut down open connections."""
        httpd, self._httpd = self._httpd, None
        if httpd is None:
            return
        self._stopping.set()
        httpd.shutdown()
        httpd.server_close()
        with self._cond:
            connections = list(self._connections)
        for conn in connections:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)
        if self._thread is not None:
            self._thread.join(timeout=1.0)

    def __enter__(self) -> FakeOpenAI:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def script(self, *faults: Fault) -> None:
        """Queue faults; each chat-completions request pops the next one."""
        with self._cond:
            self._faults.extend(faults)

    def reset(self) -> None:
        """Forget recorded requests, queued faults, ``default_fault``, the load settings
        (``latency``, ``rate_limit``, ``peak_in_flight``) and the prompt cache."""
        with self._cond:
            self.prompt_cache = None
            self._prefixes.clear()
            self.requests.clear()
            self._faults.clear()
            self.default_fault = Fault()
            self.latency = 0.0
            self.rate_limit = None
            self.peak_in_flight = self._in_flight
            self._accepted.clear()
        self.batch_api.reset()

    def wait_for_requests(self, n: int, timeout: float = 5.0) -> bool:
        """Wait until at least ``n`` requests were received; False on timeout."""
        with self._cond:
            return self._cond.wait_for(lambda: len(self.requests) >= n, timeout)

    def models_payload(self) -> dict[str, Any]:
        """The ``GET /v1/models`` body."""
        data = [
            {"id": m, "object": "model", "created": CREATED_BASE, "owned_by": "fake"}
            for m in self.models
        ]
        return {"object": "list", "data": data}

    def _next_counter(self) -> int:
        with self._cond:
            self._counter += 1
            return self._counter

    def _record(self, request: RecordedRequest) -> None:
        with self._cond:
            self.requests.append(request)
            self._cond.notify_all()

    def _pop_fault(self) -> Fault:
        with self._cond:
            return self._faults.popleft() if self._faults else self.default_fault

    def _pause(self, seconds: float) -> bool:
        """Sleep, waking early if the server stops; True if it is stopping."""
        return self._stopping.wait(seconds)

    def _count_in_flight(self, change: int) -> None:
        with self._cond:
            self._in_flight += change
            self.peak_in_flight = max(self.peak_in_flight, self._in_flight)

    def _over_rate_limit(self) -> float | None:
        """Seconds until a chat request would be accepted, or None: accepted (and counted)."""
        with self._cond:
            if self.rate_limit is None:
                return None
            limit, window = self.rate_limit
            now = time.monotonic()
            while self._accepted and self._accepted[0] <= now - window:
                self._accepted.popleft()
            if len(self._accepted) >= limit:
                return self._accepted[0] + window - now
            self._accepted.append(now)
            return None

    def _track(self, conn: socket.socket, add: bool) -> None:
        with self._cond:
            (self._connections.add if add else self._connections.discard)(conn)


def load_responses(path: str) -> dict[str, Any]:
    """Read canned answers from a JSON file holding one object of prompt -> canned value (a
    text, a step or a list of steps, as ``fake_shapes`` describes)."""
    with open(path, encoding="utf-8") as handle:
        data = json.load(handle)
    if not isinstance(data, dict):
        raise SystemExit(f"{path}: expected a JSON object of prompt -> answer")
    for prompt, value in data.items():
        try:
            canned_steps(value)
        except ValueError as exc:
            raise SystemExit(f"{path}: the answer to {prompt[:40]!r}: {exc}") from None
    return data


def main(argv: list[str] | None = None) -> None:
    """CLI: serve in the foreground until SIGTERM/SIGINT."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=0)
    keys = parser.add_mutually_exclusive_group()
    keys.add_argument("--api-key", default=DEFAULT_API_KEY)
    keys.add_argument("--any-key", action="store_true", help="accept any (or no) API key")
    parser.add_argument("--chunks", type=int, default=None, help="answer every chat with N chunks")
    parser.add_argument(
        "--latency", type=float, default=0.0, help="seconds every chat answer waits"
    )
    parser.add_argument(
        "--responses",
        metavar="FILE.json",
        help="canned answers: a JSON object prompt -> answer, where an answer is a text, a step "
        '{"text", "reasoning", "tool_calls": [[name, {args}], ...]} or a list of steps (step i '
        "answers the i-th request of the turn)",
    )
    parser.add_argument(
        "--models", default=",".join(DEFAULT_MODELS), help="comma-separated model names"
    )
    parser.add_argument(
        "--batch-steps",
        type=int,
        default=1,
        help="status reads a batch spends in progress before it completes",
    )
    args = parser.parse_args(argv)
    server = FakeOpenAI(
        api_key=None if args.any_key else args.api_key,
        models=tuple(name.strip() for name in args.models.split(",") if name.strip()),
        port=args.port,
        responses=load_responses(args.responses) if args.responses else None,
    )
    if args.chunks is not None:
        server.default_fault = Fault(chunks=args.chunks)
    server.latency = args.latency
    server.batch_api.steps = args.batch_steps
    for sig in (signal.SIGTERM, signal.SIGINT):  # explicit: SIGINT may be ignored in background
        signal.signal(sig, lambda *_: sys.exit(0))
    server.start()
    print(f"READY {server.base_url}", flush=True)
    try:
        while True:
            time.sleep(3600)
    finally:
        server.stop()


if __name__ == "__main__":
    main()
