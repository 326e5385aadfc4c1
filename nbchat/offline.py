"""Offline mode's one error: no stored answer for this cell, and what changed since there was.

A cell is only ever compared with the answer it stored itself (its turn in this session, else
the record saved in its place in the notebook), never with another cell's.
"""

from __future__ import annotations

from nbchat.notebook import NotebookRecords
from nbchat.record import TURN, Record
from nbchat.text import clip, one_line
from nbchat.threads import ThreadStore
from nbchat.turns import PreparedTurn

__all__ = ["explain_miss"]


def explain_miss(turn: PreparedTurn, notebook: NotebookRecords | None, threads: ThreadStore) -> str:
    """Why offline mode cannot answer this cell, in one line that says what to do."""
    head = (
        "Offline (NBCHAT_OFFLINE): no stored answer for this cell in thread "
        f"{turn.request.thread!r}"
    )
    if not turn.settings.cache:
        return f"{head}: --no-cache answers are never stored, so they cannot run offline."
    previous = _own_stored_answer(turn, notebook, threads)
    if previous is None or previous.request is None:
        if notebook is None:
            return (
                f"{head}, and the notebook file is unknown, so its stored answers cannot be "
                "read: set $NBCHAT_NOTEBOOK (or %chat notebook PATH), or run it with "
                "`nbchat run NOTEBOOK`."
            )
        return f"{head}; nothing is stored for it. Run it online once to store an answer."
    what = ", ".join(_changes(previous, turn)) or "the request"
    return f"{head}: {what} changed since the answer was stored."


def _changes(previous: Record, turn: PreparedTurn) -> list[str]:
    before = previous.request
    assert before is not None
    changes = []
    if (previous.messages[0].get("content") if previous.messages else None) != turn.user["content"]:
        changes.append("the prompt")
    if previous.history != turn.history:
        changes.append("the context above it")
    if (before.system or None) != turn.system:
        changes.append("the system prompt")
    if before.model != turn.settings.model:
        was = clip(one_line(before.model), 60)  # from the file: no control codes, no essay
        changes.append(f"the model ({was} -> {turn.settings.model})")
    if before.params != turn.params:
        changes.append("the parameters")
    stored = before.endpoint
    if (stored.url, stored.query_digest) != (turn.endpoint.url, turn.endpoint.query_digest):
        changes.append("the endpoint")
    return changes


def _own_stored_answer(
    turn: PreparedTurn, notebook: NotebookRecords | None, threads: ThreadStore
) -> Record | None:
    session_turn = threads.turn(turn.cell_key)
    if session_turn is not None and session_turn.record is not None:
        return session_turn.record
    if notebook is None or turn.file_index is None:
        return None
    for cell, record in notebook.records():
        if cell.index == turn.file_index and record.kind == TURN:
            return record
    return None
