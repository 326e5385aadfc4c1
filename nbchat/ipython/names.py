"""What a ``%%chat`` cell's flags name in the notebook: the tools it offers, the shape its
answer must have. Names are looked up in the user namespace; nothing is evaluated. A tool
named ``mcp:SERVER`` or ``mcp:SERVER/TOOL`` is a tool of an MCP server: named here, listed by
its server only when the cell is sent (`nbchat.engine.mcp_tools`)."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from nbchat.engine.mcp_tools import McpOffer, McpSelector, split_tool_names
from nbchat.engine.tool_calls import ToolBox
from nbchat.errors import ConfigError
from nbchat.schema.structured import JsonOutput, OutputSchema

__all__ = ["output_shape", "tools_named"]


def tools_named(
    namespace: Mapping[str, Any],
    names: str | None,
    configured: Sequence[str] = (),
    mcp: Callable[[list[McpSelector]], McpOffer] | None = None,
) -> ToolBox | None:
    """The functions named (``"f,g"``; when None, the ``configured`` names) as a `ToolBox`, or
    None when there are none; ``mcp`` makes the offer of the MCP tools named."""
    wanted = [n.strip() for n in names.split(",")] if names is not None else list(configured)
    function_names, selectors = split_tool_names(name for name in wanted if name)
    functions = []
    for name in dict.fromkeys(function_names):
        function = namespace.get(name) if name.isidentifier() else None
        if not callable(function):
            what = "is not a function" if name in namespace else "is not defined"
            raise ConfigError(f"--tools: {name!r} {what} in the notebook")
        functions.append(function)
    if selectors and mcp is None:
        raise ConfigError("--tools: tools of MCP servers cannot be offered here")
    offer = mcp(selectors) if selectors and mcp is not None else None
    return ToolBox(functions, mcp=offer) if functions or offer else None


def output_shape(
    namespace: Mapping[str, Any], schema: str | None, as_json: bool
) -> OutputSchema | JsonOutput | None:
    """The shape ``--schema NAME`` and ``--json`` ask for (both: JSON checked here)."""
    shape = None
    if schema is not None:
        if schema not in namespace:
            raise ConfigError(f"--schema: {schema!r} is not defined in the notebook")
        target = namespace[schema]
        shape = OutputSchema.of(target, name=schema if isinstance(target, dict) else None)
    return JsonOutput(shape) if as_json else shape
