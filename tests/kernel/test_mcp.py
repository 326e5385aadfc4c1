"""Tools of MCP servers in a real kernel, with real servers (the SDK's own MCPServer, started by
the tests over stdio, and over streamable HTTP on 127.0.0.1): a call and its result, every tool of
a server next to notebook functions, calls of one round at once, an error result, a server that
dies mid-call or does not answer, replay that never reaches a server (counted, and after a
restart with the server made unusable), a hostile server, a secret header, the commands, and
servers stopped by ``%unload_ext``."""

from __future__ import annotations

import json
import os
import shutil
import time
from pathlib import Path

import pytest

from nbchat.store.record import RECORD_MIME

from support.fake_openai import Fault
from support.html_check import executable
from support.kernel_driver import Execution, Kernel, save_notebook
from support.mcp_fixtures import HttpServer, overlapped, requests_to, stdio_server
from support.mcp_server import HOSTILE

pytest.importorskip("mcp")

SECRET = "mcp-secret-0123456789abcdef"
FUNCTIONS = '''\
calls = []

def level(station: str) -> float:
    """The water level at a tide station, in metres."""
    calls.append(station)
    return {"Brest": 4.2}.get(station, 0.0)
'''


def record_of(execution: Execution) -> dict:
    (record,) = execution.data(RECORD_MIME)
    return record


def html_of(execution: Execution) -> str:
    (html,) = execution.data("text/html")
    return html


def declare(kernel: Kernel, **servers: dict) -> None:
    kernel.run(f"%config ChatMagics.mcp_servers = {servers!r}", check=True)


def calls_run(kernel: Kernel) -> list[str]:
    return json.loads(kernel.run("import json; print(json.dumps(calls))", check=True).stdout)


@pytest.fixture
def log(tmp_path: Path) -> Path:
    return tmp_path / "mcp.log"


@pytest.fixture
def files(kernel: Kernel, log: Path) -> Kernel:
    """A kernel with notebook functions and the stdio test server declared as ``files``."""
    kernel.run(FUNCTIONS, check=True)
    kernel.run(f"import os; os.environ['MCP_SECRET'] = {SECRET!r}", check=True)
    declare(kernel, files=stdio_server(log, env={"MCP_TEST_TOKEN": "$MCP_SECRET"}))
    return kernel


def test_a_call_reaches_the_server_and_its_result_goes_back(files: Kernel, server, log) -> None:
    server.script(Fault(tool_calls=[("tide", {"station": "Brest"}), ("crash", {})]))
    done = files.run("%%chat --tools mcp:files/tide\nTide in Brest?", cell_id="c1", check=True)
    first, second = (request.body for request in server.chat_requests)
    (spec,) = first["tools"]
    assert spec["function"]["name"] == "tide"
    assert spec["function"]["description"].startswith("The tide at a station, from the server.")
    assert spec["function"]["parameters"]["required"] == ["station"], "the server's own schema"
    tide, crash = (message["content"] for message in second["messages"][-2:])
    assert tide == "Brest: 4.2 m"
    assert crash == "Error: there is no tool named 'crash'; the tools: tide", "not offered here"
    record = record_of(done)
    assert record["mcp"] == {"tide": ["files", "tide"]}
    assert record["request"]["params"]["tools"] == first["tools"]
    assert "tide(" in html_of(done) and "→ Brest: 4.2 m" in html_of(done)
    assert [event["name"] for event in requests_to(log, "tools/call")] == ["tide"]


def test_every_tool_of_a_server_beside_notebook_functions(files: Kernel, server, log) -> None:
    shown = files.run("%chat tools level,mcp:files", check=True)
    (specs,) = shown.data("application/json")
    names = [spec["function"]["name"] for spec in specs]
    assert names == sorted(["chart", "crash", "environment", "level", "slow", "stats", "tide"])
    server.script(Fault(tool_calls=[("level", {"station": "Brest"}), ("stats", {})]))
    done = files.run("%%chat --tools level,mcp:files\nBoth", cell_id="c1", check=True)
    assert server.chat_requests[0].body["tools"] == specs, "%chat tools shows what is sent"
    results = [m["content"] for m in server.chat_requests[1].body["messages"][2:]]
    assert results[0] == "4.2" and calls_run(files) == ["Brest"]
    assert json.loads(results[1]) == {"mean": 2.65, "stations": ["Brest", "Cadiz"]}
    assert "level" not in record_of(done)["mcp"], "a notebook function is no server's tool"


def test_calls_of_one_round_run_at_once(files: Kernel, server, log) -> None:
    server.script(Fault(tool_calls=[("slow", {"seconds": 0.5})] * 3))
    done = files.run("%%chat --tools mcp:files\nWait", cell_id="c1", check=True)
    assert overlapped(log, "slow"), "each call began before any ended"
    results = [m["content"] for m in server.chat_requests[1].body["messages"][2:]]
    assert results == ["waited 0.5 s"] * 3
    assert len(record_of(done)["timing"]["tool_s"]) == 3


def test_an_error_result_goes_back_to_the_model_flagged(files: Kernel, server) -> None:
    server.script(Fault(tool_calls=[("tide", {"station": "Atlantis"}), ("chart", {})]))
    done = files.run("%%chat --tools mcp:files\nAtlantis?", cell_id="c1", check=True)
    error, chart = (m["content"] for m in server.chat_requests[1].body["messages"][2:])
    assert error.startswith("Error (isError): ") and "no station 'Atlantis'" in error
    assert chart == "the chart:\n[image: image/png, 1 kB]", "an image as a summary line"
    assert "Error (isError)" in html_of(done)


def test_a_server_that_dies_mid_call_fails_the_cell_in_one_line(files: Kernel, server, log) -> None:
    server.script(
        Fault(tool_calls=[("tide", {"station": "Brest"})]), Fault(tool_calls=[("crash", {})])
    )
    failed = files.run("%%chat --tools mcp:files\nCrash", cell_id="c1")
    assert failed.status == "error" and failed.error["ename"] == "McpServerError"
    line = failed.error["evalue"]
    assert line.startswith("MCP server 'files' stopped during crash; its stderr:")
    assert "token=[redacted]" in line and "starting the crash" in line
    assert "Traceback" not in "\n".join(failed.error["traceback"])
    assert SECRET not in json.dumps(failed.outputs)
    assert failed.data(RECORD_MIME) == [], "nothing is stored"
    assert "→ Brest: 4.2 m" in html_of(failed), "the calls that ran stay in sight"
    assert len(server.chat_requests) == 2
    server.script(Fault(tool_calls=[("tide", {"station": "Brest"})]))
    files.run("%%chat --tools mcp:files\nCrash", cell_id="c1", check=True)
    assert len(requests_to(log, "tools/list")) == 2, "the next cell started it again"


def test_a_server_that_does_not_answer_in_time(files: Kernel, server) -> None:
    files.run("%chat mcp files", check=True)  # started within the default timeout
    files.run("%config ChatMagics.mcp_timeout = 1.0", check=True)
    server.script(Fault(tool_calls=[("slow", {"seconds": 20})]))
    started = time.monotonic()
    failed = files.run("%%chat --tools mcp:files\nWait", cell_id="c1", timeout=30)
    assert time.monotonic() - started < 10
    assert failed.error["evalue"].startswith("MCP server 'files' did not answer slow within 1 s")
    assert failed.data(RECORD_MIME) == []


def test_replay_never_starts_or_contacts_a_server(files: Kernel, server, log, chat_env) -> None:
    path = chat_env / "mcp.ipynb"
    files.run(f"import os; os.environ['NBCHAT_NOTEBOOK'] = {str(path)!r}", check=True)
    server.script(Fault(tool_calls=[("tide", {"station": "Brest"})]))
    cells = [("c1", "%%chat --tools mcp:files\nTide in Brest?"), ("c2", "%%chat\nAnd so?")]
    runs = {cell_id: files.run(source, cell_id=cell_id, check=True) for cell_id, source in cells}
    reached = len(requests_to(log))
    files.run("%%chat --tools mcp:files\nTide in Brest?", cell_id="c1", check=True)
    assert len(requests_to(log)) == reached, "replayed in the kernel that asked: not a request"
    save_notebook(path, [(cell_id, source, runs[cell_id]) for cell_id, source in cells])

    files.restart_offline(path)
    files.run("import sys; sys.modules['mcp'] = None", check=True)  # no SDK to start one
    try:
        declare(files, files={"command": ["/nonexistent/mcp-server"]})
        server.reset()
        replays = [files.run(source, cell_id=cell_id, check=True) for cell_id, source in cells]
        assert server.chat_requests == [] and len(requests_to(log)) == reached
        assert "stored results, not run again" in html_of(replays[0])
        assert "→ Brest: 4.2 m" in html_of(replays[0])
        state = files.run("%chat mcp", check=True)
        assert "not started" in state.data("text/plain")[0]

        files.run("os.environ['NBCHAT_OFFLINE'] = ''", check=True)
        asked = files.run("%%chat --tools mcp:files --refresh\nTide in Brest?", cell_id="c1")
        assert asked.error["evalue"] == 'MCP tools need the mcp SDK: pip install "nbchat-llm[mcp]"'
    finally:
        files.run("del sys.modules['mcp']", check=True)


def test_a_hostile_server_stays_inert_and_never_reaches_a_notebook_function(
    kernel: Kernel, server, log
) -> None:
    kernel.run(FUNCTIONS, check=True)
    declare(kernel, evil=stdio_server(log, hostile=True))
    server.script(Fault(tool_calls=[("level", {"station": "Brest"})]))
    alone = kernel.run("%%chat --tools mcp:evil/level\nLevel?", cell_id="c1", check=True)
    assert calls_run(kernel) == [], "the server's level, not the notebook's"
    assert server.chat_requests[1].body["messages"][-1]["content"].endswith(HOSTILE)
    server.script(
        Fault(tool_calls=[("level", {"station": "Brest"}), ("evil__level", {"station": "X"})])
    )
    both = kernel.run("%%chat --tools level,mcp:evil/level\nLevels?", cell_id="c2", check=True)
    names = [spec["function"]["name"] for spec in server.chat_requests[2].body["tools"]]
    assert names == ["evil__level", "level"], "the server's tool is renamed, not the function"
    assert calls_run(kernel) == ["Brest"]
    assert [e["arguments"] for e in requests_to(log, "tools/call")] == [
        {"station": "Brest"},
        {"station": "X"},
    ]
    listing = kernel.run("%chat mcp evil", check=True)
    for shown in (alone, both, listing):
        assert executable(html_of(shown)) == [], shown
        assert "<img" not in html_of(shown)


def test_an_http_server_gets_its_secret_header_from_the_environment(
    kernel: Kernel, server, tmp_path
) -> None:
    with HttpServer(tmp_path, expect_auth=f"Bearer {SECRET}") as http:
        declare(
            kernel, web={"url": http.url, "headers_env": {"Authorization": "Bearer $WEB_TOKEN"}}
        )
        unset = kernel.run("%%chat --tools mcp:web\nTide?", cell_id="c1")
        assert unset.error["evalue"].startswith("MCP server 'web': $WEB_TOKEN (headers_env")
        kernel.run(f"import os; os.environ['WEB_TOKEN'] = {SECRET!r}", check=True)
        server.script(Fault(tool_calls=[("tide", {"station": "Brest"})]))
        done = kernel.run("%%chat --tools mcp:web\nTide?", cell_id="c1", check=True)
        assert server.chat_requests[1].body["messages"][-1]["content"] == "Brest: 4.2 m"
        assert [e["name"] for e in requests_to(http.log, "tools/call")] == ["tide"]
        state = kernel.run("%chat mcp", check=True)
        config = kernel.run("%chat config", check=True)
        for shown in (done, state, config):
            assert SECRET not in json.dumps(shown.outputs)
        assert "http://127.0.0.1:" in state.data("text/plain")[0]


def test_ask_and_the_configured_tools_offer_mcp_tools(files: Kernel, server) -> None:
    server.script(Fault(tool_calls=[("tide", {"station": "Brest"})]))
    out = files.run(
        "import nbchat\nprint(nbchat.ask('Brest?', tools=['mcp:files/tide']).text)", check=True
    )
    assert out.stdout.strip() == "From the tools: Brest: 4.2 m"
    wrong = files.run("nbchat.ask('Brest?', tools=['level'])")
    assert "'level' is a name; pass the function itself" in wrong.error["evalue"]
    files.run("%config ChatMagics.tools = ['level', 'mcp:files/tide']", check=True)
    server.script(Fault(tool_calls=[("tide", {"station": "Cadiz"})]))
    done = files.run("%%chat\nCadiz?", cell_id="c1", check=True)
    names = [spec["function"]["name"] for spec in server.chat_requests[-1].body["tools"]]
    assert names == ["level", "tide"] and "→ Cadiz: 1.1 m" in html_of(done)
    live = [json.dumps(m["content"]) for m in done.messages if m["msg_type"] == "comm_msg"]
    assert any("tide(" in update for update in live), "the call was shown as it ran"


def test_unload_stops_the_servers(files: Kernel, log) -> None:
    files.run("%chat mcp files", check=True)
    (pid,) = {event["pid"] for event in requests_to(log, "tools/list")}
    os.kill(pid, 0)  # running
    files.run("%unload_ext nbchat", check=True)
    deadline = time.monotonic() + 10
    while _alive(pid) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not _alive(pid)
    files.run("%load_ext nbchat", check=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return not Path(f"/proc/{pid}/status").read_text().count("zombie")


def test_config_refuses_a_declaration_that_cannot_work(kernel: Kernel) -> None:
    # IPython's %config logs a refused value (TraitError) instead of failing the cell.
    refused = kernel.run("%config ChatMagics.mcp_servers = {'s': {'command': 'x', 'url': 'y'}}")
    assert "a stdio server (command) takes no url" in refused.stderr
    assert "mcp_timeout must be > 0" in kernel.run("%config ChatMagics.mcp_timeout = 0").stderr
    configured = kernel.run("%config ChatMagics.tools = ['mcp:files']\n%chat tools")
    assert "no MCP server 'files' is declared" in configured.error["evalue"]


def test_ctrl_c_during_a_call_stops_the_turn_and_keeps_the_server(files: Kernel, server, log):
    files.run("%chat mcp files", check=True)
    server.script(Fault(tool_calls=[("slow", {"seconds": 30})]))
    interrupted = files.run(
        "%%chat --tools mcp:files\nWait", cell_id="c1", interrupt_after=2.0, timeout=20
    )
    assert interrupted.status == "error"
    assert "Interrupted while the tool slow ran; nothing was stored." in interrupted.error["evalue"]
    assert interrupted.data(RECORD_MIME) == []
    server.script(Fault(tool_calls=[("tide", {"station": "Brest"})]))
    files.run("%%chat --tools mcp:files\nTide?", cell_id="c2", check=True)
    assert len({event["pid"] for event in requests_to(log, "tools/list")}) == 1, "the same one"


def test_a_notebook_written_with_mcp_tools_replays_offline_without_its_server(
    kernel: Kernel, server, tmp_path
) -> None:
    """``tests/support/fixtures/mcp-tools.ipynb`` was written by this nbchat in a real kernel
    (the stdio test server, the fake chat server at its ``base_url``); its ``%config`` cell then
    declared a command that is not installed here (``python -m files_server``), so a replay that
    started the server would fail."""
    from support.paths import FIXTURES

    path = Path(shutil.copy(FIXTURES / "mcp-tools.ipynb", tmp_path / "mcp-tools.ipynb"))
    cells = json.loads(path.read_text())["cells"]
    endpoint = cells[1]["outputs"][-1]["data"][RECORD_MIME]["request"]["base_url"]
    kernel.restart_offline(path)
    kernel.run(f"os.environ['OPENAI_BASE_URL'] = {endpoint!r}", check=True)
    shown = {
        cell["id"]: kernel.run("".join(cell["source"]), cell_id=cell["id"], check=True)
        for cell in cells
    }
    assert server.chat_requests == []
    assert "stored results, not run again" in html_of(shown["two"])
    assert "→ Cadiz: 1.1 m" in html_of(shown["two"]) and "replayed" in html_of(shown["after"])
    assert "not started" in kernel.run("%chat mcp", check=True).data("text/plain")[0]
