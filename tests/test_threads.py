"""Thread context: notebook order, replace-in-place, --new, --system, rebuild from the file."""

from __future__ import annotations

from pathlib import Path

from nbfactory import make_record, make_system_record

from nbchat.notebook import NotebookRecords, StoredCell
from nbchat.threads import ThreadStore, Turn


def answer(cell: str, prompt: str, thread: str = "default", new: bool = False) -> Turn:
    return Turn(cell, thread, "answer", prompt, f"re: {prompt}", new)


def contents(messages: list[dict[str, str]]) -> list[str]:
    return [m["content"] for m in messages]


def saved(*cells: tuple[str, object]) -> NotebookRecords:
    """A saved notebook whose cell i has id cells[i][0] and optionally a record."""
    records = NotebookRecords(path=Path("nb.ipynb"))
    for index, (cell_id, record) in enumerate(cells):
        records.position[cell_id] = index
        if record is not None:
            records.cells.append(StoredCell(index, cell_id, "", (record,)))
    return records


def test_context_is_the_turns_above_in_first_run_order():
    store = ThreadStore()
    for cell in ("a", "b", "c"):
        store.put(answer(cell, cell))
    assert contents(store.context("default", "c", None)) == ["a", "re: a", "b", "re: b"]
    assert contents(store.context("default", "b", None)) == ["a", "re: a"]
    assert contents(store.context("default", None, None)) == [
        "a",
        "re: a",
        "b",
        "re: b",
        "c",
        "re: c",
    ]


def test_replacing_a_turn_keeps_its_place():
    store = ThreadStore()
    for cell in ("a", "b", "c"):
        store.put(answer(cell, cell))
    store.put(answer("b", "b2"))
    assert contents(store.context("default", "c", None)) == ["a", "re: a", "b2", "re: b2"]


def test_saved_order_beats_run_order_and_unsaved_cells_come_last():
    store = ThreadStore()
    for cell in ("c", "a", "new", "b"):  # run out of order; "new" is not saved yet
        store.put(answer(cell, cell))
    notebook = saved(("a", None), ("b", None), ("c", None))
    assert contents(store.context("default", "c", notebook)) == ["a", "re: a", "b", "re: b"]
    assert contents(store.context("default", "new", notebook))[-2:] == ["c", "re: c"]


def test_new_thread_cuts_the_context_and_system_applies_below():
    store = ThreadStore()
    store.put(answer("a", "a"))
    store.put(Turn("s", "default", "system", "Be brief.", None))
    store.put(answer("b", "b"))
    store.put(answer("c", "c", new=True))
    store.put(answer("d", "d"))
    assert store.context("default", "b", None)[0] == {"role": "system", "content": "Be brief."}
    assert contents(store.context("default", "d", None)) == ["c", "re: c"]
    assert contents(store.context("default", "d", None, default_system="Default")) == [
        "Default",
        "c",
        "re: c",
    ]


def test_failed_turns_are_not_context_and_threads_do_not_mix():
    store = ThreadStore()
    store.put(answer("a", "a"))
    store.put(Turn("b", "default", "answer", "b", None))
    store.put(answer("x", "x", thread="other"))
    store.put(answer("c", "c"))
    assert contents(store.context("default", "c", None)) == ["a", "re: a"]
    assert contents(store.context("other", None, None)) == ["x", "re: x"]


def test_turns_are_rebuilt_from_the_saved_notebook_and_session_turns_win():
    notebook = saved(
        ("s", make_system_record("Be kind.")),
        ("a", make_record("a", "stored a")),
        ("b", make_record("b", "stored b")),
        ("c", None),
    )
    store = ThreadStore()
    assert store.context("default", "c", notebook) == [
        {"role": "system", "content": "Be kind."},
        {"role": "user", "content": "a"},
        {"role": "assistant", "content": "stored a"},
        {"role": "user", "content": "b"},
        {"role": "assistant", "content": "stored b"},
    ]
    store.put(answer("b", "b edited"))
    assert contents(store.context("default", "c", notebook))[-2:] == ["b edited", "re: b edited"]
    assert contents(store.context("default", "c", notebook, use_notebook=False)) == [
        "b edited",
        "re: b edited",
    ]


def test_reset_forgets_a_thread_including_the_file():
    notebook = saved(("a", make_record("a", "stored a")), ("b", None))
    store = ThreadStore()
    store.put(answer("x", "x", thread="other"))
    assert store.reset("default") == 0
    assert store.context("default", "b", notebook) == []
    assert contents(store.context("other", None, notebook)) == ["x", "re: x"]
    store.reset()
    assert store.context("other", None, notebook) == []


def test_runs_without_cell_ids_are_each_a_new_turn():
    store = ThreadStore()
    first, second = store.anonymous_key(), store.anonymous_key()
    assert first != second
    store.put(answer(first, "same"))
    store.put(answer(second, "same"))
    assert contents(store.context("default", None, None)) == ["same", "re: same"] * 2
