"""Reading the saved notebook: parse once, survive Ctrl-C, find records in either place."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import nbchat.store.notebook as notebook_module
from nbchat.errors import NotebookError
from nbchat.store.notebook import NotebookWatcher, iter_output_records

from support.nbfactory import make_chat_notebook, make_record


def test_an_interrupted_parse_is_retried_by_the_next_cell(tmp_path, monkeypatch):
    path = make_chat_notebook(tmp_path / "n.ipynb", [("%%chat\nHello", make_record("Hello", "Hi"))])
    real = notebook_module.read_notebook_json
    calls = []

    def interrupted_once(file: Path) -> dict:
        calls.append(file)
        if len(calls) == 1:
            raise KeyboardInterrupt
        return real(file)

    monkeypatch.setattr(notebook_module, "read_notebook_json", interrupted_once)
    watcher = NotebookWatcher(path)
    with pytest.raises(NotebookError, match=r"Interrupted while reading n\.ipynb"):
        watcher.get()
    records = watcher.get()
    assert records is not None and len(records.by_key) == 1, "not taken for a parsed file"
    assert watcher.get() is records and len(calls) == 2, "and then parsed once"


def test_a_raw_view_marked_as_the_record_is_a_record():
    record = make_record("Hello", "Hi").to_json()
    outputs = [
        {"output_type": "display_data", "data": {"text/markdown": "Hi"}, "metadata": {}},
        {
            "output_type": "display_data",
            "data": {"application/json": record, "text/plain": "[summary]"},
            "metadata": {"nbchat": {"raw": True, "record": 1}},
        },
        {  # `%chat raw` shows a copy: a view, not a record
            "output_type": "display_data",
            "data": {"application/json": record, "text/plain": json.dumps(record)},
            "metadata": {"nbchat": {"raw": True}},
        },
    ]
    assert list(iter_output_records(outputs)) == [(1, record)]
