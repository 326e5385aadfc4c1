"""Finding the stored answer of a turn that offers tools of MCP servers, without asking them.

The key covers the specs sent, and a server's specs are known only by asking it: so before any
server is contacted, the turn is looked up with the MCP tools each stored answer was sent with
(those the cell's selectors offered: `nbchat.engine.mcp_tools.stored_tools`), the cell's own
answer first. A hit is replayed as stored; a miss leaves the tools to be listed, and the turn
asked, only when it is to be sent.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from typing import Protocol

from nbchat.engine.cache import AnswerCache, Found
from nbchat.engine.offline import own_stored_answer
from nbchat.engine.settings import Settings
from nbchat.engine.threads import ThreadStore
from nbchat.engine.turns import PreparedTurn, TurnRequest, with_tools
from nbchat.store.notebook import NotebookRecords
from nbchat.store.record import Record

__all__ = ["Lookup", "find_turn", "stored_records"]


class Lookup(Protocol):
    """What finding a turn's stored answer takes of the session (`ChatSession`)."""

    threads: ThreadStore
    cache: AnswerCache

    def prepare(
        self, request: TurnRequest, settings: Settings, notebook: NotebookRecords | None
    ) -> PreparedTurn:
        """The full request of a turn, and its key."""
        ...

    def lookup(self, turn: PreparedTurn, notebook: NotebookRecords | None) -> Found | None:
        """A stored answer for exactly this request."""
        ...


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


def find_turn(
    session: Lookup, request: TurnRequest, settings: Settings, notebook: NotebookRecords | None
) -> tuple[PreparedTurn, Found | None]:
    """The turn's request and a stored answer to it. Tools of MCP servers not listed yet are
    offered as some stored answer was sent with them; when none is found, the request with the
    first such tools (the cell's own answer's: what offline mode compares with), or with the
    notebook functions alone, and None."""
    tools = request.tools
    if tools is None or not tools.unlisted:
        turn = session.prepare(request, settings, notebook)
        return turn, session.lookup(turn, notebook)
    base = session.prepare(replace(request, tools=tools.functions_only()), settings, notebook)
    first = None
    for offer in tools.stored(stored_records(base, notebook, session.threads, session.cache)):
        turn = with_tools(base, offer)
        found = session.lookup(turn, notebook)
        if found is not None:
            return turn, found
        first = first or turn
    return first or base, None
