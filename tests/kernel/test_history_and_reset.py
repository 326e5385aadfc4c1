"""``%chat history`` and ``%chat reset`` in a real kernel: a cell's context is the answered turns
the notebook shows above it (this session's, else the saved file's), whatever the notebook went
through, and both commands say exactly what a ``%%chat`` cell at their place would send."""

from __future__ import annotations

from pathlib import Path

from support.fake_openai import Fault
from support.kernel_driver import Execution, Kernel, save_notebook

CELLS = [
    ("c1", "%%chat\nA"),
    ("c2", "%%chat\nB"),
    ("h", "%chat history"),
    ("c3", "%%chat\nC"),
    ("c4", "%%chat\nD"),
]


def history_rows(execution: Execution) -> list[list[str]]:
    """The rows of the plain-text history table: [#, role, tokens, content]."""
    lines = execution.data("text/plain")[0].split("\n\n")[0].splitlines()[2:]
    return [line.split(None, 3) for line in lines]


def run_all(kernel: Kernel, cells: list[tuple[str, str]]) -> dict[str, Execution]:
    return {cell_id: kernel.run(source, cell_id=cell_id, check=True) for cell_id, source in cells}


def use_file(kernel: Kernel, path: Path) -> None:
    kernel.run(f"import os; os.environ['NBCHAT_NOTEBOOK'] = {str(path)!r}", check=True)


def test_history_is_what_a_cell_in_its_place_sends_however_the_notebook_got_there(
    kernel: Kernel, server, chat_env: Path
) -> None:
    path = chat_env / "history.ipynb"
    use_file(kernel, path)
    runs = run_all(kernel, CELLS)
    expected = [
        ["1", "user", "~1", "A"],
        ["2", "assistant", "~3", "Reply #1 to: A"],
        ["3", "user", "~1", "B"],
        ["4", "assistant", "~3", "Reply #2 to: B"],
    ]
    assert history_rows(runs["h"]) == expected
    below = server.chat_requests[2].body["messages"]  # what c3, the cell below, sent
    assert [m["content"] for m in below[:-1]] == [row[3] for row in expected]
    save_notebook(path, [(cell_id, source, runs[cell_id]) for cell_id, source in CELLS])

    kernel.restart()  # Restart + Run All: the cells below h are in the file, not yet run
    use_file(kernel, path)
    again = run_all(kernel, CELLS)
    assert history_rows(again["h"]) == expected, "never a turn below the cell"
    kernel.run("%reload_ext nbchat", check=True)  # a fresh session: only the file remains
    assert history_rows(kernel.run("%chat history", cell_id="h", check=True)) == expected
    assert len(server.chat_requests) == 4, "every answer replayed"


def test_history_shows_tool_calls_and_long_messages_whole(kernel: Kernel, server) -> None:
    kernel.run("def level(station: str) -> float:\n    return 4.2", check=True)
    server.script(Fault(tool_calls=[("level", {"station": "Brest"})]))
    kernel.run("%%chat --tools level\nHow high is the water in Brest?", cell_id="c1", check=True)
    long = "Tell me about tides, " + "and then some more, " * 8 + "please."
    kernel.run(f"%%chat\n{long}", cell_id="c2", check=True)
    shown = kernel.run("%chat history", cell_id="h", check=True)
    rows = history_rows(shown)
    roles = ["user", "assistant", "tool", "assistant", "user", "assistant"]
    assert [row[1] for row in rows] == roles
    call = 'level({"station": "Brest"})'
    assert rows[1][3] == f"→ {call}", "a tool-calling message is no empty row"
    assert rows[2][3] == f"{call} → 4.2"
    assert rows[4][3].endswith("…"), "a long message is clipped in the table"
    plain, html = shown.data("text/plain")[0], shown.data("text/html")[0]
    assert f"\n\n5 · user, whole:\n{long}" in plain, "and shown whole below it"
    assert "<summary>5 · user, whole</summary><pre " in html and f">{long}</pre>" in html
    assert "3 · tool, whole" not in plain, "its row holds all of it"


def test_reset_leaves_the_saved_answers_as_context_and_says_what_a_cell_sends(
    kernel: Kernel, server, chat_env: Path
) -> None:
    path = chat_env / "reset.ipynb"
    use_file(kernel, path)
    cells = [("c1", "%%chat\nA"), ("c2", "%%chat\nB")]
    runs = run_all(kernel, cells)
    save_notebook(path, [(cell_id, source, runs[cell_id]) for cell_id, source in cells])
    reset = kernel.run("%chat reset --all", cell_id="r", check=True)
    assert reset.stdout.strip() == (
        "Forgot 2 turns of every thread run in this kernel; the saved notebook's answers count "
        "in their place until the cells run again. A %%chat cell here would now send 2 earlier "
        "turns of thread 'default' (%chat history lists them; %%chat --new starts a thread "
        "afresh)."
    )
    kernel.run("%%chat\nC", cell_id="c3", check=True)
    sent = [m["content"] for m in server.chat_requests[-1].body["messages"]]
    assert sent == ["A", "Reply #1 to: A", "B", "Reply #2 to: B", "C"], "what the notebook shows"
    asked = len(server.chat_requests)
    kernel.run("%%chat\nB", cell_id="c2", check=True)
    assert len(server.chat_requests) == asked, "a cell above run again has its context: replayed"


def test_reset_without_a_saved_notebook_says_a_cell_sends_nothing_earlier(
    kernel: Kernel, server
) -> None:
    run_all(kernel, [("c1", "%%chat\nA"), ("c2", "%%chat --thread t\nB")])
    reset = kernel.run("%chat reset --thread t", cell_id="r", check=True)
    assert reset.stdout.strip() == (
        "Forgot 1 turn of thread 't' run in this kernel; no saved notebook is read, so those "
        "cells count again once they run again. A %%chat cell here would now send no earlier "
        "turn of thread 't' (%chat history lists them; %%chat --new starts a thread afresh)."
    )
    kernel.run("%%chat --thread t\nC", cell_id="c3", check=True)
    assert [m["content"] for m in server.chat_requests[-1].body["messages"]] == ["C"]
    kernel.run("%%chat\nD", cell_id="c4", check=True)
    assert len(server.chat_requests[-1].body["messages"]) == 3, "thread 'default' is kept"
