"""The --map template (`nbchat.prompt.template`): fills, paths into each item, what is cut,
and the templates refused."""

from __future__ import annotations

import pandas as pd
import pytest

from nbchat.errors import ConfigError
from nbchat.prompt.template import ItemError, item_rows

from support.nbfactory import compile_template


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
