"""The commands that read stored answers: ``show``, ``export`` and ``verify`` (``stats`` is in
`nbchat.cli.stats`).

Each takes its parsed arguments and the stream to write to, and returns its exit status.
Notebooks are read as JSON (`store.notebook.read_notebook_text`), without nbformat.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any, TextIO

from nbchat._files import atomic_write
from nbchat._text import CONTROLS, clip, one_line, plural
from nbchat.cli.format import show_lines
from nbchat.cli.help import MIN_WIDTH, ExitCode, fail
from nbchat.errors import NotebookError
from nbchat.render.transcript import html_transcript, markdown_transcript
from nbchat.store.batch_record import item_labels, map_title, read_stored
from nbchat.store.chain import rebuild
from nbchat.store.notebook import (
    NotebookRecords,
    cell_source,
    iter_output_records,
    read_notebook_text,
    read_records,
)
from nbchat.store.record import SCHEMA_VERSION, STANDALONE, TURN, Record
from nbchat.store.secret_scan import Finding, scan_cell, scan_notebook_fields

__all__ = [
    "check_record",
    "cmd_export",
    "cmd_show",
    "cmd_verify",
    "load_stored",
    "terminal_width",
    "verify_notebook",
    "warn_skipped",
]


# json.dumps escapes C0 controls but writes C1 controls and bidi overrides raw: escape those
# too (they only occur inside strings), so `export --format jsonl` on a terminal shows text.
_JSON_ESCAPES = {code: f"\\u{code:04x}" for code in CONTROLS if code >= 0x7F}


def load_stored(path: str) -> tuple[dict[str, Any], NotebookRecords]:
    notebook = read_notebook_text(path)
    return notebook, read_records(notebook, Path(path))


def _turns(stored: NotebookRecords, thread: str | None) -> list[tuple[int, Record]]:
    """(1-based cell number, record) in notebook order, for one thread or all."""
    return [
        (cell.index + 1, record)
        for cell, record in stored.records()
        if thread is None or record.thread == thread
    ]


def warn_skipped(stored: NotebookRecords) -> None:
    if stored.problems:
        count = plural(len(stored.problems), "malformed record")
        print(f"nbchat: {stored.path}: skipped {count}; see `nbchat verify`", file=sys.stderr)


def terminal_width() -> int:
    return max(shutil.get_terminal_size().columns, MIN_WIDTH)


# -- show ------------------------------------------------------------------------------------------


def cmd_show(args: argparse.Namespace, out: TextIO) -> int:
    """Print the stored turns of one notebook as a table that fits the width."""
    notebook, stored = load_stored(args.notebook)
    warn_skipped(stored)
    turns = _turns(stored, args.thread)
    if not turns:
        where = f" in thread {args.thread!r}" if args.thread else ""
        print(f"no nbchat records{where} in {args.notebook}", file=out)
        return ExitCode.OK
    for line in show_lines(_map_items_named(notebook, turns), args.width or terminal_width()):
        print(line, file=out)
    return ExitCode.OK


def _map_items_named(
    notebook: Mapping[str, Any], turns: list[tuple[int, Record]]
) -> list[tuple[int, Record]]:
    """The turns as `show` lists them: an item of a ``--map`` cell under the map's name, with
    its item (``item 3: great``) as its prompt, since every item's prompt opens with the same
    template."""
    labels: dict[tuple[int, str], tuple[str, str]] = {}
    for number, cell in enumerate(notebook.get("cells", []), start=1):
        outputs = cell.get("outputs") if isinstance(cell, Mapping) else None
        for _, raw in iter_output_records(outputs if isinstance(outputs, list) else []):
            items = item_labels(raw)
            title = map_title(cell_source(cell)) if items else ""
            labels.update({(number, key): (title, item) for key, item in items.items()})
    named = []
    for number, record in turns:
        found = labels.get((number, str(record.key)))
        if found is not None and record.thread == STANDALONE:
            title, item = found
            user = {"role": "user", "content": item}
            record = replace(record, thread=title, messages=[user, *record.messages[1:]])
        named.append((number, record))
    return named


# -- export ----------------------------------------------------------------------------------------


def cmd_export(args: argparse.Namespace, out: TextIO) -> int:
    """Write a Markdown or HTML transcript, or JSON Lines, of one notebook's records."""
    if args.output and _same_file(args.output, args.notebook):
        return fail(f"{args.output}: that is the notebook itself; choose another -o file")
    _, stored = load_stored(args.notebook)
    warn_skipped(stored)
    turns = _turns(stored, args.thread)
    records = [record for _, record in turns]
    if args.format == "jsonl":
        lines = [json.dumps(_exported(cell, r, stored), ensure_ascii=False) for cell, r in turns]
        text = "".join(line.translate(_JSON_ESCAPES) + "\n" for line in lines)
    elif args.format == "html":
        text = html_transcript(Path(args.notebook).name, records)
    else:
        text = markdown_transcript(Path(args.notebook).name, records)
    if args.output:
        atomic_write(args.output, lambda handle: handle.write(text))
    else:
        out.write(text)
    return ExitCode.OK


def _exported(cell: int, record: Record, stored: NotebookRecords) -> dict[str, Any]:
    """One JSON line: the cell number, the record as stored, and, for a turn, the messages its
    request carried, rebuilt from the records it refers to (and what is missing, if any)."""
    line = {"cell": cell, **record.to_json()}
    if record.kind == TURN:
        line["sent"] = rebuild(record, stored.by_key.get).to_json()
    return line


def _same_file(first: str, second: str) -> bool:
    return os.path.realpath(first) == os.path.realpath(second)


# -- verify ----------------------------------------------------------------------------------------


def check_record(version: int, raw: Any) -> list[str]:
    """What is wrong with one stored record (an empty list when nothing is)."""
    declared = raw.get("schema") if isinstance(raw, dict) else None
    valid = isinstance(declared, int) and not isinstance(declared, bool)
    newest = max(version, declared) if valid else version
    if newest > SCHEMA_VERSION:
        return [f"record schema v{newest} is newer than supported (v{SCHEMA_VERSION})"]
    try:
        records = read_stored(raw, version)
    except (ValueError, TypeError) as exc:
        return [f"malformed record: {exc}"]
    problems = [record.consistency_problem() for record in records]
    return [f"{problem} (edited after it was stored?)" for problem in problems if problem]


def _leak(finding: Finding) -> tuple[str, str]:
    return finding.place, f"possible API key leaked ({finding.kind})"


def verify_notebook(notebook: Mapping[str, Any]) -> tuple[int, list[tuple[str, str]]]:
    """The number of records of a parsed notebook, and every (place, problem) in it.

    Places read ``cell 3`` (a record's problem) or ``cell 3, output 1, text/plain`` (where
    something looks like a credential: sources, outputs, metadata; never the secret itself).
    """
    count = 0
    problems = [_leak(finding) for finding in scan_notebook_fields(notebook)]
    cells = notebook.get("cells")
    for index, cell in enumerate(cells if isinstance(cells, list) else []):
        outputs = cell.get("outputs") if isinstance(cell, Mapping) else None
        for version, raw in iter_output_records(outputs if isinstance(outputs, list) else []):
            count += 1
            problems += [(f"cell {index + 1}", problem) for problem in check_record(version, raw)]
        problems += [_leak(finding) for finding in scan_cell(cell, index + 1)]
    return count, problems


def cmd_verify(args: argparse.Namespace, out: TextIO) -> int:
    """Check every record, and look for leaked keys everywhere; ``ok`` or one line per problem."""
    status = ExitCode.OK
    for path in args.notebooks:
        try:
            count, problems = verify_notebook(read_notebook_text(path))
        except NotebookError as exc:
            status = fail(str(exc))
            continue
        for place, problem in problems:
            print(f"{path}: {one_line(place)}: {clip(one_line(problem), 300)}", file=out)
        if problems:
            status = max(status, ExitCode.PROBLEMS)
        else:
            print(f"ok: {plural(count, 'record')} in {path}", file=out)
    return status
