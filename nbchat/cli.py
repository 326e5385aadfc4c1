"""The ``nbchat`` command: read, check and clean the answers stored in saved notebooks.

    nbchat show NOTEBOOK        the stored turns as a table
    nbchat export NOTEBOOK      a Markdown transcript per thread, or JSON Lines
    nbchat stats NOTEBOOK...    answers and the tokens they cost, by model
    nbchat verify NOTEBOOK...   well-formed records, consistent keys, no leaked API keys
    nbchat strip NOTEBOOK       remove the records, e.g. before sharing a notebook
    nbchat run NOTEBOOK         execute it headless, replaying stored answers (`nbchat.cli_run`)

All but ``run`` read files with nbformat only: no kernel, no network.

Exit status: 0 ok; 1 ``verify`` found problems or ``run`` a cell error; 2 a usage error, or a
notebook that is missing, unreadable or corrupt (one line on stderr, never a traceback).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import shutil
import sys
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from nbchat._version import __version__
from nbchat.cli_format import (
    COMMAND_HELP,
    HELP_EPILOG,
    RUN_EPILOG,
    Tally,
    markdown_transcript,
    plural,
    render_table,
    show_row,
    tally_lines,
    token_counts,
)
from nbchat.cli_run import add_run_arguments, cmd_run
from nbchat.errors import NotebookError
from nbchat.notebook import NotebookRecords, iter_output_records, load_notebook, read_records
from nbchat.record import SCHEMA_VERSION, Record

if TYPE_CHECKING:
    import nbformat

__all__ = ["build_parser", "main"]

EXIT_OK, EXIT_PROBLEMS, EXIT_BAD_INPUT = 0, 1, 2
MIN_WIDTH = 60
TEXT_MIMES = ("text/markdown", "text/plain")
# What a leaked credential looks like inside free text; the secret itself is never printed.
_SECRET_TEXT = re.compile(
    # OpenAI-style keys: "sk-" at a word start, then 20+ key characters including a digit
    # ("risk-assessment-framework" is prose, not a key).
    r"(?<![A-Za-z0-9])sk-(?=[A-Za-z0-9_-]*\d)[A-Za-z0-9_-]{20,}"
    r"|\bBearer\s+[A-Za-z0-9._~+/-]{20,}"
    r"|(?i:\bauthorization\s*[:=]\s*(?:bearer|basic|token)?\s*[A-Za-z0-9._~+/-]{16,})"
    r"|(?i:\bapi[_-]?key[\"']?\s*[:=]\s*[\"']?(?=[A-Za-z0-9_-]*\d)[A-Za-z0-9_-]{20,})"
)
# A JSON field of this name holding a string is a credential, whatever the string looks like.
_SECRET_FIELD = re.compile(r"(?i)^(authorization|x-api-key|(openai[_-])?api[_-]?key)$")


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


# -- show ------------------------------------------------------------------------------------------


def cmd_show(args: argparse.Namespace, out: TextIO) -> int:
    """Print the stored turns of one notebook as a table."""
    _, stored = _load(args.notebook)
    _warn_skipped(stored)
    turns = _turns(stored, args.thread)
    if not turns:
        where = f" in thread {args.thread!r}" if args.thread else ""
        print(f"no nbchat records{where} in {args.notebook}", file=out)
        return EXIT_OK
    width = max(args.width or shutil.get_terminal_size().columns, MIN_WIDTH)
    header = ["CELL", "THREAD", "MODEL", "TOKENS", "FINISH", "STORED (UTC)", "PROMPT", "ANSWER"]
    rows = [show_row(cell, record) for cell, record in turns]
    for line in render_table(header, rows, width=width, flex=2, right=frozenset({0})):
        print(line, file=out)
    return EXIT_OK


# -- export ----------------------------------------------------------------------------------------


def cmd_export(args: argparse.Namespace, out: TextIO) -> int:
    """Write a Markdown transcript or JSON Lines of one notebook's records."""
    _, stored = _load(args.notebook)
    _warn_skipped(stored)
    turns = _turns(stored, args.thread)
    if args.format == "jsonl":
        lines = [json.dumps({"cell": cell, **r.to_json()}, ensure_ascii=False) for cell, r in turns]
        text = "".join(line + "\n" for line in lines)
    else:
        text = markdown_transcript(Path(args.notebook).name, [record for _, record in turns])
    if args.output:
        atomic_write(Path(args.output), lambda handle: handle.write(text))
    else:
        out.write(text)
    return EXIT_OK


# -- stats -----------------------------------------------------------------------------------------


def _tally(stored: NotebookRecords) -> dict[str, Tally]:
    """Distinct answers by model: one answer replayed into several cells cost tokens once."""
    by_model: dict[str, Tally] = {}
    seen: set[str | None] = set()
    for _, record in stored.records():
        if record.kind != "answer" or record.key in seen:
            continue
        seen.add(record.key)
        tally = by_model.setdefault(str(record.model or "-"), Tally())
        counts = token_counts(record.usage)
        tally.add(Tally(1, *counts) if counts else Tally(answers=1, unreported=1))
    return by_model


def cmd_stats(args: argparse.Namespace, out: TextIO) -> int:
    """Print answers and tokens by model, per notebook and in total."""
    status = EXIT_OK
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
        print(*tally_lines(path, by_model), sep="\n", file=out)
        for model, tally in by_model.items():
            overall.setdefault(model, Tally()).add(tally)
    if len(args.notebooks) > 1:
        grand = tally_lines(f"all {len(args.notebooks)} notebooks", overall)
        print("", *grand, sep="\n", file=out)
    return status


# -- verify ----------------------------------------------------------------------------------------


def find_secrets(value: Any, where: str = "") -> Iterator[str]:
    """Where in a JSON value something looks like a credential (paths, never the secret)."""
    if isinstance(value, dict):
        for name, item in value.items():
            here = f"{where}.{name}" if where else str(name)
            if _SECRET_FIELD.match(str(name)) and isinstance(item, str) and len(item) >= 8:
                yield here
            else:
                yield from find_secrets(item, here)
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from find_secrets(item, f"{where}[{index}]")
    elif isinstance(value, str) and _SECRET_TEXT.search(value):
        yield where or "record"


def check_record(version: int, raw: Any) -> list[str]:
    """What is wrong with one stored record (an empty list when nothing is)."""
    problems = [f"possible API key leaked in {where}" for where in find_secrets(raw)]
    declared = raw.get("schema") if isinstance(raw, dict) else None
    newest = max(version, declared) if isinstance(declared, int) else version
    if newest > SCHEMA_VERSION:
        return [f"record schema v{newest} is newer than supported (v{SCHEMA_VERSION})", *problems]
    try:
        record = Record.from_json(raw, version=version)
    except (ValueError, TypeError) as exc:
        return [f"malformed record: {exc}", *problems]
    if record.kind not in ("answer", "system"):
        problems.insert(0, f"unknown record kind {record.kind!r}")
    else:
        problem = record.consistency_problem()
        if problem:
            problems.insert(0, f"{problem} (edited after it was stored?)")
    return problems


def verify_notebook(notebook: nbformat.NotebookNode) -> tuple[int, list[tuple[int, str]]]:
    """The number of records and every (cell number, problem) of a parsed notebook."""
    count, problems = 0, []
    for index, cell in enumerate(notebook.get("cells", [])):
        for version, raw in iter_output_records(cell.get("outputs", [])):
            count += 1
            problems += [(index + 1, problem) for problem in check_record(version, raw)]
    return count, problems


def cmd_verify(args: argparse.Namespace, out: TextIO) -> int:
    """Check every record of every notebook; print ``ok`` or one line per problem."""
    status = EXIT_OK
    for path in args.notebooks:
        try:
            count, problems = verify_notebook(load_notebook(path))
        except NotebookError as exc:
            status = _fail(str(exc))
            continue
        for cell, problem in problems:
            print(f"{path}: cell {cell}: {problem}", file=out)
        if problems:
            status = max(status, EXIT_PROBLEMS)
        else:
            print(f"ok: {plural(count, 'record')} in {path}", file=out)
    return status


# -- strip -----------------------------------------------------------------------------------------


def _is_raw_view(output: dict[str, Any]) -> bool:
    marker = (output.get("metadata") or {}).get("nbchat")
    return isinstance(marker, dict) and marker.get("raw") is True


def _text_only(output: nbformat.NotebookNode) -> nbformat.NotebookNode | None:
    """The output with only its text kept, or None when it has no text."""
    data = {mime: value for mime, value in output["data"].items() if mime in TEXT_MIMES}
    if not data:
        return None
    metadata = output.get("metadata") or {}
    output["metadata"] = {k: v for k, v in metadata.items() if k in data or "/" not in k}
    output["metadata"].pop("nbchat", None)
    output["data"] = data
    return output


def strip_notebook(notebook: nbformat.NotebookNode, keep_text: bool) -> tuple[int, int]:
    """Remove records (and raw-JSON views) in place; return how many of each went."""
    records = views = 0
    for cell in notebook.get("cells", []):
        kept = []
        for output in cell.get("outputs", []):
            found = sum(1 for _ in iter_output_records([output]))
            records += found
            if _is_raw_view(output):
                views += 1
            elif not found:
                kept.append(output)
            elif keep_text and (text := _text_only(output)) is not None:
                kept.append(text)
        if "outputs" in cell:
            cell["outputs"] = kept
    return records, views


def cmd_strip(args: argparse.Namespace, out: TextIO) -> int:
    """Remove nbchat's records from a notebook, in place or into ``-o``."""
    import nbformat  # slow to import (jsonschema): only for the command that writes

    notebook = load_notebook(args.notebook)
    records, views = strip_notebook(notebook, args.keep_text)
    target = Path(args.output or args.notebook)
    if records or views or args.output:
        atomic_write(target, lambda handle: nbformat.write(notebook, handle))
    summary = f"stripped {plural(records, 'record')}"
    if views:
        summary += f" and {plural(views, 'raw view')}"
    into = f" into {args.output}" if args.output else ""
    print(f"{summary} from {args.notebook}{into}", file=out)
    return EXIT_OK


def atomic_write(path: Path, write: Callable[[TextIO], object]) -> None:
    """Replace ``path`` only once the new content is fully on disk; on failure keep the old."""
    target = Path(os.path.realpath(path))  # write through a symlink, do not replace it
    temp: str | None = None
    try:
        with tempfile.NamedTemporaryFile(
            "w", encoding="utf-8", dir=target.parent, prefix=f".{target.name}.", delete=False
        ) as handle:
            temp = handle.name
            write(handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(temp, _file_mode(target))
        os.replace(temp, target)
    except BaseException:
        if temp is not None:
            with contextlib.suppress(OSError):
                os.unlink(temp)
        raise


def _file_mode(target: Path) -> int:
    """The mode the file has, or a new file's usual mode (the temp file's 0600 is too strict)."""
    try:
        return target.stat().st_mode & 0o7777
    except FileNotFoundError:
        umask = os.umask(0)
        os.umask(umask)
        return 0o666 & ~umask


# -- the parser ------------------------------------------------------------------------------------


def _add_command(
    commands: Any, name: str, run: Callable[..., int], epilog: str = ""
) -> argparse.ArgumentParser:
    summary, example = COMMAND_HELP[name]
    parser = commands.add_parser(
        name,
        help=summary,
        description=summary[0].upper() + summary[1:] + ".",
        epilog=f"{epilog}example:\n  {example}",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.set_defaults(run=run)
    return parser


def build_parser() -> argparse.ArgumentParser:
    """The ``nbchat`` argument parser with its six subcommands."""
    parser = argparse.ArgumentParser(
        prog="nbchat",
        description="Inspect, export, check, strip and re-run the answers nbchat stores in "
        "notebooks.",
        epilog=HELP_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"nbchat {__version__}")
    commands = parser.add_subparsers(title="commands", metavar="COMMAND", required=True)
    thread = {"metavar": "NAME", "help": "only the turns of this thread"}
    notebook = {"metavar": "NOTEBOOK", "help": "a saved .ipynb file"}
    show = _add_command(commands, "show", cmd_show)
    show.add_argument("notebook", **notebook)
    show.add_argument("--thread", **thread)
    show.add_argument("--width", type=int, metavar="N", help="line width (default: terminal)")
    export = _add_command(commands, "export", cmd_export)
    export.add_argument("notebook", **notebook)
    formats = ("markdown", "jsonl")
    export.add_argument("--format", choices=formats, default="markdown", help="default: markdown")
    export.add_argument("--thread", **thread)
    export.add_argument("-o", "--output", metavar="FILE", help="write here (default: stdout)")
    for name, run in (("stats", cmd_stats), ("verify", cmd_verify)):
        _add_command(commands, name, run).add_argument("notebooks", nargs="+", **notebook)
    strip = _add_command(commands, "strip", cmd_strip)
    strip.add_argument("notebook", **notebook)
    strip.add_argument("--keep-text", action="store_true", help="keep the answers' text outputs")
    strip.add_argument("-o", "--output", metavar="OUT", help="write here (default: in place)")
    add_run_arguments(_add_command(commands, "run", cmd_run, RUN_EPILOG))
    return parser


def _fail(message: str) -> int:
    print(f"nbchat: {message}", file=sys.stderr)
    return EXIT_BAD_INPUT


def main(argv: list[str] | None = None) -> int:
    """Run the ``nbchat`` command; return its exit status."""
    try:
        args = build_parser().parse_args(argv)
    except SystemExit as exc:  # --help, --version, or a usage error already printed
        if exc.code is None or isinstance(exc.code, int):
            return exc.code or EXIT_OK
        return EXIT_BAD_INPUT
    try:
        return args.run(args, sys.stdout)
    except NotebookError as exc:
        return _fail(str(exc))
    except BrokenPipeError:  # `nbchat show x.ipynb | head`
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return EXIT_OK
    except OSError as exc:  # an output file that cannot be written
        where = f"{exc.filename}: " if exc.filename else ""
        return _fail(f"{where}{exc.strerror or exc}")


if __name__ == "__main__":
    raise SystemExit(main())
