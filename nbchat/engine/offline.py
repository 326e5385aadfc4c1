"""Offline mode: a cell's own stored answer asked of another endpoint, and the one error (no
stored answer for this cell, and what changed since there was).

A cell is only ever compared with the answer it stored itself (its turn in this session, else
the record saved in its place in the notebook), never with another cell's. When that answer
differs from the request only in its endpoint (a notebook recorded with ``$OPENAI_BASE_URL``,
replayed in CI without it), offline mode replays it and says where it came from: nothing can
be asked anyway, and the cell's own answer to the same messages is what the notebook shows.
"""

from __future__ import annotations

from dataclasses import dataclass

from nbchat._text import clip, one_line
from nbchat.engine.threads import ThreadStore
from nbchat.engine.turns import PreparedTurn, at_endpoint
from nbchat.engine.values import other_form
from nbchat.store.keys import Endpoint
from nbchat.store.notebook import NotebookRecords
from nbchat.store.record import TURN, Record
from nbchat.wire.redaction import mask_url

__all__ = [
    "AskedElsewhere",
    "asked_elsewhere",
    "explain_miss",
    "other_endpoints",
    "own_stored_answer",
    "shown_endpoint",
]


@dataclass(frozen=True)
class AskedElsewhere:
    """A cell's own stored answer to its request as sent to another endpoint."""

    turn: PreparedTurn  # the request as it was sent there (the record's key is its key)
    record: Record
    in_session: bool  # the answer is this session's turn of the cell, not the file's
    note: str  # what the cell says of it


def asked_elsewhere(
    turn: PreparedTurn, notebook: NotebookRecords | None, threads: ThreadStore
) -> AskedElsewhere | None:
    """The cell's own stored answer when it differs from the request in its endpoint and in
    nothing else (its key is the request's key there); else None."""
    if not turn.settings.cache:
        return None
    session_turn = threads.turn(turn.cell_key)
    previous = own_stored_answer(turn, notebook, threads)
    if previous is None or previous.request is None or not _moved(previous, turn):
        return None
    moved = at_endpoint(turn, previous.request.endpoint)
    if previous.key not in moved.keys:
        return None
    as_stored = other_form(moved) if previous.key == moved.other_key else moved
    note = (
        f"nbchat: offline: replayed this cell's answer as stored from "
        f"{shown_endpoint(previous.request.endpoint)} (the endpoint now is {turn.endpoint.shown})."
    )
    in_session = session_turn is not None and session_turn.record is previous
    return AskedElsewhere(as_stored, previous, in_session, note)


def explain_miss(turn: PreparedTurn, notebook: NotebookRecords | None, threads: ThreadStore) -> str:
    """Why offline mode cannot answer this cell, in one line that says what to do."""
    head = (
        "Offline (NBCHAT_OFFLINE): no stored answer for this cell in thread "
        f"{turn.request.thread!r}"
    )
    if not turn.settings.cache:
        return f"{head}: --no-cache answers are never stored, so they cannot run offline."
    previous = own_stored_answer(turn, notebook, threads)
    if previous is None or previous.request is None:
        if notebook is None:
            return (
                f"{head}, and the notebook file is unknown, so its stored answers cannot be "
                "read: set $NBCHAT_NOTEBOOK (or %chat notebook PATH), or run it with "
                "`nbchat run NOTEBOOK`."
            )
        rejected = notebook.rejected.get(turn.file_index) if turn.file_index is not None else None
        if rejected is not None:
            reason = clip(one_line(rejected), 200)  # from the file: no control codes, no essay
            return f"{head}: the record stored in it was skipped ({reason}); see `nbchat verify`."
        return f"{head}; nothing is stored for it. Run it online once to store an answer."
    what = ", ".join(_changes(previous, turn)) or "the request"
    advice = ""
    if _moved(previous, turn):  # with something else, or it would have replayed
        advice = (
            " Run it online to ask again; to ask the endpoint it was stored from, set "
            "$OPENAI_BASE_URL (or the profile, or ChatMagics.base_url) as it was."
        )
    return f"{head}: {what} changed since the answer was stored.{advice}"


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
    if _moved(previous, turn):
        was = shown_endpoint(before.endpoint)
        changes.append(f"the endpoint ({was} -> {turn.endpoint.shown})")
    return changes


def _moved(previous: Record, turn: PreparedTurn) -> bool:
    stored = previous.request.endpoint if previous.request is not None else None
    here = turn.endpoint
    return stored is not None and (stored.url, stored.query_digest) != (here.url, here.query_digest)


def shown_endpoint(stored: Endpoint) -> str:
    """Where a stored answer was asked, as it may be shown (from the file: masked, one line)."""
    return clip(one_line(mask_url(stored.shown)), 100)


def other_endpoints(turn: PreparedTurn, notebook: NotebookRecords | None) -> list[Endpoint]:
    """The endpoints, other than the request's, that the answers stored in the cell's place in
    the file were asked of (where a ``--map`` cell's items may be found offline)."""
    found: list[Endpoint] = []
    here = (turn.endpoint.url, turn.endpoint.query_digest)
    for cell, record in notebook.records() if notebook is not None else ():
        stored = record.request.endpoint if record.request is not None else None
        if cell.index != turn.file_index or stored is None or stored in found:
            continue
        if (stored.url, stored.query_digest) != here:
            found.append(stored)
    return found


def own_stored_answer(
    turn: PreparedTurn, notebook: NotebookRecords | None, threads: ThreadStore
) -> Record | None:
    """The answer this cell stored: its turn in this session, else the record in its place in
    the saved notebook."""
    session_turn = threads.turn(turn.cell_key)
    if session_turn is not None and session_turn.record is not None:
        return session_turn.record
    if notebook is None or turn.file_index is None:
        return None
    for cell, record in notebook.records():
        if cell.index == turn.file_index and record.kind == TURN:
            return record
    return None
