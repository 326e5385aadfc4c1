"""``nbchat upgrade``: rewrite the schema 1 records of a notebook as schema 2.

A schema 1 record stored its whole request; schema 2 stores the turn and refers to the record of
the turn above it. Upgrading a record therefore needs that record in the same notebook: each
record's history (the digest of the turns above it, computed from the messages it stored) is
matched with the history *after* some other record's turn. A record whose turns above are not in
the notebook (its cells were deleted) keeps schema 1, so nothing is lost; replay reads both.
"""

from __future__ import annotations

from collections.abc import Iterator, MutableMapping
from dataclasses import dataclass
from typing import Any

from nbchat.store.keys import HISTORY_START, Endpoint, extend_history, request_key, turn_digest
from nbchat.store.notebook import iter_output_records
from nbchat.store.reading import read_record
from nbchat.store.record import RECORD_MIME, RECORD_MIME_PATTERN, SYSTEM, Record, RequestInfo
from nbchat.wire.messages import wire_turn

__all__ = ["UpgradeReport", "upgrade_notebook"]


@dataclass
class UpgradeReport:
    """What an upgrade did."""

    upgraded: int = 0
    kept: int = 0  # schema 1 records whose turns above are not in the notebook
    skipped: int = 0  # records that could not be read (see `nbchat verify`)


@dataclass
class _Found:
    output: MutableMapping[str, Any]  # the output's data
    mime: str
    record: Record


def _v1_records(notebook: MutableMapping[str, Any], report: UpgradeReport) -> Iterator[_Found]:
    for cell in notebook.get("cells") or []:
        outputs = cell.get("outputs") if isinstance(cell, dict) else None
        for output in outputs if isinstance(outputs, list) else []:
            data = output.get("data") if isinstance(output, dict) else None
            if not isinstance(data, dict):
                continue
            for mime in list(data):
                match = RECORD_MIME_PATTERN.match(mime)
                if not match or int(match.group(1)) != 1:
                    continue
                try:
                    record = read_record(data[mime], version=1)
                except (ValueError, TypeError):
                    report.skipped += 1
                    continue
                if record.consistency_problem():
                    report.skipped += 1
                    continue
                yield _Found(data, mime, record)


def _history_after(record: Record) -> str | None:
    if record.history is None:
        return None
    return extend_history(record.history, turn_digest(wire_turn(record.messages)))


def _as_v2(record: Record, parent: str | None) -> Record:
    """The same turn as a schema 2 record (its request's key recomputed for schema 2)."""
    if record.kind == SYSTEM:
        return Record(
            kind=SYSTEM,
            thread=record.thread,
            messages=record.messages,
            cell_id=record.cell_id,
            new_thread=record.new_thread,
            timing=record.timing,
            stored_at=record.stored_at,
        )
    assert record.request is not None and record.history is not None
    before = record.request
    endpoint = Endpoint.of(before.base_url)
    request = RequestInfo(
        endpoint.shown, endpoint.query_digest, before.model, before.params, before.system
    )
    key = request_key(
        endpoint, before.model, before.params, before.system, record.history, record.messages[0]
    )
    return Record(
        kind=record.kind,
        thread=record.thread,
        messages=record.messages,
        cell_id=record.cell_id,
        new_thread=record.new_thread,
        key=key,
        history=record.history,
        parent=parent,
        request=request,
        responses=record.responses,
        timing=record.timing,
        stored_at=record.stored_at,
    )


def upgrade_notebook(notebook: MutableMapping[str, Any]) -> UpgradeReport:
    """Rewrite, in place, every schema 1 record of a parsed notebook that can be."""
    report = UpgradeReport()
    found = list(_v1_records(notebook, report))
    # The key each turn has as schema 2, by the history after it: the parent of a turn whose
    # history it is. Records already of schema 2 can be parents too.
    after: dict[str, str] = {}
    for item in found:
        if item.record.kind != SYSTEM and (history := _history_after(item.record)):
            after.setdefault(history, _as_v2(item.record, None).key or "")
    for cell in notebook.get("cells") or []:
        for _, raw in iter_output_records(cell.get("outputs") or []):
            if isinstance(raw, dict) and raw.get("schema") == 2:
                try:
                    record = Record.from_json(raw)
                except (ValueError, TypeError):
                    continue
                if (history := _history_after(record)) and record.key:
                    after.setdefault(history, record.key)
    renamed: dict[str, str] = {}  # schema 1 key -> the same turn's schema 2 key
    for item in found:
        record = item.record
        parent = None
        if record.kind != SYSTEM:
            if record.history is None or (
                record.history != HISTORY_START and record.history not in after
            ):
                report.kept += 1
                continue
            parent = after.get(record.history)
        upgraded = _as_v2(record, parent)
        if record.key and upgraded.key:
            renamed[record.key] = upgraded.key
        del item.output[item.mime]
        item.output[RECORD_MIME] = upgraded.to_json()
        report.upgraded += 1
    _relink(notebook, renamed)
    return report


def _relink(notebook: MutableMapping[str, Any], renamed: dict[str, str]) -> None:
    """Point schema 2 records that referred to an upgraded record (by its schema 1 key, as a
    cell run below an old one does) at its new key."""
    for cell in notebook.get("cells") or []:
        for _, raw in iter_output_records(cell.get("outputs") or []):
            if not isinstance(raw, dict) or raw.get("schema") != 2:
                continue
            # A hand-edited record may hold anything here: only keys (text) are renamed.
            parent = raw.get("parent")
            if isinstance(parent, str) and parent in renamed:
                raw["parent"] = renamed[parent]
            if isinstance(raw.get("context"), list):
                raw["context"] = [
                    renamed.get(key, key) if isinstance(key, str) else key for key in raw["context"]
                ]
