"""A ``%%chat`` cell's turn, from its text to its output: the request, the live view, the final
bundle, the raw view and the variable bound.

What arrived of a failed answer stays in sight, marked, and is never stored; the error is
raised after it.
"""

from __future__ import annotations

from typing import Any

from IPython.display import display

from nbchat.engine.queries import sent
from nbchat.engine.session import Outcome
from nbchat.engine.settings import Settings
from nbchat.engine.turns import TurnRequest
from nbchat.errors import ConfigError, NbchatError, StreamError, StructuredOutputError
from nbchat.ipython.context import ChatKernel
from nbchat.ipython.live import LiveView, live_view
from nbchat.ipython.options import CellOptions
from nbchat.prompt.interpolate import interpolate
from nbchat.render.bundles import (
    Bundle,
    answer_bundle,
    inspection,
    partial_bundle,
    raw_bundle,
    record_bundle,
    system_bundle,
)
from nbchat.wire.completion import completion_reasoning

__all__ = ["run_turn"]


def run_turn(kernel: ChatKernel, options: CellOptions, text: str) -> None:
    """Run the cell's turn (or set its thread's system prompt) and show the result."""
    settings = kernel.settings(options.flags())
    request = cell_request(kernel, options, text, settings)
    if options.system:
        record = kernel.session.add_system(request)
        data, metadata = system_bundle(record, store=settings.cache)
        display(data, raw=True, metadata=metadata)
        return
    outcome, view = _ask(kernel, request, settings)
    record = outcome.record
    bundle = _redacted(
        answer_bundle(
            record,
            replayed=outcome.replayed,
            store=settings.cache,
            with_record=not options.raw,
            cost=outcome.cost,
        ),
        kernel,
        settings,
    )
    if outcome.replayed:
        display(bundle[0], raw=True, metadata=bundle[1])
    else:
        view.finish(*bundle)
    if options.raw:
        request_sent = sent(kernel.session, record, kernel.locator.last, outcome.turn)
        if settings.cache:
            data, metadata = record_bundle(record, request_sent, outcome.cost)
        else:
            data, metadata = raw_bundle(inspection(record, request_sent, cost=outcome.cost))
        display(data, raw=True, metadata=metadata)
    if options.out:
        shaped = request.output is not None
        kernel.namespace[options.out] = outcome.value if shaped else record.answer


def _redacted(bundle: Bundle, kernel: ChatKernel, settings: Settings) -> Bundle:
    """The bundle with the request's secrets out of its HTML too: text that spelled a key with
    entities shows it once rendered (the record's text was redacted as text)."""
    if settings.key_problem:
        return bundle
    redact = settings.client_config().redactor().text  # no client: a replay needs no httpx
    data = dict(bundle[0])
    data["text/html"] = redact(data["text/html"])
    return data, bundle[1]


def cell_request(
    kernel: ChatKernel, options: CellOptions, text: str, settings: Settings
) -> TurnRequest:
    """What the cell asks: its text with the notebook's values filled in, and its options."""
    prompt = interpolate(text, kernel.namespace, budget=settings.context_chars).strip()
    if not options.allow_secrets:
        kernel.key_guard(settings, options).check(prompt.fills)
    if not prompt.pieces:
        raise ConfigError("The cell is empty: write your message below %%chat.")
    if options.system and prompt.images:
        raise ConfigError("A system prompt holds text only: put the image in a %%chat cell.")
    for note in prompt.notes:
        kernel.note(f"nbchat: {note}")
    if options.json and "json" not in prompt.text.lower():
        kernel.note("nbchat: --json: some providers (OpenAI) refuse a prompt without 'JSON'.")
    if not options.system:
        for image in prompt.images:
            kernel.output.picture(image)
    content = prompt.content
    cell = kernel.running
    return TurnRequest(
        prompt.text,
        options.thread,
        cell.cell_id,
        options.new,
        options.refresh,
        source=cell.source,
        content=content if isinstance(content, list) else None,
        tools=None if options.system else kernel.toolbox(options, settings),
        max_tool_rounds=options.max_tool_rounds,
        max_tool_calls=kernel.tool_call_cap(options),
        output=None if options.system else kernel.output_shape(options),
    )


def _ask(kernel: ChatKernel, request: TurnRequest, settings: Settings) -> tuple[Outcome, LiveView]:
    """Run the turn with a live view (returned, for the final bundle)."""
    view = live_view(
        settings.model,
        rate=settings.update_rate,
        frontend=kernel.running.frontend,
        on_discard=kernel.output.reshow,
    )
    try:
        return kernel.session.run(request, settings, kernel.notebook(), view), view
    except BaseException as error:  # nbchat's errors and bugs alike: no live widget left behind
        _keep_in_sight(view, error)
        raise


def _keep_in_sight(view: LiveView, error: BaseException) -> None:
    """Replace the live view with what arrived of the answer, marked, or remove it."""
    partial = _partial(error)
    if partial is None:
        view.discard()
    else:
        view.finish(*partial)


def _partial(error: BaseException) -> tuple[dict[str, Any], dict[str, Any]] | None:
    """What to keep showing after ``error``, or None."""
    if isinstance(error, StreamError):
        thought = completion_reasoning(error.partial)
        if error.partial_text or thought or error.exchange:
            return partial_bundle(error.partial_text, thought, exchange=error.exchange)
        return None
    if isinstance(error, StructuredOutputError):  # the whole answer, kept in sight, not stored
        note = "⚠ not the shape asked for: not stored, nothing bound"
        return partial_bundle(error.text, exchange=error.exchange, note=note)
    if isinstance(error, NbchatError) and error.exchange:  # after tools ran
        note = "⚠ stopped after the tool calls above ran: not stored"
        return partial_bundle("", exchange=error.exchange, note=note)
    return None
