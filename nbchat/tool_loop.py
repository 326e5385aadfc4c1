"""One turn's requests: ask, run the tools the model calls, send their results, ask again.

A turn without tools is one request. With a `ToolBox`, every assistant message that calls tools
is followed by one ``tool`` message per call (run in order, in the kernel's thread) and another
request, until the model answers without calling any, or asks for more than ``max_rounds``
rounds of them (`ToolRoundsExceeded`). Only the toolbox's functions run, and only through it:
nothing from the model is evaluated (`nbchat.tool_calls`).

Whatever stops the turn part-way (any nbchat error of a later request, Ctrl-C in a tool, too
many rounds) carries the messages of the rounds before it as ``.exchange``, so what ran stays in
sight; nothing of a turn is stored until it is whole. A tool's result is redacted (the request's
key and URL credentials) before it is shown, sent or stored.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from nbchat.errors import NbchatError, StreamInterrupted, ToolRoundsExceeded
from nbchat.redaction import Redactor
from nbchat.threads import Message
from nbchat.tool_calls import ToolBox, ToolResult, call_shown
from nbchat.turns import split_completion

__all__ = ["Exchange", "ToolSink", "converse"]


class ToolSink(Protocol):
    """Where the tool calls of a turn are shown as they run."""

    def on_tool_start(self, name: str, arguments: str) -> None:
        """A call is about to run."""

    def on_tool_result(self, result: ToolResult) -> None:
        """The call has a result (or an error the model will read)."""

    def next_round(self) -> None:
        """The results are sent back: the model's next answer starts."""


class _NoSink(ToolSink):
    """Nobody is watching: the protocol's methods do nothing."""


@dataclass
class Exchange:
    """What a turn added after its user message, request by request."""

    messages: list[Message] = field(default_factory=list)  # assistant and tool messages
    responses: list[dict[str, Any]] = field(default_factory=list)  # completions, no message
    tool_seconds: list[float] = field(default_factory=list)  # each call's run time, in order
    rounds: int = 0  # rounds of tool calls run


def converse(
    request: Callable[[list[Message]], dict[str, Any]],
    tools: ToolBox | None,
    *,
    max_rounds: int,
    sink: ToolSink | None = None,
    redactor: Redactor | None = None,
) -> Exchange:
    """Ask with ``request(messages added so far)`` until the model answers without calling a
    tool; run the calls in between with ``tools`` (with none offered, the first answer is the
    answer, tool calls and all)."""
    shown = sink or _NoSink()
    exchange = Exchange()
    while True:
        try:
            completion = request(list(exchange.messages))
        except NbchatError as error:
            error.exchange = list(exchange.messages)
            raise
        message, response = split_completion(completion)
        exchange.messages.append(message)
        exchange.responses.append(response)
        calls = message.get("tool_calls")
        if tools is None or not isinstance(calls, list) or not calls:
            return exchange
        if exchange.rounds >= max_rounds:
            raise ToolRoundsExceeded(
                f"The model still called tools after {max_rounds} rounds (--max-tool-rounds); "
                "nothing was stored.",
                exchange=list(exchange.messages),
            )
        for call in calls:
            name, arguments = call_shown(call)
            shown.on_tool_start(name, arguments)
            try:
                result = tools.call(call, redactor.text if redactor else str)
            except KeyboardInterrupt:
                raise StreamInterrupted(
                    f"Interrupted while the tool {name} ran; nothing was stored.",
                    exchange=list(exchange.messages),
                ) from None
            shown.on_tool_result(result)
            exchange.messages.append(result.message())
            exchange.tool_seconds.append(round(result.elapsed_s, 6))
        exchange.rounds += 1
        shown.next_round()
