"""A forged record in a real kernel: the good cells replay, the forged one fails in one line."""

from __future__ import annotations

import copy
import json
from pathlib import Path

from support.fake_openai import FakeOpenAI
from support.forgery import BASES, GOOD, HOSTILE, OFFLINE, PROMPTS, Cell, child_of, notebook_of
from support.kernel_driver import Kernel


def test_a_kernel_replays_the_good_cells_and_gives_the_forged_one_one_line(
    kernel: Kernel, server: FakeOpenAI, tmp_path: Path
) -> None:
    _, data, _ = BASES["tool turn"]
    raw = copy.deepcopy(data)
    raw["messages"][2]["tool_call_id"] = ["call_0"]
    forged = Cell("c-x", PROMPTS["tool turn"], HOSTILE, 2, raw)
    child = child_of("tool turn")
    assert child is not None
    path = tmp_path / "forged.ipynb"
    path.write_text(json.dumps(notebook_of(forged, child)), encoding="utf-8")
    env = {"NBCHAT_NOTEBOOK": str(path), "NBCHAT_OFFLINE": "1", "OPENAI_BASE_URL": OFFLINE.base_url}
    kernel.run(f"import os; os.environ.update({env!r})", check=True)
    runs = {
        cell.cell_id: kernel.run(
            f"%%chat --thread {cell.thread}\n{cell.prompt}", cell_id=cell.cell_id
        )
        for cell in [*GOOD[:2], forged, child, GOOD[2]]
    }
    for cell in GOOD:
        assert runs[cell.cell_id].status == "ok", runs[cell.cell_id].error
        assert "replayed" in runs[cell.cell_id].data("text/plain")[0]
    failed = runs["c-x"]
    assert failed.status == "error" and len(failed.error["traceback"]) == 1
    assert (
        "the record stored in it was skipped (malformed record: messages[2].tool_call_id is a "
        "list, not text); see `nbchat verify`" in failed.error["evalue"]
    )
    below_it = runs["c-y"]  # its context lost the skipped turn: a miss, in one line
    assert below_it.status == "error" and len(below_it.error["traceback"]) == 1
    for thread in ("default", HOSTILE):
        shown = kernel.run(f"%chat history --thread {thread}", check=True)
        assert "Traceback" not in json.dumps(shown.outputs)
    assert server.chat_requests == []
