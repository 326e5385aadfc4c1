"""The output marker: what nbchat writes into an output's ``metadata["nbchat"]``, and reads back.

An output nbchat shows carries a small JSON object under ``metadata["nbchat"]`` saying what the
output is, so the kernel (finding records), ``nbchat run`` (counting answers) and ``nbchat
strip`` (finding raw views) read saved notebooks without guessing from MIME types. Its fields,
all optional:

========== ============= =====================================================================
field      type          meaning
========== ============= =====================================================================
thread     str           the thread of an answer or a system prompt
replayed   bool          an answer (or a ``--map`` batch: how many, ``int``) was replayed
incomplete bool          a partial answer, kept in sight after a failure; never a record
raw        bool          a raw JSON view (``--raw``, ``%chat raw``, ``%chat tools``)
record     int           the raw view's JSON *is* the record, of this schema (``--raw`` cells)
batch      bool          a ``--map`` summary; ``answered`` counts its answered items
answered   int           (batch) answered items, replayed ones included
note       bool          one of nbchat's quiet notes
========== ============= =====================================================================

`OutputMarker.to_json` writes only the fields set; `OutputMarker.of` reads any output, a
malformed value counting as absent (a hand-edited notebook must not break a reader). Notebooks
written by nbchat 0.1 and 0.2 carry the same fields.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

__all__ = ["OutputMarker"]

_KEY = "nbchat"


@dataclass(frozen=True, kw_only=True)
class OutputMarker:
    """What an output of nbchat's is."""

    thread: str | None = None
    replayed: bool | None = None  # an answer's: replayed, or asked (None: not an answer)
    incomplete: bool = False
    raw: bool = False
    record: int | None = None  # a raw view that holds the record, of this schema
    answered: int | None = None  # a --map summary's answered items (None: not a summary)
    replayed_items: int = 0  # ... and how many of them were replayed
    note: bool = False

    def to_json(self) -> dict[str, Any]:
        """The output's ``metadata`` entry: ``{"nbchat": {...}}`` with the fields set."""
        data: dict[str, Any] = {}
        if self.thread is not None:
            data["thread"] = self.thread
        if self.replayed is not None:
            data["replayed"] = self.replayed
        if self.incomplete:
            data["incomplete"] = True
        if self.raw:
            data["raw"] = True
        if self.record is not None:
            data["record"] = self.record
        if self.answered is not None:
            data.update(batch=True, answered=self.answered, replayed=self.replayed_items)
        if self.note:
            data["note"] = True
        return {_KEY: data}

    @classmethod
    def of(cls, output: Any) -> OutputMarker | None:
        """The marker of a saved or shown output, or None when it has none (a malformed field
        counts as absent)."""
        metadata = output.get("metadata") if isinstance(output, Mapping) else None
        raw = metadata.get(_KEY) if isinstance(metadata, Mapping) else None
        if not isinstance(raw, Mapping):
            return None
        batch = raw.get("batch") is True
        replayed = raw.get("replayed")
        return cls(
            thread=raw["thread"] if isinstance(raw.get("thread"), str) else None,
            replayed=replayed if isinstance(replayed, bool) and not batch else None,
            incomplete=raw.get("incomplete") is True,
            raw=raw.get("raw") is True,
            record=_count(raw.get("record")) or None,
            answered=_count(raw.get("answered")) if batch else None,
            replayed_items=_count(replayed) if batch else 0,
            note=raw.get("note") is True,
        )

    @property
    def answers(self) -> tuple[int, int]:
        """(answers, replayed answers) this output stands for: a --map summary its items', an
        answer itself (a ``--no-cache`` answer has no record, but its marker)."""
        if self.answered is not None:
            return self.answered, self.replayed_items
        if self.replayed is not None:
            return 1, int(self.replayed)
        return 0, 0


def _count(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else 0
