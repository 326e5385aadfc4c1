"""Notebooks written by nbchat 0.1 keep working in a real kernel: every answer replays offline
with its threads, before and after ``nbchat upgrade`` (tests/cli/test_v1_notebooks.py reads
the same file with the command).

``tests/support/fixtures/nbchat-0.1.ipynb`` was written by nbchat 0.1 itself (commit a1e8ab9) in a
real kernel, as JupyterLab would have saved it: a system prompt, two threads, ``-t``, ``--raw``,
``--new``, an answer replayed into a second thread, a ``--no-cache`` answer and an answer that
broke mid-stream. Its answers were recorded from the fake server at `ENDPOINT`; offline, that
address is never contacted, it only has to be the same so the requests are the same.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from nbchat.cli.main import main
from nbchat.store.record import RECORD_MIME

from support.kernel_driver import Kernel
from support.paths import FIXTURES

FIXTURE = FIXTURES / "nbchat-0.1.ipynb"
ENDPOINT = "http://127.0.0.1:38227/v1"
NEVER_STORED = {"nc", "fail"}  # a --no-cache answer and one that broke: nothing to replay


def fixture_cells() -> list[tuple[str, str]]:
    return [(c["id"], "".join(c["source"])) for c in json.loads(FIXTURE.read_text())["cells"]]


@pytest.fixture
def old(tmp_path: Path) -> Path:
    return Path(shutil.copy(FIXTURE, tmp_path / "old.ipynb"))


def offline(kernel: Kernel, path: Path) -> None:
    env = {"NBCHAT_NOTEBOOK": str(path), "NBCHAT_OFFLINE": "1", "OPENAI_BASE_URL": ENDPOINT}
    kernel.run(f"import os; os.environ.update({env!r})", check=True)


def replay_all(kernel: Kernel) -> dict[str, dict]:
    """Run the fixture's cells as JupyterLab would; cell id -> the record each cell shows."""
    records = {}
    for cell_id, source in fixture_cells():
        if cell_id in NEVER_STORED:
            continue
        done = kernel.run(source, cell_id=cell_id, check=True)
        for record in done.data(RECORD_MIME) + [
            o["data"]["application/json"]
            for o in done.outputs
            if o.get("metadata", {}).get("nbchat", {}).get("record")
        ]:
            records[cell_id] = record
        if source.startswith("%%chat") and "--system" not in source:
            assert "replayed" in done.data("text/html")[0], cell_id
    return records


def test_a_0_1_notebook_replays_every_answer_offline_with_its_threads(kernel, server, old):
    offline(kernel, old)
    records = replay_all(kernel)
    assert server.chat_requests == []
    # Each answer is shown again as schema 2, referring to the turn above it in its thread.
    assert records["q2"]["parent"] == records["q1"]["key"]
    assert records["m2"]["parent"] == records["m1"]["key"]
    assert records["n1"]["parent"] is None and records["q4"]["parent"] == records["n1"]["key"]
    assert records["q3"]["messages"][0]["content"] == "Why two tides a day?"
    assert records["q2"]["request"]["params"] == {"temperature": 0.2}
    usage = kernel.run("%chat usage", check=True).data("text/plain")[0]
    assert usage.splitlines()[0].startswith("Spent: 0 requests, 0 → 0 tokens")
    turns = sum(1 for record in records.values() if record["kind"] == "turn")
    assert usage.splitlines()[1].startswith(f"Saved by replaying {turns} answers: ")

    # After a restart, a cell deep in a thread rebuilds its context from the 0.1 records.
    kernel.restart()
    offline(kernel, old)
    cells = dict(fixture_cells())
    again = kernel.run(cells["q4"], cell_id="q4", check=True)
    assert "replayed" in again.data("text/html")[0]
    second = kernel.run(cells["q2"], cell_id="q2", check=True)
    assert "replayed" in second.data("text/html")[0]


def test_an_upgraded_notebook_still_replays_with_no_request(kernel, server, old):
    assert main(["upgrade", str(old)]) == 0
    offline(kernel, old)
    replay_all(kernel)
    assert server.chat_requests == []
