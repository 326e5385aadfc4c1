"""Thread context: notebook order, replace-in-place, --new, --system, rebuild from the file."""

from __future__ import annotations

from pathlib import Path

from nbchat.engine.threads import ThreadStore, Turn
from nbchat.store.keys import CellKey
from nbchat.store.notebook import NotebookRecords, StoredCell, read_records
from nbchat.store.record import RECORD_MIME, SYSTEM, TURN

from support.nbfactory import make_record, make_system_record


def answer(cell: str, prompt: str, thread: str = "default", new: bool = False) -> Turn:
    record = make_record(prompt, f"re: {prompt}", thread=thread)
    return Turn(CellKey.cell(cell), thread, TURN, tuple(record.messages), new, record)


def contents(messages: list[dict[str, str]]) -> list[str]:
    return [m["content"] for m in messages]


def saved(*cells: tuple[str, object]) -> NotebookRecords:
    """A saved notebook whose cell i has id cells[i][0] and optionally a record."""
    records = NotebookRecords(path=Path("nb.ipynb"))
    for index, (cell_id, record) in enumerate(cells):
        records.ids[cell_id] = index
        if record is not None:
            records.cells.append(StoredCell(index, CellKey.cell(cell_id), (record,)))
    return records


def file_without_ids(
    cells: list[tuple[str, object]], ids: list[object] | None = None
) -> NotebookRecords:
    """A notebook read from raw JSON whose code cells (source, record) carry ``ids`` (default:
    none at all, as nbformat < 4.5 writes them)."""
    raw = {"cells": [], "nbformat": 4, "nbformat_minor": 4}
    for index, (source, record) in enumerate(cells):
        cell = {"cell_type": "code", "source": source, "metadata": {}, "outputs": []}
        if ids is not None and ids[index] is not None:
            cell["id"] = ids[index]
        if record is not None:
            cell["outputs"] = [{"output_type": "display_data", "metadata": {},
                                "data": {RECORD_MIME: record.to_json()}}]  # fmt: skip
        raw["cells"].append(cell)
    return read_records(raw, Path("old.ipynb"))


def old_chat(prompts: list[str]) -> list[tuple[str, object]]:
    """Cells "%%chat\n<prompt>" answered as a thread, each with its record."""
    cells, context = [], []
    for prompt in prompts:
        messages = [*context, {"role": "user", "content": prompt}]
        record = make_record(prompt, f"stored {prompt}", messages=messages)
        cells.append((f"%%chat\n{prompt}", record))
        context = [*messages, {"role": "assistant", "content": f"stored {prompt}"}]
    return cells


def test_context_is_the_turns_above_in_first_run_order():
    store = ThreadStore()
    for cell in ("a", "b", "c"):
        store.put(answer(cell, cell))
    assert contents(store.context("default", CellKey.cell("c"), None)) == [
        "a",
        "re: a",
        "b",
        "re: b",
    ]
    assert contents(store.context("default", CellKey.cell("b"), None)) == ["a", "re: a"]
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
    assert contents(store.context("default", CellKey.cell("c"), None)) == [
        "a",
        "re: a",
        "b2",
        "re: b2",
    ]


def test_saved_order_beats_run_order_and_unsaved_cells_come_last():
    store = ThreadStore()
    for cell in ("c", "a", "new", "b"):  # run out of order; "new" is not saved yet
        store.put(answer(cell, cell))
    notebook = saved(("a", None), ("b", None), ("c", None))
    assert contents(store.context("default", CellKey.cell("c"), notebook)) == [
        "a",
        "re: a",
        "b",
        "re: b",
    ]
    assert contents(store.context("default", CellKey.cell("new"), notebook))[-2:] == ["c", "re: c"]


def test_new_thread_cuts_the_context_and_system_applies_below():
    store = ThreadStore()
    store.put(answer("a", "a"))
    store.put(
        Turn(CellKey.cell("s"), "default", SYSTEM, ({"role": "system", "content": "Be brief."},))
    )
    store.put(answer("b", "b"))
    store.put(answer("c", "c", new=True))
    store.put(answer("d", "d"))
    assert store.context("default", CellKey.cell("b"), None)[0] == {
        "role": "system",
        "content": "Be brief.",
    }
    assert contents(store.context("default", CellKey.cell("d"), None)) == ["c", "re: c"]
    assert contents(
        store.context("default", CellKey.cell("d"), None, default_system="Default")
    ) == [
        "Default",
        "c",
        "re: c",
    ]


def test_failed_turns_are_not_context_and_threads_do_not_mix():
    store = ThreadStore()
    store.put(answer("a", "a"))
    store.put(
        Turn(CellKey.cell("b"), "default", TURN, ({"role": "user", "content": "b"},))
    )  # failed
    store.put(answer("x", "x", thread="other"))
    store.put(answer("c", "c"))
    assert contents(store.context("default", CellKey.cell("c"), None)) == ["a", "re: a"]
    assert contents(store.context("other", None, None)) == ["x", "re: x"]


def test_turns_are_rebuilt_from_the_saved_notebook_and_session_turns_win():
    notebook = saved(
        ("s", make_system_record("Be kind.")),
        ("a", make_record("a", "stored a")),
        ("b", make_record("b", "stored b")),
        ("c", None),
    )
    store = ThreadStore()
    assert store.context("default", CellKey.cell("c"), notebook) == [
        {"role": "system", "content": "Be kind."},
        {"role": "user", "content": "a"},
        {"role": "assistant", "content": "stored a"},
        {"role": "user", "content": "b"},
        {"role": "assistant", "content": "stored b"},
    ]
    store.put(answer("b", "b edited"))
    assert contents(store.context("default", CellKey.cell("c"), notebook))[-2:] == [
        "b edited",
        "re: b edited",
    ]
    assert contents(store.context("default", None, notebook, use_notebook=False)) == [
        "b edited",
        "re: b edited",
    ]


def test_reset_forgets_this_sessions_turns_and_the_files_stand_in_for_them():
    # Issue 17: after a reset the context no longer matched what the notebook shows.
    notebook = saved(("a", make_record("a", "stored a")), ("b", None))
    store = ThreadStore()
    store.put(answer("a", "a, run again"))
    store.put(answer("x", "x", thread="other"))
    assert contents(store.context("default", CellKey.cell("b"), notebook)) == [
        "a, run again",
        "re: a, run again",
    ]
    assert store.reset("default") == 1
    assert contents(store.context("default", CellKey.cell("b"), notebook)) == ["a", "stored a"]
    assert contents(store.context("other", None, notebook)) == ["x", "re: x"]
    assert store.reset() == 1
    assert store.context("other", None, notebook) == []
    assert contents(store.context("default", CellKey.cell("b"), notebook)) == ["a", "stored a"]


def test_runs_without_cell_ids_are_each_a_new_turn():
    store = ThreadStore()
    first, second = store.anonymous_key(), store.anonymous_key()
    assert first != second
    store.put(answer(first, "same"))
    store.put(answer(second, "same"))
    assert contents(store.context("default", None, None)) == ["same", "re: same"] * 2


def test_a_file_without_cell_ids_never_gives_a_cell_itself_or_the_cells_below():
    # JupyterLab invents ids for a nbformat 4.4 file: none of them is in the file.
    notebook = file_without_ids(old_chat(["q1", "q2", "q3"]))
    store = ThreadStore()
    first = store.context("default", CellKey.cell("lab-id-1"), notebook, source="%%chat\nq1")
    assert first == []
    second = store.context("default", CellKey.cell("lab-id-2"), notebook, source="%%chat\nq2")
    assert contents(second) == ["q1", "stored q1"]
    store.put(answer("lab-id-1", "q1"))  # the first cell ran again in this session
    third = store.context("default", CellKey.cell("lab-id-3"), notebook, source="%%chat\nq3")
    assert contents(third) == ["q1", "re: q1", "q2", "stored q2"]


def test_identical_anonymous_cells_are_told_apart_in_run_order():
    notebook = file_without_ids(old_chat(["Go on.", "Go on.", "Go on."]))
    store = ThreadStore()
    for number, cell in enumerate(("a", "b", "c")):
        window = store.window("default", CellKey.cell(cell), notebook, source="%%chat\nGo on.")
        assert window.index == number
        store.put(answer(cell, "Go on."))
    assert len(store.context("default", CellKey.cell("c"), notebook, source="%%chat\nGo on.")) == 4


def test_an_edited_cell_that_cannot_be_found_uses_no_anonymous_turns_and_says_so():
    notebook = file_without_ids(old_chat(["q1", "q2", "q3"]))
    store = ThreadStore()
    window = store.window(
        "default", CellKey.cell("lab-id-2"), notebook, source="%%chat\nq2, edited"
    )
    assert window.unplaced and window.turns == []


def test_an_id_recorded_by_an_earlier_session_finds_an_anonymous_cell():
    cells = old_chat(["q1", "q2"])
    above = [{"role": "user", "content": "q1"}, {"role": "assistant", "content": "stored q1"}]
    record = make_record(
        "q2", "stored q2", cell_id="kept-id", messages=[*above, cells[1][1].messages[0]]
    )
    cells[1] = (cells[1][0], record)
    notebook = file_without_ids(cells)
    window = ThreadStore().window(
        "default", CellKey.cell("kept-id"), notebook, source="%%chat\nq2 edited"
    )
    assert window.index == 1 and contents(window.messages()) == ["q1", "stored q1"]


def test_repeated_ids_in_the_raw_file_do_not_mix_up_the_cells():
    # A copied cell keeps its id in the raw JSON (nbformat would rename it on its next write).
    notebook = file_without_ids(old_chat(["q1", "q2", "q3"]), ids=["x", "x", "z"])
    assert notebook.ids == {"z": 2}
    store = ThreadStore()
    assert store.context("default", CellKey.cell("x"), notebook, source="%%chat\nq1") == []
    assert contents(
        store.context("default", CellKey.cell("new-id"), notebook, source="%%chat\nq2")
    ) == [
        "q1",
        "stored q1",
    ]
    assert contents(store.context("default", CellKey.cell("z"), notebook, source="%%chat\nq3")) == [
        "q1", "stored q1", "q2", "stored q2",
    ]  # fmt: skip


def test_the_files_turns_are_made_once_per_reading_of_the_file():
    notebook = saved(("a", make_record("a", "stored a")), ("b", None))
    store = ThreadStore()
    first = store.window("default", CellKey.cell("b"), notebook).turns
    again = store.window("default", CellKey.cell("b"), notebook).turns
    assert first[0] is again[0], "the same turn: its digests are not computed again"
    reread = saved(("a", make_record("a", "stored a")), ("b", None))
    assert store.window("default", CellKey.cell("b"), reread).turns[0] is not first[0]
