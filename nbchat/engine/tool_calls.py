"""Running a model's tool calls in the kernel, safely.

A tool call is model output, so untrusted: only the functions offered (a `ToolBox`) can run,
found by name; the arguments are parsed as JSON (never evaluated) and validated against the
signature before the function sees them. Whatever goes wrong on the model's side (an unknown
name, arguments that are not a JSON object or do not fit) and any exception the function raises
become the tool's result, one line the model can act on (``ValueError: no such city``); the
cell does not fail for them. ``KeyboardInterrupt`` (and any other ``BaseException`` that is not
an ``Exception``) is never caught: Ctrl-C stops the loop.

A result is sent as the ``tool`` message's content: a ``str`` as it is, anything else as JSON
(pydantic's `to_jsonable_python` knows models, dataclasses, datetimes, sets...) or, when it has
no JSON form, its ``repr``. A returned iterator (a generator) is read as the function's own work,
up to half as many items as the content may have characters (more could never fit: an endless
generator ends there). Turning the value into text runs the tool's code too (a generator's body,
a ``computed_field``, a ``__repr__``): an exception there is the call's failure, like one the
function raised. Content longer than `RESULT_LIMIT` characters is cut, with a note that says how
much was cut.

A toolbox may also offer tools of MCP servers (`nbchat.engine.mcp_tools`): found by the name
they are sent as, their arguments parsed as a JSON object and checked by the server, their
results its text (`nbchat.mcp.results`); several calls of one round run at once (`start`). A
server that fails (`McpServerError`) fails the turn; the server's own error is the call's result.
"""

from __future__ import annotations

import contextlib
import copy
import itertools
import json
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from nbchat._json import json_kind
from nbchat._text import clip, one_line
from nbchat.engine.mcp_tools import McpOffer, McpTool, origins
from nbchat.errors import ConfigError
from nbchat.mcp.results import result_text as mcp_result_text
from nbchat.schema.json_schema import need_pydantic
from nbchat.schema.tools import ArgumentError, Tool, describe_all
from nbchat.store.record import Record
from nbchat.wire.messages import PREVIEW_WIDTH

if TYPE_CHECKING:
    from nbchat.mcp.hub import PendingCall

__all__ = [
    "ERROR_LIMIT",
    "RESULT_LIMIT",
    "ToolBox",
    "ToolResult",
    "exception_text",
    "result_text",
    "truncate",
]

RESULT_LIMIT = 20_000  # characters of a result sent back to the model
ERROR_LIMIT = 1_000  # characters of an exception's message


@dataclass(frozen=True)
class ToolResult:
    """What one tool call gave: the content sent back, and what the display shows."""

    call_id: str
    name: str
    arguments: str  # as the model sent them
    content: str
    failed: bool = False
    elapsed_s: float = 0.0
    cut: int = 0  # characters cut from the content

    @property
    def preview(self) -> str:
        """The content on one line, clipped, safe to show in a terminal."""
        return clip(one_line(self.content), PREVIEW_WIDTH)

    def message(self) -> dict[str, Any]:
        """The ``tool`` message that carries this result back to the model."""
        return {"role": "tool", "tool_call_id": self.call_id, "content": self.content}


def truncate(text: str, limit: int) -> tuple[str, int]:
    """``text`` cut to ``limit`` characters with a note saying how much was cut, and that count."""
    if len(text) <= limit:
        return text, 0
    cut = len(text) - limit
    return f"{text[:limit]}\n[truncated: {cut:,} of {len(text):,} characters cut]", cut


def result_text(value: Any, limit: int = RESULT_LIMIT) -> str:
    """A function's return value as the content of a ``tool`` message (an iterator read as far
    as ``limit`` characters could show). Raises whatever the value's own code raises on the way
    (a failing generator, ``computed_field`` or ``__repr__``): the caller makes that the call's
    failure."""
    if isinstance(value, str):
        return str.__str__(value)  # a subclass's own methods do not run
    need_pydantic("--tools")
    from pydantic_core import PydanticSerializationError, to_jsonable_python

    if isinstance(value, Iterator):  # each item takes a character and a ", " at least
        value = list(itertools.islice(value, limit // 2 + 1))
    try:
        return json.dumps(to_jsonable_python(value), ensure_ascii=False)
    except (PydanticSerializationError, TypeError, ValueError, RecursionError):
        pass  # no JSON form: its repr
    return repr(value)


def exception_text(err: BaseException, redact: Callable[[str], str] = str) -> str:
    """``ValueError: message``: the type and the message (``redact``-ed, then clipped), no
    traceback."""
    try:
        message = redact(str(err))
    except Exception:  # an exception whose __str__ fails still has a type name
        message = ""
    name = type(err).__name__
    return f"{name}: {clip(message, ERROR_LIMIT)}" if message.strip() else name


def _parse_arguments(raw: Any) -> dict[str, Any]:
    """The arguments of a call as a dict; `ArgumentError` when they are not a JSON object."""
    if isinstance(raw, dict):  # some servers send the object itself
        return raw
    if not isinstance(raw, str):
        raise ArgumentError(f"arguments must be a JSON object in a string, not {json_kind(raw)}")
    if not raw.strip():
        return {}  # some models send "" for a call without arguments
    try:
        value = json.loads(raw)
    except RecursionError:
        raise ArgumentError("arguments are nested too deeply to read") from None
    except json.JSONDecodeError as err:
        where = f"{err.msg} at line {err.lineno} column {err.colno}"
        raise ArgumentError(f"arguments are not valid JSON ({where})") from None
    except ValueError as err:  # e.g. an integer of more digits than Python converts
        raise ArgumentError(f"arguments cannot be read ({clip(one_line(str(err)), 100)})") from None
    if not isinstance(value, dict):
        raise ArgumentError(f"arguments must be a JSON object, not {json_kind(value)}")
    return value


class ToolBox:
    """The tools offered to the model, by the name they are sent as: the only ones a tool call
    can run. Notebook functions, and tools of MCP servers: listed (``remote``), or named and not
    yet listed (``mcp``: `listed` asks their servers)."""

    def __init__(
        self,
        functions: Iterable[Callable[..., Any]] = (),
        *,
        limit: int = RESULT_LIMIT,
        remote: Iterable[McpTool] = (),
        mcp: McpOffer | None = None,
    ):
        self._tools: dict[str, Tool] = {tool.name: tool for tool in describe_all(functions)}
        self._remote = self._check_remote(remote)
        self.limit = limit
        self.mcp = mcp

    def _check_remote(self, remote: Iterable[McpTool]) -> dict[str, McpTool]:
        found: dict[str, McpTool] = {}
        for tool in remote:
            if tool.name in self._tools or tool.name in found:
                raise ConfigError(f"two tools are named {tool.name!r}: offer one of them")
            found[tool.name] = tool
        return dict(sorted(found.items()))

    def _with(self, remote: Iterable[McpTool]) -> ToolBox:
        box = ToolBox(limit=self.limit)
        box._tools = self._tools
        box._remote = box._check_remote(remote)
        return box

    @property
    def unlisted(self) -> bool:
        """Whether it names tools of MCP servers that are not listed yet."""
        return self.mcp is not None

    def functions_only(self) -> ToolBox:
        """The notebook functions alone (the MCP tools are looked up, or listed, apart)."""
        return self._with(())

    def listed(self) -> ToolBox:
        """With the MCP tools named as their servers list them now (servers started)."""
        if self.mcp is None:
            return self
        return self._with(self.mcp.listed(taken=list(self._tools)))

    def stored(self, records: Iterable[Record]) -> Iterator[ToolBox]:
        """The offers stored answers were sent with, for the MCP tools named here (nothing is
        asked of a server); a set whose names clash with the functions is passed over."""
        if self.mcp is None:
            return
        for remote in self.mcp.stored(records):
            try:
                yield self._with(remote)
            except ConfigError:
                continue

    @property
    def names(self) -> list[str]:
        """The tools' names as sent, sorted."""
        return sorted([*self._tools, *self._remote])

    @property
    def specs(self) -> list[dict[str, Any]]:
        """The request's ``tools``, in canonical (name) order (a copy: yours to change)."""
        assert self.mcp is None, "the MCP tools are listed first"
        specs = {name: tool.spec for name, tool in {**self._tools, **self._remote}.items()}
        return copy.deepcopy([specs[name] for name in sorted(specs)])

    def origins(self) -> dict[str, list[str]] | None:
        """Which server tool each MCP tool's name stands for (None: there are none)."""
        return origins(self._remote.values())

    def __len__(self) -> int:
        return len(self._tools) + len(self._remote)

    def __contains__(self, name: object) -> bool:
        return name in self._tools or name in self._remote

    def refuse(self, tool_call: Any, reason: str, redact: Callable[[str], str] = str) -> ToolResult:
        """A call that is not run, with ``reason`` as its error result."""
        call_id, name, shown, _ = _parts(tool_call)
        text, cut = truncate(redact(reason), self.limit)
        return ToolResult(call_id, name, shown, text, failed=True, cut=cut)

    def start(self, tool_calls: list[Any]) -> dict[int, PendingCall]:
        """Start every call of MCP tools among ``tool_calls`` whose arguments are a JSON
        object, so they run at once; by position. Cancel the ones you do not wait for."""
        started: dict[int, PendingCall] = {}
        try:
            for index, tool_call in enumerate(tool_calls):
                _, name, _, raw = _parts(tool_call)
                if name in self._remote:
                    with contextlib.suppress(ArgumentError):  # `call` says so to the model
                        started[index] = self._remote[name].start(_parse_arguments(raw))
        except BaseException:
            for pending in started.values():
                pending.cancel()
            raise
        return started

    def call(
        self,
        tool_call: Any,
        redact: Callable[[str], str] = str,
        pending: PendingCall | None = None,
    ) -> ToolResult:
        """Run one ``{"id", "type": "function", "function": {"name", "arguments"}}`` (an MCP
        call may be under way already: ``pending``). The result is passed through ``redact``
        (the request's secrets out) before it is cut, so no part of a secret survives at the
        cut."""
        call_id, name, shown, raw = _parts(tool_call)

        def failure(content: str) -> ToolResult:
            return self.refuse(tool_call, content, redact)

        if name in self._remote:
            return self._call_remote(tool_call, self._remote[name], redact, pending)
        tool = self._tools.get(name)
        if tool is None:
            offered = clip(", ".join(self.names) or "none", 300)
            return failure(
                f"Error: there is no tool named {clip(name, 80)!r}; the tools: {offered}"
            )
        try:
            args, kwargs = tool.bind(_parse_arguments(raw))
        except ArgumentError as err:
            return failure(f"Error: {name}: {err}")
        except Exception as err:  # a validator of the user's own parameter types failed
            return failure(exception_text(err, redact))
        started = time.perf_counter()
        try:
            content = result_text(tool.function(*args, **kwargs), self.limit)
        except Exception as err:  # the function's failure is the model's to read, not the cell's
            elapsed = time.perf_counter() - started
            text, cut = truncate(exception_text(err, redact), self.limit)
            return ToolResult(call_id, name, shown, text, True, elapsed, cut)
        elapsed = time.perf_counter() - started
        text, cut = truncate(redact(content), self.limit)
        return ToolResult(call_id, name, shown, text, False, elapsed, cut)

    def _call_remote(
        self,
        tool_call: Any,
        tool: McpTool,
        redact: Callable[[str], str],
        pending: PendingCall | None,
    ) -> ToolResult:
        """An MCP tool's call: its outcome's text (`McpServerError` when the server failed)."""
        call_id, name, shown, raw = _parts(tool_call)
        if pending is None:
            try:
                pending = tool.start(_parse_arguments(raw))
            except ArgumentError as err:
                return self.refuse(tool_call, f"Error: {name}: {err}", redact)
        outcome = tool.finish(pending)
        if outcome.failure is not None:  # the server's own error: the model's to read
            content, failed = f"Error: {outcome.detail}", True
        else:
            content, failed = mcp_result_text(outcome.value)
        text, cut = truncate(redact(tool.redact(content)), self.limit)
        return ToolResult(call_id, name, shown, text, failed, outcome.elapsed_s, cut)


def _parts(tool_call: Any) -> tuple[str, str, str, Any]:
    """A call's id and name ("" when missing), its arguments as shown, and as sent."""
    call = tool_call if isinstance(tool_call, dict) else {}
    function = call.get("function") if isinstance(call.get("function"), dict) else {}
    call_id = call.get("id") if isinstance(call.get("id"), str) else ""
    name = function.get("name") if isinstance(function.get("name"), str) else ""
    raw = function.get("arguments", "")
    shown = raw if isinstance(raw, str) else json.dumps(raw, ensure_ascii=False, default=str)
    return call_id, name, shown, raw
