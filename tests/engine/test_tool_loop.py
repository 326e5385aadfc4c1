"""The turn's loop of tool rounds (`engine.tool_loop.converse`), with scripted completions: the
cap on the calls of one round, and the notes the user gets."""

from __future__ import annotations

from typing import Any

import pytest

from nbchat.engine.tool_calls import ToolBox, ToolResult
from nbchat.engine.tool_loop import converse

RAN: list[int] = []


def count(n: int) -> int:
    """Count a call."""
    RAN.append(n)
    return n


def completion(calls: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    message: dict[str, Any] = {"role": "assistant", "content": None if calls else "done"}
    if calls:
        message["tool_calls"] = calls
    return {"choices": [{"index": 0, "message": message, "finish_reason": "stop"}]}


def calls_of(n: int, ids: list[str] | None = None) -> list[dict[str, Any]]:
    """``n`` calls of ``count``, with these ids (default: unique)."""
    return [
        {
            "id": ids[number] if ids is not None else f"call_{number}",
            "type": "function",
            "function": {"name": "count", "arguments": f'{{"n": {number}}}'},
        }
        for number in range(n)
    ]


class Sink:
    """Records what a view would show."""

    def __init__(self) -> None:
        self.events: list[tuple[str, Any]] = []

    def on_tool_start(self, name: str, arguments: str) -> None:
        self.events.append(("start", name))

    def on_tool_result(self, result: ToolResult) -> None:
        self.events.append(("result", result.content))

    def next_round(self) -> None:
        self.events.append(("next", None))

    def on_calls_skipped(self, results: list[ToolResult]) -> None:
        self.events.append(("skipped", len(results)))


@pytest.fixture(autouse=True)
def nothing_ran() -> None:
    RAN.clear()


def scripted(*answers: dict[str, Any]):
    sent: list[list[dict[str, Any]]] = []
    queue = list(answers)

    def request(added: list[dict[str, Any]]) -> dict[str, Any]:
        sent.append(added)
        return queue.pop(0)

    return request, sent


def test_calls_beyond_the_cap_are_not_run_and_each_gets_an_error_result() -> None:
    request, sent = scripted(completion(calls_of(8)), completion())
    notes: list[str] = []
    sink = Sink()
    exchange = converse(
        request, ToolBox([count]), max_rounds=3, max_calls=3, sink=sink, note=notes.append
    )
    assert RAN == [0, 1, 2]
    results = [m for m in sent[1] if m["role"] == "tool"]
    assert [m["tool_call_id"] for m in results] == [f"call_{n}" for n in range(8)]
    assert [m["content"] for m in results[:3]] == ["0", "1", "2"]
    refused = "Error: not run: at most 3 calls of one answer run."
    assert all(m["content"] == refused for m in results[3:])
    assert exchange.skipped == 5 and len(exchange.tool_seconds) == 8
    assert exchange.tool_seconds[3:] == [0.0] * 5
    assert sink.events.count(("skipped", 5)) == 1, "one update for the view, not five"
    assert [kind for kind, _ in sink.events].count("start") == 3
    assert notes == [
        "nbchat: the model asked for 8 tool calls at once: the first 3 ran (--max-tool-calls), "
        "the other 5 went back to it unrun, as errors."
    ]


def test_within_the_cap_nothing_is_said() -> None:
    request, _ = scripted(completion(calls_of(3)), completion())
    notes: list[str] = []
    exchange = converse(request, ToolBox([count]), max_rounds=3, max_calls=3, note=notes.append)
    assert RAN == [0, 1, 2] and exchange.skipped == 0 and notes == []


def test_the_default_cap_is_twenty_calls_a_round() -> None:
    request, sent = scripted(completion(calls_of(500)), completion())
    converse(request, ToolBox([count]), max_rounds=1)
    assert len(RAN) == 20 and RAN[-1] == 19
    assert len([m for m in sent[1] if m["role"] == "tool"]) == 500


def test_every_live_view_shows_skipped_calls_in_one_step(capsys) -> None:
    """The views the magic uses all take the skipped calls at once (one line, one update)."""
    from nbchat.ipython.live import FinalOnly, TerminalStream

    for view in (FinalOnly(), TerminalStream("m")):
        request, _ = scripted(completion(calls_of(4)), completion())
        converse(request, ToolBox([count]), max_rounds=1, max_calls=1, sink=view)
    printed = capsys.readouterr().out
    assert printed.count("3 more calls not run (--max-tool-calls)") == 1
    assert RAN == [0, 0], "one call ran in each, the cap held"


def test_results_paired_by_position_are_noted_once() -> None:
    round_ = calls_of(2, ["same", "same"])
    request, sent = scripted(completion(round_), completion(round_), completion())
    notes: list[str] = []
    converse(request, ToolBox([count]), max_rounds=3, note=notes.append)
    assert notes == [
        "nbchat: the model gave several tool calls of one round the same id, or none: each "
        "result is shown with the call at its position."
    ]
    assert [m["content"] for m in sent[2] if m["role"] == "tool"] == ["0", "1", "0", "1"]


def mcp_calls(*names: str) -> list[dict[str, Any]]:
    return [
        {"id": f"call_{n}", "type": "function", "function": {"name": name, "arguments": "{}"}}
        for n, name in enumerate(names)
    ]


def test_the_mcp_calls_of_a_round_start_together_and_show_in_order() -> None:
    from support.mcp_fake import FakeHub, tool

    hub = FakeHub({"files": [tool("a"), tool("b")]})
    box = ToolBox([count], mcp=hub.offer("mcp:files")).listed()

    class Watching(Sink):
        def on_tool_start(self, name: str, arguments: str) -> None:
            super().on_tool_start(name, arguments)
            self.events.append(("server calls so far", len(hub.called)))

    request, sent = scripted(completion(mcp_calls("a", "count", "b")), completion())
    sink = Watching()
    converse(request, box, max_rounds=1, sink=sink)
    assert sink.events[:2] == [("start", "a"), ("server calls so far", 2)], "both under way"
    assert [event for event in sink.events if event[0] == "result"] == [
        ("result", "a ok"),
        ("result", "Error: count: n: Field required"),
        ("result", "b ok"),
    ]
    contents = [m["content"] for m in sent[1] if m["role"] == "tool"]
    assert contents == ["a ok", "Error: count: n: Field required", "b ok"]


def test_a_server_that_fails_stops_the_turn_with_what_ran_and_cancels_the_rest() -> None:
    from nbchat.errors import McpServerError

    from support.mcp_fake import FakeHub, tool

    hub = FakeHub(
        {"files": [tool("a"), tool("dead"), tool("c")]},
        answers={"dead": McpServerError("MCP server 'files' stopped during dead")},
    )
    box = ToolBox(mcp=hub.offer("mcp:files")).listed()
    request, _ = scripted(completion(mcp_calls("a", "dead", "c")))
    with pytest.raises(McpServerError) as error:
        converse(request, box, max_rounds=1)
    assert [m["role"] for m in error.value.exchange] == ["assistant", "tool"]
    assert [p.cancelled for p in hub.pending] == [False, False, True]


def test_ctrl_c_while_an_mcp_call_runs_cancels_it() -> None:
    from nbchat.errors import StreamInterrupted

    from support.mcp_fake import FakeHub, tool

    hub = FakeHub({"files": [tool("a"), tool("b")]}, answers={"a": KeyboardInterrupt()})
    box = ToolBox(mcp=hub.offer("mcp:files")).listed()
    request, _ = scripted(completion(mcp_calls("a", "b")))
    with pytest.raises(StreamInterrupted, match="Interrupted while the tool a ran"):
        converse(request, box, max_rounds=1)
    assert [p.cancelled for p in hub.pending] == [False, True]
