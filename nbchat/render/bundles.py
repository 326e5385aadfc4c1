"""Output bundles: the persistent answer, a partial answer, a system prompt, the raw JSON.

Pure functions from records to ``(data, metadata)`` MIME bundles. An answer bundle carries
``text/html`` (what JupyterLab, Notebook 7, VS Code, nbviewer and GitHub show), ``text/plain``
and the record. The HTML is made in the kernel: model text rendered by `safe_html.markdown`,
nbchat's own text escaped, the whole sanitized by `safe_html.document`. There is no
``text/markdown`` copy: nothing needs it (the record keeps the exact text, ``text/plain`` a
readable one), it would double an answer's bytes, and a frontend that preferred it would parse
a model's Markdown in the browser. Raw JSON is always its own output, because JupyterLab's JSON
tree outranks HTML in one bundle; with ``--raw`` that output carries the record instead of the
answer's bundle, so it is stored once.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from nbchat._text import clip, duration, one_line, plural, printable
from nbchat.money.cost import Cost
from nbchat.money.prices import TokenCounts
from nbchat.render.html import PRE_STYLE, document, escape, markdown
from nbchat.store.marker import OutputMarker
from nbchat.store.record import RECORD_MIME, SCHEMA_VERSION, Record, message_text
from nbchat.wire.images import with_image_summaries
from nbchat.wire.messages import PREVIEW_WIDTH, call_line, call_shown
from nbchat.wire.messages import tool_rounds as paired_rounds
from nbchat.wire.usage import reasoning_tokens

__all__ = [
    "answer_bundle",
    "footer",
    "inspection",
    "note_html",
    "partial_bundle",
    "raw_bundle",
    "record_bundle",
    "system_bundle",
    "thought_summary",
    "tool_rounds",
    "tools_html",
    "tools_summary",
]

Bundle = tuple[dict[str, Any], dict[str, Any]]

_FINISH_NOTES = {
    "length": "⚠ cut off: hit max_tokens or the context limit (finish_reason: length)",
    "content_filter": "⚠ omitted by the provider's content filter (finish_reason: content_filter)",
    "tool_calls": "the model asked to call tools: offer them with --tools",
    "function_call": "the model asked to call a function (nbchat does not run it)",
}
_RESULT_SHOWN = 2_000  # characters of a tool's result shown (the record has all of it)
# A raw view's order: what was sent and what came back first, the digests that chain it last.
_FIRST = ("messages", "responses", "request", "timing")
_DIGESTS = ("key", "history", "parent", "context")
_QUIET = "font-size: 85%; opacity: 0.7"
_CALL_STYLE = "margin: 0.6em 0"


def note_html(text: str) -> str:
    """A quiet line of nbchat's own (a footer, a note), escaped."""
    return f'<div style="{_QUIET}">{escape(text)}</div>'


def _tokens(usage: dict[str, Any]) -> str | None:
    """``1200 → 340 tokens (cached 83%, 120 thinking)``."""
    prompt, completion = usage.get("prompt_tokens"), usage.get("completion_tokens")
    if prompt is None and completion is None:
        return None
    details = []
    counts = TokenCounts.of(usage)
    if counts is not None and counts.cached_share is not None:
        details.append(f"cached {counts.cached_share:.0%}")
    thinking = reasoning_tokens(usage)
    if thinking:
        details.append(f"{thinking} thinking")
    of_which = f" ({', '.join(details)})" if details else ""
    return f"{prompt if prompt is not None else '?'} → {completion or 0} tokens{of_which}"


def footer(
    record: Record, *, replayed: bool = False, no_cache: bool = False, cost: Cost | None = None
) -> str:
    """One line under an answer: model, tokens, cost (a replay: what it saved), time, and
    anything the reader must notice. An unknown price is said once elsewhere, not here."""
    parts = [record.model or "?"]
    tokens = _tokens(record.usage)
    if tokens:
        parts.append(tokens)
    if cost is not None and cost.known and not replayed:
        parts.append(str(cost))
    if replayed:
        parts.append(f"stored {record.stored_at.replace('T', ' ').rstrip('Z')} UTC, replayed")
        if cost is not None and cost.known:
            parts.append(f"saved {cost}")
    elif record.timing.get("elapsed_s") is not None:
        parts.append(f"{record.timing['elapsed_s']:.1f} s")
    if no_cache:
        parts.append("not stored (--no-cache)")
    note = _FINISH_NOTES.get(record.finish_reason or "")
    if record.finish_reason == "length" and not record.answer and record.reasoning:
        note = "⚠ cut off while thinking, no answer yet: raise --max-tokens"
    if note:
        parts.append(note)
    return " · ".join(str(part) for part in parts)


def _unrun_calls(record: Record) -> str:
    """The calls of a final answer that asked for tools nobody ran (none were offered)."""
    calls = (record.assistant or {}).get("tool_calls") or []
    if not calls:
        return ""
    return json.dumps(calls, indent=2, ensure_ascii=False)


def _answer_html(record: Record) -> str:
    """The answer's text as HTML: Markdown, or pretty JSON when a shape was asked for."""
    text = record.answer
    if not text.strip():
        return "<p><em>(the answer holds no text)</em></p>"
    shaped = record.request is not None and "response_format" in record.request.params
    if shaped:
        from nbchat.errors import StructuredOutputError
        from nbchat.schema.structured import answer_json

        try:
            value = answer_json(text)
        except StructuredOutputError:
            return markdown(text)
        return markdown(f"```json\n{json.dumps(value, indent=2, ensure_ascii=False)}\n```")
    return markdown(text)


def answer_bundle(
    record: Record,
    *,
    replayed: bool = False,
    store: bool = True,
    with_record: bool = True,
    cost: Cost | None = None,
) -> Bundle:
    """The persistent output of a complete answer (``with_record=False``: the record is kept by
    the raw view next to it); ``cost``: what it cost, or (replayed) what replaying saved."""
    line = footer(record, replayed=replayed, no_cache=not store, cost=cost)
    calls = _unrun_calls(record)
    rounds = tool_rounds(record.messages[1:-1], record.timing.get("tool_s"))
    folds = []
    if rounds:
        folds.append(fold(tools_summary(rounds, replayed=replayed), tools_html(rounds)))
    if record.reasoning:
        summary = thought_summary(record.reasoning, record.timing.get("thinking_s"))
        folds.append(fold(summary, markdown(record.reasoning)))
    body = "".join(folds)
    if record.answer.strip() or not calls:
        body += _answer_html(record)
    body += f'<pre style="{PRE_STYLE}">{escape(calls)}</pre>' if calls else ""
    plain = tools_plain(rounds) + record.answer + (f"\n\n{calls}" if calls else "")
    data: dict[str, Any] = {
        "text/html": document(body + note_html(line)),
        "text/plain": printable(f"{plain}\n\n[{line}]"),  # terminals too: no control codes
    }
    if store and with_record:
        data[RECORD_MIME] = record.to_json()
    return data, OutputMarker(thread=record.thread, replayed=replayed).to_json()


def fold(summary: str, body_html: str) -> str:
    """A ``<details>`` block: ``summary`` (plain text) over ``body_html``, closed."""
    return f"<details><summary>{escape(summary)}</summary>{body_html}</details>"


def thought_summary(reasoning: str, seconds: float | None = None) -> str:
    """``Thinking · 312 words · 4.1 s``: what the folded thinking's summary line says."""
    timed = f" · {seconds:.1f} s" if isinstance(seconds, int | float) else ""
    return f"Thinking · {len(reasoning.split()):,} words{timed}"


# -- tool calls ------------------------------------------------------------------------------


@dataclass(frozen=True)
class ToolCallShown:
    """One call of a turn as shown: what the model asked, and what it was sent back."""

    name: str
    arguments: str
    result: str | None  # None: no result (the turn stopped before it ran)
    seconds: float | None = None


def tool_rounds(
    messages: list[dict[str, Any]], seconds: Any = None
) -> list[tuple[str, list[ToolCallShown]]]:
    """The rounds of tool calls among a turn's messages (between its user message and its final
    answer): each assistant message's text and its calls, each with its own result (paired
    within the round, by position where ids are missing or repeated) and run time."""
    times = iter(seconds if isinstance(seconds, list) else [])
    rounds = []
    for found in paired_rounds(messages):
        shown = []
        for call, result in zip(found.calls, found.results, strict=True):
            name, arguments = call_shown(call)
            text = message_text(result) if result is not None else None
            took = next(times, None) if result is not None else None
            shown.append(ToolCallShown(name, arguments, text, took if _is_number(took) else None))
        rounds.append((message_text(found.message), shown))
    return rounds


def tools_summary(rounds: list[tuple[str, list[ToolCallShown]]], *, replayed: bool = False) -> str:
    """``Tools · 3 calls · lookup, convert · 0.2 s``: the folded calls' summary line."""
    calls = [call for _, round_calls in rounds for call in round_calls]
    names = ", ".join(dict.fromkeys(call.name for call in calls))
    seconds = sum(call.seconds or 0 for call in calls)
    timed = f" · {duration(seconds)}" if any(c.seconds is not None for c in calls) else ""
    stored = " · stored results, not run again" if replayed else ""
    return f"Tools · {plural(len(calls), 'call')} · {clip(names, 80)}{timed}{stored}"


def tools_html(rounds: list[tuple[str, list[ToolCallShown]]]) -> str:
    """Any text the model wrote with its calls (Markdown), then each call as preformatted plain
    text: ``name(arguments)``, then ``→ result``."""
    blocks = []
    for text, calls in rounds:
        if text.strip():
            blocks.append(markdown(text))
        for call in calls:
            result = "(no result)" if call.result is None else clip(call.result, _RESULT_SHOWN)
            took = f"   [{duration(call.seconds)}]" if call.seconds is not None else ""
            blocks.append(f'<pre style="{_CALL_STYLE}">')
            blocks.append(f"{escape(f'{call.name}({call.arguments}){took}')}\n")
            blocks.append(f"{escape(f'→ {result}')}</pre>")
    return "".join(blocks)


def tools_plain(rounds: list[tuple[str, list[ToolCallShown]]]) -> str:
    """The calls as plain text lines, above the answer's plain text."""
    lines = [
        f"[tool] {call_line(call.name, call.arguments)} → "
        + ("(no result)" if call.result is None else clip(one_line(call.result), PREVIEW_WIDTH))
        for _, calls in rounds
        for call in calls
    ]
    return "".join(f"{line}\n" for line in lines) + ("\n" if lines else "")


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def partial_bundle(
    text: str,
    reasoning: str = "",
    *,
    exchange: list[dict[str, Any]] | None = None,
    note: str = "⚠ incomplete, not stored",
) -> Bundle:
    """What stays visible when an answer failed part-way (or did not fit the shape asked for):
    never a record. The error shown below it says why."""
    rounds = tool_rounds(exchange or [])
    body = fold(tools_summary(rounds), tools_html(rounds)) if rounds else ""
    if reasoning:
        body += fold(thought_summary(reasoning), markdown(reasoning))
    if text:
        body += markdown(text)
    elif body:
        body += "<p><em>(no answer yet)</em></p>"
    else:
        body = "<p><em>(no text received)</em></p>"
    data = {
        "text/html": document(body + note_html(note)),
        "text/plain": printable(f"{tools_plain(rounds)}{text}\n\n[{note}]"),
    }
    return data, OutputMarker(incomplete=True).to_json()


def system_bundle(record: Record, *, store: bool = True) -> Bundle:
    """The output of a ``--system`` cell: the prompt it sets, and its record."""
    fresh = " (starts the thread afresh)" if record.new_thread else ""
    title = f"System prompt for thread {record.thread}{fresh}:"
    data: dict[str, Any] = {
        "text/html": document(
            f"<p><strong>{escape(title)}</strong></p>"
            f"<blockquote>{markdown(record.prompt)}</blockquote>"
        ),
        "text/plain": printable(
            f"[system prompt for thread {record.thread!r}{fresh}]\n{record.prompt}"
        ),
    }
    if store:
        data[RECORD_MIME] = record.to_json()
    return data, OutputMarker(thread=record.thread).to_json()


def raw_bundle(payload: Any) -> Bundle:
    """Raw JSON as JupyterLab's collapsible tree, with pretty text for everything else."""
    data = {
        "application/json": payload,
        "text/plain": json.dumps(payload, indent=2, ensure_ascii=False),
    }
    return data, {"application/json": {"expanded": False}, **OutputMarker(raw=True).to_json()}


def inspection(
    record: Record, sent: dict[str, Any], *, whole: bool = False, cost: Cost | None = None
) -> dict[str, Any]:
    """What a raw view shows: the record, under ``sent`` the request as it was sent (rebuilt
    from the records above it; never the key or any header) and under ``cost`` what it cost
    (computed, not stored: readers ignore it). Images are shown by their summary and digest,
    except in the record itself when ``whole`` (it is then the stored one)."""
    stored = record.to_json()
    stored = stored if whole else with_image_summaries(stored)
    first = {name: stored[name] for name in _FIRST if name in stored}
    last = {name: stored[name] for name in _DIGESTS if name in stored}
    rest = {k: v for k, v in stored.items() if k not in first and k not in last}
    priced = {"cost": cost_json(cost)} if cost is not None else {}
    return {"sent": with_image_summaries(sent), **priced, **first, **rest, **last}


def cost_json(cost: Cost) -> dict[str, Any]:
    """A cost as the raw view shows it: dollars as a decimal string (null: unknown)."""
    return {
        "usd": None if cost.usd is None else str(cost.usd),
        "shown": str(cost),
        "basis": cost.basis.value,
        **({"batch": True} if cost.batch else {}),
    }


def record_bundle(record: Record, sent: dict[str, Any], cost: Cost | None = None) -> Bundle:
    """``--raw``: the record as a collapsible tree, with the full request it answers. It is also
    the stored record (the ``record`` marker gives its schema), so the plain text is a summary,
    not another copy."""
    usage = _tokens(record.usage) or "no token usage reported"
    messages = len(sent.get("body", {}).get("messages") or [])
    plain = (
        f"[nbchat record: {record.model or '?'}, {messages} messages sent, {usage}; "
        "`nbchat export --format jsonl` prints it in full]"
    )
    metadata = {
        "application/json": {"expanded": False},
        **OutputMarker(raw=True, record=SCHEMA_VERSION).to_json(),
    }
    tree = inspection(record, sent, whole=True, cost=cost)
    return {"application/json": tree, "text/plain": plain}, metadata
