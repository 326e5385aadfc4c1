"""One turn's requests: ask, run the tools the model calls, send their results, ask again.

A turn without tools is one request. With a `ToolBox`, every assistant message that calls tools
is followed by one ``tool`` message per call (run in order, in the kernel's thread) and another
request, until the model answers without calling any, or asks for more than ``max_rounds``
rounds of them (`ToolRoundsExceeded`). Only the toolbox's functions run, and only through it:
nothing from the model is evaluated (`nbchat.engine.tool_calls`).

A round runs at most ``max_calls`` calls: each call beyond them is not run, and goes back as its
error result (every call of the conversation keeps a result, so it stays one the provider
accepts); the user is told how many were skipped. When several calls of a round share an id or
have none, their results are matched to them by position (`nbchat.wire.messages.tool_rounds`), and
the user is told that too.

Whatever stops the turn part-way (any nbchat error of a later request, Ctrl-C in a tool, too
many rounds) carries the messages of the rounds before it as ``.exchange``, so what ran stays in
sight; nothing of a turn is stored until it is whole. A tool's result is redacted (the request's
key and URL credentials) before it is shown, sent or stored. The calls of MCP tools in a round
are started together and run at once on their servers; their results are shown and sent in
the round's order, like every other.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from nbchat.engine.settings import DEFAULT_MAX_TOOL_CALLS
from nbchat.engine.threads import Message
from nbchat.engine.tool_calls import ToolBox, ToolResult
from nbchat.engine.turns import split_completion
from nbchat.errors import NbchatError, StreamInterrupted, ToolRoundsExceeded
from nbchat.wire.messages import call_shown, tool_rounds
from nbchat.wire.redaction import Redactor

__all__ = ["Exchange", "ToolSink", "converse"]


class ToolSink(Protocol):
    """Where the tool calls of a turn are shown as they run."""

    def on_tool_start(self, name: str, arguments: str) -> None:
        """A call is about to run."""

    def on_tool_result(self, result: ToolResult) -> None:
        """The call has a result (or an error the model will read)."""

    def next_round(self) -> None:
        """The results are sent back: the model's next answer starts."""

    def on_calls_skipped(self, results: list[ToolResult]) -> None:
        """The calls of the round beyond ``max_calls`` were not run: their error results, at
        once (one update for a view, however many there are)."""


class _NoSink(ToolSink):
    """Nobody is watching: the protocol's methods do nothing."""


@dataclass
class Exchange:
    """What a turn added after its user message, request by request."""

    messages: list[Message] = field(default_factory=list)  # assistant and tool messages
    responses: list[dict[str, Any]] = field(default_factory=list)  # completions, no message
    tool_seconds: list[float] = field(default_factory=list)  # each result's run time, in order
    rounds: int = 0  # rounds of tool calls run
    skipped: int = 0  # calls not run: over max_calls in their round


def converse(
    request: Callable[[list[Message]], dict[str, Any]],
    tools: ToolBox | None,
    *,
    max_rounds: int,
    max_calls: int = DEFAULT_MAX_TOOL_CALLS,
    sink: ToolSink | None = None,
    redactor: Redactor | None = None,
    note: Callable[[str], None] = lambda message: None,
) -> Exchange:
    """Ask with ``request(messages added so far)`` until the model answers without calling a
    tool; run the calls in between with ``tools`` (with none offered, the first answer is the
    answer, tool calls and all). ``note`` tells the user what was not as asked (calls skipped,
    results paired by position)."""
    shown = sink or _NoSink()
    exchange = Exchange()
    paired_in_order = False
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
                f"The model still called tools after {max_rounds} rounds; nothing was stored",
                exchange=list(exchange.messages),
            )
        _run_round(calls[:max_calls], tools, exchange, shown, redactor.text if redactor else str)
        _skip_round(calls, max_calls, tools, exchange, shown, note)
        if not paired_in_order and tool_rounds(exchange.messages)[-1].by_position:
            paired_in_order = True
            note(_IN_ORDER)
        exchange.rounds += 1
        shown.next_round()


_IN_ORDER = (
    "nbchat: the model gave several tool calls of one round the same id, or none: each result "
    "is shown with the call at its position."
)


def _run_round(
    calls: list[Any],
    tools: ToolBox,
    exchange: Exchange,
    shown: ToolSink,
    redact: Callable[[str], str],
) -> None:
    """Run ``calls`` in order (the MCP ones started together first, so they run at once), each
    result shown and kept. A failure that stops the turn (Ctrl-C, an MCP server that stopped)
    carries the messages so far."""
    name = ""
    pending = {}
    try:
        pending = tools.start(calls)
        for index, call in enumerate(calls):
            name, arguments = call_shown(call)
            shown.on_tool_start(name, arguments)
            result = tools.call(call, redact, pending.pop(index, None))
            shown.on_tool_result(result)
            exchange.messages.append(result.message())
            exchange.tool_seconds.append(round(result.elapsed_s, 6))
    except KeyboardInterrupt:
        where = f"while the tool {name} ran" if name else "while the tools started"
        raise StreamInterrupted(
            f"Interrupted {where}; nothing was stored.", exchange=list(exchange.messages)
        ) from None
    except NbchatError as error:
        error.exchange = list(exchange.messages)
        raise
    finally:
        for call in pending.values():
            call.cancel()


def _skip_round(
    calls: list[Any],
    max_calls: int,
    tools: ToolBox,
    exchange: Exchange,
    shown: ToolSink,
    note: Callable[[str], None],
) -> None:
    """Each call beyond the first ``max_calls`` gets an error result, unrun; the user is told."""
    asked, skipped = len(calls), calls[max_calls:]
    if not skipped:
        return
    # Short: it is stored (and shown) once per skipped call, and a runaway answer has hundreds.
    reason = f"Error: not run: at most {max_calls} calls of one answer run."
    results = [tools.refuse(call, reason) for call in skipped]
    for result in results:
        exchange.messages.append(result.message())
        exchange.tool_seconds.append(0.0)
    exchange.skipped += len(results)
    shown.on_calls_skipped(results)
    note(
        f"nbchat: the model asked for {asked} tool calls at once: the first {max_calls} ran "
        f"(--max-tool-calls), the other {len(results)} went back to it unrun, as errors."
    )
