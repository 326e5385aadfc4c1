"""Tool turns at their limits, in a real kernel against the fake server: more calls in one answer
than may run, results that fail to become text, and call ids that are repeated or missing."""

from __future__ import annotations

import json

import pytest
from support.fake_openai import Fault
from support.kernel_driver import Kernel
from test_tool_turns import TOOLS, calls_run, markdown_of, record_of

pytestmark = pytest.mark.kernel

BREST = ("level", {"station": "Brest"})
CADIZ = ("level", {"station": "Cadiz"})
NOT_RUN = "Error: not run: "


@pytest.fixture
def tools(kernel: Kernel) -> Kernel:
    kernel.run(TOOLS, check=True)
    return kernel


def results_sent(server, request: int = 1) -> list[str]:
    """The contents of the tool messages of the ``request``-th request (0-based)."""
    messages = server.chat_requests[request].body["messages"]
    return [m["content"] for m in messages if m["role"] == "tool"]


def test_calls_beyond_max_tool_calls_go_back_unrun_and_the_cell_says_so(
    tools: Kernel, server
) -> None:
    server.script(Fault(tool_calls=[BREST] * 8))
    done = tools.run("%%chat --tools level --max-tool-calls 3\nLevels?", cell_id="c1", check=True)
    assert calls_run(tools) == ["Brest"] * 3
    results = results_sent(server)
    assert results[:3] == ["4.2"] * 3
    assert len(results) == 8 and all(r.startswith(NOT_RUN) for r in results[3:])
    assert results[3] == "Error: not run: at most 3 calls of one answer run."
    assert (
        "the model asked for 8 tool calls at once: the first 3 ran (--max-tool-calls), the other "
        "5 went back to it unrun, as errors." in done.notes
    )
    record = record_of(done)
    assert [m["role"] for m in record["messages"]].count("tool") == 8
    assert len(record["timing"]["tool_s"]) == 8
    assert "Tools · 8 calls" in markdown_of(done)


def test_the_cap_comes_from_the_flag_the_config_or_the_default(tools: Kernel, server) -> None:
    server.script(Fault(tool_calls=[BREST] * 21))
    tools.run("%%chat --tools level\nMany", cell_id="c1", check=True)
    assert len(calls_run(tools)) == 20, "the default: 20 a round"
    tools.run("calls.clear()\n%config ChatMagics.max_tool_calls = 2", check=True)
    server.script(Fault(tool_calls=[BREST] * 4))
    tools.run("%%chat --tools level\nSome", cell_id="c2", check=True)
    assert len(calls_run(tools)) == 2
    tools.run("calls.clear()", check=True)
    server.script(Fault(tool_calls=[BREST] * 4))
    tools.run("%%chat --tools level --max-tool-calls 4\nAll", cell_id="c3", check=True)
    assert len(calls_run(tools)) == 4, "the flag over the config"
    tools.run("calls.clear()", check=True)
    server.script(Fault(tool_calls=[BREST, CADIZ]))
    asked = tools.run(
        "import nbchat\nprint(nbchat.ask('Two?', tools=[level], max_tool_calls=1).text)",
        check=True,
    )
    assert calls_run(tools) == ["Brest"] and NOT_RUN in asked.stdout


@pytest.mark.parametrize(
    ("code", "message"),
    [
        ("%%chat --tools level --max-tool-calls 0\nHi", "--max-tool-calls must be at least 1"),
        (
            "import nbchat\nnbchat.ask('Hi', tools=[level], max_tool_calls=0)",
            "max_tool_calls must be at least 1",
        ),
    ],
)
def test_a_cap_below_one_fails_the_cell(tools: Kernel, server, code: str, message: str) -> None:
    failed = tools.run(code, cell_id="c1")
    assert failed.status == "error" and failed.error["evalue"] == message
    assert server.chat_requests == []


def test_config_refuses_a_cap_below_one(tools: Kernel) -> None:
    # IPython's %config logs a refused value (TraitError) instead of failing the cell.
    refused = tools.run("%config ChatMagics.max_tool_calls = 0")
    assert "max_tool_calls must be at least 1" in refused.stderr
    applied = "print(get_ipython().magics_manager.registry['ChatMagics'].max_tool_calls)"
    assert tools.run(applied, check=True).stdout.strip() == "None"


SERIALISE = '''
import pydantic

class Reading(pydantic.BaseModel):
    station: str

    @pydantic.computed_field
    @property
    def level(self) -> float:
        raise RuntimeError("sensor offline")

def reading(station: str) -> Reading:
    """A reading whose level cannot be computed."""
    return Reading(station=station)

def levels(station: str):
    """The readings, read lazily: the gauge fails half-way."""
    def read():
        yield 1.0
        raise ConnectionError("tide gauge lost")
    return read()
'''


def test_a_result_that_fails_to_become_text_goes_back_as_the_calls_error(
    tools: Kernel, server
) -> None:
    tools.run(SERIALISE, check=True)
    server.script(Fault(tool_calls=[("reading", {"station": "Brest"}), ("levels", BREST[1])]))
    done = tools.run("%%chat --tools reading,levels\nHow high?", cell_id="c1")
    assert done.status == "ok", done.error
    assert results_sent(server) == [
        "RuntimeError: sensor offline",
        "ConnectionError: tide gauge lost",
    ]
    record = record_of(done)
    assert record["messages"][-1]["content"].startswith("From the tools: RuntimeError")
    assert "Traceback" not in json.dumps(done.outputs)


@pytest.mark.parametrize("ids", [[None, None], ["dup", "dup"], ["", ""]])
def test_calls_with_missing_or_repeated_ids_keep_their_results_in_order(
    tools: Kernel, server, ids: list[str | None]
) -> None:
    server.script(Fault(tool_calls=[BREST, CADIZ], tool_call_ids=ids))
    done = tools.run("%%chat --tools level\nBoth?", cell_id="c1", check=True)
    assert calls_run(tools) == ["Brest", "Cadiz"]
    _, assistant, *results = server.chat_requests[1].body["messages"]
    assert len(assistant["tool_calls"]) == 2, "the calls go back with their results"
    assert [m["content"] for m in results] == ["4.2", "1.1"]
    assert "each result is shown with the call at its position" in done.notes
    server.script(Fault(text="Noted."))
    tools.run("%%chat\nAnd so?", cell_id="c2", check=True)
    context = server.chat_requests[-1].body["messages"]
    assert [m["role"] for m in context] == [
        "user",
        "assistant",
        "tool",
        "tool",
        "assistant",
        "user",
    ]
    assert len(context[1]["tool_calls"]) == 2


@pytest.mark.parametrize("ids", [[None, None], ["dup", "dup"]])
def test_the_folded_calls_show_each_result_with_its_call(
    tools: Kernel, server, ids: list[str | None]
) -> None:
    server.script(Fault(tool_calls=[BREST, CADIZ], tool_call_ids=ids))
    done = tools.run("%%chat --tools level\nBoth?", cell_id="c1", check=True)
    (plain,) = done.data("text/plain")
    assert [line for line in plain.splitlines() if line.startswith("[tool] ")] == [
        '[tool] level({"station": "Brest"}) → 4.2',
        '[tool] level({"station": "Cadiz"}) → 1.1',
    ]
