"""A turn that offers tools of MCP servers (`engine.unlisted`, through `ChatSession.run`), in
process against the loopback chat server and a stand-in hub that counts what reaches a server:
a stored answer is found with the specs it was sent with and no server is contacted; a server
is asked only when the turn is sent."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from nbchat.engine.session import ChatSession, Origin
from nbchat.engine.settings import Settings, resolve_settings
from nbchat.engine.tool_calls import ToolBox
from nbchat.engine.turns import TurnRequest
from nbchat.errors import OfflineMiss
from nbchat.store.notebook import NotebookWatcher
from nbchat.store.record import RECORD_MIME, Record

from support.env import TEST_KEY
from support.fake_openai import FakeOpenAI, Fault
from support.mcp_fake import FakeHub, tool


def settings_for(server: FakeOpenAI, **config: object) -> Settings:
    environ = {"OPENAI_BASE_URL": server.base_url}
    return resolve_settings({"model": "peer-small", **config}, {}, {}, environ)


def save(path: Path, cell_id: str, source: str, record: Record) -> Path:
    """A notebook of one cell that holds ``record``."""
    output = {
        "output_type": "display_data",
        "metadata": {},
        "data": {RECORD_MIME: record.to_json()},
    }
    cell = {"cell_type": "code", "id": cell_id, "metadata": {}, "execution_count": 1}
    notebook = {"nbformat": 4, "nbformat_minor": 5, "metadata": {}, "cells": []}
    notebook["cells"].append({**cell, "source": source, "outputs": [output]})
    path.write_text(json.dumps(notebook))
    return path


READ = tool("read", "Read a file.", path={"type": "string"})


@pytest.fixture
def keyed(chat_env, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", TEST_KEY)


def ask(hub: FakeHub, prompt: str, *names: str, cell: str = "c1", **extra) -> TurnRequest:
    offered = ToolBox(mcp=hub.offer(*(names or ("mcp:files",))))
    return TurnRequest(prompt, cell, cell, tools=offered, **extra)  # a thread of its own


def test_a_stored_answer_replays_without_contacting_a_server(server, keyed, tmp_path: Path):
    hub = FakeHub({"files": [READ]})
    settings, live = settings_for(server), ChatSession()
    server.script(Fault(tool_calls=[("read", {"path": "a.txt"})]))
    first = live.run(ask(hub, "Read a.txt"), settings, None)
    assert hub.listed == ["files"] and len(hub.called) == 1
    assert first.record.mcp == {"read": ["files", "read"]}
    assert server.chat_requests[0].body["tools"][0]["function"]["description"] == "Read a file."
    assert live.run(ask(hub, "Read a.txt"), settings, None).replayed
    assert hub.contacted == 2 and len(server.chat_requests) == 2

    path = save(tmp_path / "n.ipynb", "c1", "%%chat --tools mcp:files\nRead a.txt", first.record)
    changed = FakeHub({"files": [tool("read", "Read a file, changed.")]})
    offline, stored = settings_for(server, offline=True), NotebookWatcher(path).get()
    again = ChatSession().run(ask(changed, "Read a.txt"), offline, stored)
    assert (again.origin, again.record.answer) == (Origin.NOTEBOOK, first.record.answer)
    online = ChatSession().run(ask(changed, "Read a.txt"), settings, stored)
    assert online.replayed and changed.contacted == 0, "the specs it was sent with, as stored"

    with pytest.raises(OfflineMiss, match="the prompt changed since the answer was stored"):
        ChatSession().run(ask(changed, "Read b.txt"), offline, stored)
    assert changed.contacted == 0
    refreshed = ChatSession().run(ask(changed, "Read a.txt", refresh=True), settings, stored)
    assert not refreshed.replayed and changed.listed == ["files"], "asked: the server is listed"
    assert refreshed.record.key != first.record.key, "its changed spec is another request"


def test_a_stored_answer_counts_only_for_the_tools_a_cell_offers(server, keyed):
    hub = FakeHub({"files": [READ], "web": [READ]})
    settings, live = settings_for(server), ChatSession()
    live.run(ask(hub, "Read a.txt", "mcp:files", cell="c1"), settings, None)
    other = live.run(ask(hub, "Read a.txt", "mcp:web", cell="c2"), settings, None)
    assert not other.replayed, "the same specs from another server are another offer"
    assert hub.listed == ["files", "web"]
    both = live.run(ask(hub, "Read a.txt", "mcp:files", cell="c3"), settings, None)
    assert both.replayed and hub.listed == ["files", "web"], "c1's answer, found by its specs"
