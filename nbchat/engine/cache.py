"""The answer cache: this session's answers by key, and the lookup every turn starts with.

An answer is found by its request's key: first the running cell's own stored answer (a cell
replays its own answer even when another cell asked the same), then this session's answers,
then the saved notebook's records (where nbchat 0.1's answers are found by the key 0.1 gave
them). ``--no-cache`` answers are kept apart: the turns below refer to them, but they are never
replayed.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass, field

from nbchat.engine.turns import PreparedTurn
from nbchat.store.notebook import NotebookRecords
from nbchat.store.record import TURN, Record

__all__ = ["AnswerCache", "Found", "Origin"]


class Origin(enum.Enum):
    """Where an answer came from."""

    SERVER = "server"  # asked now
    SESSION = "session"  # replayed from an answer given earlier in this kernel session
    NOTEBOOK = "notebook"  # replayed from the saved notebook


@dataclass(frozen=True)
class Found:
    """A stored answer for a request, and where it was found."""

    record: Record
    origin: Origin


@dataclass
class AnswerCache:
    """This session's answers, stored ones by key, every one in the order given."""

    answers: dict[str, Record] = field(default_factory=dict)
    unstored: dict[str, Record] = field(default_factory=dict)  # --no-cache: context only
    history: list[Record] = field(default_factory=list)

    def lookup(
        self,
        turn: PreparedTurn,
        notebook: NotebookRecords | None,
        own: Record | None,
        keys: Sequence[str] | None = None,
    ) -> Found | None:
        """A stored answer for exactly this request (``own``: the cell's own last answer;
        ``keys``: the request's, when ``turn`` is one made alike with another message)."""
        if not turn.settings.cache:
            return None
        if turn.request.refresh and not turn.settings.offline:  # offline cannot ask again
            return None
        keys = turn.keys if keys is None else keys
        if own is not None and own.key in keys and self.unstored.get(own.key) is not own:
            return Found(own, Origin.SESSION)
        for key in keys:
            if key in self.answers:
                return Found(self.answers[key], Origin.SESSION)
        for key in keys if notebook is not None else ():
            record = notebook.stored(key, turn.file_index)
            if record is not None:
                return Found(record, Origin.NOTEBOOK)
        return None

    def remember(self, record: Record, *, store: bool) -> None:
        """An answer given (or a system prompt set): found again by its key when ``store``."""
        if record.key:
            (self.answers if store else self.unstored)[record.key] = record
        self.history.append(record)

    def find(self, key: str, notebook: NotebookRecords | None) -> Record | None:
        """A record by its key: this session's answers, then the saved notebook's."""
        found = self.answers.get(key) or self.unstored.get(key)
        if found is None and notebook is not None:
            found = notebook.by_key.get(key)
        return found

    @property
    def given(self) -> list[Record]:
        """The answers of this session, oldest first (replayed ones included)."""
        return [record for record in self.history if record.kind == TURN]
