"""Real MCP servers for the tests (`support.mcp_server`): their declarations for
``ChatMagics.mcp_servers``, an HTTP one run in a subprocess (bounded start and stop), and the log
of the requests that reached them."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

SERVER = Path(__file__).with_name("mcp_server.py")
START_WAIT = 20.0  # seconds an HTTP server may take to listen


def stdio_server(log: Path, *, hostile: bool = False, **extra: Any) -> dict[str, Any]:
    """The declaration of a stdio test server that notes its requests in ``log``."""
    command = [sys.executable, str(SERVER), *(["--hostile"] if hostile else [])]
    env = {"MCP_LOG": str(log), **extra.pop("env", {})}
    return {"command": command, "env": env, **extra}


def overlapped(log: Path, name: str) -> bool:
    """Whether every call of tool ``name`` the server noted began before any of them ended."""
    began = [event["at"] for event in requests_to(log, "tools/call") if event["name"] == name]
    ended = [event["at"] for event in requests_to(log, "done") if event["name"] == name]
    return bool(began) and len(ended) == len(began) and max(began) < min(ended)


def requests_to(log: Path, method: str | None = None) -> list[dict[str, Any]]:
    """The requests the server noted (of one ``method``)."""
    if not log.exists():
        return []
    events = [json.loads(line) for line in log.read_text().splitlines()]
    return [event for event in events if method is None or event["method"] == method]


class HttpServer:
    """The test server over streamable HTTP on 127.0.0.1, in a subprocess."""

    def __init__(self, folder: Path, *, expect_auth: str | None = None) -> None:
        self.log = folder / "http-server.log"
        port_file = folder / "http-server.port"
        port_file.unlink(missing_ok=True)
        env = {"MCP_LOG": str(self.log), "PATH": "/usr/bin:/bin"}
        if expect_auth is not None:
            env["MCP_EXPECT_AUTH"] = expect_auth
        self.process = subprocess.Popen(
            [sys.executable, str(SERVER), "--http", str(port_file)],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        deadline = time.monotonic() + START_WAIT
        while not port_file.exists():
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.close()
                raise RuntimeError("the MCP HTTP test server did not start")
            time.sleep(0.05)
        self.url = f"http://127.0.0.1:{port_file.read_text()}/mcp"

    def close(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(5)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(5)
        if self.process.stderr is not None:
            self.process.stderr.close()

    def __enter__(self) -> HttpServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
