"""The kernel's MCP servers behind a synchronous face (`mcp.hub`), against real servers the tests
start (the SDK's own MCPServer, `support.mcp_server`) over stdio and streamable HTTP: listing, a
call, calls at once, error results, a timeout, a crash, a server that will not start, a secret
header, and closing. Every start and stop is bounded."""

from __future__ import annotations

import json
import os
import signal
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from nbchat.errors import ConfigError, McpServerError
from nbchat.mcp.config import ServerConfig, read_servers
from nbchat.mcp.connection import INSTALL
from nbchat.mcp.hub import McpHub
from nbchat.mcp.results import result_text

from support.mcp_fixtures import SERVER, HttpServer, overlapped, requests_to, stdio_server

pytest.importorskip("mcp")

TOKEN = "tok-0123456789abcdef"
TIMEOUT = 20.0


def server(log: Path, name: str = "files", **extra: object) -> ServerConfig:
    return read_servers({name: stdio_server(log, **extra)})[name]


def pid_of(log: Path) -> int:
    return requests_to(log, "tools/list")[-1]["pid"]


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    status = Path(f"/proc/{pid}/status")
    return not status.exists() or "zombie" not in status.read_text()


def gone(pid: int, within: float = 10.0) -> bool:
    deadline = time.monotonic() + within
    while alive(pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    return not alive(pid)


@pytest.fixture(scope="module")
def running(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[McpHub, ServerConfig, Path]]:
    """One hub with the stdio test server started, for the tests that leave it running."""
    log = tmp_path_factory.mktemp("mcp") / "log"
    hub = McpHub()
    config = server(log)
    hub.tools(config, TIMEOUT)
    yield hub, config, log
    hub.close()


def call(hub: McpHub, config: ServerConfig, tool: str, timeout: float = TIMEOUT, **args: object):
    return hub.submit(config, tool, dict(args), timeout).result(timeout)


def test_listing_and_a_call(running) -> None:
    hub, config, log = running
    tools = {tool["name"]: tool for tool in hub.tools(config, TIMEOUT)}
    assert set(tools) == {"tide", "slow", "crash", "chart", "stats", "environment"}
    assert tools["tide"]["inputSchema"]["required"] == ["station"]
    outcome = call(hub, config, "tide", station="Brest")
    assert outcome.failure is None and result_text(outcome.value) == ("Brest: 4.2 m", False)
    reached = requests_to(log, "tools/call")[-1]
    assert (reached["name"], reached["arguments"]) == ("tide", {"station": "Brest"})


def test_calls_run_at_once(running) -> None:
    hub, config, log = running
    pending = [hub.submit(config, "slow", {"seconds": 0.5}, TIMEOUT) for _ in range(3)]
    texts = [result_text(p.result(TIMEOUT).value)[0] for p in pending]
    assert texts == ["waited 0.5 s"] * 3
    assert overlapped(log, "slow"), "each began before any ended"


def test_the_servers_errors_are_results(running) -> None:
    hub, config, _ = running
    unknown = call(hub, config, "tide", station="Atlantis")
    assert result_text(unknown.value) == (
        "Error (isError): Error executing tool tide: no station 'Atlantis'",
        True,
    )
    assert result_text(call(hub, config, "nosuch").value)[1] is True


def test_a_timeout_is_one_line_and_the_server_stays(running) -> None:
    hub, config, log = running
    pid = pid_of(log)
    with pytest.raises(McpServerError) as error:
        call(hub, config, "slow", timeout=0.5, seconds=10)
    assert str(error.value).startswith("MCP server 'files' did not answer slow within 0.5 s")
    assert error.value.__context__ is None, "no exception group behind the one line"
    assert result_text(call(hub, config, "tide", station="Cadiz").value)[0] == "Cadiz: 1.1 m"
    assert hub.tools(config, TIMEOUT) and pid_of(log) == pid


def test_a_crash_is_one_line_and_the_next_use_starts_it_again(tmp_path: Path) -> None:
    log = tmp_path / "log"
    config = server(log, env={"MCP_TEST_TOKEN": "$SERVER_TOKEN"})
    hub = McpHub(environ={"SERVER_TOKEN": TOKEN})
    try:
        hub.tools(config, TIMEOUT)
        first = pid_of(log)
        with pytest.raises(McpServerError) as error:
            call(hub, config, "crash")
        assert str(error.value) == (
            "MCP server 'files' stopped during crash; its stderr: starting the crash | "
            "token=[redacted]"
        )
        assert hub.states({"files": config})[0].state == "failed"
        secret = result_text(call(hub, config, "environment").value)[0]
        assert TOKEN in secret, "started again, with its secret"
        assert pid_of(log) != first and gone(first)
    finally:
        hub.close()


@pytest.mark.parametrize(
    ("command", "timeout", "line"),
    [
        (["/nonexistent/server"], TIMEOUT, "did not start (FileNotFoundError: "),
        (
            [sys.executable, "-c", f"import sys; print('no {TOKEN}', file=sys.stderr); exit(2)"],
            TIMEOUT,
            "did not start (MCPError: Connection closed); its stderr: no [redacted]",
        ),
        ([sys.executable, "-c", "import time; time.sleep(60)"], 1.0, "did not start within 1 s"),
    ],
)
def test_a_server_that_does_not_start(command: list[str], timeout: float, line: str) -> None:
    config = read_servers({"bad": {"command": command}})["bad"]
    hub = McpHub(environ={"SOME_TOKEN": TOKEN})
    started = time.monotonic()
    try:
        with pytest.raises(McpServerError) as error:
            hub.tools(config, timeout)
        assert str(error.value).startswith(f"MCP server 'bad' {line}")
        assert TOKEN not in str(error.value)
        assert hub.states({"bad": config})[0].state == "failed"
    finally:
        hub.close()
    assert time.monotonic() - started < timeout + 8


def test_close_stops_the_servers_and_the_loop(tmp_path: Path) -> None:
    log = tmp_path / "log"
    hub = McpHub()
    hub.tools(server(log), TIMEOUT)
    pid = pid_of(log)
    (loop,) = [t for t in threading.enumerate() if t.name == "nbchat-mcp" and t is hub._thread]
    assert loop.daemon
    hub.close()
    assert gone(pid) and not loop.is_alive()
    hub.close()  # twice is fine


def test_an_http_server_with_a_secret_header(tmp_path: Path) -> None:
    declared = {"url": None, "headers_env": {"Authorization": "Bearer $WEB_TOKEN"}}
    hub = McpHub(environ={"WEB_TOKEN": TOKEN})
    with HttpServer(tmp_path, expect_auth=f"Bearer {TOKEN}") as http:
        try:
            config = read_servers({"web": {**declared, "url": http.url}})["web"]
            assert "tide" in {tool["name"] for tool in hub.tools(config, TIMEOUT)}
            outcome = call(hub, config, "tide", station="Brest")
            assert result_text(outcome.value) == ("Brest: 4.2 m", False)
            refused = read_servers({"open": {"url": http.url}})["open"]
            with pytest.raises(McpServerError) as error:
                hub.tools(refused, TIMEOUT)
            assert str(error.value).startswith("MCP server 'open' did not start (")
        finally:
            hub.close()
    assert len(requests_to(http.log, "tools/call")) == 1


def test_without_the_sdk_the_line_says_how_to_install_it(monkeypatch, tmp_path: Path) -> None:
    monkeypatch.setitem(sys.modules, "mcp", None)
    hub = McpHub()
    with pytest.raises(ConfigError) as error:
        hub.tools(server(tmp_path / "log"), TIMEOUT)
    assert (
        str(error.value) == INSTALL == 'MCP tools need the mcp SDK: pip install "nbchat-llm[mcp]"'
    )
    assert not (tmp_path / "log").exists(), "nothing started"


def test_an_http_call_may_take_longer_than_the_http_clients_default_timeout(
    tmp_path: Path,
) -> None:
    """mcp_timeout bounds a call, not httpx's 5 s default read timeout."""
    hub = McpHub()
    with HttpServer(tmp_path) as http:
        try:
            config = read_servers({"web": {"url": http.url}})["web"]
            outcome = call(hub, config, "slow", seconds=6)
            assert result_text(outcome.value) == ("waited 6.0 s", False)
        finally:
            hub.close()


def test_ctrl_c_while_a_server_starts_leaves_no_server_running(tmp_path: Path) -> None:
    pid_file = tmp_path / "pid"
    slow_start = (
        f"import os, runpy, sys, time; open({str(pid_file)!r}, 'w').write(str(os.getpid())); "
        f"time.sleep(3); sys.argv = [{str(SERVER)!r}]; "
        f"runpy.run_path({str(SERVER)!r}, run_name='__main__')"
    )
    config = read_servers({"slow": {"command": [sys.executable, "-c", slow_start]}})["slow"]
    hub = McpHub()
    main = threading.get_ident()
    timer = threading.Timer(1.5, lambda: signal.pthread_kill(main, signal.SIGINT))
    try:
        timer.start()
        with pytest.raises(KeyboardInterrupt):
            hub.tools(config, TIMEOUT)
        assert pid_file.exists(), "it was starting"
        assert gone(int(pid_file.read_text())), "stopped with the start it was part of"
    finally:
        timer.cancel()
        hub.close()


def test_what_chat_mcp_shows_of_a_servers_tools_has_its_secrets_redacted(tmp_path: Path) -> None:
    config = server(tmp_path / "log", hostile=True, env={"MCP_TEST_TOKEN": "$SERVER_TOKEN"})
    hub = McpHub(environ={"SERVER_TOKEN": TOKEN})
    try:
        listed = {tool["name"]: tool for tool in hub.tools(config, TIMEOUT)}
        assert TOKEN in listed["level"]["description"], "the server told it"
        (state,) = hub.states({"files": config})
        shown = {tool["name"]: tool for tool in state.tools}
        assert shown["level"]["description"].endswith("token=[redacted]")
        assert TOKEN not in json.dumps(state.tools)
    finally:
        hub.close()


def test_a_secret_cut_at_the_start_of_the_stderr_tail_is_not_shown_in_part() -> None:
    """The tail is the last 4 kB of the server's stderr: a secret across its start still goes."""
    noise = "B" * 4090
    code = f"import sys; sys.stderr.write('A' * 100 + {TOKEN!r} + {noise!r}); exit(2)"
    config = read_servers({"bad": {"command": [sys.executable, "-c", code]}})["bad"]
    hub = McpHub(environ={"SOME_TOKEN": TOKEN})
    try:
        with pytest.raises(McpServerError) as error:
            hub.tools(config, TIMEOUT)
    finally:
        hub.close()
    line = str(error.value)
    assert "its stderr: " in line and line.endswith("BBB…")
    assert not any(TOKEN[n:] in line for n in range(len(TOKEN) - 4)), line
