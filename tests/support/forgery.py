"""Forged records for tests: valid records of every kind, a notebook that holds one of them
forged among good turns, and every reader of records run on such a notebook.

A forger can edit anything, and recompute a record's key too (it is a plain sha256), so
`forgeries` draws forged records with the stale key and with a matching one. `check_notebook`
runs the ``nbchat`` commands, what the kernel does with each record and with each thread's
context (``%chat history`` included), and an offline replay of every cell; it asserts that
nothing fails but the forged cell, in one line, and that ``verify`` flags what readers skip.
"""

from __future__ import annotations

import base64
import contextlib
import copy
import io
import json
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import nbformat
from hypothesis import strategies as st
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook, new_output

from nbchat.cli.main import main
from nbchat.engine.history import history_rows
from nbchat.engine.queries import context_at, sent, thread_summary
from nbchat.engine.session import ChatSession, Origin
from nbchat.engine.settings import Settings
from nbchat.engine.turns import TurnRequest
from nbchat.errors import NbchatError
from nbchat.prompt.figures import image_part
from nbchat.render.bundles import answer_bundle
from nbchat.store.batch_record import batch_json, read_stored
from nbchat.store.chain import rebuild
from nbchat.store.notebook import NotebookRecords, read_notebook_json, read_records
from nbchat.store.reading import read_record
from nbchat.store.record import Record

from support.nbfactory import (
    answered_items,
    below,
    compile_template,
    make_record,
    make_system_record,
    make_tool_record,
    make_v1_record,
)

PIXEL = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg=="
)
OFFLINE = Settings(
    base_url="http://127.0.0.1:9/v1", model="peer-small", api_key_env="", offline=True
)
HOSTILE = "hostile"  # the forged record's thread
FORGED_CELL = 4  # notebook cell number (1-based) of the forged record


@dataclass(frozen=True)
class Cell:
    cell_id: str
    prompt: str
    thread: str
    version: int
    record: Any  # a Record, or the JSON of one


def good_chain() -> list[Cell]:
    """Three turns of the default thread, each below the one before."""
    a = make_record("What is 2+2?", "4", cell_id="c-a")
    b = below(a, make_record("And 3+3?", "6", cell_id="c-b"))
    c = below(b, make_record("And 4+4?", "8", cell_id="c-c"))
    return [Cell(r.cell_id or "", r.prompt, "default", 2, r) for r in (a, b, c)]


def image_record() -> Record:
    record = make_record("Look", "A pixel.", thread=HOSTILE, cell_id="c-x")
    part = image_part(PIXEL)
    assert part is not None
    record.messages[0] = {
        "role": "user",
        "content": [{"type": "text", "text": "Look"}, part.part()],
    }
    record.key = record.expected_key()
    return record


def provider_record() -> Record:
    """A tool turn as newer providers shape it: Gemini's ``extra_content`` on a call,
    OpenRouter's ``reasoning_details`` on the message, Mistral's typed parts as the answer."""
    record = make_tool_record("Shapes?", thread=HOSTILE, cell_id="c-x")
    record.messages[1]["tool_calls"][0]["extra_content"] = {"google": {"thought_signature": "s"}}
    record.messages[1]["reasoning_details"] = [{"type": "reasoning.encrypted", "data": "x"}]
    thinking = {"type": "thinking", "thinking": [{"type": "text", "text": "Both are in."}]}
    record.messages[-1] = {
        "role": "assistant",
        "content": [thinking, {"type": "text", "text": "From the tools: 4.2; 1.1"}],
    }
    return record


def batch_record() -> dict[str, Any]:
    template = compile_template("Rate {item}")
    items = answered_items(template, ["good", "bad"])
    return json.loads(json.dumps(batch_json(template, items, thread=HOSTILE, cell_id="c-x")))


def hostile_bases() -> dict[str, tuple[int, dict[str, Any], Record | None]]:
    """Valid records of every kind, to forge: (schema version, JSON, the record as read)."""
    v1 = make_v1_record("Old?", "Old answer.", thread=HOSTILE, cell_id="c-x")
    turns: dict[str, Record] = {
        "tool turn": make_tool_record("Levels?", thread=HOSTILE, cell_id="c-x"),
        "provider shapes": provider_record(),
        "image turn": image_record(),
        "system": make_system_record("Be terse.", thread=HOSTILE, cell_id="c-x"),
    }
    bases = {name: (2, record.to_json(), record) for name, record in turns.items()}
    bases["v1 answer"] = (1, v1, read_record(v1, version=1))
    bases["batch"] = (2, batch_record(), None)
    return bases


BASES = hostile_bases()
PROMPTS = {
    "tool turn": "Levels?",
    "provider shapes": "Shapes?",
    "image turn": "Look",
    "v1 answer": "Old?",
}
GOOD = good_chain()


def notebook_of(forged: Cell, child: Cell | None) -> dict[str, Any]:
    """The good chain with the forged record (and the turn below it, if any) among its cells."""
    cells = [*GOOD[:2], forged, *([child] if child else []), GOOD[2]]
    notebook = new_notebook()
    notebook.cells.append(new_markdown_cell("# Forged", id="title"))
    for cell in cells:
        raw = cell.record.to_json() if isinstance(cell.record, Record) else cell.record
        mime = f"application/vnd.nbchat.v{cell.version}+json"
        output = new_output("display_data", data={"text/plain": "…", mime: raw})
        source = f"%%chat --thread {cell.thread}\n{cell.prompt}"
        notebook.cells.append(new_code_cell(source, id=cell.cell_id, outputs=[output]))
    return json.loads(nbformat.writes(notebook))


def rekeyed(raw: Any, version: int) -> Any:
    """The forged JSON with the key its request now has, when it still reads as one turn."""
    try:
        (record,) = read_stored(copy.deepcopy(raw), version)
    except ValueError:
        return raw
    if not isinstance(raw, dict) or "key" not in raw:
        return raw
    return {**raw, "key": record.expected_key()}


def forge(name: str, path: tuple[Any, ...], field: str | None, value: Any, rekey: bool) -> Cell:
    """The base record ``name`` with the node at ``path`` replaced by ``value`` (or, with
    ``field``, that field of the node set to it)."""
    version, data, _ = BASES[name]
    raw: Any = copy.deepcopy(data)
    target_path = (*path, field) if field is not None else path
    if not target_path:
        raw = value
    else:
        node = raw
        for step in target_path[:-1]:
            node = node[step]
        node[target_path[-1]] = value
    if rekey:
        raw = rekeyed(raw, version)
    return Cell("c-x", PROMPTS.get(name, "?"), HOSTILE, version, raw)


def child_of(name: str) -> Cell | None:
    """A turn below the (unforged) base, in its thread: it depends on the forged one."""
    _, _, above = BASES[name]
    if above is None or above.kind != "turn":
        return None
    record = below(above, make_record("Then?", "Then this.", thread=HOSTILE, cell_id="c-y"))
    return Cell("c-y", "Then?", HOSTILE, 2, record)


def node_paths(value: Any, prefix: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    """The path of every node of a JSON value, the root's (``()``) first."""
    yield prefix
    if isinstance(value, dict):
        for key, item in value.items():
            yield from node_paths(item, (*prefix, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from node_paths(item, (*prefix, index))


# Field names the readers touch: set on any object of a record, with a value of any type.
READ_FIELDS = (
    "role", "content", "tool_calls", "tool_call_id", "name", "reasoning_content", "reasoning",
    "refusal", "function", "arguments", "id", "type", "index", "usage", "choices",
    "finish_reason", "model", "message", "parent", "context", "image_url", "url", "text",
    "timing", "tool_s", "thinking_s", "prompt_tokens", "completion_tokens_details", "params",
    "system", "items", "answer", "fills", "response", "template", "history", "key", "kind",
    "thinking", "extra_content", "reasoning_details",
)  # fmt: skip
SCALARS = st.none() | st.booleans() | st.integers(-3, 3) | st.text(max_size=4)
json_values = st.recursive(
    SCALARS | st.floats(allow_nan=False, allow_infinity=False),
    lambda inner: (
        st.lists(inner, max_size=3)
        | st.dictionaries(st.sampled_from(READ_FIELDS), inner, max_size=3)
    ),
    max_leaves=6,
)


@st.composite
def forgeries(draw: st.DrawFn) -> tuple[str, Cell]:
    name = draw(st.sampled_from(sorted(BASES)))
    path = draw(st.sampled_from(list(node_paths(BASES[name][1]))))
    field = draw(st.none() | st.sampled_from(READ_FIELDS))
    node: Any = BASES[name][1]
    for step in path:
        node = node[step]
    if field is not None and not isinstance(node, dict):
        field = None
    return name, forge(name, path, field, draw(json_values), draw(st.booleans()))


# -- every reader, on one notebook ---------------------------------------------------------------


def run_cli(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(list(argv))
    return code, out.getvalue(), err.getvalue()


def cli_verdict(path: Path, tmp: Path) -> list[str]:
    """Run every command; none may fail. The problems ``verify`` names."""
    for argv in (
        ["show", str(path)],
        ["export", str(path)],
        ["export", "--format", "jsonl", str(path)],
        ["stats", str(path)],
        ["upgrade", "-o", str(tmp / "upgraded.ipynb"), str(path)],
    ):
        code, _, err = run_cli(*argv)
        assert code == 0, (argv, err)
        assert len(err.splitlines()) <= 1 and "Traceback" not in err, (argv, err)
    code, out, err = run_cli("verify", str(path))
    problems = [line for line in out.splitlines() if not line.startswith("ok: ")]
    assert code == (1 if problems else 0) and err == ""
    return problems


def read_all(stored: NotebookRecords) -> ChatSession:
    """What the kernel and ``--raw`` do with each record, and with each thread's context."""
    session = ChatSession()
    for _, record in stored.records():
        answer_bundle(record)
        rebuild(record, stored.by_key.get)
        sent(session, record, None)
        assert isinstance(record.answer, str) and isinstance(record.reasoning, str)
        assert record.finish_reason is None or isinstance(record.finish_reason, str)
        assert isinstance(record.usage, dict)
    for thread in ("default", HOSTILE):
        _, messages = context_at(session, thread, stored, OFFLINE, cell_id=None, use_notebook=True)
        for row in history_rows(messages):  # what %chat history shows
            assert isinstance(row.whole, str) and isinstance(row.tokens, int)
    thread_summary(session, stored, use_notebook=True)
    return session


def replay(stored: NotebookRecords, cells: list[Cell]) -> dict[str, Origin | NbchatError]:
    """Each cell run again offline, in notebook order, in a new session (a restarted kernel)."""
    session = ChatSession()
    outcomes: dict[str, Origin | NbchatError] = {}
    for cell in cells:
        session.start_cell(cell.cell_id, None)
        try:
            request = TurnRequest(cell.prompt, cell.thread, cell.cell_id)
            outcomes[cell.cell_id] = session.run(request, OFFLINE, stored).origin
        except NbchatError as error:  # one line in a cell; anything else is a bug
            outcomes[cell.cell_id] = error
    return outcomes


def check_notebook(
    forged: Cell, child: Cell | None
) -> tuple[list[str], dict[str, Origin | NbchatError]]:
    """Every reader on a notebook with ``forged`` in it: the problems verify names, and how
    each cell replays offline."""
    with tempfile.TemporaryDirectory() as directory:
        tmp = Path(directory)
        path = tmp / "forged.ipynb"
        path.write_text(json.dumps(notebook_of(forged, child)), encoding="utf-8")
        problems = cli_verdict(path, tmp)
        stored = read_records(read_notebook_json(path), path)
    assert all(p.startswith(f"cell {FORGED_CELL}: ") for p in stored.problems), stored.problems
    assert bool(stored.problems) == bool(problems), "verify flags exactly what readers skip"
    assert all(f": cell {FORGED_CELL}: " in line for line in problems), problems
    read_all(stored)
    outcomes = replay(stored, [*GOOD[:2], forged, *([child] if child else []), GOOD[2]])
    for cell in GOOD:
        assert outcomes[cell.cell_id] is Origin.NOTEBOOK, (cell.cell_id, outcomes[cell.cell_id])
    return problems, outcomes
