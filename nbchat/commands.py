"""``%chat COMMAND``: the line magic's commands (history, reset, threads, raw, ...)."""

from __future__ import annotations

import json
import shlex
import textwrap
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from IPython.core.error import UsageError
from IPython.core.magic_arguments import MagicArgumentParser
from IPython.display import display

from nbchat.errors import ConfigError
from nbchat.images import image_from_url, token_estimate
from nbchat.record import TURN, message_text
from nbchat.redaction import mask_url
from nbchat.render import escape_markdown, inspection, raw_bundle
from nbchat.text import clip, markdown_table, one_line, plural, render_table

if TYPE_CHECKING:
    from nbchat.magics import ChatMagics

__all__ = ["run_command"]


def _parser() -> MagicArgumentParser:
    # IPython's help formatter prefixes the prog with "%".
    parser = MagicArgumentParser(prog="chat", add_help=False)
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    history = commands.add_parser("history", help="the thread as it will be sent next")
    history.add_argument("--thread", default="default")
    reset = commands.add_parser("reset", help="forget a thread (or --all) in this kernel")
    target = reset.add_mutually_exclusive_group()
    target.add_argument("--thread", default="default")
    target.add_argument("--all", action="store_true")
    commands.add_parser("threads", help="the threads and their turns")
    raw = commands.add_parser("raw", help="raw JSON of the last (or N-th last) answer")
    raw.add_argument("n", nargs="?", type=int, default=1)
    raw.add_argument("--chunks", action="store_true", help="the last stream's raw chunks")
    models = commands.add_parser("models", help="the endpoint's models")
    models.add_argument("-p", "--profile")
    commands.add_parser("usage", help="tokens spent and saved this session")
    config = commands.add_parser("config", help="effective settings, key masked")
    config.add_argument("-p", "--profile")
    notebook = commands.add_parser("notebook", help="show or set the notebook file")
    notebook.add_argument("path", nargs="?")
    tools = commands.add_parser("tools", help="the tool specs sent for F,G (or ChatMagics.tools)")
    tools.add_argument("names", nargs="?", metavar="F,G")
    commands.add_parser("help", help="this list")
    return parser


def run_command(magics: ChatMagics, line: str) -> None:
    """Parse and run one ``%chat`` line."""
    parser = _parser()
    try:
        args = parser.parse_args(shlex.split(line) or ["help"])
    except (ValueError, UsageError) as exc:  # unbalanced quotes, unknown command or flag
        raise ConfigError(f"%chat: {exc}") from None
    _HANDLERS[args.command](magics, args)


def _show(markdown: str, plain: str) -> None:
    display({"text/markdown": markdown, "text/plain": plain}, raw=True)


def _tables(headers: list[str], rows: list[list[str]]) -> tuple[str, str]:
    """The same table as Markdown (cells already safe) and as aligned plain text."""
    return markdown_table(headers, rows), "\n".join(render_table(headers, rows))


def _preview(text: str, limit: int = 70) -> str:
    return clip(one_line(text), limit)


def _token_estimate(message: dict[str, Any]) -> int:
    """About a quarter of a message's characters, each image counted by its tiles instead."""
    content = message.get("content")
    if not isinstance(content, list):
        return max(1, len(str(content or "")) // 4)
    characters, tokens = 0, 0
    for part in content:
        if not isinstance(part, dict):
            continue
        if part.get("type") == "image_url":
            url = (part.get("image_url") or {}).get("url")
            image = image_from_url(url) if isinstance(url, str) else None
            tokens += token_estimate(image) if image else token_estimate(None)
        else:
            characters += len(str(part.get("text", "")))
    return max(1, characters // 4 + tokens)


def _history(magics: ChatMagics, args: Any) -> None:
    settings = magics.settings()
    notebook = magics.notebook_records()
    messages = magics.session.next_context(
        args.thread, notebook, settings, use_notebook=magics.knows_cells()
    )
    if not messages:
        shown = escape_markdown(args.thread)
        _show(f"Thread {shown} is empty.", f"Thread {args.thread!r} is empty.")
        return
    sizes = [_token_estimate(message) for message in messages]
    previews = [_preview(message_text(message)) for message in messages]
    header = ["#", "role", "tokens", "content"]
    rows = [
        [str(i), m["role"], f"~{n}"]
        for i, (m, n) in enumerate(zip(messages, sizes, strict=True), 1)
    ]
    markdown = markdown_table(
        header,
        [
            [number, escape_markdown(role), size, escape_markdown(text)]
            for (number, role, size), text in zip(rows, previews, strict=True)
        ],
    )
    plain = "\n".join(
        render_table(header, [[*row, text] for row, text in zip(rows, previews, strict=True)])
    )
    note = f"{plural(len(messages), 'message')}, ~{sum(sizes)} tokens of context"
    title = f"Thread {escape_markdown(args.thread)}: {note}."
    _show(f"{title}\n\n{markdown}", f"Thread {args.thread!r}: {note}.\n{plain}")


def _reset(magics: ChatMagics, args: Any) -> None:
    thread = None if args.all else args.thread
    count = magics.session.forget(thread)
    what = "every thread" if thread is None else f"thread {thread!r}"
    print(
        f"Forgot {what} ({plural(count, 'turn')} from this session; stored answers are not used "
        "to rebuild it until its cells run again)."
    )


def _threads(magics: ChatMagics, args: Any) -> None:
    summary = magics.session.thread_summary(
        magics.notebook_records(), use_notebook=magics.knows_cells()
    )
    if not summary:
        _show("No threads yet.", "No threads yet.")
        return
    header = ["thread", "turns", "system prompt"]
    rows = [[name, str(n), "yes" if s else "no"] for name, (n, s) in sorted(summary.items())]
    markdown_rows = [[escape_markdown(name), *rest] for name, *rest in rows]
    _show(markdown_table(header, markdown_rows), "\n".join(render_table(header, rows)))


def _raw(magics: ChatMagics, args: Any) -> None:
    if args.chunks:
        chunks = magics.session.last_chunks
        if not chunks:
            print("No answer was streamed in this session yet (replayed answers have no chunks).")
            return
        data, metadata = raw_bundle(chunks)
        display(data, raw=True, metadata=metadata)
        return
    answers = magics.session.answers_given
    if not 1 <= args.n <= len(answers):
        raise ConfigError(
            f"There are {len(answers)} answers in this session; ask for 1 to "
            f"{max(len(answers), 1)}."
        )
    record = answers[-args.n]
    data, metadata = raw_bundle(inspection(record, magics.session.sent(record)))
    display(data, raw=True, metadata=metadata)


def _models(magics: ChatMagics, args: Any) -> None:
    settings = magics.settings({"profile": args.profile})
    names = magics.session.client(settings).models()
    heading = f"{plural(len(names), 'model')} at {mask_url(settings.base_url)}"
    listing = "\n".join(f"- {escape_markdown(name)}" for name in names)
    _show(f"{escape_markdown(heading)}\n\n{listing}", "\n".join([heading, *names]))


def _usage(magics: ChatMagics, args: Any) -> None:
    usage = magics.session.usage
    rows = [
        ["spent", str(usage.requests), str(usage.spent["prompt"]), str(usage.spent["completion"])],
        [
            "saved (replayed)",
            str(usage.replays),
            str(usage.saved["prompt"]),
            str(usage.saved["completion"]),
        ],
    ]
    markdown, plain = _tables(
        ["", "requests / replays", "prompt tokens", "completion tokens"], rows
    )
    spent, saved = usage.spent["thinking"], usage.saved["thinking"]
    if spent or saved:
        note = f"Of the completion tokens, thinking: {spent} spent, {saved} saved."
        markdown, plain = f"{markdown}\n\n{note}", f"{plain}\n{note}"
    _show(markdown, plain)


def _plain_value(value: object) -> str:
    """A setting as a person writes it: no quotes, no Python reprs."""
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, dict | list):
        return json.dumps(value, ensure_ascii=False) if value else "-"
    return str(value)


def _config(magics: ChatMagics, args: Any) -> None:
    shown = magics.settings({"profile": args.profile}).masked()
    rows = [[name, _plain_value(value)] for name, value in shown.items()]
    markdown_rows = [[name, escape_markdown(value)] for name, value in rows]
    _show(
        markdown_table(["setting", "value"], markdown_rows),
        "\n".join(render_table(["setting", "value"], rows)),
    )


def _notebook(magics: ChatMagics, args: Any) -> None:
    if args.path:
        magics.notebook = args.path
    records = magics.notebook_records()
    path, found_by = magics.session.saved.locate(magics.shell.user_ns if magics.shell else {})
    if records is None:
        where = f"{path} (from {found_by})" if path else "unknown"
        print(f"Notebook: {where}; no stored answers can be read from it.")
        return
    answers = sum(1 for _, r in records.records() if r.kind == TURN)
    parsed = plural(magics.session.saved.parse_count, "time")
    print(
        f"Notebook: {records.path} (from {found_by}): {plural(answers, 'stored answer')}, "
        f"parsed {parsed} this session."
    )


def help_text(parser: MagicArgumentParser) -> str:
    """A magic's argparse help, without the reStructuredText IPython writes for Sphinx (a leading
    ``::`` and an indented usage block), which `%%chat?` and `%chat help` would show as is."""
    text = parser.format_help()
    head, _, rest = text.partition("\n\n")
    if head.strip() == "::":
        usage, _, rest = rest.partition("\n\n")
        text = textwrap.dedent(usage) + "\n\n" + rest
    return text.strip()


def _tools(magics: ChatMagics, args: Any) -> None:
    toolbox = magics.toolbox(args.names)
    if toolbox is None:
        print("No tools: name them, as in `%chat tools lookup,convert`, or set ChatMagics.tools.")
        return
    data, metadata = raw_bundle(toolbox.specs)
    data["text/plain"] = f"[tools sent: {', '.join(toolbox.names)}]\n{data['text/plain']}"
    display(data, raw=True, metadata={**metadata, "application/json": {"expanded": True}})


def _help(magics: ChatMagics, args: Any) -> None:
    print(help_text(_parser()))


_HANDLERS: dict[str, Callable[[ChatMagics, Any], None]] = {
    "history": _history,
    "reset": _reset,
    "threads": _threads,
    "raw": _raw,
    "models": _models,
    "usage": _usage,
    "config": _config,
    "notebook": _notebook,
    "tools": _tools,
    "help": _help,
}
