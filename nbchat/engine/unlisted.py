"""Finding the stored answer of a turn that offers tools of MCP servers, without asking them.

The key covers the specs sent, and a server's specs are known only by asking it: so before any
server is contacted, the turn is looked up with the MCP tools each stored answer was sent with
(those the cell's selectors offered: `nbchat.engine.mcp_tools.stored_tools`), the cell's own
answer first. A hit is replayed as stored; a miss leaves the tools to be listed, and the turn
asked, only when it is to be sent.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator

from nbchat.engine.cache import AnswerCache, Found
from nbchat.engine.offline import own_stored_answer
from nbchat.engine.threads import ThreadStore
from nbchat.engine.tool_calls import ToolBox
from nbchat.engine.turns import PreparedTurn, with_tools
from nbchat.store.notebook import NotebookRecords
from nbchat.store.record import Record

__all__ = ["find_unlisted", "stored_records"]


def stored_records(
    turn: PreparedTurn,
    notebook: NotebookRecords | None,
    threads: ThreadStore,
    cache: AnswerCache,
) -> Iterator[Record]:
    """The answers a turn may replay, the cell's own first, then this session's (newest
    first), then the saved notebook's."""
    own = own_stored_answer(turn, notebook, threads)
    if own is not None:
        yield own
    yield from reversed(cache.given)
    if notebook is not None:
        yield from (record for _, record in notebook.records())


def find_unlisted(
    base: PreparedTurn,
    tools: ToolBox,
    records: Iterable[Record],
    lookup: Callable[[PreparedTurn], Found | None],
) -> tuple[PreparedTurn, Found | None]:
    """A stored answer to ``base`` offering ``tools`` with the MCP tools as some answer was
    sent with them, and the request it answers; else the request with the first such tools
    (the cell's own answer's: what offline mode compares with), or ``base``, and None."""
    first = None
    for offer in tools.stored(records):
        turn = with_tools(base, offer)
        found = lookup(turn)
        if found is not None:
            return turn, found
        first = first or turn
    return first or base, None
