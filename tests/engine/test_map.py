"""``--map`` in process, against the loopback server (the magic around it is tested in real
kernels, tests/kernel/test_map.py)."""

from __future__ import annotations

import json
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

from nbchat.engine.map import MapJob, map_items
from nbchat.engine.session import ChatSession
from nbchat.engine.settings import resolve_settings
from nbchat.engine.turns import AlikeTurns
from nbchat.store.notebook import NotebookRecords, NotebookWatcher
from nbchat.store.record import RECORD_MIME

PRICED = {"peer-small": {"input": 1000, "output": 2000}}  # made up, $ per 1M tokens


def saved_map_cell(path: Path, cell_id: str, record: dict[str, Any]) -> NotebookRecords | None:
    """The records of a notebook whose one --map cell's output holds ``record``."""
    output = {"output_type": "display_data", "metadata": {}, "data": {RECORD_MIME: record}}
    cell = {"cell_type": "code", "id": cell_id, "metadata": {}, "execution_count": 1}
    cell |= {"source": "%%chat --map items\nClassify: {item}", "outputs": [output]}
    notebook = {"nbformat": 4, "nbformat_minor": 5, "metadata": {}, "cells": [cell]}
    path.write_text(json.dumps(notebook))
    return NotebookWatcher(path).get()


def test_a_map_run_at_its_budget_ends_without_waiting_out_the_rpm_of_the_items_left(
    server, chat_env
):
    settings = resolve_settings(
        {"model": "peer-small", "prices": PRICED, "budget": 0.000001, "stream": False},
        {},
        {},
        {"OPENAI_BASE_URL": server.base_url},
    )
    job = MapJob(
        name="items",
        items=["alpha", "beta", "gamma"],
        cell="Classify: {item}",
        namespace={},
        settings=replace(settings, stream=False),
        concurrency=1,
        rpm=40,  # one request every 1.5 s
        cell_id="m",
    )
    start = time.monotonic()
    outcome = map_items(job, ChatSession(), None)
    elapsed = time.monotonic() - start
    assert len(server.chat_requests) == 1 and outcome.over_budget == {1, 2}
    assert elapsed < 1, f"2 items not sent took {elapsed:.1f} s"


def _job(server, items: list[str], **changes) -> MapJob:
    settings = resolve_settings(
        {"model": "peer-small", "prices": PRICED, "stream": False},
        {},
        {},
        {"OPENAI_BASE_URL": server.base_url},
    )
    fields = {"cell_id": "m", "settings": settings, **changes}
    return MapJob(name="items", items=items, cell="Classify: {item}", namespace={}, **fields)


def test_a_run_that_replays_every_item_makes_the_turn_of_its_first_only(
    server, chat_env, tmp_path, monkeypatch
):
    """Stored items are found by their key and replayed together: no item's full request is
    made beyond the first's (what the others share), and the answers, record and savings are
    those of the run that asked."""
    words = ["alpha", "beta", "gamma", "delta"]
    job = _job(server, words)
    asked = map_items(job, ChatSession(), None)
    notebook = saved_map_cell(tmp_path / "mapped.ipynb", "m", asked.record)
    assert notebook is not None and len(notebook.cells[0].records) == len(words)
    made = []
    making = AlikeTurns.turn
    monkeypatch.setattr(AlikeTurns, "turn", lambda *a: made.append(a) or making(*a))
    session, before = ChatSession(), len(server.chat_requests)
    replayed = map_items(job, session, notebook)
    assert len(server.chat_requests) == before and made == []
    assert replayed.values == asked.values and replayed.summary.replayed == len(words)
    assert replayed.record["items"] == asked.record["items"]
    saved = session.ledger.total(session.ledger.saved)
    assert session.ledger.replays == len(words) and saved.cost.usd > 0
    assert {record.key for record in session.cache.answers.values()} == {
        record.key for record in notebook.cells[0].records
    }


def test_a_map_run_that_replays_some_items_keeps_the_session_answers_in_item_order(
    server, chat_env
):
    session = ChatSession()
    map_items(_job(server, ["alpha"]), session, None)
    outcome = map_items(_job(server, ["beta", "alpha", "gamma"]), session, None)
    assert len(server.chat_requests) == 3 and outcome.summary.replayed == 1
    # `%chat raw N` counts back from the newest: the run's items, in their order
    given = [record.prompt for record in session.cache.given[-3:]]
    assert given == ["Classify: beta", "Classify: alpha", "Classify: gamma"]


def test_the_items_replayed_are_counted_as_saved_in_item_order(server, chat_env):
    session = ChatSession()
    map_items(_job(server, ["i1", "i8"]), session, None)
    for record in session.cache.given:  # answered by two models: two rows of %chat usage
        record.responses[0]["model"] = f"model-{record.prompt[-1]}"
    map_items(_job(server, [f"i{n}" for n in range(9)]), session, None)
    assert [model for model, _ in session.ledger.saved] == ["model-1", "model-8"]
