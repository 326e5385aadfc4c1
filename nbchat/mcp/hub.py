"""The kernel's MCP servers behind a synchronous face, their async SDK on a loop of its own.

The kernel already runs an event loop (ipykernel's), and nesting another in it is not allowed;
so the hub runs one asyncio loop in a daemon thread, started with the first server, and the
engine calls it from the kernel's thread: `McpHub.tools` lists a server's tools (starting it on
first use, and again when its declaration or its secrets changed, or it stopped), `McpHub.submit`
starts a call and returns a `PendingCall` to wait for (several run at once), `McpHub.close`
stops every server and the loop (``%unload_ext nbchat``, and at interpreter exit).

A server that fails to start, does not answer within the timeout, or stops mid-call raises
`McpServerError`: one line with its stderr's last lines, secrets redacted. Any other failure of a
call (the server's own protocol error) is the call's result, for the model to read.
"""

from __future__ import annotations

import asyncio
import atexit
import concurrent.futures
import logging
import os
import threading
import time
from collections.abc import Coroutine, Mapping
from dataclasses import dataclass, field
from typing import Any

from nbchat._text import clip
from nbchat.errors import McpServerError
from nbchat.mcp.config import Launch, ServerConfig
from nbchat.mcp.connection import Connection, Outcome, load_sdk

__all__ = ["McpHub", "PendingCall", "ServerState"]

_GRACE = 10.0  # seconds past a timeout before the kernel stops waiting for a wedged loop
_CLOSE_WAIT = 8.0  # seconds every server together gets to stop (the SDK bounds each stop)


@dataclass(frozen=True)
class ServerState:
    """What ``%chat mcp`` shows of a server."""

    name: str
    transport: str
    where: str
    state: str  # "not started", "running", "failed"
    tools: list[dict[str, Any]] = field(default_factory=list)
    detail: str = ""


class PendingCall:
    """A tool call under way on a server; `result` waits for it."""

    def __init__(self, hub: McpHub, name: str, future: concurrent.futures.Future[Outcome]):
        self._hub, self._name, self._future = hub, name, future

    def result(self, timeout: float) -> Outcome:
        """The call's outcome (its value: the result's JSON; its failure: ``error``, the
        server's own error for the model); `McpServerError` when the server timed out or
        stopped. Ctrl-C cancels the call."""
        try:
            outcome = self._future.result(timeout + _GRACE)
        except KeyboardInterrupt:
            self.cancel()
            raise
        except concurrent.futures.TimeoutError:
            outcome = Outcome(failure="timeout", detail=f"did not answer within {timeout:g} s")
        if outcome.failure in ("timeout", "closed", "start"):
            self._hub.fail(self._name, outcome)
        return outcome

    def cancel(self) -> None:
        """Stop waiting: the call is cancelled on the server's side too."""
        self._future.cancel()


class McpHub:
    """The servers of one kernel, started on first use and kept until `close`."""

    def __init__(self, environ: Mapping[str, str] = os.environ) -> None:
        self.environ = environ
        self._lock = threading.RLock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._servers: dict[str, Connection] = {}
        self._problems: dict[str, str] = {}  # each server's last failure, for `%chat mcp`

    # -- the kernel's side ---------------------------------------------------------------------

    def tools(self, config: ServerConfig, timeout: float) -> list[dict[str, Any]]:
        """The tools ``config``'s server lists now (started if it is not running)."""
        for attempt in (1, 2):  # a server that stopped since its last use is started again
            connection = self._connection(config, timeout)
            outcome = self._run(connection.list_tools(timeout), timeout)
            if outcome.failure != "closed" or attempt == 2:
                break
            self._forget(config.name)
        if outcome.failure is not None:
            self.fail(config.name, outcome)
        return outcome.value

    def submit(
        self, config: ServerConfig, tool: str, arguments: dict[str, Any], timeout: float
    ) -> PendingCall:
        """Start calling ``tool``; the call runs while the kernel does other work."""
        connection = self._connection(config, timeout)
        loop = self._loop
        assert loop is not None  # `_connection` started it
        future = asyncio.run_coroutine_threadsafe(
            connection.call_tool(tool, arguments, timeout), loop
        )
        return PendingCall(self, config.name, future)

    def redact(self, name: str, text: str) -> str:
        """``text`` with the secrets of server ``name``'s launch redacted."""
        connection = self._servers.get(name)
        return connection.launch.redact(text) if connection is not None else text

    def states(self, configs: Mapping[str, ServerConfig]) -> list[ServerState]:
        """Each declared server: running (with its tools as last listed), failed, or not
        started."""
        shown = []
        for name, config in configs.items():
            connection = self._servers.get(name)
            common = {"name": name, "transport": config.transport, "where": config.where}
            if connection is not None and connection.client is not None:
                up = f"up {time.monotonic() - connection.started:.0f} s"
                tools = [_redacted(tool, connection.launch) for tool in connection.tools]
                shown.append(ServerState(**common, state="running", tools=tools, detail=up))
            elif name in self._problems:
                shown.append(ServerState(**common, state="failed", detail=self._problems[name]))
            else:
                shown.append(ServerState(**common, state="not started"))
        return shown

    def fail(self, name: str, outcome: Outcome) -> None:
        """Raise the one line that says server ``name`` failed; a server that stopped, or
        never started, is let go (the next use starts it again)."""
        connection = self._servers.get(name)
        tail = connection.tail() if connection is not None else ""
        if outcome.failure in ("closed", "start"):
            self._forget(name)
        detail = clip(outcome.detail, 300) + (f"; its stderr: {tail}" if tail else "")
        self._problems[name] = detail
        raise McpServerError(f"MCP server {name!r} {detail}")

    def close(self) -> None:
        """Stop every server and the loop (each wait bounded); the hub may start again."""
        with self._lock:
            loop, thread = self._loop, self._thread
            servers = list(self._servers.values())
            self._servers.clear()
            self._loop = self._thread = None
        if loop is None or thread is None:
            return
        atexit.unregister(self.close)
        if loop.is_running():
            stopping = asyncio.run_coroutine_threadsafe(_close_all(servers), loop)
            try:
                stopping.result(_CLOSE_WAIT + 1)
            except Exception:  # a server that will not stop: the loop stops anyway
                stopping.cancel()
            loop.call_soon_threadsafe(loop.stop)
        thread.join(2.0)
        for connection in servers:
            connection.discard()

    # -- the loop's side -----------------------------------------------------------------------

    def _connection(self, config: ServerConfig, timeout: float) -> Connection:
        """The running server of ``config``, started (again) when needed."""
        launch = config.launch(self.environ)  # before anything starts: a missing secret says so
        load_sdk()
        with self._lock:
            running = self._servers.get(config.name)
            if running is not None and running.launch == launch and running.client is not None:
                return running
            if running is not None:
                self._forget(config.name)
            self._start_loop()
            opened = self._run(_opened(launch, timeout), timeout)
            connection = opened.value
            if connection is not None:  # started or not: its stderr is for the error line
                self._servers[config.name] = connection
            if opened.failure is not None:
                self.fail(config.name, opened)
            self._problems.pop(config.name, None)
            return connection

    def _run(self, work: Coroutine[Any, Any, Outcome], timeout: float) -> Outcome:
        """Run ``work`` on the loop and wait for it (Ctrl-C cancels it)."""
        loop = self._loop
        assert loop is not None
        future = asyncio.run_coroutine_threadsafe(work, loop)
        try:
            return future.result(timeout + _GRACE)
        except KeyboardInterrupt:
            future.cancel()
            raise
        except concurrent.futures.TimeoutError:
            future.cancel()
            return Outcome(failure="timeout", detail=f"did not answer within {timeout:g} s")

    def _forget(self, name: str) -> None:
        connection = self._servers.pop(name, None)
        loop = self._loop
        if connection is None or loop is None:
            return
        stopping = asyncio.run_coroutine_threadsafe(connection.close(), loop)
        stopping.add_done_callback(lambda _: connection.discard())

    def _start_loop(self) -> None:
        if self._loop is not None:
            return
        # The SDK logs from the loop's thread; a warning printed there would land in whatever
        # cell runs next. Its failures reach the user as nbchat's one-line errors instead.
        logger = logging.getLogger("mcp")
        if not any(isinstance(handler, logging.NullHandler) for handler in logger.handlers):
            logger.addHandler(logging.NullHandler())
        loop = asyncio.new_event_loop()
        thread = threading.Thread(target=_serve, args=(loop,), name="nbchat-mcp", daemon=True)
        thread.start()
        self._loop, self._thread = loop, thread
        atexit.register(self.close)


def _serve(loop: asyncio.AbstractEventLoop) -> None:
    asyncio.set_event_loop(loop)
    try:
        loop.run_forever()
    finally:
        loop.close()


def _redacted(tool: dict[str, Any], launch: Launch) -> dict[str, Any]:
    """A listed tool as shown: its name and description with the launch's secrets redacted (a
    server may tell what it was given)."""
    shown = dict(tool)
    for key in ("name", "description"):
        if isinstance(shown.get(key), str):
            shown[key] = launch.redact(shown[key])
    return shown


async def _opened(launch: Launch, timeout: float) -> Outcome:
    """The connection (started, or with the failure that stopped it) as the value."""
    connection = Connection(launch)
    opened = await connection.open(timeout)
    return Outcome(connection, opened.failure, opened.detail)


async def _close_all(servers: list[Connection]) -> None:
    closing = [asyncio.create_task(connection.close()) for connection in servers]
    if closing:
        _, late = await asyncio.wait(closing, timeout=_CLOSE_WAIT)
        for task in late:
            task.cancel()
