"""The compact batch record (`nbchat.store.batch_record`): a lossless round trip of the records
it stores, and how its items are named."""

from __future__ import annotations

import copy
import json

import pytest

from nbchat.prompt.figures import image_part
from nbchat.store.batch_record import batch_json, item_labels, map_title, read_stored

from support.nbfactory import answered_items, compile_template


def test_a_batch_reads_back_as_the_records_it_stored() -> None:
    template = compile_template("Rate {item}")
    items = answered_items(template, ["good", "bad", "odd"])
    stored = batch_json(template, items, thread="default", cell_id="c1")
    assert stored["response"]["object"] == "chat.completion"
    assert set(stored["items"][0]["response"]) == {"id", "usage"}, "only what differs"
    assert stored["items"][0]["answer"] == "answer 0" and "key" not in stored["items"][0]
    records = read_stored(json.loads(json.dumps(stored)), 2)
    for item, record in zip(items, records, strict=True):
        assert record.key == item.record.key, "the key is the request's, recomputed"
        assert record.messages == item.record.messages
        assert record.last_response == item.record.last_response
        assert record.consistency_problem() is None


def test_timing_the_items_share_is_stored_once_and_read_back_into_each() -> None:
    """A provider batch's items share its id, submission and duration: stored once. A record
    written before (each item with all of its timing) reads back the same."""
    template = compile_template("Rate {item}")
    items = answered_items(template, ["good", "bad", "odd"])
    ran = {"batch_id": "batch_abc", "started_at": "2026-12-06T10:00:00Z", "streamed": False}
    for number, item in enumerate(items):
        item.record.timing = {**ran, "elapsed_s": 60 if number < 2 else 61}
    stored = json.loads(json.dumps(batch_json(template, items, thread="t", cell_id="c1")))
    assert stored["timing"] == {"batch_id": "batch_abc", "started_at": "2026-12-06T10:00:00Z"}
    assert [entry["timing"] for entry in stored["items"]] == [
        {"elapsed_s": n} for n in (60, 60, 61)
    ]
    records = read_stored(stored, 2)
    assert [r.timing for r in records] == [item.record.timing for item in items]
    assert {r.batch_id for r in records} == {"batch_abc"}
    older = copy.deepcopy(stored)
    shared = older.pop("timing")
    for entry in older["items"]:
        entry["timing"] = {**shared, **entry["timing"]}
    seen = [(r.key, r.timing, r.messages, r.responses) for r in records]
    assert [(r.key, r.timing, r.messages, r.responses) for r in read_stored(older, 2)] == seen
    with pytest.raises(ValueError, match="timing"):
        read_stored({**stored, "timing": {"elapsed_s": "a minute"}}, 2)


def test_an_item_whose_timing_is_of_the_wrong_type_is_refused_after_one_alike_in_value() -> None:
    """Each distinct timing is checked once: ``true`` equals ``1`` in Python, but is not a
    number of seconds (a record edited by hand, or written by something else)."""
    template = compile_template("Rate {item}")
    items = answered_items(template, ["good", "bad", "odd"])
    for number, item in enumerate(items):
        item.record.timing = {"elapsed_s": number, "streamed": False}
    stored = json.loads(json.dumps(batch_json(template, items, thread="t", cell_id="c1")))
    assert len(read_stored(stored, 2)) == 3
    stored["items"][2]["timing"] = {"elapsed_s": True}  # item 1's is {"elapsed_s": 1}
    with pytest.raises(ValueError, match="elapsed_s is a boolean"):
        read_stored(stored, 2)


def test_an_edited_fill_is_another_request_and_a_malformed_batch_is_refused() -> None:
    template = compile_template("Rate {item}")
    stored = batch_json(template, answered_items(template, ["good"]), thread="t", cell_id=None)
    edited = copy.deepcopy(stored)
    edited["items"][0]["fills"] = ["great"]
    (record,) = read_stored(edited, 2)
    assert record.prompt == "Rate great" and record.key != read_stored(stored, 2)[0].key
    for field, value in (("fills", ["a", "b"]), ("answer", 3), ("response", [])):
        broken = copy.deepcopy(stored)
        broken["items"][0][field] = value
        with pytest.raises(ValueError):
            read_stored(broken, 2)


def test_an_image_item_keeps_its_whole_content() -> None:
    from PIL import Image

    template = compile_template("Describe {item}")
    picture = Image.new("RGB", (8, 8), (1, 2, 3))
    (item,) = answered_items(template, [picture])
    stored = batch_json(template, [item], thread="t", cell_id=None)
    assert "fills" not in stored["items"][0]
    (record,) = read_stored(stored, 2)
    part = image_part(picture)
    assert part is not None and record.messages[0]["content"][1] == part.part()


@pytest.mark.parametrize(
    ("source", "title"),
    [
        ("%%chat --map reviews -o labels\nRate {item}", "--map reviews"),
        ("%%chat --schema Label --map=rows\nRate {item}", "--map rows"),
        ("  %%chat -o x --map\n{item}", "--map"),
        ("%%chat --map 'odd\n{item}", "--map 'odd"),
        ("labels = nbchat.map('Rate {item}', reviews)", "nbchat.map"),
    ],
)
def test_a_batch_is_named_by_its_cells_map_flag(source: str, title: str) -> None:
    assert map_title(source) == title


def test_item_labels_say_what_each_item_was_by_its_key() -> None:
    template = compile_template("Rate {item} for {item}")
    items = answered_items(template, ["good", "bad"])
    stored = batch_json(template, items, thread="default", cell_id="c1")
    labels = item_labels(stored)
    assert labels == {
        items[0].record.key: "item 0: good · good",
        items[1].record.key: "item 1: bad · bad",
    }
    broken = {**stored, "items": [{"index": 0}]}
    assert item_labels(broken) == {} and item_labels(items[0].record.to_json()) == {}
