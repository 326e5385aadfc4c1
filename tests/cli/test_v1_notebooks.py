"""``tests/support/fixtures/nbchat-0.1.ipynb`` (written by nbchat 0.1 itself) read by the
``nbchat`` command, and upgraded losslessly."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from nbchat.cli.main import main
from nbchat.store.record import RECORD_MIME

from support.paths import FIXTURES

FIXTURE = FIXTURES / "nbchat-0.1.ipynb"
V1_MIME = "application/vnd.nbchat.v1+json"


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
