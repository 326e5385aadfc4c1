"""The package's one set of text helpers: one line, clip, plural, tables."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from nbchat._text import (
    CONTROLS,
    clip,
    display_width,
    markdown_table,
    one_line,
    plural,
    printable,
    render_table,
)


def test_one_line_squeezes_every_kind_of_whitespace():
    assert one_line("  a\n\n b\t\tc\r\n\u2028d\u00a0e  ") == "a b c d e"
    assert one_line("") == ""


@pytest.mark.parametrize(
    "hostile",
    [
        "\x1b[2J\x1b[Hcleared",  # clear the screen, move the cursor
        "\x1b]0;new title\x07",  # retitle the terminal window
        "\x9b31mred",  # the one-byte C1 control sequence introducer
        "abc\u202edcba",  # right-to-left override: shows text reversed
        "back\x08\x08\x08\x7fspace",
    ],
)
def test_one_line_leaves_nothing_a_terminal_would_obey(hostile):
    shown = one_line(hostile)
    assert all(ch.isprintable() or ch == " " for ch in shown), repr(shown)
    assert "\ufffd" in shown  # visibly replaced, not silently dropped


def test_display_width_counts_terminal_columns():
    assert display_width("abc") == 3
    assert display_width("中文") == 4  # wide
    assert display_width("e\u0301") == 1  # a combining accent takes no column
    assert display_width("🙂") == 2


@pytest.mark.parametrize(
    ("text", "width", "expected"),
    [
        ("hello world", 20, "hello world"),
        ("hello world", 11, "hello world"),
        ("hello world", 10, "hello wor…"),
        ("hello world", 7, "hello…"),  # no space left before the ellipsis
        ("hello", 1, "…"),
        ("hello", 0, ""),
        ("hello", -3, ""),
        ("中文中文中文", 7, "中文中…"),
        ("中文中文中文", 6, "中文…"),  # a wide character never straddles the edge
    ],
)
def test_clip(text, width, expected):
    assert clip(text, width) == expected
    assert display_width(clip(text, width)) <= max(width, 0)


@given(st.text(), st.integers(min_value=0, max_value=40))
@settings(max_examples=300, deadline=None)
def test_clip_never_exceeds_the_width(text, width):
    clipped = clip(one_line(text), width)
    assert display_width(clipped) <= width
    assert clipped == one_line(text) or clipped.endswith("…") or clipped == ""


def test_plural():
    assert plural(1, "record") == "1 record"
    assert plural(0, "record") == "0 records"
    assert plural(2, "reply", "replies") == "2 replies"


def test_render_table_aligns_columns():
    lines = render_table(["NAME", "N"], [["alpha", "1"], ["b", "22"]], right=frozenset({1}))
    assert lines == ["NAME    N", "alpha   1", "b      22"]


def test_render_table_puts_cells_on_one_line_and_aligns_wide_characters():
    lines = render_table(["A", "B"], [["x\ny", "1"], ["中文", "2"]])
    assert lines == ["A     B", "x y   1", "中文  2"]


def test_render_table_shrinks_to_the_width_keeping_floors():
    long = "word " * 40
    header, rows = ["ID", "PROMPT", "ANSWER"], [["1", long, long]]
    lines = render_table(header, rows, width=60, shrink={1: 32, 2: 0})
    assert all(display_width(line) <= 60 for line in lines)
    prompt = lines[1][len("1   ") :].split("  ")[0]
    assert len(prompt) == 32 and prompt.endswith("…")
    # wide enough: both shrinkable columns share the room equally
    wide = render_table(header, rows, width=120, shrink={1: 32, 2: 0})
    assert max(display_width(line) for line in wide) == 120
    assert wide[1].count("…") == 2


def test_render_table_cuts_lines_when_nothing_can_shrink():
    lines = render_table(["A", "B"], [["x" * 50, "y" * 50]], width=30)
    assert all(display_width(line) <= 30 for line in lines)
    assert lines[1].endswith("…")


def test_render_table_without_rows_is_its_header():
    assert render_table(["A", "B"], []) == ["A  B"]


def test_markdown_table_escapes_pipes_and_squeezes_lines():
    table = markdown_table(["a", "b"], [["x | y", "line\nbreak"], ["back\\|slash", ""]])
    assert table.splitlines() == [
        "| a | b |",
        "|---|---|",
        "| x \\| y | line break |",
        "| back\\\\\\|slash |  |",
    ]


@given(st.lists(st.text(alphabet="a|\\ \n", max_size=12), min_size=1, max_size=4))
@settings(max_examples=200, deadline=None)
def test_markdown_cells_never_open_a_column(cells):
    """A GFM row splits on every `|` not escaped by a backslash (which itself may be escaped)."""
    row = markdown_table(["h"] * len(cells), [cells]).splitlines()[2]
    splits, index = 0, 0
    while index < len(row):
        if row[index] == "\\":
            index += 2
            continue
        splits += row[index] == "|"
        index += 1
    assert splits == len(cells) + 1


def test_every_control_and_only_a_control_is_replaced() -> None:
    every = "".join(chr(code) for code in range(0x2100))
    expected = "".join(
        char if char in "\n\t" or ord(char) not in CONTROLS else "\ufffd"
        for char in every.replace("\r", "\n")
    )
    assert printable(every) == expected
    for code in CONTROLS:
        if not chr(code).isspace():  # whitespace is squeezed to one space first
            assert one_line(f"a{chr(code)}b") == "a\ufffdb", hex(code)
