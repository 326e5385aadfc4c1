"""The provider batches a session knows, and the item keys each holds.

A ``--map --batch`` cell submits only the items no batch holds: it looks them up here by key.
A batch is known from this session (submitted or re-attached here, its status as last seen) or
from the saved notebook (the pending state in a cell's output, `store.batch_state`), which is
how a re-run in another kernel finds it. A batch whose answers were collected is ended: the
saved file may still show it pending (the frontend has not saved since), but it holds nothing
any more, so its failed items are submitted again.

Thread-safe: the kernel's background poller updates it while cells run.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable
from dataclasses import dataclass

from nbchat.store.batch_state import PendingBatch
from nbchat.store.keys import Endpoint
from nbchat.store.notebook import NotebookRecords
from nbchat.wire.batch_lines import TERMINAL

__all__ = ["BatchBook", "KnownBatch"]


@dataclass(frozen=True)
class KnownBatch:
    """A batch, where it was submitted, and for which cell."""

    batch: PendingBatch
    endpoint: Endpoint
    cell_id: str | None
    ended: bool = False  # its answers were collected

    @property
    def running(self) -> bool:
        """Whether it may still answer: not collected, and not over at the provider as last
        seen."""
        return not self.ended and self.batch.status not in TERMINAL


class BatchBook:
    """This session's batches by id, and what the saved notebook says of the others."""

    def __init__(self) -> None:
        self._known: dict[str, KnownBatch] = {}
        self._paid: set[tuple[str, str]] = set()  # (batch id, key): answers counted as spent
        self._lock = threading.Lock()

    def add(self, batch: PendingBatch, endpoint: Endpoint, cell_id: str | None) -> None:
        """A batch submitted, or found again, in this session."""
        with self._lock:
            self._known[batch.id] = KnownBatch(batch, endpoint, cell_id)

    def seen(self, batch: PendingBatch) -> None:
        """A batch's status as the provider reported it now."""
        with self._lock:
            known = self._known.get(batch.id)
            if known is not None:
                self._known[batch.id] = KnownBatch(batch, known.endpoint, known.cell_id)

    def end(self, batch_id: str) -> None:
        """The batch's answers were collected: it holds no item any more."""
        with self._lock:
            known = self._known.get(batch_id)
            if known is not None:
                self._known[batch_id] = KnownBatch(known.batch, known.endpoint, known.cell_id, True)

    def first_payment(self, batch_id: str, key: str) -> bool:
        """Whether the batch's answer to ``key`` is counted as spent now, for the first time
        (two runs may follow, and collect, the same batch)."""
        with self._lock:
            if (batch_id, key) in self._paid:
                return False
            self._paid.add((batch_id, key))
            return True

    def in_flight(self) -> bool:
        """Whether some batch known here may still answer."""
        with self._lock:
            return any(known.running for known in self._known.values())

    def collected(self) -> frozenset[str]:
        """The ids of the batches whose answers were collected in this session."""
        with self._lock:
            return frozenset(batch_id for batch_id, known in self._known.items() if known.ended)

    def get(self, batch_id: str) -> KnownBatch | None:
        with self._lock:
            return self._known.get(batch_id)

    def holding(
        self, keys: Iterable[str], notebook: NotebookRecords | None
    ) -> dict[str, KnownBatch]:
        """The batches not yet collected that hold some of ``keys``, by id: this session's
        first, then the saved notebook's (learned here from then on)."""
        wanted = set(keys)
        found: dict[str, KnownBatch] = {}
        for known in self.listed(notebook):
            if not known.ended and wanted.intersection(known.batch.keys):
                found[known.batch.id] = known
        with self._lock:
            for batch_id, known in found.items():
                self._known.setdefault(batch_id, known)
        return found

    def left(
        self, cell_id: str | None, held: Iterable[str], notebook: NotebookRecords | None
    ) -> list[str]:
        """The ids of the cell's running batches other than ``held``."""
        if not cell_id:
            return []
        kept = set(held)
        return [
            known.batch.id
            for known in self.listed(notebook)
            if known.cell_id == cell_id and known.running and known.batch.id not in kept
        ]

    def listed(self, notebook: NotebookRecords | None) -> list[KnownBatch]:
        """Every batch known: this session's, then the saved notebook's others, in order."""
        with self._lock:
            known = list(self._known.values())
        ids = {entry.batch.id for entry in known}
        for _, state in notebook.batches if notebook is not None else ():
            for batch in state.batches:
                if batch.id not in ids:
                    ids.add(batch.id)
                    known.append(KnownBatch(batch, state.at, state.cell_id))
        return known
