"""``%chat COMMAND``: the line magic's commands (history, reset, threads, raw, ...)."""

from __future__ import annotations

import shlex
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from IPython.core.error import UsageError
from IPython.core.magic_arguments import MagicArgumentParser
from IPython.display import display

from nbchat.errors import ConfigError
from nbchat.render import raw_bundle

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


def _table(headers: list[str], rows: list[list[str]]) -> tuple[str, str]:
    """A Markdown table and an aligned plain-text one."""
    cells = [[c.replace("|", "\\|").replace("\n", " ") for c in row] for row in rows]
    markdown = "\n".join(
        ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
        + ["| " + " | ".join(row) + " |" for row in cells]
    )
    widths = [
        max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(headers)
    ]
    lines = ["  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True))]
    lines += [
        "  ".join(c.replace("\n", " ").ljust(w) for c, w in zip(row, widths, strict=True))
        for row in rows
    ]
    return markdown, "\n".join(lines)


def _preview(text: str, limit: int = 70) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _history(magics: ChatMagics, args: Any) -> None:
    settings = magics.settings()
    notebook = magics.notebook_records()
    messages = magics.session.threads.context(
        args.thread,
        None,
        notebook,
        default_system=settings.system_prompt,
        use_notebook=magics.knows_cells(),
    )
    if not messages:
        _show(f"Thread `{args.thread}` is empty.", f"Thread {args.thread!r} is empty.")
        return
    rows = [
        [str(i), m["role"], f"~{max(1, len(m['content']) // 4)}", _preview(m["content"])]
        for i, m in enumerate(messages, 1)
    ]
    markdown, plain = _table(["#", "role", "tokens", "content"], rows)
    total = sum(len(m["content"]) // 4 for m in messages)
    note = f"Thread `{args.thread}`: {len(messages)} messages, ~{total} tokens of context."
    _show(f"{note}\n\n{markdown}", f"{note}\n{plain}")


def _reset(magics: ChatMagics, args: Any) -> None:
    thread = None if args.all else args.thread
    count = magics.session.threads.reset(thread)
    what = "every thread" if thread is None else f"thread {thread!r}"
    print(
        f"Forgot {what} ({count} turns from this session; stored answers are not used to "
        "rebuild it until its cells run again)."
    )


def _threads(magics: ChatMagics, args: Any) -> None:
    turns = magics.session.threads.turns(
        magics.notebook_records(), use_notebook=magics.knows_cells()
    )
    counts: dict[str, list[int]] = {}
    for turn in turns:
        entry = counts.setdefault(turn.thread, [0, 0])
        entry[0 if turn.kind == "answer" else 1] += 1
    if not counts:
        _show("No threads yet.", "No threads yet.")
        return
    rows = [[name, str(n), "yes" if s else "no"] for name, (n, s) in sorted(counts.items())]
    _show(*_table(["thread", "turns", "system prompt"], rows))


def _raw(magics: ChatMagics, args: Any) -> None:
    if args.chunks:
        chunks = magics.session.last_chunks
        if not chunks:
            print("No answer was streamed in this session yet (replayed answers have no chunks).")
            return
        data, metadata = raw_bundle(chunks)
        display(data, raw=True, metadata=metadata)
        return
    answers = [r for r in magics.session.history if r.kind == "answer"]
    if not 1 <= args.n <= len(answers):
        raise ConfigError(
            f"There are {len(answers)} answers in this session; ask for 1 to "
            f"{max(len(answers), 1)}."
        )
    data, metadata = raw_bundle(answers[-args.n].to_json())
    display(data, raw=True, metadata=metadata)


def _models(magics: ChatMagics, args: Any) -> None:
    settings = magics.settings({"profile": args.profile})
    names = magics.session.client(settings).models()
    heading = f"{len(names)} models at {settings.base_url}"
    _show(heading + "\n\n" + "\n".join(f"- `{n}`" for n in names), "\n".join([heading, *names]))


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
    _show(*_table(["", "requests / replays", "prompt tokens", "completion tokens"], rows))


def _config(magics: ChatMagics, args: Any) -> None:
    shown = magics.settings({"profile": args.profile}).masked()
    rows = [[name, repr(value)] for name, value in shown.items()]
    _show(*_table(["setting", "value"], rows))


def _notebook(magics: ChatMagics, args: Any) -> None:
    if args.path:
        magics.notebook = args.path
    records = magics.notebook_records()
    path = magics.session.notebook_path or (records.path if records else None)
    if records is None:
        print(f"Notebook: {path or 'unknown'}; no stored answers can be read from it.")
        return
    answers = sum(1 for _, r in records.records() if r.kind == "answer")
    print(
        f"Notebook: {records.path} ({answers} stored answers, parsed "
        f"{magics.session.parse_count} times this session)."
    )


def _help(magics: ChatMagics, args: Any) -> None:
    print(_parser().format_help().replace("usage: %chat", "%chat", 1))


_HANDLERS: dict[str, Callable[[ChatMagics, Any], None]] = {
    "history": _history,
    "reset": _reset,
    "threads": _threads,
    "raw": _raw,
    "models": _models,
    "usage": _usage,
    "config": _config,
    "notebook": _notebook,
    "help": _help,
}
