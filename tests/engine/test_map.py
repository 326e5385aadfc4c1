"""``--map`` in process, against the loopback server (the magic around it is tested in real
kernels, tests/kernel/test_map.py)."""

from __future__ import annotations

import time
from dataclasses import replace

from nbchat.engine.map import MapJob, map_items
from nbchat.engine.session import ChatSession
from nbchat.engine.settings import resolve_settings

PRICED = {"peer-small": {"input": 1000, "output": 2000}}  # made up, $ per 1M tokens


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
