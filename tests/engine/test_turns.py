"""Turns from request to record (`engine.turns`): the items of a ``--map`` cell, made alike
(`AlikeTurns`), are the turns `prepare` makes, and replay as `replayed` would."""

from __future__ import annotations

import pytest

from nbchat.engine.settings import resolve_settings
from nbchat.engine.threads import STANDALONE, Turn, Window
from nbchat.engine.turns import AlikeTurns, TurnRequest, prepare, replayed
from nbchat.store.keys import CellKey
from nbchat.store.record import SYSTEM, Record

from support.nbfactory import make_record

SETTINGS = resolve_settings(
    {"model": "peer-small", "temperature": 0.2},
    {},
    {},
    {"OPENAI_BASE_URL": "https://gateway.example/v1?api-version=1"},
)
SYSTEM_CELL = Turn(
    CellKey.cell("s"), "default", SYSTEM, ({"role": "system", "content": "Be brief."},)
)
WINDOW = Window([SYSTEM_CELL], 4, False)
IMAGE = [{"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}}]


def item(content: str | list, number: int) -> tuple[TurnRequest, CellKey]:
    base = TurnRequest("", STANDALONE, refresh=True)
    return base.asking(content), CellKey.item("c1", number)


@pytest.mark.parametrize("content", ["Rate: bad", 'Rate: \ud800 "quoted"\n', IMAGE])
def test_an_item_made_alike_is_the_turn_prepare_makes(content: str | list) -> None:
    first = prepare(item("Rate: good", 0)[0], SETTINGS, WINDOW, CellKey.item("c1", 0), file_index=4)
    alike = AlikeTurns.of(first)
    assert alike is not None
    request, cell_key = item(content, 7)
    made, prepared = (
        alike.turn(request, cell_key),
        prepare(request, SETTINGS, WINDOW, cell_key, file_index=4),
    )
    assert made == prepared and made.body() == prepared.body()
    assert alike.key(content) == prepared.key
    assert (
        made.request_info == prepared.request_info
        and made.request.prompt == prepared.request.prompt
    )


def test_a_stored_answer_replays_as_an_item_made_alike_as_for_its_own_turn() -> None:
    first = prepare(item("Rate: good", 0)[0], SETTINGS, WINDOW, CellKey.item("c1", 0), file_index=4)
    alike = AlikeTurns.of(first)
    request, cell_key = item("Rate: bad", 3)
    turn = prepare(request, SETTINGS, WINDOW, cell_key, file_index=4)
    stored: Record = make_record("Rate: bad", "Bad.", thread="elsewhere", cell_id="other")
    stored.key = turn.key
    assert alike.replayed(stored) == replayed(turn, stored)
    assert alike.replayed(stored).cell_id is None and alike.replayed(stored).thread == STANDALONE


def test_items_are_not_made_alike_when_their_keys_depend_on_more_than_their_message() -> None:
    first = prepare(
        item("Rate: good", 0)[0], SETTINGS, WINDOW, CellKey.item("c1", 0), with_v1_key=True
    )
    assert first.v1_key is not None and AlikeTurns.of(first) is None
