"""Build nbchat records and saved notebooks that hold them, for tests.

    record = make_record("Hello", "Hi there", thread="greet", usage=(5, 7))
    path = make_chat_notebook(tmp_path / "chat.ipynb", [("%%chat\\nHello", record)])

`make_chat_notebook` puts a Markdown cell first, so the i-th entry of ``cells`` (0-based) is
notebook cell ``i + 2`` when counted 1-based over all cells, as ``nbchat show`` counts them.
`MALFORMED` holds hand edits that give a stored record a wrongly typed field, with the reason
`Record.from_json` gives for each.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from pathlib import Path
from typing import Any

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook, new_output

from nbchat.record import RECORD_MIME, Record, request_key

__all__ = [
    "MALFORMED",
    "STORED_AT",
    "TITLE_CELLS",
    "make_chat_notebook",
    "make_record",
    "make_system_record",
]

STORED_AT = "2024-05-01T12:34:56Z"
TITLE_CELLS = 1  # Markdown cells `make_chat_notebook` puts before the given cells
_ids = itertools.count(1)


def make_record(
    prompt: str,
    answer: str,
    *,
    thread: str = "default",
    model: str = "peer-small",
    cell_id: str | None = None,
    messages: list[dict[str, Any]] | None = None,
    base_url: str = "http://127.0.0.1:9/v1",
    params: dict[str, Any] | None = None,
    usage: tuple[int, int] | None = (5, 7),
    finish_reason: str | None = "stop",
    new_thread: bool = False,
    stored_at: str = STORED_AT,
) -> Record:
    """A consistent answer record: its key is the key of its request. ``usage=None``: none."""
    messages = messages if messages is not None else [{"role": "user", "content": prompt}]
    params = params if params is not None else {}
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
                "finish_reason": finish_reason,
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
    return Record(
        kind="answer",
        thread=thread,
        prompt=prompt,
        cell_id=cell_id,
        new_thread=new_thread,
        key=request_key(base_url, model, messages, params),
        request={"base_url": base_url, "model": model, "messages": messages, "params": params},
        response=response,
        timing={
            "started_at": stored_at,
            "elapsed_s": 0.25,
            "first_token_s": 0.05,
            "streamed": True,
        },
        stored_at=stored_at,
    )


def make_system_record(text: str, thread: str = "default", cell_id: str | None = None) -> Record:
    """The record of a ``%%chat --system`` cell."""
    return Record(kind="system", thread=thread, prompt=text, cell_id=cell_id, stored_at=STORED_AT)


def record_output(record: Record) -> nbformat.NotebookNode:
    """The ``display_data`` output nbchat saves for a record."""
    text = record.answer if record.kind == "answer" else f"*System prompt for {record.thread}*"
    return new_output(
        "display_data",
        data={"text/markdown": text, "text/plain": text, RECORD_MIME: record.to_json()},
    )


def make_chat_notebook(path: str | Path, cells: list[tuple[str, Record | None]]) -> Path:
    """Write an nbformat 4.5 notebook: a Markdown title cell, then one code cell per entry."""
    path = Path(path)
    notebook = new_notebook()
    notebook.cells.append(new_markdown_cell("# A chat", id="title"))
    for number, (source, record) in enumerate(cells, start=1):
        cell_id = record.cell_id if record and record.cell_id else f"cell-{number}"
        outputs = [record_output(record)] if record is not None else []
        cell = new_code_cell(source, id=cell_id, execution_count=number, outputs=outputs)
        notebook.cells.append(cell)
    nbformat.validate(notebook)
    nbformat.write(notebook, path)
    return path


def _choice(record: dict[str, Any]) -> dict[str, Any]:
    return record["response"]["choices"][0]


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
        _set("11", "response", "usage", "prompt_tokens"),
        "response.usage.prompt_tokens is a string, not an integer",
    ),
    "usage a string": (
        _set("lots", "response", "usage"),
        "response.usage is a string, not an object",
    ),
    "index null": (
        _set(None, "response", "choices", 0, "index"),
        "response.choices[0].index is null, not an integer",
    ),
    "list content": (
        _set([{"type": "text", "text": "4"}], "response", "choices", 0, "message", "content"),
        "response.choices[0].message.content is a list, not a string or null",
    ),
    "finish_reason a list": (
        _set(["stop"], "response", "choices", 0, "finish_reason"),
        "response.choices[0].finish_reason is a list, not a string or null",
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
        _set({"role": "user", "content": "What is 2+2?"}, "request", "messages"),
        "request.messages is an object, not a list",
    ),
}
