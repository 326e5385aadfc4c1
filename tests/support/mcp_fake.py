"""A stand-in for the kernel's MCP hub (`nbchat.mcp.hub.McpHub`), for engine tests that need
no server: it lists the tools it is given, answers each call with scripted outcomes, and counts
every listing and call, which is all a test of "never contacts a server" needs."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from nbchat.engine.mcp_tools import McpOffer, McpSelector
from nbchat.mcp.connection import Outcome


def tool(name: str, description: str = "", **properties: Any) -> dict[str, Any]:
    """A tool as a server lists it."""
    schema = {"type": "object", "properties": properties, "required": sorted(properties)}
    return {"name": name, "description": description or f"The {name} tool.", "inputSchema": schema}


def text_result(text: str, *, error: bool = False) -> dict[str, Any]:
    return {"content": [{"type": "text", "text": text}], "isError": error}


@dataclass
class FakePending:
    outcome: Outcome
    started: float = field(default_factory=time.monotonic)
    cancelled: bool = False

    def result(self, timeout: float) -> Outcome:
        if isinstance(self.outcome, BaseException):
            raise self.outcome
        return self.outcome

    def cancel(self) -> None:
        self.cancelled = True


@dataclass
class FakeHub:
    """Servers by name, each a list of tools; ``answers`` by tool name (default: ``tool ok``)."""

    listings: dict[str, list[dict[str, Any]]]
    answers: dict[str, Any] = field(default_factory=dict)
    listed: list[str] = field(default_factory=list)
    called: list[tuple[str, str, dict[str, Any]]] = field(default_factory=list)
    pending: list[FakePending] = field(default_factory=list)

    def tools(self, config: Any, timeout: float) -> list[dict[str, Any]]:
        self.listed.append(config.name)
        return self.listings[config.name]

    def submit(self, config: Any, name: str, arguments: dict[str, Any], timeout: float) -> Any:
        self.called.append((config.name, name, arguments))
        answer = self.answers.get(name, Outcome(text_result(f"{name} ok"), elapsed_s=0.001))
        self.pending.append(FakePending(answer))
        return self.pending[-1]

    def redact(self, name: str, text: str) -> str:
        return text.replace("hub-secret", "[redacted]")

    @property
    def contacted(self) -> int:
        return len(self.listed) + len(self.called)

    def offer(self, *names: str, timeout: float = 5.0) -> McpOffer:
        """What a cell naming ``mcp:...`` offers, with every server of this hub declared."""
        declared = {name: {"command": ["unused"]} for name in self.listings}
        selectors = tuple(McpSelector.parse(name) for name in names)
        return McpOffer(selectors, declared, timeout, lambda: self)  # type: ignore[arg-type]
