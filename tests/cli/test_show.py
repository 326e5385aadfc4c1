"""``nbchat show``: the turns of a notebook in order, fitted to the terminal."""

from __future__ import annotations

import re

import pytest

from nbchat._text import display_width
from nbchat.cli import help as cli_help
from nbchat.cli.format import PROMPT_MIN

from support.command import run
from support.nbfactory import make_batch_json, make_chat_notebook, make_record

# -- show ------------------------------------------------------------------------------------------


def test_show_lists_turns_in_notebook_order(capsys, chat):
    code, out, _ = run(capsys, "show", chat, "--width", "200")
    assert code == 0
    header, *rows = out.splitlines()
    assert header.split()[:6] == ["CELL", "THREAD", "MODEL", "TOKENS", "FINISH", "STORED"]
    assert [row.split()[0] for row in rows] == ["2", "3", "5", "6", "7"]
    assert rows[1].split()[:5] == ["3", "default", "peer-small", "11→1", "stop"]
    assert rows[1].split()[5:7] == ["2024-05-01", "12:34"]
    assert rows[2].split()[:5] == ["5", "review", "peer-large", "120→400", "length"]
    assert rows[4].split()[:5] == ["7", "review", "peer-large", "-", "stop"]
    assert "What is 2+2?" in rows[1]
    # columns line up: every row has its model where the header has MODEL
    column = header.index("MODEL")
    assert {row[column:].split()[0] for row in rows} == {"-", "peer-small", "peer-large"}


REVIEW = "Classify the sentiment of this customer review, in one word: {item}"


def test_show_names_the_map_of_an_item_and_shows_the_item(capsys, tmp_path):
    raw = make_batch_json(REVIEW, ["great product", "awful, broke in a day", "fine"])
    path = make_chat_notebook(
        tmp_path / "map.ipynb",
        [
            ("%%chat\nHi", make_record("Hi", "Hello")),
            (f"%%chat --map reviews -o labels\n{REVIEW}", raw),
            (f"nbchat.map({REVIEW!r}, reviews)", make_batch_json(REVIEW, ["meh"])),
        ],
    )
    code, out, _ = run(capsys, "show", path, "--width", "80")
    assert code == 0
    header, *rows = out.splitlines()
    assert header.split() == ["CELL", "THREAD", "MODEL", "TOKENS", "PROMPT", "ANSWER"]
    cells = [re.split(r"\s{2,}", row.strip()) for row in rows]
    assert [(row[0], row[1], row[4], row[5]) for row in cells] == [
        ("2", "default", "Hi", "Hello"),
        ("3", "--map reviews", "item 0: great product", "answer 0"),
        ("3", "--map reviews", "item 1: awful, broke in a day", "answer 1"),
        ("3", "--map reviews", "item 2: fine", "answer 2"),
        ("4", "nbchat.map", "item 0: meh", "answer 0"),
    ]


def test_show_system_record_is_a_thread_system_prompt(capsys, chat):
    _, out, _ = run(capsys, "show", chat, "--width", "120")
    system = out.splitlines()[1]
    assert system.split()[:5] == ["2", "default", "-", "-", "-"]
    assert "(system) You are terse." in system
    assert system.endswith("You are terse.")  # and no answer


LONG_PROMPT = "Please review the following function line by line and tell me what it does " * 3
LONG_ANSWER = "It parses the configuration file, then validates every entry against " * 5


@pytest.fixture
def long_chat(tmp_path):
    """One thread, one model, long prompts and answers (one cut short by the token limit)."""
    records = [
        make_record(f"{n}. {LONG_PROMPT}", LONG_ANSWER, usage=(1200, 450)) for n in range(1, 4)
    ]
    records.append(make_record(LONG_PROMPT, LONG_ANSWER, usage=(99, 4096), finish_reason="length"))
    return make_chat_notebook(tmp_path / "long.ipynb", [(r.prompt, r) for r in records])


def shown_prompt(line: str) -> int:
    """How many characters of its prompt a row of `long_chat` shows."""
    prompts = [f"{n}. {LONG_PROMPT}" for n in range(1, 4)] + [LONG_PROMPT]
    return max(
        (end for prompt in prompts for end in range(len(prompt), 8, -1) if prompt[:end] in line),
        default=0,
    )


@pytest.mark.parametrize("width", [60, 80, 100, 160])
def test_show_fits_the_width_and_keeps_the_prompt_readable(capsys, long_chat, width):
    code, out, _ = run(capsys, "show", long_chat, "--width", width)
    assert code == 0
    lines = out.splitlines()
    assert max(display_width(line) for line in lines) <= width
    rows = [line for line in lines if line.lstrip()[:1].isdigit()]
    assert len(rows) == 4
    for row in rows:
        assert shown_prompt(row) >= 30
        assert "It parses" in row  # the answer has a column too
    assert "[length] It parses" in out or " length " in out  # a cut answer is always marked


def test_show_at_80_columns_says_the_common_model_once(capsys, long_chat):
    _, out, _ = run(capsys, "show", long_chat, "--width", "80")
    note, header, *_ = out.splitlines()
    assert note == "model: peer-small"
    assert header.split() == ["CELL", "THREAD", "TOKENS", "PROMPT", "ANSWER"]
    assert "[length] It parses" in out  # the finish reason moved into the answer


def test_show_at_160_columns_has_every_column(capsys, long_chat):
    _, out, _ = run(capsys, "show", long_chat, "--width", "160")
    header = out.splitlines()[0]
    assert header.split()[:7] == ["CELL", "THREAD", "MODEL", "TOKENS", "FINISH", "STORED", "(UTC)"]
    row = out.splitlines()[1]
    assert shown_prompt(row) > PROMPT_MIN  # the room left is shared with the answer


def test_show_previews_end_in_an_ellipsis_when_cut(capsys, chat):
    _, out, _ = run(capsys, "show", chat, "--width", "100")
    lines = out.splitlines()
    assert max(len(line) for line in lines) <= 100
    assert any(line.endswith("…") for line in lines)


def test_show_defaults_to_the_terminal_width(capsys, long_chat, monkeypatch):
    monkeypatch.setenv("COLUMNS", "70")
    _, out, _ = run(capsys, "show", long_chat)
    assert max(display_width(line) for line in out.splitlines()) == 70


def test_show_width_has_a_minimum(capsys, chat, monkeypatch):
    monkeypatch.setenv("COLUMNS", "5")
    _, out, _ = run(capsys, "show", chat)
    assert max(display_width(line) for line in out.splitlines()) <= cli_help.MIN_WIDTH
    assert "What is" in out  # the prompt still gets the room


def test_show_counts_wide_characters_as_two_columns(capsys, tmp_path):
    record = make_record(
        "潮汐是什么？请详细解释一下春季大潮和小潮的区别。" * 3, "潮汐是由月球引力引起的。" * 10
    )
    path = make_chat_notebook(tmp_path / "zh.ipynb", [(record.prompt, record)])
    _, out, _ = run(capsys, "show", path, "--width", "80")
    assert max(display_width(line) for line in out.splitlines()) <= 80
    assert "潮汐是什么？请详细解释" in out


def test_show_prints_no_terminal_control_from_a_record(capsys, tmp_path):
    record = make_record(
        "hi\x1b[2J\x1b]0;pwned\x07", "\x1b[31mred\u202e", thread="t\x1b[1m", model="m\x9b1m"
    )
    path = make_chat_notebook(tmp_path / "esc.ipynb", [(record.prompt, record)])
    code, out, _ = run(capsys, "show", path, "--width", "100")
    assert code == 0
    assert not any(ch in out for ch in "\x1b\x07\x9b\u202e")
    assert "hi\ufffd[2J" in out


def test_show_thread_filter(capsys, chat):
    _, out, _ = run(capsys, "show", chat, "--thread", "review", "--width", "160")
    rows = out.splitlines()[1:]
    assert [row.split()[:2] for row in rows] == [["5", "review"], ["7", "review"]]


def test_show_empty_notebook_says_so(capsys, tmp_path):
    path = make_chat_notebook(tmp_path / "plain.ipynb", [("print('hi')", None)])
    code, out, _ = run(capsys, "show", path)
    assert code == 0
    assert out == f"no nbchat records in {path}\n"
    code, out, _ = run(capsys, "show", path, "--thread", "nope")
    assert out == f"no nbchat records in thread 'nope' in {path}\n"
