"""``nbchat stats``: the answers stored in notebooks, the tokens they took, what they cost when
they were asked and what asking again without nbchat would cost now, by model and by thread.

Notebooks of every nbchat version are priced alike: a record holds the model, the endpoint, the
usage and the time of its answer. An answer replayed into several cells counts once.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any, TextIO

from nbchat.cli.format import Tally, tally_lines, thread_name
from nbchat.cli.help import ExitCode, fail
from nbchat.cli.read import load_stored, terminal_width, warn_skipped
from nbchat.engine.pricing import local_urls, record_cost
from nbchat.errors import ConfigError, NotebookError
from nbchat.money.prices import PriceBook, TablePrice, price_table
from nbchat.store.notebook import NotebookRecords
from nbchat.store.record import TURN

__all__ = ["Tallies", "cmd_stats", "tally_notebook"]

Tallies = tuple[dict[str, Tally], dict[str, Tally]]  # by model, by thread


def cmd_stats(args: argparse.Namespace, out: TextIO) -> int:
    """Print (or with ``--json``, write as JSON) the tallies per notebook and in total."""
    try:
        book = PriceBook(_table(args.prices), local_urls())
    except (ConfigError, NotebookError) as error:
        return fail(str(error))
    status, width = ExitCode.OK, terminal_width()
    report: dict[str, Any] = {"notebooks": []}
    overall: Tallies = ({}, {})
    for path in args.notebooks:
        try:
            _, stored = load_stored(path)
        except NotebookError as exc:
            status = fail(str(exc))
            continue
        warn_skipped(stored)
        tallies = tally_notebook(stored, book)
        _merge(overall, tallies)
        if args.json:
            report["notebooks"].append({"path": path, **_as_json(tallies)})
            continue
        if len(report["notebooks"]) or path != args.notebooks[0]:
            print(file=out)
        report["notebooks"].append(path)
        print(*tally_lines(path, *tallies, width=width), sep="\n", file=out)
    if args.json:
        report["all"] = _as_json(overall)
        print(json.dumps(report, indent=2, ensure_ascii=False), file=out)
    elif len(args.notebooks) > 1:
        title = f"all {len(args.notebooks)} notebooks"
        print("", *tally_lines(title, *overall, width=width), sep="\n", file=out)
    return status


def _table(source: str | None) -> dict[str, TablePrice]:
    """``--prices``: a JSON file (or inline JSON) in ``ChatMagics.prices``' format."""
    if source is None:
        return {}
    text = source if source.lstrip().startswith("{") else None
    if text is None:
        try:
            text = Path(source).read_text(encoding="utf-8")
        except OSError as error:
            raise NotebookError(f"--prices: cannot read {source} ({error.strerror})") from None
    try:
        raw = json.loads(text)
    except ValueError as error:
        raise ConfigError(f"--prices: not JSON ({error})") from None
    return price_table(raw)


def tally_notebook(stored: NotebookRecords, book: PriceBook) -> Tallies:
    """Distinct answers by model and by thread: one answer replayed into several cells was
    paid for once."""
    by_model: dict[str, Tally] = {}
    by_thread: dict[str, Tally] = {}
    seen: set[str | None] = set()
    for _, record in stored.records():
        if record.kind != TURN or record.key in seen:
            continue
        seen.add(record.key)
        one = Tally.of(record.usage, record_cost(record, book), record_cost(record, book, now=True))
        by_model.setdefault(str(record.model or "-"), Tally()).add(one)
        by_thread.setdefault(thread_name(record.thread), Tally()).add(one)
    return by_model, by_thread


def _merge(into: Tallies, tallies: Tallies) -> None:
    for whole, part in zip(into, tallies, strict=True):
        for name, tally in part.items():
            whole.setdefault(name, Tally()).add(tally)


def _as_json(tallies: Tallies) -> dict[str, Any]:
    by_model, by_thread = tallies
    return {
        "by_model": {name: tally.to_json() for name, tally in sorted(by_model.items())},
        "by_thread": {name: tally.to_json() for name, tally in sorted(by_thread.items())},
    }
