"""Values rendered for a model: tables, arrays and objects within a budget, truncation marked."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pandas as pd
import polars as pl
import pytest
from IPython.display import Markdown
from matplotlib.figure import Figure

from nbchat.errors import ConfigError
from nbchat.prompt.values import DEFAULT_BUDGET, Rendered, render_value


def numbers_frame(rows: int) -> pd.DataFrame:
    return pd.DataFrame({"n": range(rows), "half": [i / 2 for i in range(rows)]})


def test_a_str_is_sent_whole_whatever_the_budget():
    document = "word " * 10_000
    assert render_value(document, 100) == Rendered(document)


@pytest.mark.parametrize("value", [3, 2.5, None, True, [1, "a"], {"k": (1, 2)}, {1, 2}, b"raw"])
def test_plain_values_render_as_str_did(value):
    assert render_value(value, 1000) == Rendered(str(value))


def test_a_long_frame_shows_as_many_head_and_tail_rows_as_fit():
    rendered = render_value(numbers_frame(1000), 300, label="df")
    lines = rendered.text.splitlines()
    assert lines[0] == "pandas.DataFrame, 1,000 rows × 2 columns"
    assert lines[1] == "|  | n (int64) | half (float64) |"
    assert lines[3:8] == [f"| {i} | {i} | {i / 2:g} |" for i in range(5)]
    assert lines[8] == "| … 990 more rows | … | … |"
    assert lines[9:] == [f"| {i} | {i} | {i / 2:g} |" for i in range(995, 1000)]
    assert rendered.notes == ("df: showed 10 of 1,000 rows",)
    assert len(render_value(numbers_frame(1000), 350).text) > 300, "12 rows would not fit"
    at_default = render_value(numbers_frame(1000), label="df")
    assert DEFAULT_BUDGET - 60 < len(at_default.text) <= DEFAULT_BUDGET, "the budget is used"
    assert at_default.notes == ("df: showed 396 of 1,000 rows",)


def test_a_frame_that_fits_is_sent_whole_however_many_rows_and_columns():
    # Issue 17: 48 rows that fit in 8,000 characters were cut to 5 + 5.
    rendered = render_value(numbers_frame(48), label="df")
    lines = rendered.text.splitlines()
    assert lines[0] == "pandas.DataFrame, 48 rows × 2 columns"
    assert lines[3:] == [f"| {i} | {i} | {i / 2:g} |" for i in range(48)]
    assert "…" not in rendered.text and rendered.notes == ()
    wide = pd.DataFrame([[row * 100 + column for column in range(30)] for row in range(3)])
    header = render_value(wide).text.splitlines()[1]
    assert header.count("(int64)") == 30 and "…" not in header


def test_a_short_frame_shows_every_row_and_no_note():
    rendered = render_value(numbers_frame(10))
    assert len(rendered.text.splitlines()) == 1 + 2 + 10
    assert "…" not in rendered.text and rendered.notes == ()


def test_an_index_name_heads_the_index_column():
    frame = numbers_frame(3).set_index("n")
    assert render_value(frame).text.splitlines()[1] == "| n | half (float64) |"


def test_a_frame_fits_its_budget_by_showing_fewer_rows():
    frame, shown = numbers_frame(1000), []
    for budget in range(118, 1200, 7):
        rendered = render_value(frame, budget, label="df")
        assert len(rendered.text) <= budget
        rows = int(rendered.notes[0].split()[2])
        assert rendered.text.count("\n") == 3 + rows  # shape, header, rule, elision, the rows
        shown.append((budget, rows, len(rendered.text)))
    assert [rows for _, rows, _ in shown] == sorted(rows for _, rows, _ in shown)
    assert shown[0][1] == 0 and shown[-1][1] > 50
    for budget, rows, _ in shown:  # the most rows that fit: any longer table is over budget
        assert all(more <= rows for _, more, size in shown if size <= budget)


def test_a_frame_that_cannot_fit_is_refused_naming_the_setting():
    with pytest.raises(ConfigError) as caught:
        render_value(numbers_frame(1000), 50, label="df")
    message = str(caught.value)
    assert message.startswith("df renders to ")
    assert "over ChatMagics.context_chars = 50: raise it, or pass a slice" in message
    assert "\n" not in message


def test_a_wide_frame_that_does_not_fit_shows_its_first_and_last_ten_columns():
    frame = pd.DataFrame([[row * 100 + column for column in range(50)] for row in range(3)])
    assert len(render_value(frame, label="wide").text.splitlines()[1].split("|")) == 53
    rendered = render_value(frame, 900, label="wide")
    header = [cell.strip() for cell in rendered.text.splitlines()[1].strip("|").split("|")]
    assert header[1:11] == [f"{column} (int64)" for column in range(10)]
    assert header[11] == "…"
    assert header[12:] == [f"{column} (int64)" for column in range(40, 50)]
    assert rendered.text.splitlines()[3].split(" | ")[11] == "…"  # the elided column
    assert rendered.notes == ("wide: showed 20 of 50 columns",)


def test_cells_are_clipped_and_kept_on_one_table_row():
    frame = pd.DataFrame({"text": ["a|b\nc", "x" * 100]})
    lines = render_value(frame).text.splitlines()
    assert lines[3] == r"| 0 | a\|b c |"
    assert lines[4] == "| 1 | " + "x" * 39 + "… |"


def test_a_series():
    series = pd.Series([1.5, 2.0, None], name="price")
    assert render_value(series).text.splitlines() == [
        "pandas.Series, 3 rows × 1 column",
        "|  | price (float64) |",
        "|---|---|",
        "| 0 | 1.5 |",
        "| 1 | 2 |",
        "| 2 | nan |",
    ]


def test_a_polars_frame_has_no_index_column():
    frame = pl.DataFrame({"n": list(range(12)), "name": [f"r{i}" for i in range(12)]})
    assert len(render_value(frame).text.splitlines()) == 3 + 12, "whole: it fits"
    rendered = render_value(frame, 200, label="pf")
    lines = rendered.text.splitlines()
    assert lines[:4] == [
        "polars.DataFrame, 12 rows × 2 columns",
        "| n (Int64) | name (String) |",
        "|---|---|",
        "| 0 | r0 |",
    ]
    assert lines[7] == "| … 4 more rows | … |"
    assert lines[-1] == "| 11 | r11 |"
    assert rendered.notes == ("pf: showed 8 of 12 rows",)


def test_a_polars_series():
    lines = render_value(pl.Series("v", [3, 4])).text.splitlines()
    assert lines == ["polars.Series, 2 rows × 1 column", "| v (Int64) |", "|---|", "| 3 |", "| 4 |"]


def test_a_small_array_is_shown_whole():
    rendered = render_value(np.arange(6).reshape(2, 3))
    assert rendered.text == "numpy.ndarray, shape (2, 3), dtype int64\n[[0 1 2]\n [3 4 5]]"
    assert rendered.notes == ()


def test_a_large_array_is_summarised_by_numpy():
    rendered = render_value(np.arange(100_000), label="a")
    assert rendered.text == (
        "numpy.ndarray, shape (100000,), dtype int64\n[    0     1     2 ... 99997 99998 99999]"
    )
    assert rendered.notes == ("a: summarised 100,000 items",)


def test_an_array_shows_fewer_items_to_fit_and_is_refused_below_that():
    array = np.arange(900, dtype=float).reshape(30, 30)
    whole = render_value(array, 100_000).text
    small = render_value(array, 400, label="m")
    assert len(whole) > 400 >= len(small.text)
    assert "..." in small.text and small.notes == ("m: summarised 900 items",)
    with pytest.raises(
        ConfigError, match=r"^m renders to .* ChatMagics.context_chars = 40: raise it"
    ):
        render_value(array, 40, label="m")


class Note:
    def _repr_markdown_(self) -> str:
        return "**a note**"


class NotMarkdown:
    def _repr_markdown_(self) -> tuple[str, dict]:
        return ("ignored", {})

    def __repr__(self) -> str:
        return "NotMarkdown()"


class BrokenMarkdown:
    def _repr_markdown_(self) -> str:
        raise ValueError("no")

    def __str__(self) -> str:
        return "plain"


class Proxy:
    """Answers every attribute, as some proxies do: it has no rich repr for all that."""

    def __getattr__(self, name: str) -> object:
        return lambda: "fake"

    def __repr__(self) -> str:
        return "Proxy()"


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (Note(), "**a note**"),
        (Markdown("# Title"), "# Title"),
        (NotMarkdown(), "NotMarkdown()"),
        (BrokenMarkdown(), "plain"),
        (Proxy(), "Proxy()"),
    ],
)
def test_other_objects_use_their_markdown_else_str(value, text):
    assert render_value(value).text == text


def test_long_object_text_is_clipped_with_a_mark():
    value = list(range(10_000))
    rendered = render_value(value, 500, label="xs")
    full = str(value)
    assert len(rendered.text) <= 500
    kept = rendered.text.index("… (")
    assert rendered.text[:kept] == full[:kept]
    assert rendered.text.endswith(f"… ({len(full) - kept:,} more characters)")
    assert rendered.notes == (f"xs: clipped to {kept:,} of {len(full):,} characters",)
    assert DEFAULT_BUDGET == 8000
    assert DEFAULT_BUDGET - 2 <= len(render_value(value).text) <= DEFAULT_BUDGET


def test_an_image_value_renders_as_an_image():
    figure = Figure(figsize=(2, 2))
    figure.subplots().plot([0, 1])
    rendered = render_value(figure)
    assert rendered.text is None and rendered.image.mime == "image/png"


NO_EAGER_IMPORTS = """
import sys
import nbchat.prompt.interpolate, nbchat.prompt.values, nbchat.wire.images
heavy = ("pandas", "polars", "numpy", "matplotlib", "PIL", "IPython")
print(" ".join(name for name in heavy if name in sys.modules) or "none")
"""


def test_importing_nbchat_context_modules_imports_no_data_library():
    done = subprocess.run(
        [sys.executable, "-c", NO_EAGER_IMPORTS],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    assert done.stdout.strip() == "none"
