"""The pending state of a ``%%chat --map NAME --batch`` cell: the provider's batches that hold
its items, kept in the cell's output until their answers are stored there.

A batch outlives the kernel that submitted it (results within 24 hours), so what a re-run needs
to find it again is in the notebook: the summary's ``display_data`` bundle carries this object
under `BATCHES_MIME`. Re-running the cell in any kernel reads it and asks the provider for the
batch's status, never submitting the same items twice. When every batch has ended, its answers
are stored in the usual batch record (`store.batch_record`) and the output carries no pending
state any more. Older nbchat versions never read it: their readers take only
``application/vnd.nbchat.v<N>+json``.

==================  =========================================================================
``schema``          ``1``
``kind``            ``"batches"``
``nbchat_version``  the nbchat version that wrote it
``cell_id``         the notebook cell id the kernel was told, or ``null``
``base_url``        the endpoint, credentials and query values masked (as a record's)
``query_digest``    the SHA-256 of the base URL's query, or ``null``
``endpoint``        what every line asks for: ``"/v1/chat/completions"``
``batches``         one object per batch: ``id``, ``input_file_id``, ``submitted_at`` (ISO-8601
                    UTC), ``status`` and ``total``/``completed``/``failed`` as last seen,
                    ``keys`` (each line's ``custom_id``, the item's request key, in the input
                    file's line order)
==================  =========================================================================

Neither the key nor any header is stored: a batch is found again with the key of the endpoint
the cell is sent to now.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from nbchat._json import need, required
from nbchat._version import __version__
from nbchat.store.keys import Endpoint
from nbchat.wire.batch_lines import BATCH_URL

__all__ = ["BATCHES_MIME", "BatchState", "PendingBatch", "iter_batch_states"]

BATCHES_MIME = "application/vnd.nbchat.batches.v1+json"
_SCHEMA = 1
_KIND = "batches"


@dataclass(frozen=True, kw_only=True)
class PendingBatch:
    """One batch submitted for a cell, as last seen."""

    id: str
    input_file_id: str
    submitted_at: str
    keys: tuple[str, ...]  # custom_ids, in input line order
    status: str = "validating"
    total: int = 0
    completed: int = 0
    failed: int = 0

    def seen(self, status: str, completed: int, failed: int) -> PendingBatch:
        """The batch as the provider reports it now."""
        return replace(self, status=status, completed=completed, failed=failed)

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "input_file_id": self.input_file_id,
            "submitted_at": self.submitted_at,
            "status": self.status,
            "total": self.total or len(self.keys),
            "completed": self.completed,
            "failed": self.failed,
            "keys": list(self.keys),
        }

    @classmethod
    def from_json(cls, data: Any, where: str) -> PendingBatch:
        need(data, where, dict)
        for name in ("id", "input_file_id", "submitted_at", "status"):
            need(required(data, name, where), f"{where}.{name}", str)
        counts = {name: data.get(name, 0) for name in ("total", "completed", "failed")}
        for name, value in counts.items():
            need(value, f"{where}.{name}", int)
            if isinstance(value, bool) or value < 0:
                raise ValueError(f"{where}.{name} is not a count")
        keys = required(data, "keys", where)
        need(keys, f"{where}.keys", list)
        if not all(isinstance(key, str) for key in keys):
            raise ValueError(f"{where}.keys: each is a text")
        return cls(
            id=data["id"],
            input_file_id=data["input_file_id"],
            submitted_at=data["submitted_at"],
            keys=tuple(keys),
            status=data["status"],
            **counts,
        )


@dataclass(frozen=True, kw_only=True)
class BatchState:
    """The batches a cell waits for, at one endpoint."""

    base_url: str  # shown form
    query_digest: str | None
    batches: tuple[PendingBatch, ...]
    cell_id: str | None = None
    endpoint: str = BATCH_URL
    nbchat_version: str = field(default=__version__)

    @property
    def at(self) -> Endpoint:
        """The endpoint the batches were submitted to, as keys see it."""
        return Endpoint.stored(self.base_url, self.query_digest)

    def to_json(self) -> dict[str, Any]:
        """The JSON stored under `BATCHES_MIME`."""
        return {
            "schema": _SCHEMA,
            "kind": _KIND,
            "nbchat_version": self.nbchat_version,
            "cell_id": self.cell_id,
            "base_url": self.base_url,
            "query_digest": self.query_digest,
            "endpoint": self.endpoint,
            "batches": [batch.to_json() for batch in self.batches],
        }

    @classmethod
    def from_json(cls, data: Any) -> BatchState:
        """A stored state; `ValueError` names what is wrong."""
        need(data, "batches state", dict)
        if data.get("schema") != _SCHEMA or data.get("kind") != _KIND:
            raise ValueError(f"not a batches state of schema {_SCHEMA}")
        for name in ("base_url", "endpoint", "nbchat_version"):
            need(required(data, name, ""), name, str)
        for name in ("cell_id", "query_digest"):
            need(data.get(name), name, str, null=True)
        batches = required(data, "batches", "")
        need(batches, "batches", list)
        return cls(
            base_url=data["base_url"],
            query_digest=data.get("query_digest"),
            batches=tuple(
                PendingBatch.from_json(entry, f"batches[{n}]") for n, entry in enumerate(batches)
            ),
            cell_id=data.get("cell_id"),
            endpoint=data["endpoint"],
            nbchat_version=data["nbchat_version"],
        )


def iter_batch_states(outputs: Any) -> Iterator[Any]:
    """The raw pending states among a cell's outputs (to read with `BatchState.from_json`)."""
    for output in outputs if isinstance(outputs, list) else ():
        data = output.get("data") if isinstance(output, Mapping) else None
        if isinstance(data, Mapping) and BATCHES_MIME in data:
            yield data[BATCHES_MIME]
