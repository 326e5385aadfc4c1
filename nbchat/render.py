"""Output bundles: the persistent answer, a partial answer, a system prompt, the raw JSON.

Pure functions from records to ``(data, metadata)`` MIME bundles. An answer bundle carries
``text/markdown`` (what GitHub, nbviewer and JupyterLab show), ``text/plain`` and the record. Raw
JSON is always its own output, because JupyterLab's JSON tree outranks Markdown in one bundle.
"""

from __future__ import annotations

import json
import re
from typing import Any

from nbchat.record import RECORD_MIME, Record

__all__ = [
    "answer_bundle",
    "footer",
    "partial_bundle",
    "raw_bundle",
    "system_bundle",
]

Bundle = tuple[dict[str, Any], dict[str, Any]]

_FINISH_NOTES = {
    "length": "⚠ cut off: hit max_tokens or the context limit (finish_reason: length)",
    "content_filter": "⚠ omitted by the provider's content filter (finish_reason: content_filter)",
    "tool_calls": "the model asked to call tools (nbchat does not run them)",
    "function_call": "the model asked to call a function (nbchat does not run it)",
}
_MARKDOWN_SPECIAL = re.compile(r"([\\`*_{}\[\]<>#|~])")


def _escape(text: str) -> str:
    return _MARKDOWN_SPECIAL.sub(r"\\\1", text)


def _tokens(usage: dict[str, Any]) -> str | None:
    prompt, completion = usage.get("prompt_tokens"), usage.get("completion_tokens")
    if prompt is None and completion is None:
        return None
    return f"{prompt if prompt is not None else '?'} → {completion or 0} tokens"


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
    if note:
        parts.append(note)
    return " · ".join(parts)


def _tool_calls_markdown(record: Record) -> str:
    message = ((record.response or {}).get("choices") or [{}])[0].get("message") or {}
    calls = message.get("tool_calls") or []
    if not calls:
        return ""
    listing = json.dumps(calls, indent=2, ensure_ascii=False)
    return f"\n\n```json\n{listing}\n```"


def answer_bundle(record: Record, *, replayed: bool = False, store: bool = True) -> Bundle:
    """The persistent output of a complete answer."""
    line = footer(record, replayed=replayed, no_cache=not store)
    text = record.answer + _tool_calls_markdown(record)
    data: dict[str, Any] = {
        "text/markdown": f"{text}\n\n<sub>{_escape(line)}</sub>",
        "text/plain": f"{text}\n\n[{line}]",
    }
    if store:
        data[RECORD_MIME] = record.to_json()
    return data, {"nbchat": {"thread": record.thread, "replayed": replayed}}


def partial_bundle(text: str, reason: str) -> Bundle:
    """What stays visible when an answer failed part-way: never a record."""
    line = f"⚠ incomplete, not stored: {reason}"
    body = text or "*(no text received)*"
    data = {
        "text/markdown": f"{body}\n\n<sub>{_escape(line)}</sub>",
        "text/plain": f"{text}\n\n[{line}]",
    }
    return data, {"nbchat": {"incomplete": True}}


def system_bundle(record: Record, *, store: bool = True) -> Bundle:
    """The output of a ``--system`` cell: the prompt it sets, and its record."""
    quoted = "\n".join(f"> {line}" if line else ">" for line in record.prompt.splitlines())
    fresh = " (starts the thread afresh)" if record.new_thread else ""
    data: dict[str, Any] = {
        "text/markdown": f"**System prompt** for thread `{record.thread}`{fresh}:\n\n{quoted}",
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
    return data, {"application/json": {"expanded": False}, "nbchat": {"raw": True}}
