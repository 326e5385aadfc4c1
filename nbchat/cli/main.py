"""The ``nbchat`` command: read, check and clean the answers stored in saved notebooks.

    nbchat show NOTEBOOK        the stored turns as a table
    nbchat export NOTEBOOK      a transcript per thread (Markdown, HTML), or JSON Lines
    nbchat stats NOTEBOOK...    answers and the tokens they cost, by model
    nbchat verify NOTEBOOK...   well-formed records, consistent keys, no API key anywhere
    nbchat strip NOTEBOOK       remove the records, e.g. before sharing a notebook
    nbchat run NOTEBOOK         execute it headless, replaying stored answers (`nbchat.cli.run`)

All but ``run`` read files with nbformat only: no kernel, no network.

Exit status (`nbchat.cli.format.ExitCode`): 0 ok; 1 ``verify`` found problems or ``run`` a cell
error; 2 a usage error, or a notebook that is missing, unreadable or corrupt (one line on stderr,
never a traceback); 130 interrupted.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import textwrap
from collections.abc import Callable, Mapping
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from nbchat._files import atomic_write
from nbchat._text import CONTROLS, clip, one_line, plural
from nbchat._version import __version__
from nbchat.cli.format import (
    COMMAND_HELP,
    HELP_EPILOG,
    RUN_EPILOG,
    ExitCode,
    Tally,
    show_lines,
    tally_lines,
    token_counts,
)
from nbchat.cli.rewrite import cmd_strip, cmd_upgrade
from nbchat.cli.run import add_run_arguments, cmd_run
from nbchat.errors import NotebookError
from nbchat.render.transcript import html_transcript, markdown_transcript
from nbchat.store.batch_record import item_labels, map_title, read_stored
from nbchat.store.chain import rebuild
from nbchat.store.notebook import NotebookRecords, iter_output_records, load_notebook, read_records
from nbchat.store.record import SCHEMA_VERSION, STANDALONE, TURN, Record
from nbchat.store.secret_scan import Finding, scan_cell, scan_notebook_fields
from nbchat.wire.usage import reasoning_tokens

if TYPE_CHECKING:
    import nbformat

__all__ = ["build_parser", "main", "verify_notebook"]

MIN_WIDTH = 20  # narrower, `show` has no room for a prompt
HELP_WIDTH = 79  # help is read at 80 columns whatever the terminal (and in the README)
# json.dumps escapes C0 controls but writes C1 controls and bidi overrides raw: escape those
# too (they only occur inside strings), so `export --format jsonl` on a terminal shows text.
_JSON_ESCAPES = {code: f"\\u{code:04x}" for code in CONTROLS if code >= 0x7F}


def _load(path: str) -> tuple[nbformat.NotebookNode, NotebookRecords]:
    notebook = load_notebook(path)
    return notebook, read_records(notebook, Path(path))


def _turns(stored: NotebookRecords, thread: str | None) -> list[tuple[int, Record]]:
    """(1-based cell number, record) in notebook order, for one thread or all."""
    return [
        (cell.index + 1, record)
        for cell, record in stored.records()
        if thread is None or record.thread == thread
    ]


def _warn_skipped(stored: NotebookRecords) -> None:
    if stored.problems:
        count = plural(len(stored.problems), "malformed record")
        print(f"nbchat: {stored.path}: skipped {count}; see `nbchat verify`", file=sys.stderr)


def _terminal_width() -> int:
    return max(shutil.get_terminal_size().columns, MIN_WIDTH)


# -- show ------------------------------------------------------------------------------------------


def cmd_show(args: argparse.Namespace, out: TextIO) -> int:
    """Print the stored turns of one notebook as a table that fits the width."""
    notebook, stored = _load(args.notebook)
    _warn_skipped(stored)
    turns = _turns(stored, args.thread)
    if not turns:
        where = f" in thread {args.thread!r}" if args.thread else ""
        print(f"no nbchat records{where} in {args.notebook}", file=out)
        return ExitCode.OK
    for line in show_lines(_map_items_named(notebook, turns), args.width or _terminal_width()):
        print(line, file=out)
    return ExitCode.OK


def _map_items_named(
    notebook: nbformat.NotebookNode, turns: list[tuple[int, Record]]
) -> list[tuple[int, Record]]:
    """The turns as `show` lists them: an item of a ``--map`` cell under the map's name, with
    its item (``item 3: great``) as its prompt, since every item's prompt opens with the same
    template."""
    labels: dict[tuple[int, str], tuple[str, str]] = {}
    for number, cell in enumerate(notebook.cells, start=1):
        outputs = cell.get("outputs")
        for _, raw in iter_output_records(outputs if isinstance(outputs, list) else []):
            items = item_labels(raw)
            title = map_title(str(cell.get("source", ""))) if items else ""
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
        return _fail(f"{args.output}: that is the notebook itself; choose another -o file")
    _, stored = _load(args.notebook)
    _warn_skipped(stored)
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


# -- stats -----------------------------------------------------------------------------------------


def _tally(stored: NotebookRecords) -> dict[str, Tally]:
    """Distinct answers by model: one answer replayed into several cells cost tokens once."""
    by_model: dict[str, Tally] = {}
    seen: set[str | None] = set()
    for _, record in stored.records():
        if record.kind != TURN or record.key in seen:
            continue
        seen.add(record.key)
        tally = by_model.setdefault(str(record.model or "-"), Tally())
        counts = token_counts(record.usage)
        thinking = reasoning_tokens(record.usage) or 0
        tally.add(Tally(1, *counts, thinking=thinking) if counts else Tally(1, unreported=1))
    return by_model


def cmd_stats(args: argparse.Namespace, out: TextIO) -> int:
    """Print answers and tokens by model, per notebook and in total."""
    status, width = ExitCode.OK, _terminal_width()
    overall: dict[str, Tally] = {}
    for number, path in enumerate(args.notebooks):
        try:
            _, stored = _load(path)
        except NotebookError as exc:
            status = _fail(str(exc))
            continue
        _warn_skipped(stored)
        by_model = _tally(stored)
        if number:
            print(file=out)
        print(*tally_lines(path, by_model, width), sep="\n", file=out)
        for model, tally in by_model.items():
            overall.setdefault(model, Tally()).add(tally)
    if len(args.notebooks) > 1:
        grand = tally_lines(f"all {len(args.notebooks)} notebooks", overall, width)
        print("", *grand, sep="\n", file=out)
    return status


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
            count, problems = verify_notebook(load_notebook(path))
        except NotebookError as exc:
            status = _fail(str(exc))
            continue
        for place, problem in problems:
            print(f"{path}: {one_line(place)}: {clip(one_line(problem), 300)}", file=out)
        if problems:
            status = max(status, ExitCode.PROBLEMS)
        else:
            print(f"ok: {plural(count, 'record')} in {path}", file=out)
    return status


# -- the parser ------------------------------------------------------------------------------------


class _HelpFormatter(argparse.RawDescriptionHelpFormatter):
    """Help within `HELP_WIDTH` columns. The description and epilog are written by hand: their
    prose paragraphs are wrapped to fit, and a paragraph with an indented line (a table of exit
    codes, an example) is kept line for line."""

    def __init__(self, prog: str, *args: Any, **kwargs: Any) -> None:
        terminal = shutil.get_terminal_size().columns - 2  # as argparse measures it
        kwargs["width"] = min(kwargs.get("width") or terminal, HELP_WIDTH)
        super().__init__(prog, *args, **kwargs)

    def _fill_text(self, text: str, width: int, indent: str) -> str:
        paragraphs = []
        for paragraph in text.split("\n\n"):
            lines = paragraph.splitlines()
            if any(line[:1].isspace() for line in lines):
                paragraphs.append("\n".join(indent + line for line in lines))
            else:
                wrap = {"initial_indent": indent, "subsequent_indent": indent}
                paragraphs.append(textwrap.fill(" ".join(lines), width, **wrap))
        return "\n\n".join(paragraphs)


def _add_command(
    commands: Any, name: str, run: Callable[..., int], epilog: str = ""
) -> argparse.ArgumentParser:
    summary, example = COMMAND_HELP[name]
    parser = commands.add_parser(
        name,
        help=summary,
        description=summary[0].upper() + summary[1:] + ".",
        epilog=f"{epilog}example:\n  {example}",
        formatter_class=_HelpFormatter,
    )
    parser.set_defaults(run=run)
    return parser


def _width(text: str) -> int:
    """``--width``: a whole number of columns, at least `MIN_WIDTH`."""
    try:
        width = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if width < MIN_WIDTH:
        raise argparse.ArgumentTypeError(f"at least {MIN_WIDTH} columns, not {width}")
    return width


def build_parser() -> argparse.ArgumentParser:
    """The ``nbchat`` argument parser with its six subcommands."""
    parser = argparse.ArgumentParser(
        prog="nbchat",
        description="Inspect, export, check, strip and re-run the answers nbchat stores in "
        "notebooks.",
        epilog=HELP_EPILOG,
        formatter_class=_HelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"nbchat {__version__}")
    commands = parser.add_subparsers(title="commands", metavar="COMMAND", required=True)
    thread = {"metavar": "NAME", "help": "only the turns of this thread"}
    notebook = {"metavar": "NOTEBOOK", "help": "a saved .ipynb file"}
    show = _add_command(commands, "show", cmd_show)
    show.add_argument("notebook", **notebook)
    show.add_argument("--thread", **thread)
    show.add_argument("--width", type=_width, metavar="N", help="line width (default: terminal)")
    export = _add_command(commands, "export", cmd_export)
    export.add_argument("notebook", **notebook)
    formats = ("markdown", "html", "jsonl")
    export.add_argument("--format", choices=formats, default="markdown", help="default: markdown")
    export.add_argument("--thread", **thread)
    export.add_argument("-o", "--output", metavar="FILE", help="write here (default: stdout)")
    for name, run in (("stats", cmd_stats), ("verify", cmd_verify)):
        _add_command(commands, name, run).add_argument("notebooks", nargs="+", **notebook)
    strip = _add_command(commands, "strip", cmd_strip)
    strip.add_argument("notebook", **notebook)
    strip.add_argument("--keep-text", action="store_true", help="keep the answers' text outputs")
    strip.add_argument("-o", "--output", metavar="OUT", help="write here (default: in place)")
    upgrade = _add_command(commands, "upgrade", cmd_upgrade)
    upgrade.add_argument("notebook", **notebook)
    upgrade.add_argument("-o", "--output", metavar="OUT", help="write here (default: in place)")
    add_run_arguments(_add_command(commands, "run", cmd_run, RUN_EPILOG))
    return parser


def _fail(message: str) -> int:
    print(f"nbchat: {message}", file=sys.stderr)
    return ExitCode.BAD_INPUT


def _tolerate_unencodable_output() -> None:
    """A terminal that cannot show a character (a model's emoji on a cp1252 console) gets
    ``?``, not a UnicodeEncodeError half-way through a table."""
    for stream in (sys.stdout, sys.stderr):
        reconfigure = getattr(stream, "reconfigure", None)
        if reconfigure is not None:
            reconfigure(errors="replace")


def main(argv: list[str] | None = None) -> int:
    """Run the ``nbchat`` command; return its exit status."""
    try:
        args = build_parser().parse_args(argv)
    except SystemExit as exc:  # --help, --version, or a usage error already printed
        if exc.code is None or isinstance(exc.code, int):
            return exc.code or ExitCode.OK
        return ExitCode.BAD_INPUT
    _tolerate_unencodable_output()
    try:
        return args.run(args, sys.stdout)
    except NotebookError as exc:
        return _fail(str(exc))
    except KeyboardInterrupt:
        _fail("interrupted")
        return ExitCode.INTERRUPTED
    except BrokenPipeError:  # `nbchat show x.ipynb | head`
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return ExitCode.OK
    except OSError as exc:  # an output file that cannot be written
        where = f"{exc.filename}: " if exc.filename else ""
        return _fail(f"{where}{exc.strerror or exc}")


if __name__ == "__main__":
    raise SystemExit(main())
