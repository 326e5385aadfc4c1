"""``%chat mcp [NAME]``: the declared MCP servers, their state and their tools; and the tool
specs ``%chat tools`` shows for a cell that names some (what is sent, as sent).

``%chat mcp`` starts no server: it shows the tools of those running, as last listed.
``%chat mcp NAME`` starts that server if need be and lists its tools now. A server's names and
descriptions are its own text, shown escaped and sanitized like everything else.
"""

from __future__ import annotations

from IPython.display import display

from nbchat._text import clip, one_line, plural, printable, render_table
from nbchat.engine.tool_calls import ToolBox
from nbchat.errors import ConfigError
from nbchat.ipython.context import ChatKernel
from nbchat.mcp.config import read_servers
from nbchat.render.bundles import raw_bundle
from nbchat.render.html import document, escape, table

__all__ = ["show_servers", "show_specs"]

_DESCRIPTION = 120  # characters of a tool's description in the table


def show_servers(kernel: ChatKernel, name: str | None) -> None:
    """The servers of ``ChatMagics.mcp_servers`` (or server ``name``, listed now)."""
    settings = kernel.settings()
    declared = read_servers(settings.mcp_servers)
    if not declared:
        print("No MCP servers: declare them in %config ChatMagics.mcp_servers.")
        return
    if name is not None:
        if name not in declared:
            known = ", ".join(sorted(declared))
            raise ConfigError(f"%chat mcp: no MCP server {name!r} is declared (declared: {known})")
        declared = {name: declared[name]}
        kernel.mcp.tools(declared[name], settings.mcp_timeout)
    states = kernel.mcp.states(declared)
    headers = ["server", "transport", "where", "state", "tools"]
    rows = [
        [
            state.name,
            state.transport,
            state.where,
            f"{state.state} ({state.detail})" if state.detail else state.state,
            clip(one_line(", ".join(tool["name"] for tool in state.tools)) or "-", 200),
        ]
        for state in states
    ]
    html, plain = table(headers, rows), render_table(headers, rows)
    if name is not None:
        tools = states[0].tools
        described = [[clip(one_line(tool["name"]), 64), _description(tool)] for tool in tools]
        title = f"{name}: {plural(len(tools), 'tool')}"
        html += f"<p>{escape(title)}</p>{table(['tool', 'description'], described)}"
        plain += ["", title, *render_table(["tool", "description"], described)]
    display({"text/html": document(html), "text/plain": printable("\n".join(plain))}, raw=True)


def show_specs(toolbox: ToolBox) -> None:
    """The request's ``tools`` for this offer, exactly as sent (MCP servers asked now)."""
    listed = toolbox.listed()
    data, metadata = raw_bundle(listed.specs)
    data["text/plain"] = f"[tools sent: {', '.join(listed.names)}]\n{data['text/plain']}"
    display(data, raw=True, metadata={**metadata, "application/json": {"expanded": True}})


def _description(tool: dict[str, object]) -> str:
    text = tool.get("description")
    return clip(one_line(text), _DESCRIPTION) if isinstance(text, str) else ""
