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

Both take the path of a ``%%chat`` cell with the settings and session of this kernel's magic:
the options are the same `CellOptions`, named as keyword arguments in every message.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from nbchat.engine.queries import sent
from nbchat.engine.settings import DEFAULT_CONCURRENCY, DEFAULT_MAX_TOOL_ROUNDS, DEFAULT_THREAD
from nbchat.engine.threads import STANDALONE
from nbchat.engine.turns import TurnRequest
from nbchat.errors import ConfigError
from nbchat.ipython.advice import in_words
from nbchat.ipython.context import ChatKernel
from nbchat.ipython.options import Caller, CellOptions
from nbchat.money.cost import Cost
from nbchat.render.bundles import answer_bundle
from nbchat.store.record import Record

__all__ = ["Answer", "ask", "map"]


@dataclass(frozen=True, kw_only=True)
class Answer:
    """The text of an answer, its record, whether it was replayed from storage, the request
    it answers (``request["body"]``: every message sent, never the key), and its cost (a
    replayed answer's: what asking again would have cost; ``cost.usd`` None when no price is
    known)."""

    text: str
    record: Record
    replayed: bool
    request: dict[str, Any] = field(default_factory=dict)
    value: Any = None  # with ``schema=`` or ``json=True``: the answer as that object
    stored: bool = True  # False with caching off: showing it stores no record
    cost: Cost = field(default_factory=Cost.unknown)

    @property
    def reasoning(self) -> str:
        """A reasoning model's thinking before the answer ("" when none): ``text`` is the answer
        alone."""
        return self.record.reasoning

    def __str__(self) -> str:
        return self.text

    def _repr_mimebundle_(self, **kwargs: Any) -> tuple[dict[str, Any], dict[str, Any]]:
        return answer_bundle(self.record, replayed=self.replayed, store=self.stored, cost=self.cost)


def _kernel() -> ChatKernel:
    """This kernel's nbchat (the extension is loaded if it was not)."""
    from IPython import get_ipython

    shell = get_ipython()
    if shell is None:
        raise ConfigError(
            "nbchat.ask runs inside IPython or Jupyter (it uses the kernel's threads)."
        )
    found = shell.magics_manager.registry.get("ChatMagics")
    if found is None:
        shell.extension_manager.load_extension("nbchat")
        found = shell.magics_manager.registry["ChatMagics"]
    kernel = found.kernel
    assert isinstance(kernel, ChatKernel)
    return kernel


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
    tools: Sequence[Callable[..., Any] | str] = (),
    max_tool_rounds: int = DEFAULT_MAX_TOOL_ROUNDS,
    max_tool_calls: int | None = None,
    schema: Any = None,
    json: bool = False,
    **options: Any,
) -> Answer:
    """Ask one question. With ``thread=None`` the question stands alone (no context);
    with a thread name it follows that thread's turns and becomes its newest turn.

    ``tools``: functions the model may call (run here, as ``--tools`` runs them), and
    ``"mcp:SERVER"`` or ``"mcp:SERVER/TOOL"`` for tools of an MCP server (declared in
    ``ChatMagics.mcp_servers``); at most ``max_tool_calls`` calls run per answer (default:
    ``ChatMagics.max_tool_calls``, else 20).
    ``schema``: a pydantic model, dataclass, TypedDict or JSON Schema dict the answer must fit;
    ``json``: the answer must be JSON. Either way ``.value`` is the answer as that object.

    Extra keyword arguments are sent as request fields (e.g. ``seed=...``).
    """
    chosen = CellOptions(
        caller=Caller.CODE,
        model=model,
        profile=profile,
        temperature=temperature,
        max_tokens=max_tokens,
        options=options,
        thread=thread or STANDALONE,
        new=new,
        refresh=refresh,
        functions=tuple(tools),
        max_tool_rounds=max_tool_rounds,
        max_tool_calls=max_tool_calls,
        schema=schema,
        json=json,
    )
    with in_words(Caller.CODE):
        return _ask(_kernel(), prompt, chosen, thread is not None)


def _ask(kernel: ChatKernel, prompt: str, chosen: CellOptions, in_thread: bool) -> Answer:
    cell = kernel.begin()
    settings = kernel.settings(chosen.flags())
    asked_in = (cell.cell_id, cell.message_id) if in_thread and cell.cell_id else None
    request = TurnRequest(
        prompt,
        chosen.thread,
        None,
        chosen.new,
        chosen.refresh,
        ask_in=asked_in,
        tools=kernel.toolbox(chosen, settings) if chosen.functions else None,
        max_tool_rounds=chosen.max_tool_rounds,
        max_tool_calls=kernel.tool_call_cap(chosen),
        output=kernel.output_shape(chosen),
    )
    outcome = kernel.session.run(request, settings, kernel.notebook())
    record = outcome.record
    request_sent = sent(kernel.session, record, kernel.locator.last, outcome.turn)
    return Answer(
        text=record.answer,
        record=record,
        replayed=outcome.replayed,
        request=request_sent,
        value=outcome.value,
        stored=settings.cache,
        cost=outcome.cost,
    )


def map(  # shadows the builtin here only, and is not in nbchat's __all__
    template: str,
    items: Any,
    *,
    schema: Any = None,
    json: bool = False,
    concurrency: int = DEFAULT_CONCURRENCY,
    rpm: float | None = None,
    thread: str = DEFAULT_THREAD,
    model: str | None = None,
    profile: str | None = None,
    temperature: float | None = None,
    max_tokens: int | None = None,
    allow_secrets: bool = False,
    batch: bool = False,
    wait: bool = True,
    batch_timeout: float | None = None,
    **options: Any,
) -> Any:
    """``%%chat --map`` from code: ``template`` sent once per item of ``items`` (``{item}``,
    ``{item[field]}``, ``{item.field}``), concurrently; the answers in order (validated objects
    with ``schema``, parsed JSON with ``json``; a pandas Series for a Series or DataFrame). A
    value that holds an API key is refused unless ``allow_secrets=True``. The summary (with the
    record the next run replays) is shown in the running cell's output. Raises `BatchError`
    when some items failed: its ``values`` holds the others.

    ``batch=True``: through the provider's batch API, waiting up to ``batch_timeout`` seconds
    (`BatchPending` past it; a later call picks the batch up); ``wait=False`` returns None at
    once, and the cell's output follows the batch.
    """
    chosen = CellOptions(
        caller=Caller.CODE,
        model=model,
        profile=profile,
        temperature=temperature,
        max_tokens=max_tokens,
        options=options,
        thread=thread,
        schema=schema,
        json=json,
        map="items",
        concurrency=concurrency,
        rpm=rpm,
        allow_secrets=allow_secrets,
        batch=batch,
        wait=batch and wait,
        batch_timeout=batch_timeout,
    )
    with in_words(Caller.CODE):
        return _map(chosen, template, items)


def _map(chosen: CellOptions, template: str, items: Any) -> Any:
    from nbchat.ipython.mapping import map_job, run_job  # shows widgets: only when mapping

    kernel = _kernel()
    kernel.begin()
    values, pending = run_job(
        kernel, chosen, map_job(kernel, chosen, template, items, title="nbchat.map")
    )
    return None if pending else values
