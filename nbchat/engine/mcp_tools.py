"""MCP servers' tools in a turn: which ones a cell offers, the specs sent, and the specs a stored
answer was sent with.

``--tools mcp:files`` offers every tool of server ``files``, ``mcp:files/read_file`` one of them
(`McpSelector`). The spec sent is the server's own: its name, description and ``inputSchema``.
A tool goes by its own name unless another tool offered to the cell (a notebook function, or a
tool of another server) has that name too: then it is sent as ``files__read_file`` (a character
chat APIs refuse in a name, such as ``.``, is sent as ``_``). The notebook's function keeps its
name, so a server's tool never stands in for it.

Listing the tools contacts the servers (`McpOffer.listed`): a turn does it only when it is to be
sent. Before that, the turn is looked up with the specs that stored answers were sent with
(`stored_tools`, from each record's ``mcp`` field: which server tool each sent name stood for),
so a replay starts no server and contacts none. A server whose tools changed since is noticed
when the cell is next asked (``--refresh``, a changed prompt or context).
"""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from nbchat._text import clip, one_line
from nbchat.errors import ConfigError, StreamInterrupted
from nbchat.mcp.config import ServerConfig, read_servers
from nbchat.store.record import Record

if TYPE_CHECKING:
    from nbchat.mcp.connection import Outcome
    from nbchat.mcp.hub import McpHub, PendingCall

__all__ = ["PREFIX", "McpOffer", "McpSelector", "McpTool", "split_tool_names", "stored_tools"]

PREFIX = "mcp:"
_SEPARATOR = "__"  # between a server's name and its tool's, where two offered tools share one
# What chat APIs take as a tool's name (OpenAI's [A-Za-z0-9_-]{1,64}); MCP allows more.
_UNSENDABLE = re.compile(r"[^A-Za-z0-9_-]")
_NAME_LIMIT = 64
_CANDIDATES = 16  # distinct stored tool sets tried before a server is asked


@dataclass(frozen=True)
class McpSelector:
    """``mcp:SERVER`` (every tool) or ``mcp:SERVER/TOOL`` (one)."""

    server: str
    tool: str | None = None

    @classmethod
    def parse(cls, text: str) -> McpSelector:
        """``mcp:files`` or ``mcp:files/read_file``; `ConfigError` for anything else."""
        server, _, tool = text[len(PREFIX) :].partition("/")
        if not text.startswith(PREFIX) or not server or (_ and not tool):
            raise ConfigError(
                f"{clip(text, 60)!r}: name an MCP tool as mcp:SERVER or mcp:SERVER/TOOL"
            )
        return cls(server.strip(), tool.strip() or None)

    def allows(self, server: str, tool: str) -> bool:
        return self.server == server and self.tool in (None, tool)

    def __str__(self) -> str:
        return f"{PREFIX}{self.server}" + (f"/{self.tool}" if self.tool else "")


def split_tool_names(names: Iterable[str]) -> tuple[list[str], list[McpSelector]]:
    """The notebook's function names, and the MCP selectors (``mcp:...``), in order."""
    functions, selectors = [], []
    for name in names:
        if name.startswith(PREFIX):
            selectors.append(McpSelector.parse(name))
        else:
            functions.append(name)
    return functions, list(dict.fromkeys(selectors))


@dataclass(frozen=True)
class McpTool:
    """One tool of a server as offered: the name it is sent as, its spec, where it runs (None:
    a stored spec, which nothing runs)."""

    name: str
    server: str
    tool: str
    spec: dict[str, Any]
    run: Callable[[dict[str, Any]], PendingCall] | None = None
    timeout: float = 0.0
    redact: Callable[[str], str] = str

    def start(self, arguments: dict[str, Any]) -> PendingCall:
        """The call, under way."""
        if self.run is None:  # never: a stored spec is only looked up, and replay runs nothing
            raise ConfigError(f"{self.name} was offered from a stored answer, not by its server")
        return self.run(arguments)

    def finish(self, pending: PendingCall) -> Outcome:
        """Its outcome; `McpServerError` when the server timed out or stopped."""
        return pending.result(self.timeout)


@dataclass(frozen=True)
class McpOffer:
    """The MCP tools a cell names, not yet listed: listing contacts their servers."""

    selectors: tuple[McpSelector, ...]
    servers: Any  # ChatMagics.mcp_servers as configured (read when the tools are listed)
    timeout: float
    hub: Callable[[], McpHub]

    def listed(self, taken: Collection[str]) -> list[McpTool]:
        """Each tool the selectors name, as its server lists it now (servers started as
        needed); ``taken``: the notebook functions' names."""
        declared = read_servers(self.servers)
        hub = self.hub()
        found: list[tuple[str, dict[str, Any], ServerConfig]] = []
        for server in dict.fromkeys(selector.server for selector in self.selectors):
            if server not in declared:
                known = ", ".join(sorted(declared)) or "none"
                raise ConfigError(
                    f"--tools: no MCP server {server!r} is declared in ChatMagics.mcp_servers "
                    f"(declared: {known})"
                )
            try:
                listing = _checked_listing(server, hub.tools(declared[server], self.timeout))
            except KeyboardInterrupt:  # the hub has stopped a server it was starting
                raise StreamInterrupted(
                    f"Interrupted while MCP server {server!r} listed its tools; nothing was sent."
                ) from None
            chosen = [tool for tool in listing if self._allows(server, tool["name"])]
            self._check_named(server, listing)
            found.extend((server, tool, declared[server]) for tool in chosen)
        names = sent_names([(server, tool["name"]) for server, tool, _ in found], taken)
        return [
            McpTool(
                name,
                server,
                tool["name"],
                _spec(name, tool, _redactor(hub, server)),
                run=_runner(hub, config, tool["name"], self.timeout),
                timeout=self.timeout,
                redact=_redactor(hub, server),
            )
            for name, (server, tool, config) in zip(names, found, strict=True)
        ]

    def _allows(self, server: str, tool: str) -> bool:
        return any(selector.allows(server, tool) for selector in self.selectors)

    def _check_named(self, server: str, listing: list[dict[str, Any]]) -> None:
        names = {tool["name"] for tool in listing}
        for selector in self.selectors:
            wanted = selector.tool if selector.server == server else None
            if wanted is not None and wanted not in names:
                offered = clip(", ".join(sorted(names)) or "none", 200)
                raise ConfigError(
                    f"--tools: MCP server {server!r} has no tool {wanted!r} (it lists: {offered})"
                )
        if not names:
            raise ConfigError(f"--tools: MCP server {server!r} lists no tools")

    def stored(self, records: Iterable[Record]) -> Iterator[list[McpTool]]:
        """The MCP tools of stored answers that this cell's selectors offered, as they were
        sent (each distinct set once, the first records first)."""
        seen: set[str] = set()
        for record in records:
            tools = stored_tools(record, self.selectors)
            if tools is None:
                continue
            key = json.dumps([tool.spec for tool in tools], sort_keys=True)
            if key not in seen:
                seen.add(key)
                yield tools
            if len(seen) >= _CANDIDATES:
                return


def sent_names(tools: list[tuple[str, str]], taken: Collection[str]) -> list[str]:
    """The name each ``(server, tool)`` is sent as: its own, or ``server__tool`` where another
    offered tool (or a notebook function in ``taken``) shares it; a character chat APIs refuse
    in a name (MCP allows ``.``) as ``_``, and at most 64 characters."""
    counts = Counter(_sendable(tool) for _, tool in tools) + Counter(taken)
    names = [
        _sendable(f"{server}{_SEPARATOR}{tool}" if counts[_sendable(tool)] > 1 else tool)
        for server, tool in tools
    ]
    repeated = [name for name, count in Counter([*names, *taken]).items() if count > 1]
    if repeated:
        raise ConfigError(
            f"--tools: two offered tools would both be sent as {clip(repeated[0], 60)!r}: "
            "offer one of them (mcp:SERVER/TOOL names one tool)"
        )
    return names


def _sendable(name: str) -> str:
    return _UNSENDABLE.sub("_", name)[:_NAME_LIMIT]


def stored_tools(record: Record, selectors: Iterable[McpSelector]) -> list[McpTool] | None:
    """The MCP tools ``record`` was sent with, when they are exactly what ``selectors`` offer
    (every tool from a selected server, every named tool among them); else None."""
    origins = record.mcp
    if not origins or record.request is None:
        return None
    specs = {
        spec["function"]["name"]: spec
        for spec in record.request.params.get("tools") or []
        if isinstance(spec, dict) and isinstance(spec.get("function"), dict)
    }
    chosen = list(selectors)
    tools = []
    for name, (server, tool) in sorted(origins.items()):
        if name not in specs or not any(s.allows(server, tool) for s in chosen):
            return None
        tools.append(McpTool(name, server, tool, specs[name]))
    for selector in chosen:
        if not any(selector.allows(tool.server, tool.tool) for tool in tools):
            return None
    return tools


def origins(tools: Iterable[McpTool]) -> dict[str, list[str]] | None:
    """What a record keeps of the MCP tools sent: ``{sent name: [server, tool]}``."""
    found = {tool.name: [tool.server, tool.tool] for tool in tools}
    return found or None


def _checked_listing(server: str, listing: Any) -> list[dict[str, Any]]:
    """The tools a server lists, each with a name; two of one name are refused."""
    tools = [t for t in listing if isinstance(t, Mapping) and isinstance(t.get("name"), str)]
    repeated = [name for name, count in Counter(t["name"] for t in tools).items() if count > 1]
    if repeated:
        shown = clip(one_line(repeated[0]), 60)
        raise ConfigError(f"MCP server {server!r} lists two tools named {shown!r}")
    return [dict(tool) for tool in tools if tool["name"]]


def _spec(name: str, tool: Mapping[str, Any], redact: Callable[[str], str]) -> dict[str, Any]:
    """The request's ``tools`` entry: the server's own description and input schema (any
    secret of the server's launch redacted: the spec is sent, and stored with the answer)."""
    function: dict[str, Any] = {"name": name}
    if isinstance(tool.get("description"), str):
        function["description"] = tool["description"]
    schema = tool.get("inputSchema")
    no_parameters = {"type": "object", "properties": {}}
    function["parameters"] = schema if isinstance(schema, dict) else no_parameters
    spec = {"type": "function", "function": function}
    text = json.dumps(spec, ensure_ascii=False)
    redacted = redact(text)
    try:
        return spec if redacted == text else json.loads(redacted)
    except ValueError:  # a secret that spelled JSON's own syntax: the description at least
        function["description"] = redact(function.get("description", ""))
        return spec


def _runner(
    hub: McpHub, config: ServerConfig, tool: str, timeout: float
) -> Callable[[dict[str, Any]], PendingCall]:
    return lambda arguments: hub.submit(config, tool, arguments, timeout)


def _redactor(hub: McpHub, server: str) -> Callable[[str], str]:
    return lambda text: hub.redact(server, text)
