"""MCP tools in a turn (`engine.mcp_tools`): the selectors a cell names, the names the tools are
sent as, the specs (the server's own), and which stored specs a cell may be replayed with."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

from nbchat.engine.mcp_tools import McpSelector, sent_names, split_tool_names, stored_tools
from nbchat.errors import ConfigError, StreamInterrupted
from nbchat.store.record import Record, RequestInfo

from support.mcp_fake import FakeHub, tool


def test_selectors() -> None:
    assert McpSelector.parse("mcp:files") == McpSelector("files")
    assert McpSelector.parse("mcp:files/read") == McpSelector("files", "read")
    assert str(McpSelector("files", "read")) == "mcp:files/read"
    functions, selectors = split_tool_names(["level", "mcp:files", "mcp:files", "mcp:web/q"])
    assert functions == ["level"] and selectors == [McpSelector("files"), McpSelector("web", "q")]
    for bad in ("mcp:", "mcp:/x", "mcp:files/"):
        with pytest.raises(ConfigError, match="name an MCP tool as mcp:SERVER or mcp:SERVER/TOOL"):
            McpSelector.parse(bad)


def test_a_tool_keeps_its_name_unless_another_offered_tool_has_it() -> None:
    assert sent_names([("files", "read"), ("web", "search")], ["level"]) == ["read", "search"]
    assert sent_names([("files", "read"), ("web", "read")], []) == ["files__read", "web__read"]
    assert sent_names([("files", "level")], ["level"]) == ["files__level"], "never the function"
    with pytest.raises(ConfigError, match="would both be sent as 'files__read'"):
        sent_names([("files", "read"), ("files", "files__read"), ("web", "read")], [])


def test_a_name_a_chat_api_refuses_is_sent_with_those_characters_as_underscores() -> None:
    """MCP allows dots and 128 characters in a tool's name; chat APIs take [A-Za-z0-9_-]{1,64}
    (OpenAI answers 400 for any other)."""
    long = "x" * 70
    assert sent_names([("files", "fs.read"), ("web", long)], []) == ["fs_read", "x" * 64]
    shared = [("files", "fs.read"), ("web", "fs_read")]
    assert sent_names(shared, []) == ["files__fs_read", "web__fs_read"]
    assert sent_names([("files", "fs.read")], ["fs_read"]) == ["files__fs_read"]
    with pytest.raises(ConfigError, match="would both be sent as 'files__fs_read'"):
        sent_names([("files", "fs.read"), ("files", "fs_read")], [])
    hub = FakeHub({"files": [tool("fs.read"), tool("fs.write")]})
    tools = hub.offer("mcp:files").listed(taken=[])
    assert [(t.name, t.spec["function"]["name"], t.tool) for t in tools] == [
        ("fs_read", "fs_read", "fs.read"),
        ("fs_write", "fs_write", "fs.write"),
    ]
    tools[0].start({})
    assert hub.called == [("files", "fs.read", {})], "the server's own name is called"


def test_the_spec_sent_is_the_servers_own() -> None:
    listed = tool("read", "Read a file. <b>bold</b>", path={"type": "string"})
    hub = FakeHub({"files": [listed, tool("write")], "web": [tool("read")]})
    tools = hub.offer("mcp:files/read").listed(taken=["level"])
    (only,) = tools
    assert (only.name, only.server, only.tool) == ("read", "files", "read")
    assert only.spec == {
        "type": "function",
        "function": {
            "name": "read",
            "description": "Read a file. <b>bold</b>",
            "parameters": listed["inputSchema"],
        },
    }
    both = hub.offer("mcp:files", "mcp:web").listed(taken=[])
    assert [t.name for t in both] == ["files__read", "write", "web__read"]
    assert hub.listed == ["files", "files", "web"], "a server is asked once per offer"


@pytest.mark.parametrize(
    ("names", "listings", "message"),
    [
        (["mcp:nope"], {"files": [tool("a")]}, "no MCP server 'nope' is declared in"),
        (
            ["mcp:files/b"],
            {"files": [tool("a")]},
            "MCP server 'files' has no tool 'b' (it lists: a)",
        ),
        (["mcp:files"], {"files": []}, "MCP server 'files' lists no tools"),
        (["mcp:files"], {"files": [tool("a"), tool("a")]}, "lists two tools named 'a'"),
    ],
)
def test_an_offer_that_cannot_work(names, listings, message) -> None:
    with pytest.raises(ConfigError, match=re.escape(message)):
        FakeHub(listings).offer(*names).listed(taken=[])


def test_a_listing_entry_that_is_no_tool_is_passed_over() -> None:
    listing = ["junk", {"description": "no name"}, {"name": ""}, tool("a"), {"name": "b"}]
    tools = FakeHub({"files": listing}).offer("mcp:files").listed(taken=[])
    assert [t.name for t in tools] == ["a", "b"]
    assert tools[1].spec["function"] == {
        "name": "b",
        "parameters": {"type": "object", "properties": {}},
    }


def stored(mcp: dict[str, list[str]] | None, names: list[str]) -> Record:
    specs = [{"type": "function", "function": {"name": n, "parameters": {}}} for n in names]
    request = RequestInfo("http://h/v1", None, "m", {"tools": specs}, None)
    return Record(kind="turn", thread="t", messages=[], request=request, mcp=mcp)


@pytest.mark.parametrize(
    ("selectors", "fits"),
    [
        (["mcp:files"], True),
        (["mcp:files/read", "mcp:files/write"], True),
        (["mcp:files/read"], False),  # write was not offered by this cell
        (["mcp:files", "mcp:web"], False),  # web's tools were not in it
        (["mcp:web"], False),
    ],
)
def test_stored_specs_fit_a_cell_only_as_its_selectors_offer_them(selectors, fits) -> None:
    record = stored(
        {"read": ["files", "read"], "write": ["files", "write"]}, ["level", "read", "write"]
    )
    tools = stored_tools(record, [McpSelector.parse(s) for s in selectors])
    assert (tools is not None) == fits
    if tools is not None:
        assert [(t.name, t.run) for t in tools] == [("read", None), ("write", None)]


def test_a_record_without_mcp_tools_or_with_a_spec_missing_fits_no_cell() -> None:
    selectors = [McpSelector("files")]
    assert stored_tools(stored(None, ["read"]), selectors) is None
    assert stored_tools(stored({"read": ["files", "read"]}, ["other"]), selectors) is None


def test_a_secret_of_the_servers_launch_never_reaches_the_spec() -> None:
    listed = tool("read", "Read with hub-secret.", path={"type": "string", "default": "hub-secret"})
    (read,) = FakeHub({"files": [listed]}).offer("mcp:files").listed(taken=[])
    assert "hub-secret" not in json.dumps(read.spec)
    assert read.spec["function"]["description"] == "Read with [redacted]."


def test_ctrl_c_while_a_server_lists_its_tools_is_one_line_and_sends_nothing() -> None:
    class Starting(FakeHub):
        def tools(self, config: Any, timeout: float) -> list[dict[str, Any]]:
            raise KeyboardInterrupt

    with pytest.raises(StreamInterrupted) as caught:
        Starting({"files": [tool("read")]}).offer("mcp:files").listed(taken=[])
    assert str(caught.value) == (
        "Interrupted while MCP server 'files' listed its tools; nothing was sent."
    )
    assert isinstance(caught.value, KeyboardInterrupt), "still a Ctrl-C to code expecting one"
