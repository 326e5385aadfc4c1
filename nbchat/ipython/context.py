"""The kernel side of nbchat, as the magic, the commands and `nbchat.ask` see it.

`ChatKernel` holds what lives as long as the kernel (the session, the notebook file's locator,
the output of the running cell) and answers the questions every caller asks: the effective
settings, the saved notebook's records, the running cell (read once per cell), the tools and
answer shape a cell names. The magic owns one; the commands and `ask` are given it, never the
magic itself.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from nbchat.engine.mcp_tools import PREFIX, McpOffer, McpSelector, split_tool_names
from nbchat.engine.profiles import BUILTIN_PROFILES
from nbchat.engine.session import ChatSession
from nbchat.engine.settings import (
    DEFAULT_MAX_TOOL_CALLS,
    Settings,
    resolve_settings,
)
from nbchat.engine.tool_calls import ToolBox
from nbchat.errors import ConfigError
from nbchat.ipython.batch_poller import BatchPollers
from nbchat.ipython.cell import Frontend, RunningCell
from nbchat.ipython.locator import SavedNotebook
from nbchat.ipython.names import output_shape, tools_named
from nbchat.ipython.options import CellOptions
from nbchat.ipython.output import CellOutput
from nbchat.prompt.key_guard import KeyGuard
from nbchat.schema.structured import JsonOutput, OutputSchema
from nbchat.store.notebook import NotebookRecords

if TYPE_CHECKING:
    from nbchat.mcp.hub import McpHub

__all__ = ["ChatConfig", "ChatKernel"]


class ChatConfig(Protocol):
    """What the kernel side reads of ``%config ChatMagics``."""

    profiles: dict[str, Any]
    tools: list[str]
    max_tool_calls: int | None

    def configured(self) -> dict[str, Any]:
        """The settings set by ``%config`` (None: not set there)."""
        ...


class ChatKernel:
    """The kernel-side state and questions of nbchat."""

    def __init__(self, shell: Any, config: ChatConfig) -> None:
        self.shell = shell
        self.config = config
        self.running = RunningCell.read(shell)
        self.output = CellOutput(lambda: self.running.frontend)
        self.session = ChatSession(warn=self.output.note)
        self.locator = SavedNotebook()
        self._mcp: McpHub | None = None
        self.pollers = BatchPollers()  # following --map --batch cells that returned

    @property
    def namespace(self) -> dict[str, Any]:
        """The notebook's variables."""
        return self.shell.user_ns if self.shell is not None else {}

    def begin(self) -> RunningCell:
        """A cell (or an `ask`) starts: the running cell is read, once, and its output is new."""
        self.running = RunningCell.read(self.shell)
        self.output.start()
        return self.running

    def settings(self, flags: Mapping[str, Any] | None = None) -> Settings:
        """The effective settings: flags over profile over %config over environment."""
        return resolve_settings(self.config.configured(), flags or {}, self.config.profiles)

    def notebook(self) -> NotebookRecords | None:
        """The saved notebook's records (None when unknown or unreadable; said once)."""
        headless = self.running.frontend is Frontend.HEADLESS
        return self.locator.records(self.namespace, headless=headless, warn=self._warn_once)

    def set_notebook(self, path: str | None) -> None:
        """Name the notebook's file (None: find it again by itself)."""
        self.locator.path = Path(path).expanduser() if path else None

    @property
    def mcp(self) -> McpHub:
        """The kernel's MCP servers (none runs until a cell that offers their tools is sent)."""
        if self._mcp is None:
            from nbchat.mcp.hub import McpHub

            self._mcp = McpHub()
        return self._mcp

    def toolbox(self, options: CellOptions, settings: Settings | None = None) -> ToolBox | None:
        """The tools the cell offers: given, named, or ``ChatMagics.tools``; notebook functions
        and tools of MCP servers (``mcp:SERVER``, ``mcp:SERVER/TOOL``)."""

        def offer(selectors: list[McpSelector]) -> McpOffer:
            chosen = settings or self.settings(options.flags())
            servers, timeout = chosen.mcp_servers, chosen.mcp_timeout
            return McpOffer(tuple(selectors), servers, timeout, lambda: self.mcp)

        if not options.functions:
            return tools_named(self.namespace, options.tools, self.config.tools, offer)
        functions = [f for f in options.functions if not isinstance(f, str)]
        names = [name for name in options.functions if isinstance(name, str)]
        for name in names:
            if not name.startswith(PREFIX):
                raise ConfigError(
                    f"{options.caller.name_of('tools')}: {name!r} is a name; pass the function "
                    f"itself, or {PREFIX}SERVER for the tools of an MCP server"
                )
        _, selectors = split_tool_names(names)
        return ToolBox(functions, mcp=offer(selectors) if selectors else None)

    def output_shape(self, options: CellOptions) -> OutputSchema | JsonOutput | None:
        """The shape the answer must have: a schema named in the notebook or given, or JSON."""
        if options.schema is None or isinstance(options.schema, str):
            return output_shape(self.namespace, options.schema, options.json)
        shape = OutputSchema.of(options.schema)
        return JsonOutput(shape) if options.json else shape

    def tool_call_cap(self, options: CellOptions) -> int:
        """Calls of one answer that run: the cell's, else ``ChatMagics.max_tool_calls``, else
        the default."""
        cap = options.max_tool_calls
        if cap is None:
            cap = self.config.max_tool_calls
        return DEFAULT_MAX_TOOL_CALLS if cap is None else cap

    def key_guard(self, settings: Settings, options: CellOptions) -> KeyGuard:
        """The keys of the environment: any profile's key variable, this request's, and every
        variable named like a secret."""
        profiles = [*BUILTIN_PROFILES.values(), *self.config.profiles.values()]
        names = [settings.api_key_env, *(p.get("api_key_env") for p in profiles)]
        flag = options.caller.name_of("allow_secrets", True)
        return KeyGuard(os.environ, [n for n in names if isinstance(n, str)], flag=flag)

    def note(self, message: str) -> None:
        """A quiet note in the running cell's output."""
        self.output.note(message)

    def close(self) -> None:
        """Stop the batch pollers, close the session's HTTP connections and stop the MCP
        servers."""
        self.pollers.close()
        self.session.close()
        if self._mcp is not None:
            self._mcp.close()

    def _warn_once(self, message: str) -> None:
        self.session.warn_once(message)
