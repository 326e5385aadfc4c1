"""The ``nbchat`` command: read, check and clean the answers stored in saved notebooks.

    nbchat show NOTEBOOK        the stored turns as a table
    nbchat export NOTEBOOK      a transcript per thread (Markdown, HTML), or JSON Lines
    nbchat stats NOTEBOOK...    answers, tokens and dollars, by model and thread
    nbchat verify NOTEBOOK...   well-formed records, consistent keys, no API key anywhere
    nbchat strip NOTEBOOK       remove the records, e.g. before sharing a notebook
    nbchat run NOTEBOOK         execute it headless, replaying stored answers (`nbchat.cli.run`)

This module parses the command line and runs one command, imported only then: the reading
commands are in `nbchat.cli.read`, ``strip`` and ``upgrade`` in `nbchat.cli.rewrite`. No
kernel and no network but for ``run``. Notebooks are read as JSON (nbformat, whose import takes
about a second, only for versions before 4 and where a file is written back).

Exit status (`nbchat.cli.help.ExitCode`): 0 ok; 1 ``verify`` found problems or ``run`` a cell
error; 2 a usage error, or a notebook that is missing, unreadable or corrupt (one line on stderr,
never a traceback); 130 interrupted.
"""

from __future__ import annotations

import argparse
import importlib
import os
import shutil
import sys
import textwrap
from typing import Any

from nbchat._version import __version__
from nbchat.cli.help import COMMAND_HELP, HELP_EPILOG, MIN_WIDTH, RUN_EPILOG, ExitCode, fail
from nbchat.errors import NotebookError

__all__ = ["build_parser", "main"]

HELP_WIDTH = 79  # help is read at 80 columns whatever the terminal (and in the README)
# The function each command runs, in its module of nbchat.cli: imported when it runs, so that
# --help, --version and a usage error load none of them.
COMMANDS = {
    "show": ("read", "cmd_show"),
    "export": ("read", "cmd_export"),
    "stats": ("stats", "cmd_stats"),
    "verify": ("read", "cmd_verify"),
    "strip": ("rewrite", "cmd_strip"),
    "upgrade": ("rewrite", "cmd_upgrade"),
    "run": ("run", "cmd_run"),
}


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


def _add_command(commands: Any, name: str, epilog: str = "") -> argparse.ArgumentParser:
    summary, example = COMMAND_HELP[name]
    parser = commands.add_parser(
        name,
        help=summary,
        description=summary[0].upper() + summary[1:] + ".",
        epilog=f"{epilog}example:\n  {example}",
        formatter_class=_HelpFormatter,
    )
    parser.set_defaults(command=name)
    return parser


def _add_run_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of ``nbchat run``."""
    parser.add_argument("notebook", metavar="NOTEBOOK", help="the .ipynb file to execute")
    parser.add_argument(
        "--offline", action="store_true", help="replay stored answers only (NBCHAT_OFFLINE=1)"
    )
    target = parser.add_mutually_exclusive_group()
    target.add_argument(
        "--inplace", action="store_true", help="save the executed notebook over NOTEBOOK"
    )
    target.add_argument("-o", "--output", metavar="OUT", help="save the executed notebook here")
    parser.add_argument(
        "--timeout",
        type=float,
        default=600.0,
        metavar="S",
        help="seconds each cell may take (default: 600)",
    )


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
    show = _add_command(commands, "show")
    show.add_argument("notebook", **notebook)
    show.add_argument("--thread", **thread)
    show.add_argument("--width", type=_width, metavar="N", help="line width (default: terminal)")
    export = _add_command(commands, "export")
    export.add_argument("notebook", **notebook)
    formats = ("markdown", "html", "jsonl")
    export.add_argument("--format", choices=formats, default="markdown", help="default: markdown")
    export.add_argument("--thread", **thread)
    export.add_argument("-o", "--output", metavar="FILE", help="write here (default: stdout)")
    stats = _add_command(commands, "stats")
    stats.add_argument("notebooks", nargs="+", **notebook)
    stats.add_argument(
        "--prices",
        metavar="JSON",
        help='your prices, as in ChatMagics.prices: a file or inline JSON, {"MODEL": '
        '{"input": 0.4, "output": 1.6}} ($ per 1M tokens)',
    )
    stats.add_argument("--json", action="store_true", help="write the tallies as JSON")
    _add_command(commands, "verify").add_argument("notebooks", nargs="+", **notebook)
    strip = _add_command(commands, "strip")
    strip.add_argument("notebook", **notebook)
    strip.add_argument("--keep-text", action="store_true", help="keep the answers' text outputs")
    strip.add_argument("-o", "--output", metavar="OUT", help="write here (default: in place)")
    upgrade = _add_command(commands, "upgrade")
    upgrade.add_argument("notebook", **notebook)
    upgrade.add_argument("-o", "--output", metavar="OUT", help="write here (default: in place)")
    _add_run_arguments(_add_command(commands, "run", RUN_EPILOG))
    return parser


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
    module, function = COMMANDS[args.command]
    try:
        run = getattr(importlib.import_module(f"nbchat.cli.{module}"), function)
        return run(args, sys.stdout)
    except NotebookError as exc:
        return fail(str(exc))
    except KeyboardInterrupt:
        fail("interrupted")
        return ExitCode.INTERRUPTED
    except BrokenPipeError:  # `nbchat show x.ipynb | head`
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return ExitCode.OK
    except OSError as exc:  # an output file that cannot be written
        where = f"{exc.filename}: " if exc.filename else ""
        return fail(f"{where}{exc.strerror or exc}")


if __name__ == "__main__":
    raise SystemExit(main())
