"""One server, held open by a task on the hub's event loop, through the official ``mcp`` SDK.

The SDK's client is an async context (anyio task groups): it must be entered and left by the
same task, so `Connection.hold` enters it, says it is ready, and waits until asked to stop; the
calls (`list_tools`, `call_tool`) are other tasks on the same loop. What a call gives back is
plain JSON (the protocol's camelCase form), never an SDK object, and what goes wrong is an
`Outcome` that says so, never an exception that crosses threads with the SDK's exception groups
as its context.

A stdio server's stderr goes to a temporary file of its own (not the kernel's output); its last
lines, secrets redacted, go into the error that says the server failed.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import tempfile
import time
from dataclasses import dataclass
from typing import IO, Any

from nbchat._text import clip, one_line
from nbchat._version import __version__
from nbchat.errors import ConfigError
from nbchat.mcp.config import Launch

__all__ = ["INSTALL", "Connection", "Outcome", "load_sdk"]

INSTALL = 'MCP tools need the mcp SDK: pip install "nbchat-llm[mcp]"'
_PAGES = 100  # pages of a tool listing read at most (a server whose cursor never ends)
_TAIL_BYTES = 4_096  # of a server's stderr, read for the error line
_TAIL_LINES = 3
_CONNECTION_CLOSED = -32000  # the SDK's code for a connection that ended (mcp_types.jsonrpc)


def load_sdk() -> Any:
    """The ``mcp`` module (2.x); `ConfigError` with the install line when it is missing."""
    try:
        import mcp
        from mcp.client.stdio import stdio_client  # noqa: F401 (2.x has it here)
        from mcp.client.streamable_http import streamable_http_client  # noqa: F401
    except ImportError:
        raise ConfigError(INSTALL) from None
    if not hasattr(mcp, "Client"):  # 1.x
        raise ConfigError(INSTALL.replace("the mcp SDK", "the mcp SDK 2.x"))
    return mcp


@dataclass(frozen=True)
class Outcome:
    """What an operation on a server gave: ``value``, or why not (``failure``: ``start``,
    ``timeout``, ``closed``, ``error``) in one line."""

    value: Any = None
    failure: str | None = None
    detail: str = ""
    elapsed_s: float = 0.0


def _leaf(error: BaseException) -> BaseException:
    """The first exception inside the SDK's exception groups."""
    inner = getattr(error, "exceptions", None)  # an ExceptionGroup (or the 3.10 backport's)
    while isinstance(inner, tuple) and inner and isinstance(inner[0], BaseException):
        error = inner[0]
        inner = getattr(error, "exceptions", None)
    return error


def describe(error: BaseException) -> str:
    """An exception as one line: its type and message."""
    leaf = _leaf(error)
    message = one_line(str(leaf))
    return f"{type(leaf).__name__}: {message}" if message else type(leaf).__name__


class Connection:
    """A running server: the SDK's client, and how it was launched."""

    def __init__(self, launch: Launch) -> None:
        self.launch = launch
        self.client: Any = None
        self.tools: list[dict[str, Any]] = []  # as last listed
        self.started = time.monotonic()
        self.stop = asyncio.Event()
        self.task: asyncio.Task[None] | None = None
        self.ended: str | None = None  # why the connection ended, once it has
        self.stderr: IO[bytes] | None = None
        if launch.command:
            self.stderr = tempfile.TemporaryFile()  # noqa: SIM115 (closed with the connection)

    async def open(self, timeout: float) -> Outcome:
        """Start the server and shake hands, within ``timeout`` seconds."""
        ready: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.task = asyncio.create_task(self.hold(ready))
        # The SDK checks each result against the tool's output schema with jsonschema, imported
        # by the first call (about a second): imported now, while the server starts.
        warming = asyncio.ensure_future(asyncio.to_thread(_import_jsonschema))
        try:
            await asyncio.wait_for(asyncio.shield(ready), timeout)
            await asyncio.wait_for(warming, timeout)
        except TimeoutError:
            await self.close(cancel=True)
            return Outcome(failure="start", detail=f"did not start within {timeout:g} s")
        except asyncio.CancelledError:  # Ctrl-C while it starts: no server is left running
            await self.close(cancel=True)
            raise
        except Exception as error:  # the SDK's and the OS's (a command that is not there)
            await self.close()
            return Outcome(failure="start", detail=f"did not start ({self.ended or error})")
        return Outcome(True)

    async def hold(self, ready: asyncio.Future[None]) -> None:
        """Enter the SDK's client, say it is ready, keep it until `stop` is set."""
        mcp = load_sdk()
        try:
            async with contextlib.AsyncExitStack() as stack:
                transport = await self._transport(stack, mcp)
                client = mcp.Client(
                    transport,
                    cache=None,  # each listing asks the server: a changed tool is seen
                    client_info=mcp.types.Implementation(name="nbchat", version=__version__),
                )
                self.client = await stack.enter_async_context(client)
                ready.set_result(None)
                await self.stop.wait()
        except Exception as error:  # kept as a fact for the one line that reports it
            self.ended = describe(error)
            if not ready.done():
                ready.set_exception(RuntimeError(self.ended))
        finally:
            self.client = None

    async def _transport(self, stack: contextlib.AsyncExitStack, mcp: Any) -> Any:
        from mcp.client.stdio import stdio_client
        from mcp.client.streamable_http import streamable_http_client

        launch = self.launch
        if launch.command:
            command, *args = launch.command
            server = mcp.StdioServerParameters(
                command=command, args=args, env=launch.env or None, cwd=launch.cwd
            )
            return stdio_client(server, errlog=self.stderr)
        import httpx2  # the SDK's HTTP client: the headers go on it

        # No read timeout of httpx's own (5 s by default): a call may take up to mcp_timeout,
        # which bounds every wait (`_attempt`); a response stream may stay open between events.
        timeout = httpx2.Timeout(30.0, read=None)
        client = httpx2.AsyncClient(headers=launch.headers, timeout=timeout)
        http = await stack.enter_async_context(client)
        return streamable_http_client(launch.url, http_client=http)

    async def list_tools(self, timeout: float) -> Outcome:
        """Every tool the server lists, as JSON (``name``, ``description``, ``inputSchema``)."""

        async def listing() -> list[dict[str, Any]]:
            tools, cursor = [], None
            for _ in range(_PAGES):
                page = await self.client.list_tools(cursor=cursor)
                tools.extend(_json(tool) for tool in page.tools)
                cursor = page.next_cursor
                if not cursor:
                    break
            return tools

        outcome = await self._attempt(listing(), timeout, "tools/list")
        if outcome.failure is None:
            self.tools = outcome.value
        return outcome

    async def call_tool(self, tool: str, arguments: dict[str, Any], timeout: float) -> Outcome:
        """A tool's result as JSON (``content``, ``structuredContent``, ``isError``)."""

        async def calling() -> dict[str, Any]:
            return _json(await self.client.call_tool(tool, arguments))

        return await self._attempt(calling(), timeout, clip(one_line(tool), 64))

    async def _attempt(self, work: Any, timeout: float, what: str) -> Outcome:
        if self.client is None:
            work.close()
            return Outcome(failure="closed", detail=f"had stopped before {what}")
        started = time.perf_counter()
        try:
            value = await asyncio.wait_for(work, timeout)
        except TimeoutError:
            detail = f"did not answer {what} within {timeout:g} s"
            return Outcome(failure="timeout", detail=detail, elapsed_s=_since(started))
        except Exception as error:  # the SDK's errors and the server's, of many classes
            leaf = _leaf(error)
            if getattr(leaf, "code", None) == _CONNECTION_CLOSED or self.client is None:
                self.stop.set()  # the server is gone: the next use starts it again
                return Outcome(failure="closed", detail=f"stopped during {what}")
            return Outcome(failure="error", detail=describe(error), elapsed_s=_since(started))
        return Outcome(value, elapsed_s=_since(started))

    def tail(self) -> str:
        """The last lines the server wrote to stderr, on one line, secrets redacted."""
        if self.stderr is None or self.stderr.closed:
            return ""
        fd = self.stderr.fileno()
        size = os.fstat(fd).st_size
        # Read as much before the tail as a secret is long, so that one across the tail's start
        # is redacted whole; then that much is cut off again.
        before = max((len(secret.encode()) for secret in self.launch.secrets), default=0)
        start = max(0, size - _TAIL_BYTES - before)
        if hasattr(os, "pread"):  # the server writes at the shared offset: never move it
            data = os.pread(fd, _TAIL_BYTES + before, start)
        else:  # pragma: no cover (Windows)
            self.stderr.seek(start)
            data = self.stderr.read(_TAIL_BYTES + before)
        text = self.launch.redact(data.decode("utf-8", "replace"))
        text = text[before:] if start > 0 else text
        lines = [one_line(line) for line in text.splitlines() if line.strip()]
        return clip(" | ".join(lines[-_TAIL_LINES:]), 300)

    async def close(self, *, cancel: bool = False) -> None:
        """Stop the server (the SDK closes stdin, then terminates it, each wait bounded);
        ``cancel``: it is still starting, and may never answer."""
        self.stop.set()
        if cancel and self.task is not None:
            self.task.cancel()
        if self.task is not None and self.task is not asyncio.current_task():
            with contextlib.suppress(BaseException):  # its failure was kept in `ended`
                await self.task

    def discard(self) -> None:
        """Let go of the stderr file (after `close`, or when the loop is gone)."""
        if self.stderr is not None:
            self.stderr.close()


def _import_jsonschema() -> None:
    with contextlib.suppress(ImportError):
        import jsonschema  # noqa: F401


def _since(started: float) -> float:
    return round(time.perf_counter() - started, 6)


def _json(model: Any) -> dict[str, Any]:
    """An SDK object as the protocol's JSON."""
    return model.model_dump(mode="json", by_alias=True, exclude_none=True)
