"""Threads: the notebook is the conversation.

Each ``%%chat`` cell holds one turn, keyed by its cell id. The context of a cell is its thread's
system prompt and the turns of the cells *above* it, in notebook order, back to the nearest cell
that started the thread afresh (``--new``). Re-running a cell replaces its turn.

Order comes from the saved notebook when it is known. A cell is found there by its id; in a file
whose cells have no (unique) ids (nbformat < 4.5, or a copied cell that repeats one) by the id an
earlier session stored in its record, or by its source. Cells the file does not have yet (new,
unsaved) follow the saved ones in the order they were first run; a cell that cannot be found in a
file with anonymous cells never takes those cells' turns as context, since any could be itself.

After a kernel restart the turns of cells not yet re-run are rebuilt from the records stored in
the saved notebook: a cell's context is the answered turns the notebook shows above it, as this
session ran them, else as the file holds them, however the notebook got there. Forgetting a
thread (`ThreadStore.reset`) forgets this session's turns, so the file's stand in again. When the
kernel is told no cell id (terminal IPython, nbclient) every run is a new turn in execution order.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from functools import cached_property
from typing import Any

from nbchat.store.keys import HISTORY_START, CellKey, CellKind, extend_history, turn_digest
from nbchat.store.notebook import NotebookRecords
from nbchat.store.record import STANDALONE, SYSTEM, TURN, Record, message_text
from nbchat.wire.messages import carries_passback, wire_turn

__all__ = ["STANDALONE", "ThreadStore", "Turn", "Window"]

Message = dict[str, Any]
_END = (2, 0, 0)  # a position below every cell: "the next cell at the bottom"


@dataclass(frozen=True, eq=False)
class Turn:
    """One cell's part of a thread: the messages it added, its user message first (a system
    cell: its system message). ``record`` is None for a turn that failed or was cut short,
    which is no part of the context below it."""

    cell_key: CellKey
    thread: str
    kind: str  # TURN or SYSTEM
    messages: tuple[Message, ...]
    new_thread: bool = False
    record: Record | None = None

    @classmethod
    def from_record(cls, cell_key: CellKey, record: Record) -> Turn:
        """The turn a stored record stands for."""
        return cls(
            cell_key, record.thread, record.kind, tuple(record.messages), record.new_thread, record
        )

    @property
    def prompt(self) -> str:
        """The user's text (a system turn: the system prompt)."""
        return message_text(self.messages[0]) if self.messages else ""

    @property
    def answered(self) -> bool:
        """Whether the turn is part of the conversation: a complete answer."""
        return self.kind == TURN and self.record is not None

    @cached_property
    def has_reasoning(self) -> bool:
        """Whether a message of the turn carries a reasoning model's thinking or a provider's
        own fields (then the turn goes back in two forms, `nbchat.wire.messages.wire`)."""
        return any(carries_passback(message) for message in self.messages)

    def wire_messages(self, reasoning: bool = False) -> list[Message]:
        """The messages as later requests send them back (with their thinking, or not)."""
        reasoning = reasoning and self.has_reasoning
        cached = self.__dict__.setdefault("_wire", {})
        if reasoning not in cached:
            cached[reasoning] = wire_turn(self.messages, reasoning=reasoning)
        return cached[reasoning]

    def digest(self, reasoning: bool = False) -> str:
        """The digest of the messages as sent (computed once per turn and form)."""
        reasoning = reasoning and self.has_reasoning
        cached = self.__dict__.setdefault("_digest", {})
        if reasoning not in cached:
            cached[reasoning] = turn_digest(self.wire_messages(reasoning))
        return cached[reasoning]

    def history_after(self, before: str, reasoning: bool = False) -> str:
        """The history once this turn follows ``before``. A cell's key folds every turn above
        it, so each turn remembers its last fold: a replayed thread costs a dictionary lookup
        per turn above a cell, not a hash."""
        reasoning = reasoning and self.has_reasoning
        folds = self.__dict__.setdefault("_fold", {})
        last = folds.get(reasoning)
        if last is not None and last[0] == before:
            return last[1]
        after = extend_history(before, self.digest(reasoning))
        folds[reasoning] = (before, after)
        return after


@dataclass
class _SessionCell:
    """A cell run in this session: when it first ran, and its source (to find it in the file)."""

    first_run: int
    source: str | None
    in_file: bool = False  # found in the saved notebook once: gone from it later means deleted


class ThreadStore:
    """All turns of this kernel session, and how cells are ordered."""

    def __init__(self) -> None:
        self._turns: dict[CellKey, Turn] = {}
        self._cells: dict[CellKey, _SessionCell] = {}
        self._runs = itertools.count()
        self._asks: dict[str, tuple[str, int]] = {}  # cell id -> (its execution, asks made)
        # The saved file's turns, made once per reading of the file: a turn keeps its digests.
        self._file_turns_of: tuple[NotebookRecords | None, dict[CellKey, Turn]] = (None, {})

    # -- changes ---------------------------------------------------------------------------

    def ask_key(self, cell_id: str, execution: str) -> CellKey:
        """A key for the next `nbchat.ask` of a cell's execution: its asks are turns of that
        cell, in call order; running the cell again replaces them."""
        self.see(CellKey.cell(cell_id))  # the asking cell has its place among the cells run
        last, count = self._asks.get(cell_id, ("", 0))
        count = count if last == execution else 0
        if count == 0:
            for key in [k for k in self._turns if k.kind is CellKind.ASK and k.cell_id == cell_id]:
                del self._turns[key]
        self._asks[cell_id] = (execution, count + 1)
        return CellKey.ask(cell_id, count)

    def key_of(self, cell_id: str | None) -> CellKey:
        """The running cell's key: by its id, else a new run's."""
        return CellKey.cell(cell_id) if cell_id else self.anonymous_key()

    def anonymous_key(self) -> CellKey:
        """A key for a run with no cell id: each such run is a new turn."""
        return CellKey.run(next(self._runs))

    def see(self, cell_key: CellKey, source: str | None = None) -> None:
        """Note a cell as run (its first run fixes its place among unsaved cells)."""
        cell = self._cells.get(cell_key)
        if cell is None:
            self._cells[cell_key] = _SessionCell(next(self._runs), source)
        elif source is not None:
            cell.source = source

    def put(self, turn: Turn) -> None:
        """Add a turn, or replace the one its cell had."""
        self._turns[turn.cell_key] = turn
        self.see(turn.cell_key)

    def reset(self, thread: str | None = None) -> int:
        """Forget this session's turns of one thread (or of all of them): each of those cells
        counts as the saved notebook holds it until it runs again. How many turns went."""
        keys = [key for key, turn in self._turns.items() if thread in (None, turn.thread)]
        for key in keys:
            del self._turns[key]
        return len(keys)

    # -- reading ---------------------------------------------------------------------------

    def turn(self, cell_key: CellKey) -> Turn | None:
        """This session's turn of a cell, if it ran."""
        return self._turns.get(cell_key)

    def turns(
        self, notebook: NotebookRecords | None = None, *, use_notebook: bool = True
    ) -> list[Turn]:
        """Every known turn in notebook order: this session's, then the file's for other cells."""
        file = notebook if use_notebook else None
        return [turn for _, turn in self._placed(file, self.locations(file), None)]

    def locations(self, notebook: NotebookRecords | None) -> dict[CellKey, int]:
        """The file index of every session cell that can be found in the saved notebook (a cell
        by its id, a run without one by its source; an ask sits in its cell)."""
        if notebook is None:
            return {}
        found: dict[CellKey, int] = {}
        taken: set[int] = set()
        for key, cell in sorted(self._cells.items(), key=lambda item: item[1].first_run):
            if key.kind not in (CellKind.CELL, CellKind.RUN):
                continue
            index = notebook.locate(key.cell_id, cell.source, taken)
            if index is not None:
                found[key] = index
                taken.add(index)
                cell.in_file = True
            elif cell.in_file:  # it was saved, and is no longer: the cell was deleted
                self._turns.pop(key, None)
                cell.in_file = False
        return found

    def _placed(
        self,
        notebook: NotebookRecords | None,
        located: dict[CellKey, int],
        unplaced: CellKey | None,
    ) -> list[tuple[tuple[int, int, int], Turn]]:
        """Every turn with its sort key. With ``unplaced`` (a running cell that cannot be found in
        the file), the stored turns of anonymous cells are left out: any of them could be that
        very cell, or below it."""
        placed = [
            (self._position(key, notebook, located), turn) for key, turn in self._turns.items()
        ]
        if notebook is not None:
            placed += self._file_turns(notebook, located, unplaced)
        placed.sort(key=lambda pair: pair[0])
        return placed

    def _file_turns(
        self, notebook: NotebookRecords, located: dict[CellKey, int], unplaced: CellKey | None
    ) -> list[tuple[tuple[int, int, int], Turn]]:
        """The stored turns of the cells that have none in this session, each record of a cell
        in order (a cell that ran several `nbchat.ask` shows one answer each)."""
        # A session cell's turns replace those stored in its place (a cell merely seen, e.g.
        # refused offline, leaves them in force); so do the asks a cell made in this session.
        occupied = {index for key, index in located.items() if key in self._turns}
        occupied |= {
            located[host]
            for key in self._turns
            if (host := key.host) is not None and host in located
        }
        found = []
        for cell in notebook.cells:
            if cell.index in occupied or cell.key in self._turns:
                continue
            if unplaced and cell.key.kind is CellKind.INDEX:
                continue
            for number, record in enumerate(cell.records):
                if record.thread == STANDALONE:
                    continue
                found.append(
                    ((0, cell.index, number), self._file_turn(notebook, cell.key, number, record))
                )
        return found

    def _file_turn(
        self, notebook: NotebookRecords, cell_key: CellKey, number: int, record: Record
    ) -> Turn:
        """The turn a record of the file stands for, the same object while the file is unchanged
        (its digests are computed once, not at every cell run)."""
        made_for, turns = self._file_turns_of
        if made_for is not notebook:
            turns = {}
            self._file_turns_of = (notebook, turns)
        key = cell_key.record(number)
        turn = turns.get(key)
        if turn is None or turn.record is not record:
            turn = turns[key] = Turn.from_record(key, record)
        return turn

    def _position(
        self, cell_key: CellKey, notebook: NotebookRecords | None, located: dict[CellKey, int]
    ) -> tuple[int, int, int]:
        """Sort key of a cell: saved cells by file position, then unsaved ones by first run.
        An `nbchat.ask` turn (`ask_key`) sits in the cell that called it, after its turns."""
        if cell_key.host is not None:
            place = self._position(cell_key.host, notebook, located)
            return (place[0], place[1], 1 + cell_key.number)
        index = located.get(cell_key)
        if index is None and notebook is not None:
            if cell_key.kind is CellKind.CELL and cell_key.cell_id is not None:
                index = notebook.ids.get(cell_key.cell_id)
            elif cell_key.kind is CellKind.INDEX:
                index = cell_key.number
        if index is not None:
            return (0, index, 0)
        cell = self._cells.get(cell_key)
        return (1, cell.first_run, 0) if cell is not None else _END

    def window(
        self,
        thread: str,
        cell_key: CellKey | None,
        notebook: NotebookRecords | None,
        *,
        source: str | None = None,
        use_notebook: bool = True,
    ) -> Window:
        """The turns of ``thread`` above ``cell_key`` (None: below the last cell) since the last
        fresh start, and where the running cell was found."""
        file = notebook if use_notebook else None
        if cell_key is not None:
            self.see(cell_key, source)
        located = self.locations(file)
        unplaced = None
        if cell_key is not None and file is not None and cell_key not in located:
            unplaced = cell_key if file.has_anonymous_records else None
        here = self._position(cell_key, file, located) if cell_key else _END
        # An ask's cell holds the answers its asks displayed, saved there: their own earlier
        # answers (this run of the cell makes them again), never their context.
        asking = cell_key is not None and cell_key.kind is CellKind.ASK and here[0] == 0
        above = [
            turn
            for position, turn in self._placed(file, located, unplaced)
            if position < here
            and turn.thread == thread
            and turn.cell_key != cell_key
            and not (asking and position[:2] == here[:2] and turn.cell_key.kind is not CellKind.ASK)
        ]
        for start in range(len(above) - 1, -1, -1):
            if above[start].new_thread:
                above = above[start:]
                break
        return Window(above, located.get(cell_key) if cell_key else None, unplaced is not None)

    def context(
        self,
        thread: str,
        cell_key: CellKey | None,
        notebook: NotebookRecords | None,
        *,
        source: str | None = None,
        default_system: str | None = None,
        use_notebook: bool = True,
    ) -> list[Message]:
        """The messages that precede this cell's user message."""
        window = self.window(thread, cell_key, notebook, source=source, use_notebook=use_notebook)
        return window.messages(default_system)


@dataclass(frozen=True)
class Window:
    """The turns a cell's context is built from, and what is known of the cell's place."""

    turns: list[Turn]
    index: int | None  # the running cell's index in the saved notebook, when it was found
    unplaced: bool  # the file has cells without ids and this one could not be found among them

    @cached_property
    def answered(self) -> list[Turn]:
        """The turns of the conversation above the cell."""
        return [turn for turn in self.turns if turn.answered]

    def system(self, default: str | None = None) -> str | None:
        """The system prompt: the last ``--system`` cell above, else ``default``."""
        for turn in reversed(self.turns):
            if turn.kind == SYSTEM:
                return turn.prompt
        return default

    @cached_property
    def has_reasoning(self) -> bool:
        """Whether a turn above carries thinking (then the context has two forms)."""
        return any(turn.has_reasoning for turn in self.answered)

    def messages(self, default_system: str | None = None, reasoning: bool = False) -> list[Message]:
        """The context as sent: the system prompt, then every answered turn's messages (with
        their thinking, when ``reasoning``)."""
        system = self.system(default_system)
        head = [{"role": "system", "content": system}] if system else []
        return head + [m for turn in self.answered for m in turn.wire_messages(reasoning)]

    def chain(self, reasoning: bool = False) -> tuple[str, str | None, list[str] | None]:
        """The history digest of the turns above, the parent's key, and the keys of all those
        turns when they are not the parent's own context plus the parent (a cell above was run
        again after the parent answered): what a record refers to instead of copying them."""
        answered = self.answered
        history = before_parent = HISTORY_START
        for turn in answered:
            before_parent = history
            history = turn.history_after(history, reasoning)
        if not answered:
            return history, None, None
        parent = answered[-1].record
        assert parent is not None
        if parent.history in (before_parent, self._history_before_parent(not reasoning)):
            return history, parent.key, None
        keys = [turn.record.key for turn in answered if turn.record and turn.record.key]
        return history, parent.key, keys

    def _history_before_parent(self, reasoning: bool) -> str | None:
        """The history of the turns above the parent in the other form (the parent may have
        been sent with or without the thinking above it), when the two forms differ."""
        if not self.has_reasoning:
            return None
        history = HISTORY_START
        for turn in self.answered[:-1]:
            history = turn.history_after(history, reasoning)
        return history
