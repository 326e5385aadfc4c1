"""`ask` and `map`: the ``%%chat`` machinery for code.

    for question in questions:
        answer = nbchat.ask(question)          # independent questions (no thread)
        print(answer.text)
    nbchat.ask("And then?", thread="default")  # continues a thread after its cells
    labels = nbchat.map("Classify: {item}", reviews, concurrency=8)   # as %%chat --map

An answer is stored in the notebook when it is shown (the cell's last expression, or
``display(answer)``): its output carries the record, as a ``%%chat`` cell's does. An answer that
is never shown lives in this session only, and an offline re-run cannot replay it; to ask over
many items from code, use `map`, which always shows (and so stores) its batch.

Answers are looked up in the session's and the notebook's stored answers first, like a cell:
`ask` takes the same path as a ``%%chat`` cell (`nbchat.engine.session.ChatSession.run`), with the
settings and session of the ``%%chat`` magic of this kernel.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

from nbchat.engine.threads import STANDALONE
from nbchat.engine.tool_calls import ToolBox
from nbchat.engine.turns import TurnRequest
from nbchat.errors import ConfigError
from nbchat.render.bundles import answer_bundle
from nbchat.schema.structured import JsonOutput, OutputSchema
from nbchat.store.record import Record

if TYPE_CHECKING:
    from nbchat.ipython.magics import ChatMagics

__all__ = ["Answer", "ask", "map"]


@dataclass(frozen=True)
class Answer:
    """The text of an answer, its record, whether it was replayed from storage, and the request
    it answers (``request["body"]``: every message sent, never the key)."""

    text: str
    record: Record
    replayed: bool
    request: dict[str, Any] = field(default_factory=dict)
    value: Any = None  # with ``schema=`` or ``json=True``: the answer as that object
    stored: bool = True  # False with caching off: showing it stores no record

    @property
    def reasoning(self) -> str:
        """A reasoning model's thinking before the answer ("" when none): ``text`` is the answer
        alone."""
        return self.record.reasoning

    def __str__(self) -> str:
        return self.text

    def _repr_mimebundle_(self, **kwargs: Any) -> tuple[dict[str, Any], dict[str, Any]]:
        return answer_bundle(self.record, replayed=self.replayed, store=self.stored)


def _magics() -> ChatMagics:
    from IPython import get_ipython

    from nbchat.ipython.magics import ChatMagics

    shell = get_ipython()
    if shell is None:
        raise ConfigError(
            "nbchat.ask runs inside IPython or Jupyter (it uses the kernel's threads)."
        )
    found = shell.magics_manager.registry.get("ChatMagics")
    if found is None:
        shell.extension_manager.load_extension("nbchat")
        found = shell.magics_manager.registry["ChatMagics"]
    assert isinstance(found, ChatMagics)
    return found


def _flags(
    model: str | None,
    profile: str | None,
    temperature: float | None,
    max_tokens: int | None,
    options: dict[str, Any],
) -> dict[str, Any]:
    """The keyword arguments of `ask` and `map` that are settings, as a cell's flags."""
    return {
        "model": model,
        "profile": profile,
        "temperature": temperature,
        "max_tokens": max_tokens,
        "options": options or None,
    }


def _output(schema: Any, as_json: bool) -> OutputSchema | JsonOutput | None:
    shape = OutputSchema.of(schema) if schema is not None else None
    return JsonOutput(shape) if as_json else shape


def ask(
    prompt: str,
    *,
    thread: str | None = None,
    new: bool = False,
    refresh: bool = False,
    model: str | None = None,
    profile: str | None = None,
    temperature: float | None = None,
    max_tokens: int | None = None,
    tools: Sequence[Callable[..., Any]] = (),
    max_tool_rounds: int = 10,
    max_tool_calls: int | None = None,
    schema: Any = None,
    json: bool = False,
    **options: Any,
) -> Answer:
    """Ask one question. With ``thread=None`` the question stands alone (no context);
    with a thread name it follows that thread's turns and becomes its newest turn.

    ``tools``: functions the model may call (run here, as ``--tools`` runs them), at most
    ``max_tool_calls`` of one answer (default: ``ChatMagics.max_tool_calls``). ``schema``: a
    pydantic model, dataclass, TypedDict or JSON Schema dict the answer must fit; ``json``: the
    answer must be JSON. Either way ``.value`` is the answer as that object.

    Extra keyword arguments are sent as request fields (e.g. ``seed=...``).
    """
    if max_tool_rounds < 1:
        raise ConfigError("max_tool_rounds must be at least 1")
    output = _output(schema, json)
    magics = _magics()
    max_tool_calls = magics.tool_call_cap(max_tool_calls, "max_tool_calls")
    settings = magics.settings(_flags(model, profile, temperature, max_tokens, options))
    cell_id, execution = magics.running_cell()
    ask_in = (cell_id, execution) if thread is not None and cell_id is not None else None
    request = TurnRequest(
        prompt,
        thread or STANDALONE,
        None,
        new,
        refresh,
        ask_in=ask_in,
        tools=ToolBox(tools) if tools else None,
        max_tool_rounds=max_tool_rounds,
        max_tool_calls=max_tool_calls,
        output=output,
    )
    outcome = magics.session.run(request, settings, magics.notebook_records())
    sent = magics.session.sent(outcome.record, outcome.turn)
    record = outcome.record
    return Answer(record.answer, record, outcome.replayed, sent, outcome.value, settings.cache)


def map(  # shadows the builtin here only: nbchat.map sits next to nbchat.ask
    template: str,
    items: Any,
    *,
    schema: Any = None,
    json: bool = False,
    concurrency: int = 8,
    rpm: float | None = None,
    thread: str = "default",
    model: str | None = None,
    profile: str | None = None,
    temperature: float | None = None,
    max_tokens: int | None = None,
    **options: Any,
) -> Any:
    """``%%chat --map`` from code: ``template`` sent once per item of ``items`` (``{item}``,
    ``{item[field]}``, ``{item.field}``), concurrently; the answers in order (validated objects
    with ``schema``, parsed JSON with ``json``; a pandas Series for a Series or DataFrame).

    The batch's summary (with its record, so the next run replays it) is shown in the running
    cell's output. Raises `BatchError` when some items failed: its ``values`` holds the others.
    """
    from nbchat.engine.map import MapJob, run_map  # shows widgets: IPython only when mapping

    magics = _magics()
    settings = magics.settings(_flags(model, profile, temperature, max_tokens, options))
    cell_id, _ = magics.running_cell()
    job = MapJob(
        "items",
        items,
        template,
        magics.shell.user_ns,
        replace(settings, stream=False),
        output=_output(schema, json),
        thread=thread,
        cell_id=cell_id,
        concurrency=concurrency,
        rpm=rpm,
        frontend=magics.frontend(),
        title="nbchat.map",
        note=lambda message: print(message, file=sys.stderr),
    )
    return run_map(job, magics.session, magics.notebook_records())
