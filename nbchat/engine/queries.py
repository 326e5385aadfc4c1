"""What the session can tell without sending anything: the context a cell would send, the
threads, and the request an answer was given for. The ``%chat`` commands and ``--raw`` read it.
"""

from __future__ import annotations

from typing import Any

from nbchat.engine.session import ChatSession
from nbchat.engine.settings import Settings
from nbchat.engine.threads import Window
from nbchat.engine.turns import PreparedTurn
from nbchat.store.chain import rebuild
from nbchat.store.keys import CellKey
from nbchat.store.notebook import NotebookRecords
from nbchat.store.record import SYSTEM, Record
from nbchat.wire.redaction import request_url

__all__ = ["context_at", "sent", "thread_summary"]


def context_at(
    session: ChatSession,
    thread: str,
    notebook: NotebookRecords | None,
    settings: Settings,
    *,
    cell_id: str | None,
    source: str | None = None,
    use_notebook: bool,
) -> tuple[Window, list[dict[str, Any]]]:
    """What a ``%%chat`` cell of ``thread`` in cell ``cell_id``'s place (None: below the last
    cell run) would send before its own message, and the turns they come from."""
    key = CellKey.cell(cell_id) if cell_id else None
    window = session.threads.window(thread, key, notebook, source=source, use_notebook=use_notebook)
    reasoning = session.reasoning.decide(settings)
    return window, window.messages(settings.system_prompt, reasoning)


def thread_summary(
    session: ChatSession, notebook: NotebookRecords | None, *, use_notebook: bool
) -> dict[str, tuple[int, bool]]:
    """Each thread's answered turns and whether it has a system prompt, by name."""
    summary: dict[str, tuple[int, bool]] = {}
    for turn in session.threads.turns(notebook, use_notebook=use_notebook):
        answered, system = summary.get(turn.thread, (0, False))
        summary[turn.thread] = (answered + turn.answered, system or turn.kind == SYSTEM)
    return summary


def sent(
    session: ChatSession,
    record: Record,
    notebook: NotebookRecords | None,
    turn: PreparedTurn | None = None,
) -> dict[str, Any]:
    """The last request of ``record``'s turn, as it was sent (never the key or a header): from
    the prepared turn when there is one, else rebuilt from the records it refers to; a turn that
    ran tools sent its earlier rounds with it."""
    if record.request is None:
        return {}
    url = request_url(record.request.base_url, "/chat/completions")
    if turn is not None:
        body = turn.body(record.messages[1:-1])
        if not turn.settings.key_problem:  # every field the client adds, as it adds them
            body = session.client(turn.settings).wire_body(body, stream=turn.settings.stream)
        return {"url": url, "body": body}
    rebuilt = rebuild(record, lambda key: session.cache.find(key, notebook))
    body = {"model": record.request.model, "messages": rebuilt.messages}
    shown: dict[str, Any] = {"url": url, "body": {**body, **record.request.params}}
    if rebuilt.missing:
        shown["incomplete"] = rebuilt.missing
    return shown
