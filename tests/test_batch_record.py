"""The --map template and the compact batch record: fills, paths, and a lossless round trip."""

from __future__ import annotations

import copy
import json

import pandas as pd
import pytest

from nbchat.engine.settings import Settings
from nbchat.engine.turns import TurnRequest, answered, prepare
from nbchat.errors import ConfigError
from nbchat.prompt.figures import image_part
from nbchat.prompt.template import ItemError, MapTemplate, item_rows
from nbchat.store.batch_record import BatchItem, batch_json, item_labels, map_title, read_stored
from nbchat.store.record import STANDALONE


def compile_template(cell: str, namespace: dict | None = None) -> MapTemplate:
    return MapTemplate.compile(cell, namespace or {}, 8000)


def test_paths_reach_into_dicts_rows_sequences_and_attributes() -> None:
    template = compile_template(
        "{item[city]} / {item['tide']} / {item[\"name with space\"]} / {item.depth} / "
        "{item[list][1]} / {item}"
    )
    row = {"city": "Brest", "tide": 4.2, "name with space": "x", "depth": 12, "list": [7, 8]}
    fills, notes = template.fills(row, 8000, "item 0")
    assert notes == ()
    assert fills[:5] == ["Brest", "4.2", "x", "12", "8"]
    assert template.content(fills).startswith("Brest / 4.2 / x / 12 / 8 / {")
    with pytest.raises(ItemError, match=r"item 3 has no \['city'\]"):
        template.fills({"town": "Cadiz"}, 8000, "item 3")


def test_other_placeholders_are_filled_once_and_item_is_never_taken_from_the_namespace() -> None:
    template = compile_template("{intro}: {item}", {"intro": "Classify", "item": "shadowed"})
    assert template.literals == ("Classify: ", "")
    assert template.source == "Classify: {item}"


def test_item_written_inside_a_filled_in_value_stays_text() -> None:
    code = 'print(f"{item}") and {item.name}'
    template = compile_template("Explain {code} for {item}", {"code": code})
    assert template.paths == ("",)
    fills, _ = template.fills("x", 8000, "item 0")
    assert template.content(fills) == f"Explain {code} for x"


def test_what_is_cut_from_an_item_is_reported() -> None:
    template = compile_template("Summarise {item[text]}")
    _, notes = template.fills({"text": list(range(500))}, 200, "item 4")
    assert notes and notes[0].startswith("item 4[text]: clipped to ")


@pytest.mark.parametrize(
    ("cell", "message"),
    [
        ("no placeholder", "has no {item}"),
        ("{item.__class__}", "private attribute"),
        ("{item[]}", r"empty \[\]"),
    ],
)
def test_bad_templates_fail_the_cell(cell: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        compile_template(cell)


def test_items_of_every_kind() -> None:
    frame = pd.DataFrame({"a": [1, 2]}, index=["x", "y"])
    rows, index = item_rows(frame, "frame")
    assert rows == [{"a": 1}, {"a": 2}] and list(index) == ["x", "y"]
    values, index = item_rows(frame["a"], "series")
    assert values == [1, 2] and list(index) == ["x", "y"]
    assert item_rows(range(3), "r") == ([0, 1, 2], None)
    for wrong in ("text", {"a": 1}, 3):
        with pytest.raises(ConfigError):
            item_rows(wrong, "wrong")


def answered_items(template: MapTemplate, values: list[object]) -> list[BatchItem]:
    settings = Settings(base_url="http://127.0.0.1:9/v1", model="m", api_key_env="")
    items = []
    for number, value in enumerate(values):
        fills, _ = template.fills(value, 8000, f"item {number}")
        content = template.content(fills)
        prompt, parts = (content, None) if isinstance(content, str) else ("", content)
        request = TurnRequest(prompt, STANDALONE, content=parts)
        turn = prepare(request, settings, None, f"cell#item{number}")
        completion = {
            "id": f"chatcmpl-{number}",
            "object": "chat.completion",
            "model": "m",
            "choices": [{"index": 0, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": 3, "completion_tokens": number, "total_tokens": 3 + number},
        }
        message = {"role": "assistant", "content": f"answer {number}"}
        record = answered(turn, [message], [completion], {"elapsed_s": 0.1, "streamed": False})
        items.append(BatchItem(number, [str(f) for f in fills] if parts is None else None, record))
    return items


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
