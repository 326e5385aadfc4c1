"""Reading a stored record, whatever schema it was written in: the one entry point."""

from __future__ import annotations

from typing import Any

from nbchat.store.record import SCHEMA_VERSION, Record
from nbchat.store.record_v1 import read_v1

__all__ = ["read_record"]


def read_record(data: Any, *, version: int = SCHEMA_VERSION) -> Record:
    """A stored record of schema ``version`` (its MIME type's); `ValueError` names what is
    wrong, as one line."""
    if version == SCHEMA_VERSION:
        return Record.from_json(data)
    if version != 1:
        raise ValueError(f"record schema {version} is not one this nbchat understands")
    if not isinstance(data, dict):
        raise ValueError("a record is a JSON object")
    stated = data.get("schema", version)
    if not isinstance(stated, int) or isinstance(stated, bool):
        raise ValueError("record schema must be an integer")
    if stated != version:
        raise ValueError(f"record says schema {stated} but is stored as version {version}")
    return read_v1(data)
