"""The record: what nbchat stores in a cell's output, and the key that finds it again.

A record rides in the answer's ``display_data`` bundle under ``application/vnd.nbchat.v2+json``
(or, with ``--raw``, as the JSON of the raw view next to it, marked ``{"nbchat": {"record": 2}}``).
Schema version 2 stores only what the cell's turn added, and refers to the turns above it, so a
thread's notebook grows linearly with its length. Every field is JSON:

==================  =========================================================================
``schema``          ``2``
``kind``            ``"turn"`` (a cell that was answered) or ``"system"`` (a ``--system`` cell)
``nbchat_version``  the nbchat version that wrote it
``thread``          the thread name
``cell_id``         the notebook cell id the kernel was told, or ``null``
``new_thread``      ``true`` when this cell started its thread afresh (``--new``)
``messages``        the messages the turn added: the user message first (its ``content`` a
                    list of text and ``image_url`` parts when it holds images), then the
                    assistant's as the provider returned them; a turn that ran tools has each
                    assistant message that called them followed by one ``tool`` message per
                    call, and ends with the answer. A system record holds its ``system``
                    message.
``key``             (turns) ``"v2:" + sha256`` of the request: endpoint, query digest, model,
                    answer-changing parameters (the tool specs and ``response_format``
                    included), system prompt, ``history`` and the user message
``history``         (turns) digest of the turns above it as sent (`nbchat.store.keys`)
``parent``          (turns) key of the record of the turn right above it, or ``null``
``context``         (turns, only when needed) keys of every turn above it, oldest first: written
                    when those turns are not the parent's own context plus the parent (a cell
                    above was re-run after the parent answered)
``request``         (turns) ``{"base_url", "query_digest", "model", "params", "system"}``: the
                    base URL with credentials and query values masked (the query is kept as a
                    digest), the request fields sent besides the messages (no key, no headers,
                    no stream flags) and the system prompt, or ``null``
``responses``       (turns) one ``chat.completion`` per request the turn made, each without the
                    ``message`` of its first choice, which is in ``messages``
``timing``          ``{"started_at": ISO-8601, "elapsed_s", "first_token_s", "streamed"}``, and
                    ``thinking_s`` (how long the model thought before its answer) and
                    ``tool_s`` (each tool call's run time, in order) when there were some;
                    ``batch_id`` when a provider's batch answered it (``--map --batch``:
                    ``started_at`` is then when the batch was submitted, ``elapsed_s`` how
                    long the batch took)
``stored_at``       ISO-8601 UTC time the answer was complete
``mcp``             (turns that offered tools of MCP servers, only then) which server tool each
                    such tool name of ``request.params.tools`` stood for: ``{name: [server,
                    tool]}``. Not part of the key (the specs sent are); it lets a replay find the
                    answer with the specs it was sent with, without asking the servers.
==================  =========================================================================

The full request of a turn is rebuilt by following ``parent`` (or ``context``) through the
notebook's records (`store.chain`); where a record above is missing (its cell was deleted) the
rebuild says so, and replay still works, since a cell's key is computed from the turns above it
as they are now. Schema 1 (nbchat 0.1) stored every request whole; it is read by
`nbchat.store.record_v1` into the same `Record`, and ``nbchat upgrade`` rewrites it as schema 2.

Only complete answers become records. A record is data: replaying it never executes anything.
Readers reject a record whose fields have the wrong JSON type, naming the field, and a turn
whose tool calls lack their results (`nbchat.store.checks`).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from nbchat._json import need, required
from nbchat._text import clip, one_line
from nbchat._version import __version__
from nbchat.store.checks import check_messages, check_responses, check_timing, check_tool_results
from nbchat.store.keys import Endpoint, request_key
from nbchat.wire.images import part_summary
from nbchat.wire.messages import reasoning_of
from nbchat.wire.protocol import completion_problem
from nbchat.wire.usage import summed_usage

__all__ = [
    "RECORD_MIME",
    "RECORD_MIME_PATTERN",
    "SCHEMA_VERSION",
    "STANDALONE",
    "Record",
    "RequestInfo",
    "message_text",
    "thread_label",
    "utc_now",
]

SCHEMA_VERSION = 2
RECORD_MIME = f"application/vnd.nbchat.v{SCHEMA_VERSION}+json"
RECORD_MIME_PATTERN = re.compile(r"^application/vnd\.nbchat\.v(\d+)\+json$")
TURN, SYSTEM = "turn", "system"
_DIGEST = re.compile(r"[0-9a-f]{64}")
# The "thread" of a turn asked with no context: `ask()` without a thread, an item of --map.
STANDALONE = ""


def thread_label(thread: str) -> str:
    """A thread as tables list it (``--map`` items and ``nbchat.ask`` stand alone)."""
    return thread or "(standalone)"


def utc_now() -> str:
    """The current time as ISO-8601 UTC with a ``Z``."""
    return datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def message_text(message: dict[str, Any] | None) -> str:
    """The text of a message: its content, or the parts of a list content in order (two text
    parts a line apart), each image as ``[PNG image, 640×480, 45 kB]``."""
    content = (message or {}).get("content")
    if isinstance(content, str):
        return content
    if not isinstance(content, list):
        return ""
    texts: list[str] = []
    after_text = False
    for part in content:
        if not isinstance(part, dict):
            continue
        if part.get("type") == "text" and isinstance(part.get("text"), str):
            texts.append(("\n" if after_text else "") + part["text"])
            after_text = True
        elif part.get("type") == "image_url":
            texts.append(f"[{part_summary(part)}]")
            after_text = False
    return "".join(texts)


@dataclass(frozen=True)
class RequestInfo:
    """What a record keeps of its request besides the messages."""

    base_url: str  # shown form: credentials and query values masked
    query_digest: str | None
    model: str
    params: dict[str, Any]
    system: str | None

    @property
    def endpoint(self) -> Endpoint:
        """The endpoint as the key sees it."""
        return Endpoint.stored(self.base_url, self.query_digest)

    def to_json(self) -> dict[str, Any]:
        """The stored form."""
        return {
            "base_url": self.base_url,
            "query_digest": self.query_digest,
            "model": self.model,
            "params": self.params,
            "system": self.system,
        }


@dataclass(kw_only=True)
class Record:
    """One stored turn (or system prompt) of a thread, of schema 2 or read from schema 1."""

    kind: str
    thread: str
    messages: list[dict[str, Any]]
    cell_id: str | None = None
    new_thread: bool = False
    key: str | None = None
    history: str | None = None
    parent: str | None = None
    context: list[str] | None = None
    request: RequestInfo | None = None
    responses: list[dict[str, Any]] = field(default_factory=list)
    timing: dict[str, Any] = field(default_factory=dict)
    stored_at: str = field(default_factory=utc_now)
    mcp: dict[str, list[str]] | None = None  # tool name sent -> [server, tool]
    nbchat_version: str = __version__
    schema: int = SCHEMA_VERSION
    # Schema 1 only: the messages above the user message as stored (no system message), the
    # base URL as stored, and the record's JSON as written.
    earlier: list[dict[str, Any]] | None = None
    original: dict[str, Any] | None = None
    # How a record of an older schema recomputes its key (its reader sets it; None: schema 2).
    key_rule: Callable[[Record], str | None] | None = field(default=None, repr=False, compare=False)

    # -- what it says ----------------------------------------------------------------------

    @property
    def prompt(self) -> str:
        """The user's text (a system record: the system prompt)."""
        return message_text(self.messages[0]) if self.messages else ""

    @property
    def assistant(self) -> dict[str, Any] | None:
        """The final assistant message, as the provider returned it."""
        for message in reversed(self.messages):
            if message.get("role") == "assistant":
                return message
        return None

    @property
    def answer(self) -> str:
        """The answer's text ("" for a system record)."""
        return message_text(self.assistant) if self.kind == TURN else ""

    @property
    def reasoning(self) -> str:
        """A reasoning model's thinking before the answer, as it returned it ("" when none)."""
        found = reasoning_of(self.assistant) if self.kind == TURN else None
        return found[1] if found else ""

    @property
    def last_response(self) -> dict[str, Any]:
        """The completion of the turn's last request (without its message)."""
        return self.responses[-1] if self.responses else {}

    @property
    def finish_reason(self) -> str | None:
        """Why the answer ended (``stop``, ``length``, ...)."""
        choices = self.last_response.get("choices") or [{}]
        return choices[0].get("finish_reason")

    @property
    def usage(self) -> dict[str, Any]:
        """Token usage as reported, summed over the turn's requests (empty when not reported)."""
        reports = [r["usage"] for r in self.responses if isinstance(r.get("usage"), dict)]
        if len(reports) <= 1:
            return dict(reports[0]) if reports else {}
        return summed_usage(reports)

    @property
    def batch_id(self) -> str | None:
        """The provider batch that answered it (``--map --batch``), or None: asked in real
        time (its price is the batch price)."""
        batch = self.timing.get("batch_id")
        return batch if isinstance(batch, str) else None

    @property
    def model(self) -> str | None:
        """The model that answered, else the model asked for."""
        answered = self.last_response.get("model")
        return answered or (self.request.model if self.request else None)

    def completion(self) -> dict[str, Any]:
        """The last response as the provider sent it: its first choice's message restored."""
        response = dict(self.last_response)
        choices = [dict(choice) for choice in response.get("choices") or [{"index": 0}]]
        choices[0]["message"] = self.assistant or {"role": "assistant", "content": ""}
        response["choices"] = choices
        return response

    # -- trust ------------------------------------------------------------------------------

    def expected_key(self) -> str | None:
        """The key recomputed from what the record says was sent."""
        if self.key_rule is not None:
            return self.key_rule(self)
        if self.kind != TURN or self.request is None or self.history is None:
            return None
        request = self.request
        return request_key(
            request.endpoint,
            request.model,
            request.params,
            request.system,
            self.history,
            self.messages[0],
        )

    def consistency_problem(self) -> str | None:
        """Why this record cannot be trusted as a stored answer, or None when it can."""
        if self.kind == TURN and self.expected_key() != self.key:
            return "key does not match its request"
        return None

    # -- JSON -------------------------------------------------------------------------------

    def to_json(self) -> dict[str, Any]:
        """The JSON object stored in the notebook (a schema 1 record: as it was written)."""
        if self.original is not None:
            return self.original
        data: dict[str, Any] = {
            "schema": SCHEMA_VERSION,
            "kind": self.kind,
            "nbchat_version": self.nbchat_version,
            "thread": self.thread,
            "cell_id": self.cell_id,
            "new_thread": self.new_thread,
            "messages": self.messages,
        }
        if self.kind == TURN:
            data.update(key=self.key, history=self.history, parent=self.parent)
            if self.context is not None:
                data["context"] = self.context
            data["request"] = self.request.to_json() if self.request else None
            data["responses"] = self.responses
        data.update(timing=self.timing, stored_at=self.stored_at)
        if self.kind == TURN and self.mcp is not None:
            data["mcp"] = self.mcp
        return data

    @classmethod
    def from_json(cls, data: Any) -> Record:
        """Read a stored record of schema 2 (`store.reading.read_record` reads every schema);
        `ValueError` names what is wrong."""
        if not isinstance(data, dict):
            raise ValueError("a record is a JSON object")
        stated = data.get("schema", SCHEMA_VERSION)
        if not isinstance(stated, int) or isinstance(stated, bool):
            raise ValueError("record schema must be an integer")
        if stated != SCHEMA_VERSION:
            raise ValueError(f"record says schema {stated} but is stored as version 2")
        return _read_v2(data)


def _read_v2(data: dict[str, Any]) -> Record:
    """A schema 2 record, every field checked."""
    kind = required(data, "kind", "")
    if kind not in (TURN, SYSTEM):
        raise ValueError(f"unknown record kind {clip(one_line(str(kind)), 40)!r}")
    for name in ("thread", "stored_at", "nbchat_version"):
        need(required(data, name, ""), name, str)
    need(data.get("cell_id"), "cell_id", str, null=True)
    need(data.get("new_thread", False), "new_thread", bool)
    messages = required(data, "messages", "")
    check_messages(messages)
    timing = data.get("timing", {})
    check_timing(timing)
    record = Record(
        kind=kind,
        thread=data["thread"],
        messages=messages,
        cell_id=data.get("cell_id"),
        new_thread=data.get("new_thread", False),
        timing=timing,
        stored_at=data["stored_at"],
        nbchat_version=data["nbchat_version"],
    )
    if kind == SYSTEM:
        if messages[0].get("role") != "system" or not isinstance(messages[0].get("content"), str):
            raise ValueError("messages[0] of a system record is not a system message")
        return record
    return _read_turn_fields(record, data)


def _read_turn_fields(record: Record, data: dict[str, Any]) -> Record:
    for name in ("key", "history"):
        need(required(data, name, ""), name, str)
    if not _DIGEST.fullmatch(data["history"]):  # it is chained on: `nbchat.store.keys`
        raise ValueError("history is not a sha256 digest")
    need(data.get("parent"), "parent", str, null=True)
    context = data.get("context")
    need(context, "context", list, null=True)
    for index, key in enumerate(context or ()):
        need(key, f"context[{index}]", str)
    request = required(data, "request", "")
    need(request, "request", dict)
    for name in ("base_url", "model"):
        need(required(request, name, "request"), f"request.{name}", str)
    for name in ("query_digest", "system"):
        need(request.get(name), f"request.{name}", str, null=True)
    need(required(request, "params", "request"), "request.params", dict)
    responses = required(data, "responses", "")
    check_responses(responses)
    if record.messages[0].get("role") != "user":
        raise ValueError("messages[0] of a turn is not the user message")
    check_tool_results(record.messages)
    record.key, record.history = data["key"], data["history"]
    record.parent, record.context = data.get("parent"), context
    record.request = RequestInfo(
        request["base_url"],
        request.get("query_digest"),
        request["model"],
        request["params"],
        request.get("system"),
    )
    record.responses = responses
    record.mcp = _read_mcp(data.get("mcp"))
    if record.assistant is None:
        raise ValueError("messages hold no assistant message")
    problem = completion_problem(record.completion())
    if problem:
        raise ValueError(f"responses[-1]: {problem}")
    return record


def _read_mcp(origins: Any) -> dict[str, list[str]] | None:
    """The ``mcp`` field: tool names, each with its ``[server, tool]``."""
    need(origins, "mcp", dict, null=True)
    for name, origin in (origins or {}).items():
        pair = isinstance(origin, list) and len(origin) == 2
        if not pair or not all(isinstance(part, str) for part in origin):
            raise ValueError(f"mcp[{clip(one_line(name), 40)!r}] is not [server, tool]")
    return origins
