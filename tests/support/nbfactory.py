"""Build nbchat records and saved notebooks that hold them, for tests.

    record = make_record("Hello", "Hi there", thread="greet", usage=(5, 7))
    path = make_chat_notebook(tmp_path / "chat.ipynb", [("%%chat\\nHello", record)])

`make_chat_notebook` puts a Markdown cell first, so the i-th entry of ``cells`` (0-based) is
notebook cell ``i + 2`` when counted 1-based over all cells, as ``nbchat show`` counts them.
`MALFORMED` holds hand edits that give a stored record a wrongly typed field, with the reason
`Record.from_json` gives for each.
"""

from __future__ import annotations

import copy
import itertools
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook, new_output

from nbchat.engine.settings import Settings
from nbchat.engine.turns import TurnRequest, answered, prepare
from nbchat.prompt.template import MapTemplate
from nbchat.store.batch_record import BatchItem
from nbchat.store.keys import (
    Endpoint,
    extend_history,
    history_of,
    request_key,
    request_key_v1,
    turn_digest,
)
from nbchat.store.record import RECORD_MIME, STANDALONE, SYSTEM, TURN, Record, RequestInfo
from nbchat.wire.messages import wire_turn

__all__ = [
    "MALFORMED",
    "STORED_AT",
    "TITLE_CELLS",
    "answered_items",
    "below",
    "compile_template",
    "edit_json",
    "make_batch_json",
    "make_chat_notebook",
    "make_record",
    "make_system_record",
    "make_tool_record",
    "make_v1_record",
    "stored_record",
    "write_notebook",
]

STORED_AT = "2024-05-01T12:34:56Z"
TITLE_CELLS = 1  # Markdown cells `make_chat_notebook` puts before the given cells
_ids = itertools.count(1)
Message = dict[str, Any]


def _completion(answer: str, model: str, usage: tuple[int, int] | None, finish: str | None):
    serial = next(_ids)
    response: dict[str, Any] = {
        "id": f"chatcmpl-test{serial}",
        "object": "chat.completion",
        "created": 1700000000 + serial,
        "model": model,
        "system_fingerprint": "fp_fake",
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": answer},
                "finish_reason": finish,
                "logprobs": None,
            }
        ],
    }
    if usage is not None:
        response["usage"] = {
            "prompt_tokens": usage[0],
            "completion_tokens": usage[1],
            "total_tokens": usage[0] + usage[1],
        }
    return response


def _split(messages: list[Message]) -> tuple[str | None, list[list[Message]], Message]:
    """A whole request's messages as (system prompt, the turns above as pairs, user message)."""
    system = None
    if messages and messages[0]["role"] == "system":
        system, messages = messages[0]["content"], messages[1:]
    above, user = messages[:-1], messages[-1]
    return system, [above[i : i + 2] for i in range(0, len(above), 2)], user


def make_record(
    prompt: str,
    answer: str,
    *,
    thread: str = "default",
    model: str = "peer-small",
    cell_id: str | None = None,
    messages: list[Message] | None = None,
    base_url: str = "http://127.0.0.1:9/v1",
    params: dict[str, Any] | None = None,
    usage: tuple[int, int] | None = (5, 7),
    finish_reason: str | None = "stop",
    new_thread: bool = False,
    stored_at: str = STORED_AT,
    parent: str | None = None,
) -> Record:
    """A consistent schema 2 record: its key is the key of its request. ``messages`` is the
    whole request (system prompt, turns above, this prompt), as it was sent; ``usage=None``:
    none reported."""
    messages = messages if messages is not None else [{"role": "user", "content": prompt}]
    system, pairs, user = _split(messages)
    assert user == {"role": "user", "content": prompt}
    params = params if params is not None else {}
    history = history_of(turn_digest(pair) for pair in pairs)
    endpoint = Endpoint.of(base_url)
    response = _completion(answer, model, usage, finish_reason)
    assistant = response["choices"][0].pop("message")
    return Record(
        kind=TURN,
        thread=thread,
        messages=[user, assistant],
        cell_id=cell_id,
        new_thread=new_thread,
        key=request_key(endpoint, model, params, system, history, user),
        history=history,
        parent=parent,
        request=RequestInfo(endpoint.shown, endpoint.query_digest, model, params, system),
        responses=[response],
        timing={
            "started_at": stored_at,
            "elapsed_s": 0.25,
            "first_token_s": 0.05,
            "streamed": True,
        },
        stored_at=stored_at,
    )


def make_tool_record(
    prompt: str = "Levels?", *, thread: str = "default", cell_id: str | None = None
) -> Record:
    """A consistent record of a turn that called two tools in one round, then answered with its
    thinking: what a ``%%chat --tools`` cell stores."""
    record = make_record(prompt, "From the tools: 4.2; 1.1", thread=thread, cell_id=cell_id)
    calls = [
        {"id": f"call_{n}", "type": "function", "function": {"name": "level", "arguments": args}}
        for n, args in enumerate(('{"station": "Brest"}', '{"station": "Cadiz"}'))
    ]
    first = copy.deepcopy(record.responses[0])
    first["choices"][0]["finish_reason"] = "tool_calls"
    user, answer = record.messages
    record.messages = [
        user,
        {"role": "assistant", "content": None, "tool_calls": calls},
        {"role": "tool", "tool_call_id": "call_0", "content": "4.2"},
        {"role": "tool", "tool_call_id": "call_1", "content": "1.1"},
        {**answer, "reasoning_content": "Both levels are in."},
    ]
    record.responses = [first, *record.responses]
    record.timing.update(tool_s=[0.001, 0.002], thinking_s=0.5)
    return record


def below(above: Record, record: Record) -> Record:
    """``record`` as the turn right below ``above`` in its thread (its history, parent and key
    follow from the turn above)."""
    assert above.history is not None
    record.history = extend_history(above.history, turn_digest(wire_turn(above.messages)))
    record.parent = above.key
    record.key = record.expected_key()
    return record


def make_v1_record(
    prompt: str,
    answer: str,
    *,
    thread: str = "default",
    model: str = "peer-small",
    cell_id: str | None = None,
    messages: list[Message] | None = None,
    base_url: str = "http://127.0.0.1:9/v1",
    params: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The JSON of a record as nbchat 0.1 wrote it (schema 1: the whole request stored)."""
    messages = messages if messages is not None else [{"role": "user", "content": prompt}]
    params = params if params is not None else {}
    return {
        "schema": 1,
        "kind": "answer",
        "nbchat_version": "0.1.0",
        "key": request_key_v1(base_url, model, messages, params),
        "cell_id": cell_id,
        "thread": thread,
        "new_thread": False,
        "prompt": prompt,
        "request": {"base_url": base_url, "model": model, "messages": messages, "params": params},
        "response": _completion(answer, model, (5, 7), "stop"),
        "timing": {
            "started_at": STORED_AT,
            "elapsed_s": 0.25,
            "first_token_s": 0.05,
            "streamed": True,
        },
        "stored_at": STORED_AT,
    }


def make_system_record(text: str, thread: str = "default", cell_id: str | None = None) -> Record:
    """The record of a ``%%chat --system`` cell."""
    messages = [{"role": "system", "content": text}]
    return Record(
        kind=SYSTEM, thread=thread, messages=messages, cell_id=cell_id, stored_at=STORED_AT
    )


def make_batch_json(
    cell: str, values: list[str], *, thread: str = "default", cell_id: str | None = None
) -> dict[str, Any]:
    """The record of a ``%%chat --map`` cell whose template is ``cell`` and whose every item of
    ``values`` was answered ``answer N``."""
    from nbchat.engine.settings import Settings
    from nbchat.engine.turns import TurnRequest, answered, prepare
    from nbchat.prompt.template import MapTemplate
    from nbchat.store.batch_record import BatchItem, batch_json

    template = MapTemplate.compile(cell, {}, 8000)
    settings = Settings(base_url="http://127.0.0.1:9/v1", model="peer-small", api_key_env="")
    items = []
    for number, value in enumerate(values):
        fills, _ = template.fills(value, 8000, f"item {number}")
        text = template.content(fills)
        assert isinstance(text, str), "text items only"
        turn = prepare(TurnRequest(text, STANDALONE), settings, None, f"map#item{number}")
        completion = _completion(f"answer {number}", "peer-small", (3, number), "stop")
        message = completion["choices"][0].pop("message")
        record = answered(turn, [message], [completion], {"elapsed_s": 0.1, "streamed": False})
        items.append(BatchItem(number, [str(fill) for fill in fills], record))
    return batch_json(template, items, thread=thread, cell_id=cell_id)


def record_output(record: Record | dict[str, Any]) -> nbformat.NotebookNode:
    """The ``display_data`` output nbchat saves for a record (or a record's JSON, a batch's)."""
    if isinstance(record, dict):
        return new_output("display_data", data={"text/plain": "[batch]", RECORD_MIME: record})
    text = record.answer if record.kind == TURN else f"*System prompt for {record.thread}*"
    return new_output(
        "display_data",
        data={"text/markdown": text, "text/plain": text, RECORD_MIME: record.to_json()},
    )


def make_chat_notebook(
    path: str | Path, cells: list[tuple[str, Record | dict[str, Any] | None]]
) -> Path:
    """Write an nbformat 4.5 notebook: a Markdown title cell, then one code cell per entry (a
    record, a batch record's JSON, or nothing)."""
    path = Path(path)
    notebook = new_notebook()
    notebook.cells.append(new_markdown_cell("# A chat", id="title"))
    for number, (source, record) in enumerate(cells, start=1):
        stated = record.get("cell_id") if isinstance(record, dict) else record and record.cell_id
        cell_id = stated or f"cell-{number}"
        outputs = [record_output(record)] if record is not None else []
        cell = new_code_cell(source, id=cell_id, execution_count=number, outputs=outputs)
        notebook.cells.append(cell)
    nbformat.validate(notebook)
    nbformat.write(notebook, path)
    return path


def _set(value: Any, *path: str | int) -> Callable[[dict[str, Any]], None]:
    """An edit that sets the field at ``path`` of a record's JSON to ``value``."""

    def edit(record: dict[str, Any]) -> None:
        target: Any = record
        for step in path[:-1]:
            target = target[step]
        target[path[-1]] = value

    return edit


# A stored record's field given the wrong type, as a person with a text editor (or a buggy
# server, for the response) might: (edit of the record's JSON, reason `Record.from_json` gives).
MALFORMED: dict[str, tuple[Callable[[dict[str, Any]], None], str]] = {
    "usage with string values": (
        _set("11", "responses", 0, "usage", "prompt_tokens"),
        "responses[-1]: usage.prompt_tokens is text, not a count",
    ),
    "usage a string": (
        _set("lots", "responses", 0, "usage"),
        "responses[-1]: usage is text, not an object",
    ),
    "index null": (
        _set("first", "responses", 0, "choices", 0, "index"),
        "responses[-1]: choices[0].index is text, not an index",
    ),
    "list content": (
        _set([{"type": "text", "text": 4}], "messages", 1, "content"),
        "messages[1].content[0].text is a number, not text",
    ),
    "finish_reason a list": (
        _set(["stop"], "responses", 0, "choices", 0, "finish_reason"),
        "responses[-1]: choices[0].finish_reason is a list, not text",
    ),
    "stored_at a number": (
        _set(1714567000, "stored_at"),
        "stored_at is an integer, not a string",
    ),
    "timing values as strings": (
        _set("0.25", "timing", "elapsed_s"),
        "timing.elapsed_s is a string, not a number or null",
    ),
    "messages not a list": (
        _set({"role": "user", "content": "What is 2+2?"}, "messages"),
        "messages is an object, not a list",
    ),
}


def compile_template(cell: str, namespace: dict | None = None) -> MapTemplate:
    """A ``--map`` cell's template, compiled as the kernel does (8,000 characters per value)."""
    return MapTemplate.compile(cell, namespace or {}, 8000)


def answered_items(template: MapTemplate, values: list[object]) -> list[BatchItem]:
    """A batch's items as ``--map`` stores them: ``template`` filled with each value, answered."""
    settings = Settings(base_url="http://127.0.0.1:9/v1", model="m", api_key_env="")
    items = []
    for number, value in enumerate(values):
        fills, _ = template.fills(value, 8000, f"item {number}")
        content = template.content(fills)
        prompt, parts = (content, None) if isinstance(content, str) else ("", content)
        request = TurnRequest(prompt, STANDALONE, content=parts)
        turn = prepare(request, settings, None, f"cell#item{number}")
        completion = {
            "id": f"chatcmpl-{number}",
            "object": "chat.completion",
            "model": "m",
            "choices": [{"index": 0, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": 3, "completion_tokens": number, "total_tokens": 3 + number},
        }
        message = {"role": "assistant", "content": f"answer {number}"}
        record = answered(turn, [message], [completion], {"elapsed_s": 0.1, "streamed": False})
        items.append(BatchItem(number, [str(f) for f in fills] if parts is None else None, record))
    return items


def write_notebook(
    path: Path, sources: list[str], tags: dict[int, list[str]] | None = None
) -> Path:
    """A title cell, then one code cell per source (``tags`` by index into ``sources``)."""
    notebook = new_notebook()
    notebook.cells = [new_markdown_cell("# Chat")]
    for index, source in enumerate(sources):
        cell = new_code_cell(source)
        if tags and index in tags:
            cell.metadata["tags"] = tags[index]
        notebook.cells.append(cell)
    nbformat.write(notebook, path)
    return path


def edit_json(path: Path, edit: Callable[[dict], None]) -> None:
    """Change a saved notebook's JSON the way a person with a text editor would."""
    data = json.loads(path.read_text(encoding="utf-8"))
    edit(data)
    path.write_text(json.dumps(data, indent=1), encoding="utf-8")


def stored_record(data: dict, cell: int) -> dict:
    """The raw record in the first output of notebook cell ``cell`` (1-based)."""
    return data["cells"][cell - 1]["outputs"][0]["data"][RECORD_MIME]
