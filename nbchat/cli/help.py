"""The ``nbchat`` command's help (exit codes, epilogs, each subcommand's summary and example) and
its one-line failure.

Nothing here imports the rest of nbchat, so ``nbchat --help`` and ``--version`` stay quick.
"""

from __future__ import annotations

import enum
import sys

__all__ = ["COMMAND_HELP", "HELP_EPILOG", "MIN_WIDTH", "RUN_EPILOG", "ExitCode", "fail"]

MIN_WIDTH = 20  # `show --width`: narrower, the table has no room for a prompt


class ExitCode(enum.IntEnum):
    """The exit status of every ``nbchat`` command (documented in the help below)."""

    OK = 0
    PROBLEMS = 1  # verify found problems, or run stopped at a cell error
    BAD_INPUT = 2  # usage error, or a notebook that is missing, unreadable or corrupt
    INTERRUPTED = 130  # Ctrl-C, as shells report it


HELP_EPILOG = f"""\
Notebooks are read, never run (no kernel, no network), except by `run`, which executes one.

exit status:
  {ExitCode.OK:<3d}  success
  {ExitCode.PROBLEMS:<3d}  verify found problems, or run stopped at a cell error
  {ExitCode.BAD_INPUT:<3d}  usage error, or a notebook that is missing, unreadable or corrupt
  {ExitCode.INTERRUPTED:<3d}  interrupted (Ctrl-C)

example:
  nbchat show analysis.ipynb --thread review
"""

# (one-line summary, example) of each subcommand, for its --help
COMMAND_HELP: dict[str, tuple[str, str]] = {
    "show": ("list the stored turns as a table", "nbchat show analysis.ipynb --width 120"),
    "export": (
        "write a transcript per thread (Markdown or HTML), or one JSON record per line",
        "nbchat export analysis.ipynb --format jsonl -o turns.jsonl",
    ),
    "stats": (
        "count answers, their tokens and what they cost then and would cost now, by model "
        "and thread",
        "nbchat stats *.ipynb --prices prices.json",
    ),
    "verify": (
        "check records are well-formed, keys consistent, and no API key leaked",
        "nbchat verify analysis.ipynb || echo 'see the problems above'",
    ),
    "strip": (
        "remove nbchat's records from a notebook (rewritten atomically)",
        "nbchat strip analysis.ipynb --keep-text -o shareable.ipynb",
    ),
    "upgrade": (
        "rewrite the records of nbchat 0.1 (schema 1) as schema 2 (atomically)",
        "nbchat upgrade analysis.ipynb",
    ),
    "run": (
        "execute a notebook headless with nbclient, replaying the answers stored in it",
        "nbchat run --offline analysis.ipynb",
    ),
}

RUN_EPILOG = f"""\
The kernel runs in the notebook's directory with NBCHAT_NOTEBOOK set to the file, so every
%%chat cell whose request is unchanged replays its stored answer at no cost; the others are
sent, unless --offline (NBCHAT_OFFLINE=1) makes them fail with OfflineMiss. The file is left
untouched unless --inplace or -o is given, and is never saved when a cell fails. Then prints:

  NOTEBOOK: N cells run, A answers (R replayed, S asked), E errors

Needs nbclient and ipykernel (pip install nbclient ipykernel).

exit status:
  {ExitCode.OK:<3d}  every cell ran (cells tagged raises-exception may fail)
  {ExitCode.PROBLEMS:<3d}  a cell failed: its number and error are printed
  {ExitCode.BAD_INPUT:<3d}  usage error, nbclient missing, or a notebook that is missing or corrupt
  {ExitCode.INTERRUPTED:<3d}  interrupted (Ctrl-C): nothing is saved

"""


def fail(message: str) -> int:
    """Say what went wrong in one line on stderr; the exit status of bad input."""
    print(f"nbchat: {message}", file=sys.stderr)
    return ExitCode.BAD_INPUT
