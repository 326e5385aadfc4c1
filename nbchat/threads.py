"""Threads: the notebook is the conversation.

Each ``%%chat`` cell holds one turn, keyed by its cell id. The context of a cell is its thread's
system prompt and the turns of the cells *above* it, in notebook order, back to the nearest cell
that started the thread afresh (``--new``). Re-running a cell replaces its turn.

Order comes from the saved notebook when it is known; cells the file does not have yet (new,
unsaved) follow the saved ones in the order they were first run. After a kernel restart the turns
of cells not yet re-run are rebuilt from the records stored in the saved notebook. When the kernel
is told no cell id (terminal IPython, nbclient) every run is a new turn in execution order.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

from nbchat.notebook import NotebookRecords
from nbchat.record import Record

__all__ = ["STANDALONE", "ThreadStore", "Turn"]

Message = dict[str, str]
STANDALONE = ""  # the "thread" of a question asked with no context (`ask()` without a thread)
_END = (2, 0, 0)  # a position below every cell: "the next cell at the bottom"


@dataclass(frozen=True)
class Turn:
    """One cell's part of a thread. ``answer`` is None for a turn that failed or was cut short."""

    cell_key: str
    thread: str
    kind: str  # "answer" or "system"
    prompt: str
    answer: str | None
    new_thread: bool = False
    record: Record | None = None

    @classmethod
    def from_record(cls, cell_key: str, record: Record) -> Turn:
        """The turn a stored record stands for."""
        answer = record.answer if record.kind == "answer" else None
        return cls(
            cell_key, record.thread, record.kind, record.prompt, answer, record.new_thread, record
        )


class ThreadStore:
    """All turns of this kernel session, and how cells are ordered."""

    def __init__(self) -> None:
        self._turns: dict[str, Turn] = {}
        self._first_run: dict[str, int] = {}
        self._runs = itertools.count()
        self._forgotten: set[str] = set()
        self._forget_all = False

    # -- changes ---------------------------------------------------------------------------

    def anonymous_key(self) -> str:
        """A key for a run with no cell id: each such run is a new turn."""
        return f"run-{next(self._runs)}"

    def put(self, turn: Turn) -> None:
        """Add a turn, or replace the one its cell had."""
        self._turns[turn.cell_key] = turn
        self._first_run.setdefault(turn.cell_key, next(self._runs))

    def reset(self, thread: str | None = None) -> int:
        """Forget one thread (or all of them), stored answers in the notebook included."""
        if thread is None:
            count = len(self._turns)
            self._turns.clear()
            self._forget_all = True
            return count
        keys = [key for key, turn in self._turns.items() if turn.thread == thread]
        for key in keys:
            del self._turns[key]
        self._forgotten.add(thread)
        return len(keys)

    # -- reading ---------------------------------------------------------------------------

    def turns(
        self, notebook: NotebookRecords | None = None, *, use_notebook: bool = True
    ) -> list[Turn]:
        """Every known turn in notebook order: this session's, then the file's for other cells."""
        return [turn for _, turn in self._placed(notebook, use_notebook)]

    def _placed(
        self, notebook: NotebookRecords | None, use_notebook: bool
    ) -> list[tuple[tuple[int, int, int], Turn]]:
        merged = dict(self._turns)
        if notebook is not None and use_notebook and not self._forget_all:
            for cell, record in notebook.records():
                key = cell.cell_id or f"index-{cell.index}"
                forgotten = record.thread in self._forgotten or record.thread == STANDALONE
                if key not in merged and not forgotten:
                    merged[key] = Turn.from_record(key, record)
        placed = [(self.position(key, notebook), turn) for key, turn in merged.items()]
        placed.sort(key=lambda pair: pair[0])
        return placed

    def position(self, cell_key: str, notebook: NotebookRecords | None) -> tuple[int, int, int]:
        """Sort key of a cell: saved cells by file position, then unsaved ones by first run."""
        if notebook is not None:
            index = notebook.position.get(cell_key)
            if index is None and cell_key.startswith("index-"):
                index = int(cell_key.removeprefix("index-"))
            if index is not None:
                return (0, index, 0)
        first = self._first_run.get(cell_key)
        return (1, first, 0) if first is not None else _END

    def window(
        self,
        thread: str,
        cell_key: str | None,
        notebook: NotebookRecords | None,
        *,
        use_notebook: bool = True,
    ) -> list[Turn]:
        """The turns of ``thread`` above ``cell_key`` (None: below the last cell) since the last
        fresh start."""
        here = self.position(cell_key, notebook) if cell_key else _END
        if cell_key and here == _END:
            here = (1, next(self._runs), 0)  # a cell never seen before: it is the newest one
            self._first_run[cell_key] = here[1]
        above = [
            turn
            for position, turn in self._placed(notebook, use_notebook)
            if position < here and turn.thread == thread and turn.cell_key != cell_key
        ]
        for start in range(len(above) - 1, -1, -1):
            if above[start].new_thread:
                return above[start:]
        return above

    def context(
        self,
        thread: str,
        cell_key: str | None,
        notebook: NotebookRecords | None,
        *,
        default_system: str | None = None,
        use_notebook: bool = True,
    ) -> list[Message]:
        """The messages that precede this cell's user message."""
        window = self.window(thread, cell_key, notebook, use_notebook=use_notebook)
        system = default_system
        messages: list[Message] = []
        for turn in window:
            if turn.kind == "system":
                system = turn.prompt
            elif turn.answer is not None:
                messages.append({"role": "user", "content": turn.prompt})
                messages.append({"role": "assistant", "content": turn.answer})
        if system:
            messages.insert(0, {"role": "system", "content": system})
        return messages
