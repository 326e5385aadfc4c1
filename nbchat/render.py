"""Output bundles: the persistent answer, a partial answer, a system prompt, the raw JSON.

Pure functions from records to ``(data, metadata)`` MIME bundles. An answer bundle carries
``text/markdown`` (what GitHub, nbviewer and JupyterLab show), ``text/plain`` and the record.
Raw JSON is always its own output, because JupyterLab's JSON tree outranks Markdown in one bundle;
with ``--raw`` that output carries the record instead of the answer's bundle, so it is stored once.

Every text that did not come from nbchat itself (answers, prompts, model names) goes through
`safe_markdown` or `escape_markdown` before it reaches a ``text/markdown`` output: JupyterLab
renders HTML inside the Markdown of outputs it trusts, and model text is untrusted input.
"""

from __future__ import annotations

import html
import json
import re
import secrets
from typing import Any

from nbchat.images import with_image_summaries
from nbchat.markdown_safety import safe_markdown
from nbchat.record import RECORD_MIME, SCHEMA_VERSION, Record

__all__ = [
    "RAW_MARKER",
    "answer_bundle",
    "escape_markdown",
    "fenced",
    "footer",
    "inspection",
    "partial_bundle",
    "raw_bundle",
    "reasoning_tokens",
    "record_bundle",
    "system_bundle",
    "thought_summary",
    "with_thinking",
]

Bundle = tuple[dict[str, Any], dict[str, Any]]

RAW_MARKER = "raw"  # metadata["nbchat"]["raw"]: an output that shows raw JSON
_FINISH_NOTES = {
    "length": "⚠ cut off: hit max_tokens or the context limit (finish_reason: length)",
    "content_filter": "⚠ omitted by the provider's content filter (finish_reason: content_filter)",
    "tool_calls": "the model asked to call tools (nbchat does not run them)",
    "function_call": "the model asked to call a function (nbchat does not run it)",
}
_MARKDOWN_SPECIAL = re.compile(r"([\\`*_{}\[\]<>#|~!$&])")


def escape_markdown(text: str) -> str:
    """Text shown literally inside Markdown: every character with a meaning is escaped."""
    return _MARKDOWN_SPECIAL.sub(r"\\\1", " ".join(text.split()))


def fenced(text: str, language: str = "") -> str:
    """A fenced code block that ``text`` cannot close, whatever backticks it holds."""
    longest = max((len(run) for run in re.findall(r"`+", text)), default=0)
    fence = "`" * max(3, longest + 1)
    return f"{fence}{language}\n{text}\n{fence}"


def _tokens(usage: dict[str, Any]) -> str | None:
    prompt, completion = usage.get("prompt_tokens"), usage.get("completion_tokens")
    if prompt is None and completion is None:
        return None
    thinking = reasoning_tokens(usage)
    of_which = f" ({thinking} thinking)" if thinking else ""
    return f"{prompt if prompt is not None else '?'} → {completion or 0} tokens{of_which}"


def reasoning_tokens(usage: dict[str, Any]) -> int | None:
    """The completion tokens a reasoning model spent thinking, when the server says."""
    details = usage.get("completion_tokens_details")
    count = details.get("reasoning_tokens") if isinstance(details, dict) else None
    return count if isinstance(count, int) and not isinstance(count, bool) else None


def footer(record: Record, *, replayed: bool = False, no_cache: bool = False) -> str:
    """One line under an answer: model, tokens, time, and anything the reader must notice."""
    parts = [record.model or "?"]
    tokens = _tokens(record.usage)
    if tokens:
        parts.append(tokens)
    if replayed:
        parts.append(f"stored {record.stored_at.replace('T', ' ').rstrip('Z')} UTC, replayed")
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


def _tool_calls(record: Record) -> str:
    calls = (record.assistant or {}).get("tool_calls") or []
    if not calls:
        return ""
    return json.dumps(calls, indent=2, ensure_ascii=False)


def answer_bundle(
    record: Record, *, replayed: bool = False, store: bool = True, with_record: bool = True
) -> Bundle:
    """The persistent output of a complete answer (``with_record=False``: the record is kept by
    the raw view next to it)."""
    line = footer(record, replayed=replayed, no_cache=not store)
    calls = _tool_calls(record)
    thinking = thought_summary(record.reasoning, record.timing.get("thinking_s"))
    markdown = with_thinking(record.reasoning, thinking, record.answer)
    markdown += f"\n\n{fenced(calls, 'json')}" if calls else ""
    plain = record.answer + (f"\n\n{calls}" if calls else "")
    data: dict[str, Any] = {
        "text/markdown": f"{markdown}\n\n<sub>{escape_markdown(line)}</sub>",
        "text/plain": f"{plain}\n\n[{line}]",
    }
    if store and with_record:
        data[RECORD_MIME] = record.to_json()
    return data, {"nbchat": {"thread": record.thread, "replayed": replayed}}


def thought_summary(reasoning: str, seconds: float | None = None) -> str:
    """``Thinking · 312 words · 4.1 s``: what the folded thinking's summary line says."""
    timed = f" · {seconds:.1f} s" if isinstance(seconds, int | float) else ""
    return f"Thinking · {len(reasoning.split()):,} words{timed}"


def with_thinking(reasoning: str, summary: str, answer: str) -> str:
    """The answer's Markdown, after the thinking folded in a ``<details>`` block.

    Sanitised text is safe only as a whole document (an unclosed fence in the thinking would
    change how the answer is read), so the thinking and the answer are made safe together,
    between two placeholder lines that `safe_markdown` leaves alone; only then are those lines
    swapped for our own, attribute-free tags.
    """
    if not reasoning:
        return safe_markdown(answer)
    mark = f"nbchat{secrets.token_hex(8)}"
    document = safe_markdown(f"{mark}open\n\n{reasoning}\n\n{mark}close\n\n{answer}")
    opening = f"<details><summary>{html.escape(summary)}</summary>"
    lines = [
        opening if line == f"{mark}open" else "</details>" if line == f"{mark}close" else line
        for line in document.split("\n")
    ]
    return "\n".join(lines)


def partial_bundle(text: str, reasoning: str = "") -> Bundle:
    """What stays visible when an answer failed part-way: never a record. The error shown
    below it says why."""
    line = "⚠ incomplete, not stored"
    if text or reasoning:
        body = with_thinking(reasoning, thought_summary(reasoning), text or "*(no answer yet)*")
    else:
        body = "*(no text received)*"
    data = {
        "text/markdown": f"{body}\n\n<sub>{escape_markdown(line)}</sub>",
        "text/plain": f"{text}\n\n[{line}]",
    }
    return data, {"nbchat": {"incomplete": True}}


def system_bundle(record: Record, *, store: bool = True) -> Bundle:
    """The output of a ``--system`` cell: the prompt it sets, and its record."""
    # Quoted first, made safe after: sanitised text is safe only as a whole document.
    quoted = safe_markdown(
        "\n".join(f"> {line}" if line else ">" for line in record.prompt.splitlines())
    )
    fresh = " (starts the thread afresh)" if record.new_thread else ""
    thread = escape_markdown(record.thread)
    data: dict[str, Any] = {
        "text/markdown": f"**System prompt** for thread {thread}{fresh}:\n\n{quoted}",
        "text/plain": f"[system prompt for thread {record.thread!r}{fresh}]\n{record.prompt}",
    }
    if store:
        data[RECORD_MIME] = record.to_json()
    return data, {"nbchat": {"thread": record.thread}}


def raw_bundle(payload: Any) -> Bundle:
    """Raw JSON as JupyterLab's collapsible tree, with pretty text for everything else."""
    data = {
        "application/json": payload,
        "text/plain": json.dumps(payload, indent=2, ensure_ascii=False),
    }
    return data, {"application/json": {"expanded": False}, "nbchat": {RAW_MARKER: True}}


def inspection(record: Record, sent: dict[str, Any], *, whole: bool = False) -> dict[str, Any]:
    """What a raw view shows: the record, and under ``sent`` the request as it was sent
    (rebuilt from the records above it; never the key or any header). Images are shown by their
    summary and digest, except in the record itself when ``whole`` (it is then the stored one)."""
    stored = record.to_json()
    return {
        **(stored if whole else with_image_summaries(stored)),
        "sent": with_image_summaries(sent),
    }


def record_bundle(record: Record, sent: dict[str, Any]) -> Bundle:
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
        "nbchat": {RAW_MARKER: True, "record": SCHEMA_VERSION},
    }
    return {"application/json": inspection(record, sent, whole=True), "text/plain": plain}, metadata
