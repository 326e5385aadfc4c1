"""Tool turns in a real kernel against the fake server: calls run and their results go back,
replay never runs a function, and turns at their limits (more calls than may run, results that
fail to become text, call ids repeated or missing)."""

from __future__ import annotations

import json

import pytest

from nbchat.store.record import RECORD_MIME

from support.env import TEST_KEY
from support.fake_openai import Fault
from support.html_check import WRAPPER
from support.kernel_driver import Execution, Kernel, save_notebook

TOOLS = '''\
calls = []
LEVELS = {"Brest": 4.2, "Cadiz": 1.1}

def level(station: str) -> float:
    """The water level at a tide station, in metres.

    Args:
        station: The station's city.
    """
    calls.append(station)
    if station not in LEVELS:
        raise ValueError(f"no station {station!r}")
    return LEVELS[station]

def secret() -> str:
    """Never offered."""
    calls.append("secret")
    return "s3cr3t"
'''


def record_of(execution: Execution) -> dict:
    (record,) = execution.data(RECORD_MIME)
    return record


def markdown_of(execution: Execution) -> str:
    (markdown,) = execution.data("text/html")
    return markdown


def calls_run(kernel: Kernel) -> list[str]:
    return json.loads(kernel.run("import json; print(json.dumps(calls))", check=True).stdout)


@pytest.fixture
def tools(kernel: Kernel) -> Kernel:
    kernel.run(TOOLS, check=True)
    return kernel


def test_a_tool_call_runs_and_its_result_goes_back(tools: Kernel, server) -> None:
    server.script(Fault(tool_calls=[("level", {"station": "Brest"})]))
    done = tools.run("%%chat --tools level\nHow high is the water in Brest?", cell_id="c1")
    assert done.status == "ok", done.error
    assert calls_run(tools) == ["Brest"]
    first, second = (request.body for request in server.chat_requests)
    (spec,) = first["tools"]
    assert spec["function"]["name"] == "level"
    assert spec["function"]["description"].startswith("The water level at a tide station")
    station = spec["function"]["parameters"]["properties"]["station"]
    assert station["type"] == "string" and station["description"] == "The station's city."
    assert second["tools"] == first["tools"]
    _, assistant, tool = second["messages"]
    assert assistant["tool_calls"][0]["function"]["name"] == "level"
    assert tool == {
        "role": "tool",
        "tool_call_id": assistant["tool_calls"][0]["id"],
        "content": "4.2",
    }

    markdown = markdown_of(done)
    assert markdown.startswith(WRAPPER + "<details><summary>Tools · 1 call · level · ")
    assert 'level({"station": "Brest"})' in markdown and "→ 4.2" in markdown
    assert "From the tools: 4.2" in markdown.split("</details>", 1)[1]
    record = record_of(done)
    assert [m["role"] for m in record["messages"]] == ["user", "assistant", "tool", "assistant"]
    assert len(record["responses"]) == 2 and len(record["timing"]["tool_s"]) == 1
    live = [json.dumps(m["content"]) for m in done.messages if m["msg_type"] == "comm_msg"]
    assert any("level(" in update for update in live), "the call was shown as it ran"


def test_parallel_calls_run_in_order_and_failures_go_back_to_the_model(
    tools: Kernel, server
) -> None:
    server.script(
        Fault(
            tool_calls=[
                ("level", {"station": "Cadiz"}),
                ("level", {"station": "Atlantis"}),
                ("secret", {}),
                ("level", '{"station": '),
                ("level", {"station": 3}),
            ]
        )
    )
    done = tools.run("%%chat --tools level\nLevels?", cell_id="c1", check=True)
    assert calls_run(tools) == ["Cadiz", "Atlantis"], "secret was never offered, never run"
    results = [m["content"] for m in server.chat_requests[1].body["messages"][2:]]
    assert results[0] == "1.1"
    assert results[1] == "ValueError: no station 'Atlantis'"
    assert results[2].startswith("Error: there is no tool named 'secret'; the tools: level")
    assert results[3].startswith("Error: level: arguments are not valid JSON")
    assert results[4].startswith("Error: level: ") and "station" in results[4]
    assert "Tools · 5 calls · level, secret" in markdown_of(done)


def test_a_model_that_never_stops_calling_fails_after_the_rounds_and_stores_nothing(
    tools: Kernel, server
) -> None:
    server.default_fault = Fault(tool_calls=[("level", {"station": "Brest"})])
    try:
        failed = tools.run(
            "%%chat --tools level --max-tool-rounds 3\nLoop", cell_id="c1", timeout=30
        )
    finally:
        server.default_fault = Fault()
    assert failed.status == "error"
    assert "still called tools after 3 rounds" in failed.error["evalue"]
    assert failed.error["evalue"].endswith(": raise --max-tool-rounds")
    assert "Traceback" not in "\n".join(failed.error["traceback"])
    assert len(server.chat_requests) == 4 and calls_run(tools) == ["Brest"] * 3
    assert failed.data(RECORD_MIME) == []
    assert "Tools · 4 calls" in markdown_of(failed), "the calls so far stay visible"
    tools.run("%%chat --tools level --max-tool-rounds 3\nLoop", cell_id="c1", check=True)
    assert len(server.chat_requests) == 5, "nothing was stored: it asks again"


def test_replay_shows_the_stored_calls_and_never_runs_a_function(
    tools: Kernel, server, chat_env
) -> None:
    path = chat_env / "tools.ipynb"
    tools.run(f"import os; os.environ['NBCHAT_NOTEBOOK'] = {str(path)!r}", check=True)
    server.script(Fault(tool_calls=[("level", {"station": "Brest"})]))
    cells = [("c0", TOOLS), ("c1", "%%chat --tools level\nBrest?"), ("c2", "%%chat\nAnd so?")]
    runs = {cell_id: tools.run(source, cell_id=cell_id, check=True) for cell_id, source in cells}
    context = server.chat_requests[-1].body["messages"]
    assert [m["role"] for m in context] == ["user", "assistant", "tool", "assistant", "user"]
    assert "tools" not in server.chat_requests[-1].body
    save_notebook(path, [(cell_id, source, runs[cell_id]) for cell_id, source in cells])

    tools.restart_offline(path)
    server.reset()
    replays = [tools.run(source, cell_id=cell_id, check=True) for cell_id, source in cells]
    assert server.chat_requests == [] and calls_run(tools) == []
    markdown = markdown_of(replays[1])
    assert "stored results, not run again" in markdown and "→ 4.2" in markdown
    assert "replayed" in markdown_of(replays[2])

    tools.run("os.environ['NBCHAT_OFFLINE'] = ''", check=True)
    server.script(Fault(tool_calls=[("level", {"station": "Brest"})]))
    tools.run("%%chat --tools level --refresh\nBrest?", cell_id="c1", check=True)
    assert calls_run(tools) == ["Brest"], "--refresh runs the functions again"


def test_the_key_covers_the_tool_schemas(tools: Kernel, server) -> None:
    tools.run("%%chat --tools level\nBrest?", cell_id="c1", check=True)
    tools.run("%%chat --tools level\nBrest?", cell_id="c1", check=True)
    assert len(server.chat_requests) == 1, "same functions, same request: replayed"
    tools.run("level.__doc__ = 'The level, in feet.'", check=True)
    tools.run("%%chat --tools level\nBrest?", cell_id="c1", check=True)
    assert len(server.chat_requests) == 2, "a changed docstring is a changed request"
    assert server.chat_requests[-1].body["tools"][0]["function"]["description"] == (
        "The level, in feet."
    )


def test_ctrl_c_in_a_tool_stops_the_loop_and_stores_nothing(tools: Kernel, server) -> None:
    tools.run("import time\ndef slow() -> str:\n    time.sleep(30)\n    return 'late'", check=True)
    server.script(Fault(tool_calls=[("level", {"station": "Brest"}), ("slow", {})]))
    interrupted = tools.run(
        "%%chat --tools level,slow\nGo", cell_id="c1", interrupt_after=1.5, timeout=20
    )
    assert interrupted.status == "error"
    assert "Interrupted while the tool slow ran; nothing was stored." in interrupted.error["evalue"]
    assert interrupted.data(RECORD_MIME) == [] and len(server.chat_requests) == 1
    markdown = markdown_of(interrupted)
    assert "→ 4.2" in markdown and "slow({})\n→ (no result)" in markdown
    assert tools.run("print(1 + 1)", check=True).stdout.strip() == "2"


def test_configured_tools_and_the_spec_command(tools: Kernel, server) -> None:
    tools.run("%config ChatMagics.tools = ['level']", check=True)
    shown = tools.run("%chat tools", check=True)
    (specs,) = shown.data("application/json")
    assert [spec["function"]["name"] for spec in specs] == ["level"]
    tools.run("%%chat\nBrest?", cell_id="c1", check=True)
    assert server.chat_requests[-1].body["tools"] == specs, "%chat tools shows what is sent"
    missing = tools.run("%%chat --tools nothere\nHi", cell_id="c2")
    assert missing.status == "error" and "'nothere' is not defined" in missing.error["evalue"]
    not_callable = tools.run("%%chat --tools LEVELS\nHi", cell_id="c3")
    assert "'LEVELS' is not a function" in not_callable.error["evalue"]


def test_ask_runs_tools_from_code(tools: Kernel, server) -> None:
    server.script(Fault(tool_calls=[("level", {"station": "Cadiz"})]))
    out = tools.run(
        "import nbchat\nanswer = nbchat.ask('Cadiz?', tools=[level])\nprint(answer.text)",
        check=True,
    )
    assert out.stdout.strip() == "From the tools: 1.1"
    assert TEST_KEY not in json.dumps(out.outputs)


def test_an_error_after_tools_ran_keeps_the_calls_in_sight(tools: Kernel, server) -> None:
    server.script(Fault(tool_calls=[("level", {"station": "Brest"})]), Fault(status=400))
    failed = tools.run("%%chat --tools level\nBrest?", cell_id="c1")
    assert failed.status == "error" and "rejected the request (400)" in failed.error["evalue"]
    assert calls_run(tools) == ["Brest"]
    markdown = markdown_of(failed)
    assert "→ 4.2" in markdown and "stopped after the tool calls above ran" in markdown
    assert failed.data(RECORD_MIME) == []


def test_a_key_in_a_tool_result_is_redacted_everywhere(tools: Kernel, server) -> None:
    tools.run(
        "import os\ndef leak() -> str:\n    return 'key=' + os.environ['OPENAI_API_KEY']",
        check=True,
    )
    server.script(Fault(tool_calls=[("leak", {})]))
    done = tools.run("%%chat --tools leak\nLeak it", cell_id="c1", check=True)
    assert TEST_KEY not in json.dumps(done.outputs)
    assert TEST_KEY not in json.dumps(server.chat_requests[-1].body)
    assert "key=" in record_of(done)["messages"][2]["content"]


def test_raw_shows_the_last_request_of_a_tool_turn(tools: Kernel, server) -> None:
    server.script(Fault(tool_calls=[("level", {"station": "Cadiz"})]))
    done = tools.run("%%chat --tools level --raw\nCadiz?", cell_id="c1", check=True)
    (tree,) = done.data("application/json")
    roles = [message["role"] for message in tree["sent"]["body"]["messages"]]
    assert roles == ["user", "assistant", "tool"]
    assert tree["sent"]["body"]["messages"] == server.chat_requests[-1].body["messages"]


BREST = ("level", {"station": "Brest"})
CADIZ = ("level", {"station": "Cadiz"})
NOT_RUN = "Error: not run: "


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
