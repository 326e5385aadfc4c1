"""``%chat COMMAND``: the line magic's commands (history, reset, threads, raw, ...)."""

from __future__ import annotations

import json
import shlex
from collections.abc import Callable
from typing import Any

from IPython.core.error import UsageError
from IPython.core.magic_arguments import MagicArgumentParser
from IPython.display import display

from nbchat._text import plural, printable, render_table
from nbchat.engine.history import history_rows, reset_line
from nbchat.engine.pricing import price_book, record_cost
from nbchat.engine.queries import context_at, sent, thread_summary
from nbchat.engine.settings import DEFAULT_THREAD
from nbchat.errors import ConfigError
from nbchat.ipython.batch_commands import cancel_batch, list_batches
from nbchat.ipython.context import ChatKernel
from nbchat.ipython.help import help_text
from nbchat.ipython.mcp_command import show_servers, show_specs
from nbchat.ipython.options import CellOptions
from nbchat.ipython.spending import usage_view
from nbchat.render.bundles import inspection, raw_bundle
from nbchat.render.html import document, escape, table
from nbchat.store.record import TURN
from nbchat.wire.redaction import mask_url

__all__ = ["run_command"]


def _parser() -> MagicArgumentParser:
    # IPython's help formatter prefixes the prog with "%".
    parser = MagicArgumentParser(prog="chat", add_help=False)
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    history = commands.add_parser("history", help="what a chat cell here would send")
    history.add_argument("--thread", default=DEFAULT_THREAD)
    reset = commands.add_parser("reset", help="forget a thread's turns in this kernel (or --all)")
    target = reset.add_mutually_exclusive_group()
    target.add_argument("--thread", default=DEFAULT_THREAD)
    target.add_argument("--all", action="store_true")
    commands.add_parser("threads", help="the threads and their turns")
    raw = commands.add_parser("raw", help="raw JSON of the last (or N-th last) answer")
    raw.add_argument("n", nargs="?", type=int, default=1)
    raw.add_argument("--chunks", action="store_true", help="the last stream's raw chunks")
    models = commands.add_parser("models", help="the endpoint's models")
    models.add_argument("-p", "--profile")
    commands.add_parser("usage", help="tokens and dollars spent and saved this session")
    config = commands.add_parser("config", help="effective settings, key masked")
    config.add_argument("-p", "--profile")
    notebook = commands.add_parser("notebook", help="show or set the notebook file")
    notebook.add_argument("path", nargs="?")
    tools = commands.add_parser("tools", help="the tool specs sent for F,G (or ChatMagics.tools)")
    tools.add_argument("names", nargs="?", metavar="F,G")
    mcp = commands.add_parser("mcp", help="the MCP servers, their state and tools (NAME: now)")
    mcp.add_argument("name", nargs="?", metavar="NAME")
    commands.add_parser("batches", help="this notebook's provider batches (--map --batch)")
    batch = commands.add_parser("batch", help="batch cancel ID: cancel a provider batch")
    batch.add_argument("action", choices=["cancel"])
    batch.add_argument("id")
    commands.add_parser("help", help="this list")
    return parser


def run_command(kernel: ChatKernel, line: str) -> None:
    """Parse and run one ``%chat`` line."""
    parser = _parser()
    try:
        args = parser.parse_args(shlex.split(line) or ["help"])
    except (ValueError, UsageError) as exc:  # unbalanced quotes, unknown command or flag
        raise ConfigError(f"%chat: {exc}") from None
    _HANDLERS[args.command](kernel, args)


def _show(html: str, plain: str) -> None:
    """``html`` (nbchat's markup, any text in it escaped) sanitized, with its plain text."""
    display({"text/html": document(html), "text/plain": plain}, raw=True)


def _show_table(headers: list[str], rows: list[list[str]], title: str = "") -> None:
    """A table of plain-text cells, under an optional title line."""
    html = (f"<p>{escape(title)}</p>" if title else "") + table(headers, rows)
    plain = "\n".join(([title] if title else []) + render_table(headers, rows))
    _show(html, plain)


def _history(kernel: ChatKernel, args: Any) -> None:
    """What a %%chat cell here would send before its own message, one row a message; a message
    the table clips is shown whole below it, folded."""
    cell = kernel.running
    _, messages = context_at(
        kernel.session,
        args.thread,
        kernel.notebook(),
        kernel.settings(),
        cell_id=cell.cell_id,
        source=cell.source,
        use_notebook=cell.knows_cells,
    )
    if not messages:
        empty = f"Thread {args.thread!r} is empty above this cell: a %%chat cell here sends "
        empty += "its own message alone."
        _show(f"<p>{escape(empty)}</p>", empty)
        return
    rows = history_rows(messages)
    header = ["#", "role", "tokens", "content"]
    cells = [[str(row.number), row.role, f"~{row.tokens}", row.preview] for row in rows]
    tokens = sum(row.tokens for row in rows)
    title = (
        f"Thread {args.thread!r}: {plural(len(rows), 'message')}, ~{tokens} tokens of context: "
        "what a %%chat cell here sends before its own."
    )
    html = f"<p>{escape(title)}</p>{table(header, cells)}"
    plain = "\n".join([title, *render_table(header, cells)])
    for row in (row for row in rows if not row.complete):
        heading = f"{row.number} · {row.role}, whole"
        html += (
            f"<details><summary>{escape(heading)}</summary>"
            f'<pre style="white-space: pre-wrap">{escape(row.whole)}</pre></details>'
        )
        plain += f"\n\n{heading}:\n{row.whole}"
    _show(html, printable(plain))


def _reset(kernel: ChatKernel, args: Any) -> None:
    thread = None if args.all else args.thread
    count = kernel.session.threads.reset(thread)
    notebook, cell = kernel.notebook(), kernel.running
    use_notebook = cell.knows_cells
    names = [thread] if thread is not None else []
    names = names or sorted(thread_summary(kernel.session, notebook, use_notebook=use_notebook))
    sends = {}
    for name in names:
        window, _ = context_at(
            kernel.session,
            name,
            notebook,
            kernel.settings(),
            cell_id=cell.cell_id,
            source=cell.source,
            use_notebook=use_notebook,
        )
        sends[name] = len(window.answered)
    file = notebook is not None and use_notebook
    print(reset_line(count, thread, sends, file=file))


def _threads(kernel: ChatKernel, args: Any) -> None:
    summary = thread_summary(
        kernel.session, kernel.notebook(), use_notebook=kernel.running.knows_cells
    )
    if not summary:
        _show("<p>No threads yet.</p>", "No threads yet.")
        return
    rows = [[name, str(n), "yes" if s else "no"] for name, (n, s) in sorted(summary.items())]
    _show_table(["thread", "turns", "system prompt"], rows)


def _raw(kernel: ChatKernel, args: Any) -> None:
    if args.chunks:
        chunks = kernel.session.last_stream.chunks
        if not chunks:
            print("No answer was streamed in this session yet (replayed answers have no chunks).")
            return
        data, metadata = raw_bundle(chunks)
        display(data, raw=True, metadata=metadata)
        return
    answers = kernel.session.cache.given
    if not 1 <= args.n <= len(answers):
        raise ConfigError(
            f"There are {len(answers)} answers in this session; ask for 1 to "
            f"{max(len(answers), 1)}."
        )
    record = answers[-args.n]
    request_sent = sent(kernel.session, record, kernel.locator.last)
    cost = record_cost(record, price_book(kernel.settings({})))
    data, metadata = raw_bundle(inspection(record, request_sent, cost=cost))
    display(data, raw=True, metadata=metadata)


def _models(kernel: ChatKernel, args: Any) -> None:
    settings = kernel.settings({"profile": args.profile})
    client = kernel.session.client(settings)
    names = [client.redactor().clip(name, 120) for name in client.models()]  # ids may echo a key
    heading = f"{plural(len(names), 'model')} at {mask_url(settings.base_url)}"
    listing = "".join(f"<li>{escape(name)}</li>" for name in names)
    _show(f"<p>{escape(heading)}</p><ul>{listing}</ul>", "\n".join([heading, *names]))


def _usage(kernel: ChatKernel, args: Any) -> None:
    _show(*usage_view(kernel.session.ledger, kernel.settings({}).budget))


def _plain_value(value: object) -> str:
    """A setting as a person writes it: no quotes, no Python reprs."""
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, dict | list):
        return json.dumps(value, ensure_ascii=False) if value else "-"
    return str(value)


def _config(kernel: ChatKernel, args: Any) -> None:
    shown = kernel.settings({"profile": args.profile}).masked()
    rows = [[name, _plain_value(value)] for name, value in shown.items()]
    _show_table(["setting", "value"], rows)


def _notebook(kernel: ChatKernel, args: Any) -> None:
    if args.path:
        kernel.set_notebook(args.path)
    records = kernel.notebook()
    path, found_by = kernel.locator.locate(kernel.namespace)
    if records is None:
        where = f"{path} (from {found_by})" if path else "unknown"
        print(f"Notebook: {where}; no stored answers can be read from it.")
        return
    answers = sum(1 for _, r in records.records() if r.kind == TURN)
    parsed = plural(kernel.locator.parse_count, "time")
    print(
        f"Notebook: {records.path} (from {found_by}): {plural(answers, 'stored answer')}, "
        f"parsed {parsed} this session."
    )


def _tools(kernel: ChatKernel, args: Any) -> None:
    toolbox = kernel.toolbox(CellOptions(tools=args.names))
    if toolbox is None:
        print("No tools: name them, as in `%chat tools lookup,convert`, or set ChatMagics.tools.")
        return
    show_specs(toolbox)


def _mcp(kernel: ChatKernel, args: Any) -> None:
    show_servers(kernel, args.name)


def _help(kernel: ChatKernel, args: Any) -> None:
    print(help_text(_parser()))


_HANDLERS: dict[str, Callable[[ChatKernel, Any], None]] = {
    "history": _history,
    "reset": _reset,
    "threads": _threads,
    "raw": _raw,
    "models": _models,
    "usage": _usage,
    "config": _config,
    "notebook": _notebook,
    "tools": _tools,
    "mcp": _mcp,
    "batches": list_batches,
    "batch": cancel_batch,
    "help": _help,
}
