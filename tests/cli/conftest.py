"""A two-thread chat notebook written by `nbfactory`, for the commands that read one."""

from __future__ import annotations

import pytest

from support.nbfactory import make_chat_notebook, make_record, make_system_record


@pytest.fixture
def turns():
    """The records of a two-thread chat, in notebook order."""
    return [
        make_system_record("You are terse.", thread="default"),
        make_record("What is 2+2?", "4", usage=(11, 1)),
        make_record(
            "Review this long function please, every line of it",
            "It is fine but too long " * 10,
            thread="review",
            model="peer-large",
            usage=(120, 400),
            finish_reason="length",
        ),
        make_record("And 3+3?", "6", usage=(20, 2)),
        make_record("No usage here", "Sure.", thread="review", model="peer-large", usage=None),
    ]


@pytest.fixture
def chat(tmp_path, turns):
    """A notebook with the records above and one plain code cell among them.

    Notebook cells: 1 Markdown title, 2 system, 3 answer, 4 plain code, 5..7 answers.
    """
    cells = [("%%chat --system\nYou are terse.", turns[0]), ("%%chat\nWhat is 2+2?", turns[1])]
    cells.append(("x = 1", None))
    cells += [(f"%%chat\n{record.prompt}", record) for record in turns[2:]]
    return make_chat_notebook(tmp_path / "chat.ipynb", cells)
