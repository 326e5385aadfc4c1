"""A turn from request to record: what a cell asks, the full request built from its context,
and the record that stores what the turn added.

`prepare` turns a `TurnRequest` and its `Window` (the turns above the cell) into a
`PreparedTurn`: the messages to send, the key that finds a stored answer (O(size of this turn):
the turns above enter as a chain of digests), and the references the record keeps instead of
copies. `answered` and `replayed` build the schema 2 `Record`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from functools import cached_property
from typing import TYPE_CHECKING, Any, TypeVar

from nbchat.engine.settings import (
    DEFAULT_MAX_TOOL_CALLS,
    DEFAULT_MAX_TOOL_ROUNDS,
    DEFAULT_THREAD,
    Settings,
)
from nbchat.engine.threads import Message, Window
from nbchat.errors import ConfigError
from nbchat.store.keys import CellKey, Endpoint, key_maker, request_key, request_key_v1
from nbchat.store.record import TURN, Record, RequestInfo, message_text, utc_now
from nbchat.wire.messages import pad_reasoning, user_message, wire_turn

if TYPE_CHECKING:
    from nbchat.engine.tool_calls import ToolBox
    from nbchat.schema.structured import JsonOutput, OutputSchema

_Same = TypeVar("_Same")

__all__ = [
    "DEFAULT_MAX_TOOL_CALLS",
    "DEFAULT_MAX_TOOL_ROUNDS",
    "DEFAULT_THREAD",
    "AlikeTurns",
    "PreparedTurn",
    "TurnRequest",
    "answered",
    "at_endpoint",
    "prepare",
    "replayed",
    "split_completion",
    "with_tools",
]


@dataclass(frozen=True)
class TurnRequest:
    """What one cell (or one `ask` call) asks for."""

    prompt: str  # the text, each image as [PNG image, 640×480, 45 kB]
    thread: str = DEFAULT_THREAD
    cell_id: str | None = None
    new_thread: bool = False
    refresh: bool = False
    source: str | None = None  # the cell's code as executed: finds it in a file without cell ids
    # `nbchat.ask` with a thread, from a cell a frontend named: (that cell's id, its execution)
    ask_in: tuple[str, str] | None = None
    # The user message's content when it is not just ``prompt``: text and image parts.
    content: list[dict[str, Any]] | None = None
    # Functions the model may call (their specs are sent, so they are part of the key), rounds
    # of calls allowed before the turn fails, and calls of one round that run.
    tools: ToolBox | None = field(default=None, compare=False)
    max_tool_rounds: int = DEFAULT_MAX_TOOL_ROUNDS
    max_tool_calls: int = DEFAULT_MAX_TOOL_CALLS
    # The shape the answer must have (--schema, --json): sent as response_format.
    output: OutputSchema | JsonOutput | None = field(default=None, compare=False)

    def asking(self, content: str | list[dict[str, Any]]) -> TurnRequest:
        """This request with ``content`` as its message (a copy without ``__init__``: a
        ``--map`` cell makes thousands)."""
        if isinstance(content, str):
            return _copied(self, prompt=content, content=None)
        return _copied(self, prompt=message_text({"content": content}), content=content)


@dataclass(frozen=True)
class PreparedTurn:
    """A turn with its full context, ready to send or to find among stored answers."""

    request: TurnRequest
    settings: Settings
    cell_key: CellKey
    endpoint: Endpoint
    system: str | None
    context: list[Message]  # the messages above the user message (system prompt first)
    user: Message
    params: dict[str, Any]
    key: str
    history: str
    parent: str | None = None
    context_keys: list[str] | None = None
    file_index: int | None = None  # where the cell is in the saved notebook, when known
    v1_key: str | None = None  # the key nbchat 0.1 gave this request (to find its answers)
    other_key: str | None = None  # the key with the thinking above sent the other way
    send_reasoning: bool = False  # whether the thinking above goes out with this request
    window: Window | None = field(default=None, repr=False, compare=False)
    # The field every earlier answer carries when the thinking goes out (blank where it had
    # none), or None: not part of the key (`nbchat.engine.reasoning`).
    pad: str | None = None

    @property
    def keys(self) -> list[str]:
        """Every key a stored answer to this request may have (schema 2, then 0.1's)."""
        return [key for key in (self.key, self.other_key, self.v1_key) if key is not None]

    @property
    def messages(self) -> list[Message]:
        """Every message of the request."""
        return [*self.context, self.user]

    def body(self, added: Sequence[Message] = ()) -> dict[str, Any]:
        """The JSON body for ``/chat/completions`` (stream flags are added by the client), with
        the messages the turn's earlier rounds ``added`` (tool calls and their results)."""
        messages = [*self.messages, *wire_turn(added, reasoning=self.send_reasoning)]
        if self.pad is not None:
            messages = pad_reasoning(messages, self.pad)
        return {"model": self.settings.model, "messages": messages, **self.params}

    @cached_property
    def request_info(self) -> RequestInfo:
        """What the record keeps of the request besides the messages (made once: the items
        of a ``--map`` cell, prepared by `AlikeTurns`, share it)."""
        return RequestInfo(
            self.endpoint.shown,
            self.endpoint.query_digest,
            self.settings.model,
            self.params,
            self.system,
        )


def prepare(
    request: TurnRequest,
    settings: Settings,
    window: Window | None,
    cell_key: CellKey,
    *,
    reasoning: bool = False,
    pad: str | None = None,
    file_index: int | None = None,
    with_v1_key: bool = False,
    endpoint: Endpoint | None = None,
) -> PreparedTurn:
    """The full request of a turn and its key. ``window``: the turns above (None: no context).
    ``reasoning``: they go out with their thinking (`engine.reasoning`), and ``pad`` is what an
    answer without any then carries. ``endpoint``: another endpoint than the settings'."""
    own = Endpoint.of(settings.base_url)
    # A stored endpoint is known only as shown (query values masked): nbchat 0.1 stored it as
    # sent, and its key hashed that text.
    v1_base = settings.base_url if endpoint in (None, own) else endpoint.shown
    endpoint = endpoint or own
    user = user_message(request.content if request.content is not None else request.prompt)
    params = _request_params(request, settings)
    window = window or Window([], None, False)
    system = window.system(settings.system_prompt) or None
    history, parent, context_keys = window.chain(reasoning)
    context = window.messages(settings.system_prompt, reasoning)
    key, other = _keys(endpoint, settings.model, params, system, user, window, reasoning)
    v1 = request_key_v1(v1_base, settings.model, [*context, user], params) if with_v1_key else None
    return PreparedTurn(
        request,
        settings,
        cell_key,
        endpoint,
        system,
        context,
        user,
        params,
        key,
        history,
        parent,
        context_keys,
        file_index,
        v1,
        other,
        reasoning,
        window,
        pad if reasoning else None,
    )


def _keys(
    endpoint: Endpoint,
    model: str,
    params: dict[str, Any],
    system: str | None,
    user: dict[str, Any],
    window: Window,
    reasoning: bool,
) -> tuple[str, str | None]:
    """The request's key, and, when the turns above hold thinking, the key of the request with
    the thinking sent the other way (an answer may be stored either way)."""
    key = request_key(endpoint, model, params, system, window.chain(reasoning)[0], user)
    if not window.has_reasoning:
        return key, None
    return key, request_key(endpoint, model, params, system, window.chain(not reasoning)[0], user)


def with_tools(turn: PreparedTurn, tools: ToolBox) -> PreparedTurn:
    """The same request offering ``tools`` instead (other specs: another key)."""
    return prepare(
        replace(turn.request, tools=tools),
        turn.settings,
        turn.window,
        turn.cell_key,
        reasoning=turn.send_reasoning,
        pad=turn.pad,
        file_index=turn.file_index,
        with_v1_key=turn.v1_key is not None,
        endpoint=turn.endpoint,
    )


class AlikeTurns:
    """Standalone turns that differ from ``first`` only in their user message (the items of a
    ``--map`` cell), made as `prepare` would make them, what they share computed once. An item
    is found by its key alone and replayed without a turn of its own: `turn` makes the turn of
    an item that is asked."""

    def __init__(self, first: PreparedTurn) -> None:
        self.first = first
        self._key = key_maker(
            first.endpoint, first.settings.model, first.params, first.system, first.history
        )
        # What a replayed record takes from the cell, made once (``first.request_info`` with
        # it, which the turns copied from ``first`` then share); the key is each record's own.
        self._replayed = _replay_changes(first)
        del self._replayed["key"]

    @classmethod
    def of(cls, turn: PreparedTurn) -> AlikeTurns | None:
        """None when ``turn``'s keys depend on more than its message (the thinking above it,
        nbchat 0.1's keys)."""
        if turn.other_key is not None or turn.v1_key is not None:
            return None
        return cls(turn)

    def key(self, content: str | list[dict[str, Any]]) -> str:
        """The key of the turn whose user message has ``content``."""
        return self._key(user_message(content))

    def turn(self, request: TurnRequest, cell_key: CellKey) -> PreparedTurn:
        """The turn of ``request``: ``first``'s with ``request``'s message."""
        first = self.first
        if request.output is not first.request.output or request.tools is not first.request.tools:
            return prepare(
                request, first.settings, first.window, cell_key, file_index=first.file_index
            )
        user = user_message(request.content if request.content is not None else request.prompt)
        return _copied(first, request=request, cell_key=cell_key, user=user, key=self._key(user))

    def replayed(self, found: Record) -> Record:
        """`replayed` for the turn with ``found``'s key (found by it)."""
        return _copied(found, **self._replayed, key=found.key)


def at_endpoint(turn: PreparedTurn, endpoint: Endpoint) -> PreparedTurn:
    """The same request as sent to ``endpoint`` (where a stored answer was asked), its keys
    computed for it."""
    return prepare(
        turn.request,
        turn.settings,
        turn.window,
        turn.cell_key,
        reasoning=turn.send_reasoning,
        pad=turn.pad,
        file_index=turn.file_index,
        with_v1_key=turn.v1_key is not None,
        endpoint=endpoint,
    )


def answered(
    turn: PreparedTurn,
    messages: list[Message],
    responses: list[dict[str, Any]],
    timing: dict[str, Any],
) -> Record:
    """The record of a complete answer: the user message, then what the turn added (the
    assistant's messages as returned and, between them, the results of the tools it called),
    and each request's completion without its message."""
    tools = turn.request.tools
    return Record(
        kind=TURN,
        messages=[turn.user, *messages],
        responses=responses,
        timing=timing,
        stored_at=utc_now(),
        mcp=tools.origins() if tools is not None else None,
        **_of_this_cell(turn),
    )


def split_completion(completion: dict[str, Any]) -> tuple[Message, dict[str, Any]]:
    """A completion's first message, and the completion without it (as a record keeps it)."""
    choices = [dict(choice) for choice in completion.get("choices") or []]
    message = choices[0].pop("message", None) if choices else None
    assistant = message if isinstance(message, dict) else {"role": "assistant", "content": ""}
    return assistant, {**completion, "choices": choices}


def replayed(turn: PreparedTurn, found: Record) -> Record:
    """A stored answer as this cell's turn. The key covers what was sent, not where: an answer
    stored by another cell or thread (two threads that open alike), or by nbchat 0.1, becomes a
    schema 2 record of this cell, referring to the turns above this cell."""
    return _copied(found, **_replay_changes(turn))


def _replay_changes(turn: PreparedTurn) -> dict[str, Any]:
    return {"schema": 2, "earlier": None, "original": None, "key_rule": None, **_of_this_cell(turn)}


def _copied(obj: _Same, **changes: Any) -> _Same:
    """``dataclasses.replace`` for dataclasses with no ``__post_init__``, without calling
    ``__init__`` again (its defaults and freezing): a quarter of the cost, and a ``--map``
    cell makes two per item."""
    copy = object.__new__(type(obj))
    copy.__dict__.update(obj.__dict__, **changes)
    return copy


def _request_params(request: TurnRequest, settings: Settings) -> dict[str, Any]:
    """The request fields besides the messages: the settings', the tools and the output shape."""
    params = settings.request_params()
    added: dict[str, Any] = {}
    if request.tools is not None and len(request.tools):
        added["tools"] = request.tools.specs
    if request.output is not None:
        added["response_format"] = request.output.response_format()
    for name in added:
        if name in params:
            flag = "--tools" if name == "tools" else "--schema/--json"
            raise ConfigError(f"{flag} and the option {name!r} both set {name}: keep one")
    return {**params, **added}


def _of_this_cell(turn: PreparedTurn) -> dict[str, Any]:
    """What a record takes from the cell and the request it answers."""
    return {
        "thread": turn.request.thread,
        "cell_id": turn.request.cell_id,
        "new_thread": turn.request.new_thread,
        "key": turn.key,
        "history": turn.history,
        "parent": turn.parent,
        "context": turn.context_keys,
        "request": turn.request_info,
    }
