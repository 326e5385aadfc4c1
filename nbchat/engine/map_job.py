"""What a ``--map`` run is given and what it makes: the job, each item, the outcome."""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from nbchat.engine.map_report import MapSummary, failure_line
from nbchat.engine.settings import DEFAULT_CONCURRENCY, DEFAULT_THREAD, Settings
from nbchat.engine.turns import PreparedTurn
from nbchat.errors import BatchError, BatchInterrupted, Remedy
from nbchat.prompt.key_guard import KeyGuard
from nbchat.schema.structured import JsonOutput, OutputSchema
from nbchat.store.record import Record

__all__ = ["MapItem", "MapJob", "MapOutcome", "bound_values"]


@dataclass(frozen=True, kw_only=True)
class MapJob:
    """What one ``--map`` run needs besides the session."""

    name: str  # what the items are called (the variable's name)
    items: Any  # the iterable as given
    cell: str  # the template
    namespace: dict[str, Any]
    settings: Settings
    output: OutputSchema | JsonOutput | None = None
    thread: str = DEFAULT_THREAD
    cell_id: str | None = None
    source: str | None = None  # the cell's code, to find it in a file without cell ids
    concurrency: int = DEFAULT_CONCURRENCY
    rpm: float | None = None
    refresh: bool = False  # ask again even where an answer is stored
    title: str = ""  # the summary's heading ("--map reviews"); default: "--map NAME"
    note: Callable[[str], None] = field(default=lambda message: None)
    guard: KeyGuard | None = None  # refuses values that hold a key (None: --allow-secrets)


@dataclass(frozen=True)
class MapOutcome:
    """What a batch produced: the values to bind, its record, summary and failures."""

    values: Any  # in input order; None where an item failed (a Series for Series/DataFrame input)
    record: dict[str, Any] | None  # the batch record to store, if any item was answered
    summary: MapSummary
    failures: dict[int, str]
    total: int
    interrupted: BatchInterrupted | None = None
    remedies: tuple[Remedy, ...] = ()  # what the user can do about the failed items
    over_budget: frozenset[int] = frozenset()  # items not sent: the budget was spent

    def raise_for_failures(self) -> None:
        """`BatchInterrupted` after Ctrl-C, `BatchError` (with ``values``) when items failed."""
        if self.interrupted is not None:
            raise self.interrupted
        if self.failures:
            line = failure_line(self.failures, self.total, self.over_budget)
            error = BatchError(line, values=self.values)
            error.remedies = self.remedies
            raise error


@dataclass(slots=True)
class MapItem:
    """One item of a run: its key, its fills, and the answer stored for it, if any. Its turn
    (the full request) is made when it is first needed: an item that replays needs none."""

    key: str
    fills: list[str] | None  # None when an item is an image
    make: Callable[[], PreparedTurn] = field(repr=False)
    stored: Record | None = None  # a stored answer found for it (its request: `turn`)
    value: Any = None  # the stored answer's value, when there is one
    # the answer taken (`MapRun._take`), and what it became: the cell's record, or a problem
    taken: tuple[Record, tuple[Record, str | None]] | None = None
    moved: bool = False  # its stored answer was asked of another endpoint (offline)
    _turn: PreparedTurn | None = field(default=None, repr=False)

    @property
    def turn(self) -> PreparedTurn:
        """The item's full request."""
        if self._turn is None:
            self._turn = self.make()
        return self._turn

    def move(self, turn: PreparedTurn) -> None:
        """The item as asked of another endpoint, where its stored answer is (offline)."""
        self._turn, self.key, self.moved = turn, turn.key, True


def bound_values(values: list[Any], index: Any) -> Any:
    """The values to bind: a pandas Series on the input's ``index`` when the items were a
    Series or DataFrame (pandas is loaded: it made it), else the list."""
    if index is None:
        return values
    return sys.modules["pandas"].Series(values, index=index, dtype=object)
