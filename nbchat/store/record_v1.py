"""Reading records of schema 1, written by nbchat 0.1, into today's `Record`.

A schema 1 record (``application/vnd.nbchat.v1+json``) stored its whole request: ``prompt``,
``request`` (``base_url``, ``model``, ``messages``, ``params``, all as sent) and ``response`` (one
``chat.completion``), with ``key`` = ``"v1:" + sha256`` of the normalised base URL, model, every
message and the answer-changing parameters. Its ``kind`` was ``"answer"`` or ``"system"``.

Every notebook written by 0.1 keeps working: its records are read here, found by their v1 key
(`nbchat.store.keys.request_key_v1`), replayed with no request, and rewritten as schema 2 by
``nbchat upgrade``. Their context is rebuilt from the messages they stored.
"""

from __future__ import annotations

from typing import Any

from nbchat._json import json_kind, need, required
from nbchat._text import clip, one_line
from nbchat.store.checks import check_timing
from nbchat.store.keys import history_of, request_key_v1, turn_digest
from nbchat.store.record import SYSTEM, TURN, Record, RequestInfo
from nbchat.wire.messages import wire_turn
from nbchat.wire.protocol import completion_problem, message_problem

__all__ = ["read_v1", "v1_key"]


def read_v1(data: dict[str, Any]) -> Record:
    """A schema 1 record as a `Record` (``schema`` 1); `ValueError` names a malformed field."""
    common = _common_fields(data)
    if data["kind"] == "system":
        system = [{"role": "system", "content": data["prompt"]}]
        return Record(kind=SYSTEM, messages=system, **common)
    if data["kind"] != "answer":
        raise ValueError(f"unknown record kind {clip(one_line(str(data['kind'])), 40)!r}")
    need(required(data, "key", ""), "key", str)
    request, response = required(data, "request", ""), required(data, "response", "")
    need(request, "request", dict)
    need(response, "response", dict)
    messages = _check_request(request)
    problem = completion_problem(response)
    if problem:
        raise ValueError(f"response.{problem}")
    if not response["choices"]:
        raise ValueError("response.choices is an empty list")
    user = messages[-1]
    if user.get("role") != "user" or user.get("content") != data["prompt"]:
        raise ValueError("prompt does not match the request's last user message")
    earlier = messages[:-1]
    system = None
    if earlier and earlier[0].get("role") == "system":
        system, earlier = earlier[0].get("content"), earlier[1:]
    choices = [dict(choice) for choice in response["choices"]]
    assistant = choices[0].pop("message")
    where = "response.choices[0].message"
    need(required(assistant, "role", where), f"{where}.role", str)
    return Record(
        kind=TURN,
        messages=[user, assistant],
        key=data["key"],
        history=_history(earlier),
        request=RequestInfo(request["base_url"], None, request["model"], request["params"], system),
        responses=[{**response, "choices": choices}],
        earlier=earlier,
        **common,
    )


def _common_fields(data: dict[str, Any]) -> dict[str, Any]:
    """The fields every schema 1 record has, checked."""
    for name in ("kind", "thread", "prompt"):
        need(required(data, name, ""), name, str)
    for name in ("stored_at", "nbchat_version"):
        if name in data:
            need(data[name], name, str)
    need(data.get("cell_id"), "cell_id", str, null=True)
    need(data.get("new_thread", False), "new_thread", bool)
    timing = data.get("timing", {})
    check_timing(timing)
    return {
        "thread": data["thread"],
        "cell_id": data.get("cell_id"),
        "new_thread": data.get("new_thread", False),
        "timing": timing,
        "stored_at": data.get("stored_at", ""),
        "nbchat_version": data.get("nbchat_version", "0.1"),
        "schema": 1,
        "original": data,
        "key_rule": v1_key,
    }


def v1_key(record: Record) -> str | None:
    """The key a schema 1 record's request has (to check it against the one it states)."""
    if record.request is None or record.earlier is None:
        return None
    system = record.request.system
    head = [{"role": "system", "content": system}] if system is not None else []
    messages = [*head, *record.earlier, record.messages[0]]
    return request_key_v1(
        record.request.base_url, record.request.model, messages, record.request.params
    )


def _check_request(request: dict[str, Any]) -> list[dict[str, Any]]:
    for name in ("base_url", "model"):
        need(required(request, name, "request"), f"request.{name}", str)
    need(required(request, "params", "request"), "request.params", dict)
    messages = required(request, "messages", "request")
    need(messages, "request.messages", list)
    if not messages:
        raise ValueError("request.messages is an empty list")
    for index, message in enumerate(messages):
        path = f"request.messages[{index}]"
        need(message, path, dict)
        need(required(message, "role", path), f"{path}.role", str)
        content = required(message, "content", path)
        need(content, f"{path}.content", (str, list))
        for number, part in enumerate(content if isinstance(content, list) else ()):
            if not isinstance(part, dict):
                raise ValueError(f"{path}.content[{number}] is {json_kind(part)}, not an object")
        problem = message_problem(message, path)
        if problem:
            raise ValueError(problem)
    return messages


def _history(earlier: list[dict[str, Any]]) -> str | None:
    """The history digest of the turns a schema 1 record stored above its prompt: user and
    assistant pairs (None when they are not pairs, which 0.1 never wrote)."""
    if len(earlier) % 2:
        return None
    pairs = [earlier[i : i + 2] for i in range(0, len(earlier), 2)]
    if any(u.get("role") != "user" or a.get("role") != "assistant" for u, a in pairs):
        return None
    return history_of(turn_digest(wire_turn([u, a])) for u, a in pairs)
