"""What the user can do about an error, in the words of the caller that shows it.

Errors state facts and name their `Remedy`; the ``%%chat`` magic says a remedy with its flags,
`nbchat.ask` and `nbchat.map` with their keyword arguments. `in_words` applies the caller's words
to any nbchat error that leaves it.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from nbchat.errors import NbchatError, Remedy
from nbchat.ipython.options import Caller

__all__ = ["WORDS", "in_words"]

WORDS: dict[Caller, dict[Remedy, str]] = {
    Caller.MAGIC: {
        Remedy.NEW_THREAD: "start the thread afresh in this cell with --new",
        Remedy.OTHER_THREAD: "or ask in another --thread",
        Remedy.NAME_MODEL: "add -m MODEL to the cell, or set %config ChatMagics.model or "
        "$NBCHAT_MODEL (`%chat models` lists them)",
        Remedy.MORE_TOKENS: "raise --max-tokens",
        Remedy.MORE_TOOL_ROUNDS: "raise --max-tool-rounds",
        Remedy.ANY_JSON: "try --json, which asks for any JSON object and checks it against the "
        "schema here",
        Remedy.REFRESH_ONLINE: "run online with --refresh to ask again",
        Remedy.RAISE_BUDGET: "raise %config ChatMagics.budget to go on (stored answers still "
        "replay)",
        Remedy.REAL_TIME: "send the items in real time with --no-batch",
    },
    Caller.CODE: {
        Remedy.NEW_THREAD: "start the thread afresh with new=True",
        Remedy.OTHER_THREAD: "or ask in another thread=...",
        Remedy.NAME_MODEL: "pass model=..., or set %config ChatMagics.model or $NBCHAT_MODEL",
        Remedy.MORE_TOKENS: "raise max_tokens=...",
        Remedy.MORE_TOOL_ROUNDS: "raise max_tool_rounds=...",
        Remedy.ANY_JSON: "try json=True, which asks for any JSON object and checks it against "
        "the schema here",
        Remedy.REFRESH_ONLINE: "run online with refresh=True to ask again",
        Remedy.RAISE_BUDGET: "raise %config ChatMagics.budget to go on (stored answers still "
        "replay)",
        Remedy.REAL_TIME: "send the items in real time with batch=False",
    },
}


@contextmanager
def in_words(caller: Caller) -> Iterator[None]:
    """Any nbchat error raised inside says its remedies in ``caller``'s words."""
    try:
        yield
    except NbchatError as error:
        error.advise(WORDS[caller])
        raise
