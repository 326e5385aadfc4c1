"""The demo notebooks as committed: they hold their answers and replay them offline.

Rebuild them with ``python demo_notebooks/build_demos.py`` after changing ``specs.py``.
"""

from __future__ import annotations

import json
import re

import nbformat

from nbchat.cli.read import verify_notebook
from nbchat.store.batch_state import BATCHES_MIME
from nbchat.store.secret_scan import find_secrets

from support.demos import NOTEBOOKS, answer_outputs, batch_outputs, demo

WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"
KEY_LIKE = re.compile(r"sk-[A-Za-z0-9_-]{6,}")
# What each demo is about, as its saved answers show it: folded thinking, folded tool calls, an
# image sent as a part of a message, a batch run again and replayed whole, answers from a
# provider's batch.
SHOWS = {
    "reasoning": ("<details><summary>Thinking · ",),
    "tools_and_schemas": ("<details><summary>Tools · 2 calls · lookup",),
    "data_and_figures": ('"image_url": {"url": "data:image/png;base64,',),
    "batch": ("--map texts: 10 items · 10 answered (10 replayed) · ", '"batch_id": "batch-'),
    "mcp_tools": ("<details><summary>Tools · 2 calls · tide",),
}


def test_every_demo_is_there():
    names = {path.stem for path in NOTEBOOKS}
    assert {"quickstart", "threads", "cache", "raw_json", "providers"} <= names
    assert {"reasoning", "tools_and_schemas", "data_and_figures", "batch"} <= names


@demo
def test_a_committed_demo_holds_its_answers_and_nothing_private(path):
    text = path.read_text(encoding="utf-8")
    notebook = nbformat.reads(text, as_version=4)
    nbformat.validate(notebook)
    stored = answer_outputs(notebook) + batch_outputs(notebook)
    assert stored, "no stored answer: rebuild with demo_notebooks/build_demos.py"
    assert WIDGET_VIEW not in text and "widgets" not in notebook.metadata
    assert not KEY_LIKE.search(text)
    assert list(find_secrets(json.loads(text))) == []
    count, problems = verify_notebook(notebook)
    assert count and problems == []
    assert "the `demo` profile" in text and "--refresh" in text, (
        "the note on where answers come from"
    )
    shown = json.dumps(stored, ensure_ascii=False)
    assert all(part in shown for part in SHOWS.get(path.stem, ()))
    assert BATCHES_MIME not in text, "a provider batch still pending: rebuild the demo"
