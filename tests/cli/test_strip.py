"""``nbchat strip``: nbchat's outputs removed, atomically, keeping what was asked to stay."""

from __future__ import annotations

import os
from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_output

from nbchat.cli.main import main
from nbchat.store.record import RECORD_MIME, RECORD_MIME_PATTERN

from support.command import assert_one_line_error, run
from support.nbfactory import make_chat_notebook

# -- strip -----------------------------------------------------------------------------------------


def add_raw_view(path: Path, cell: int) -> None:
    """Give a cell the raw-JSON view output nbchat shows with ``--raw``."""
    notebook = nbformat.read(path, as_version=4)
    record = notebook.cells[cell - 1].outputs[0].data[RECORD_MIME]
    view = new_output("display_data", data={"application/json": record})
    view.metadata = {"nbchat": {"raw": True}}
    notebook.cells[cell - 1].outputs.append(view)
    nbformat.write(notebook, path)


def has_record_mime(notebook: nbformat.NotebookNode) -> bool:
    return any(
        RECORD_MIME_PATTERN.match(mime)
        for cell in notebook.cells
        for output in cell.get("outputs", [])
        for mime in output.get("data", {})
    )


def test_strip_drops_nbchat_outputs(capsys, chat):
    add_raw_view(chat, 3)
    code, out, _ = run(capsys, "strip", chat)
    assert (code, out) == (0, f"stripped 5 records and 1 raw view from {chat}\n")
    notebook = nbformat.read(chat, as_version=4)
    nbformat.validate(notebook)
    assert not has_record_mime(notebook)
    assert [cell.get("outputs") for cell in notebook.cells[1:]] == [[]] * 6
    assert notebook.cells[2].source == "%%chat\nWhat is 2+2?"  # the prompts stay


def test_strip_keep_text(capsys, chat, turns):
    add_raw_view(chat, 3)
    code, _, _ = run(capsys, "strip", chat, "--keep-text")
    assert code == 0
    notebook = nbformat.read(chat, as_version=4)
    nbformat.validate(notebook)
    assert not has_record_mime(notebook)
    answer = notebook.cells[2].outputs
    assert len(answer) == 1  # the raw view is gone
    assert answer[0].data == {"text/markdown": turns[1].answer, "text/plain": turns[1].answer}
    # (notebooks written by nbchat 0.2 hold text/markdown; today's hold text/html: both kept)


def test_strip_into_another_file_leaves_the_original(capsys, chat, tmp_path):
    before = chat.read_bytes()
    target = tmp_path / "shared.ipynb"
    code, out, _ = run(capsys, "strip", chat, "-o", target)
    assert (code, out) == (0, f"stripped 5 records from {chat} into {target}\n")
    assert chat.read_bytes() == before
    assert not has_record_mime(nbformat.read(target, as_version=4))


def test_strip_nothing_to_strip_does_not_rewrite(capsys, tmp_path):
    path = make_chat_notebook(tmp_path / "plain.ipynb", [("x = 1", None)])
    stamp = path.stat().st_mtime_ns
    assert run(capsys, "strip", path)[1] == f"stripped 0 records from {path}\n"
    assert path.stat().st_mtime_ns == stamp


def test_strip_keeps_the_file_mode(capsys, chat):
    os.chmod(chat, 0o640)
    run(capsys, "strip", chat)
    assert chat.stat().st_mode & 0o777 == 0o640


@pytest.mark.parametrize("failure", [OSError(28, "No space left on device"), RuntimeError("bug")])
def test_strip_is_atomic(capsys, chat, monkeypatch, failure):
    before = chat.read_bytes()
    written = []

    def half_write(notebook, handle, **kwargs):
        handle.write('{"cells": [')  # a torn write
        written.append(handle.name)
        raise failure

    monkeypatch.setattr(nbformat, "write", half_write)
    if isinstance(failure, OSError):
        code, _, err = run(capsys, "strip", chat)
        assert code == 2
        assert_one_line_error(err, "No space left on device")
    else:  # a bug keeps its traceback, but not at the notebook's expense
        with pytest.raises(RuntimeError):
            main(["strip", str(chat)])
    assert written and written[0] != str(chat)
    assert chat.read_bytes() == before
    assert sorted(p.name for p in chat.parent.iterdir()) == ["chat.ipynb"]
