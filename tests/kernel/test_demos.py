"""Every demo notebook replays offline in a real kernel, without a request."""

from __future__ import annotations

import re
import shutil
import time

import nbformat
from nbclient import NotebookClient

from support.demos import answer_outputs, batch_outputs, demo
from support.paths import DEMOS

MAX_SECONDS = 15.0
# The summary of a batch whose every item was replayed (no request, so no tokens counted; what
# the replays saved, when the notebook prices its model).
ALL_REPLAYED = re.compile(
    r"(?:--map \S+|nbchat\.map): (\d+) items? · (\d+) answered \((\d+) replayed\)"
    r"(?: · saved \$[\d.]+)? · [\d.]+ s"
)


SPENT = re.compile(r"^Spent: ([\d,]+) requests?, ([\d,]+) → ([\d,]+) tokens", re.MULTILINE)


def spent_row(notebook: nbformat.NotebookNode) -> list[list[str]]:
    """What every ``%chat usage`` output says was spent: requests, prompt and completion
    tokens."""
    rows = []
    for cell in notebook.cells:
        if cell.cell_type == "code" and cell.source.strip() == "%chat usage":
            (output,) = cell.outputs
            found = SPENT.search(output["data"]["text/plain"])
            assert found is not None, output["data"]["text/plain"]
            rows.append(list(found.groups()))
    return rows


def plain_output(notebook: nbformat.NotebookNode, source: str) -> str:
    """The text/plain result of the code cell whose source is ``source``."""
    (cell,) = [c for c in notebook.cells if c.cell_type == "code" and c.source == source]
    (output,) = cell.outputs
    return output["data"]["text/plain"]


@demo
def test_a_demo_replays_offline_without_a_request(path, tmp_path, monkeypatch):
    committed = path.read_bytes()
    folder = shutil.copytree(DEMOS, tmp_path / "demos", ignore=shutil.ignore_patterns("__py*"))
    copy = folder / path.name
    monkeypatch.setenv("NBCHAT_OFFLINE", "1")
    monkeypatch.setenv("NBCHAT_NOTEBOOK", str(copy))
    notebook = nbformat.read(copy, as_version=4)
    stored = len(answer_outputs(notebook))
    batches = len(batch_outputs(notebook))
    recorded = nbformat.read(path, as_version=4)
    client = NotebookClient(
        notebook,
        timeout=60,
        kernel_name="python3",
        resources={"metadata": {"path": str(folder)}},
        store_widget_state=False,
    )
    started = time.monotonic()
    client.execute()  # raises CellExecutionError on any cell error
    seconds = time.monotonic() - started

    assert len(answer_outputs(notebook)) == stored
    markers = [
        output["metadata"]["nbchat"]
        for cell in notebook.cells
        for output in cell.get("outputs", [])
        if "replayed" in output.get("metadata", {}).get("nbchat", {})
        and not output["metadata"]["nbchat"].get("batch")  # a batch counts its items
    ]
    assert len(markers) == stored and all(marker["replayed"] is True for marker in markers)
    assert all(row == ["0", "0", "0"] for row in spent_row(notebook)), "nothing was sent"
    errors = [o for c in notebook.cells for o in c.get("outputs", []) if o.output_type == "error"]
    assert errors == []
    if path.stem == "tools_and_schemas":
        assert plain_output(notebook, "calls") == "[]", "a replayed tool turn ran a function"
    if path.stem == "mcp_tools":  # recorded with the server running; replayed, never started
        assert "running" in plain_output(recorded, "%chat mcp")
        assert "not started" in plain_output(notebook, "%chat mcp")
    assert len(batch_outputs(notebook)) == batches
    for output in batch_outputs(notebook):  # every item replayed: none asked, none failed
        line = output["data"]["text/plain"].splitlines()[0]
        match = ALL_REPLAYED.fullmatch(line)
        assert match and len(set(match.groups())) == 1, line
    if path.stem == "batch":  # the replayed labels are the recorded ones, bound again
        counts = 'labelled["sentiment"].value_counts()'
        assert plain_output(notebook, counts) == plain_output(recorded, counts)
    assert seconds < MAX_SECONDS
    assert path.read_bytes() == committed
