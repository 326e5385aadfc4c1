"""The full request of a stored turn, rebuilt from the records it refers to.

A schema 2 record keeps only what its turn added and the key of the turn above it (`parent`),
or, when the turns above were not one chain, the keys of them all (`context`). Following those
through the notebook's records gives back every message the request carried; the history digest
in the record says whether the rebuild is exact. A record whose turns above are gone (cells
deleted) is still a valid stored answer: the rebuild says what is missing.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from nbchat.store.keys import history_of, turn_digest
from nbchat.store.record import Record
from nbchat.wire.messages import carries_passback, wire, wire_turn

__all__ = ["Rebuilt", "rebuild"]

Find = Callable[[str], Record | None]


@dataclass(frozen=True)
class Rebuilt:
    """The messages a turn's request carried, as far as they could be found."""

    messages: list[dict[str, Any]]
    missing: str | None  # why the context is incomplete, or None when it is exact

    def to_json(self) -> dict[str, Any]:
        """For a raw view: the messages, and a note when some could not be found."""
        shown: dict[str, Any] = {"messages": self.messages}
        if self.missing:
            shown["incomplete"] = self.missing
        return shown


def rebuild(record: Record, find: Find) -> Rebuilt:
    """Every message ``record``'s last request carried (system prompt, turns above, user
    message, and the tool calls and results of the turn's earlier rounds)."""
    system = record.request.system if record.request else None
    head = [{"role": "system", "content": system}] if system else []
    user = [wire(record.messages[0])] if record.messages else []
    if record.schema == 1:  # it stored them all
        return Rebuilt([*head, *(record.earlier or []), *user], None)
    stored, missing = _turns_above(record, find)
    # The turns above went out with their thinking, or without (`nbchat.engine.reasoning`): the
    # history digest in the record says which (the two differ only when some turn thought, or
    # carries a provider's own fields).
    thinking = any(carries_passback(message) for turn in stored for message in turn)
    sendings = (False, True) if thinking else (False,)
    forms = [[wire_turn(turn, reasoning=sent) for turn in stored] for sent in sendings]
    sent = False
    if missing is None:
        exact = [
            n
            for n, form in enumerate(forms)
            if history_of(map(turn_digest, form)) == record.history
        ]
        if exact:
            sent = exact[0] == 1
        else:
            missing = "the turns above were changed after this answer was stored"
    above = [message for turn in forms[sent] for message in turn]
    rounds = wire_turn(record.messages[1:-1], reasoning=sent)
    return Rebuilt([*head, *above, *user, *rounds], missing)


def _turns_above(record: Record, find: Find) -> tuple[list[list[dict[str, Any]]], str | None]:
    """The messages of each turn above ``record`` as stored, oldest first, and what is
    missing."""
    turns: list[list[dict[str, Any]]] = []
    keys = list(record.context) if record.context is not None else None
    key = record.parent
    seen: set[str] = set()
    while keys is not None or key is not None:
        if keys is not None:  # a full list of the turns above: no need to look further up
            for listed in reversed(keys):
                found = find(listed)
                if found is None:
                    return turns, _gone(listed)
                turns.insert(0, list(found.messages))
            return turns, None
        assert key is not None
        if key in seen:
            return turns, "the records refer to each other in a loop"
        seen.add(key)
        found = find(key)
        if found is None:
            return turns, _gone(key)
        turns.insert(0, list(found.messages))
        if found.schema == 1:  # it stored everything above it
            earlier = found.earlier or []
            turns[:0] = [earlier[i : i + 2] for i in range(0, len(earlier), 2)]
            return turns, None
        keys, key = found.context, found.parent
    return turns, None


def _gone(key: str) -> str:
    return f"the turn {key[:15]}… above is no longer in this notebook (its cell was deleted?)"
