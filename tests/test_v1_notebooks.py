"""Notebooks written by nbchat 0.1 keep working: replay, threads, the CLI, and ``upgrade``.

``tests/fixtures/nbchat-0.1.ipynb`` was written by nbchat 0.1 itself (commit a1e8ab9) in a real
kernel, as JupyterLab would have saved it: a system prompt, two threads, ``-t``, ``--raw``,
``--new``, an answer replayed into a second thread, a ``--no-cache`` answer and an answer that
broke mid-stream. Its answers were recorded from the fake server at `ENDPOINT`; offline, that
address is never contacted, it only has to be the same so the requests are the same.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from support.kernel_driver import Kernel
from support.paths import FIXTURES

from nbchat.cli.main import main
from nbchat.store.record import RECORD_MIME

FIXTURE = FIXTURES / "nbchat-0.1.ipynb"
ENDPOINT = "http://127.0.0.1:38227/v1"
V1_MIME = "application/vnd.nbchat.v1+json"
NEVER_STORED = {"nc", "fail"}  # a --no-cache answer and one that broke: nothing to replay


def fixture_cells() -> list[tuple[str, str]]:
    return [(c["id"], "".join(c["source"])) for c in json.loads(FIXTURE.read_text())["cells"]]


def v1_records() -> dict[str, dict]:
    """Cell id -> the schema 1 record 0.1 stored in it."""
    found = {}
    for cell in json.loads(FIXTURE.read_text())["cells"]:
        for output in cell.get("outputs", []):
            if V1_MIME in output.get("data", {}):
                found[cell["id"]] = output["data"][V1_MIME]
    return found


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


@pytest.mark.kernel
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
    assert usage.splitlines()[1].split()[:2] == ["spent", "0"]

    # After a restart, a cell deep in a thread rebuilds its context from the 0.1 records.
    kernel.restart()
    offline(kernel, old)
    cells = dict(fixture_cells())
    again = kernel.run(cells["q4"], cell_id="q4", check=True)
    assert "replayed" in again.data("text/html")[0]
    second = kernel.run(cells["q2"], cell_id="q2", check=True)
    assert "replayed" in second.data("text/html")[0]


def test_the_cli_reads_a_0_1_notebook(capsys, old):
    assert main(["verify", str(old)]) == 0
    assert capsys.readouterr().out == f"ok: 9 records in {old}\n"
    assert main(["stats", str(old)]) == 0
    assert "7 answers" in capsys.readouterr().out  # 8 stored; the replayed twin cost nothing
    assert main(["export", str(old), "--format", "jsonl"]) == 0
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    turns = [line for line in lines if line["kind"] == "answer"]
    assert len(turns) == 8
    for line in turns:
        assert line["sent"]["messages"] == line["request"]["messages"]  # 0.1 stored them all


def test_upgrade_is_lossless_and_every_request_is_rebuilt_from_the_chain(capsys, old):
    assert main(["upgrade", str(old)]) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"upgraded 9 records to schema 2 in {old}")
    text = old.read_text()
    assert V1_MIME not in text and text.count(RECORD_MIME) == 9
    assert main(["verify", str(old)]) == 0
    capsys.readouterr()
    assert main(["export", str(old), "--format", "jsonl"]) == 0
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    by_prompt = {line["messages"][0]["content"]: line for line in lines if line["kind"] == "turn"}
    for record in v1_records().values():
        if record["kind"] != "answer":
            continue
        rebuilt = by_prompt[record["prompt"]]["sent"]
        assert "incomplete" not in rebuilt
        assert rebuilt["messages"] == record["request"]["messages"], record["prompt"]
    assert main(["upgrade", str(old)]) == 0
    assert capsys.readouterr().out.startswith("upgraded 0 records")


@pytest.mark.kernel
def test_an_upgraded_notebook_still_replays_with_no_request(kernel, server, old):
    assert main(["upgrade", str(old)]) == 0
    offline(kernel, old)
    replay_all(kernel)
    assert server.chat_requests == []
