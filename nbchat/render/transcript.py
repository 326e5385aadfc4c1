"""Transcripts of stored turns for ``nbchat export``: Markdown to read anywhere, HTML to share.

A Markdown transcript is parsed by whatever viewer opens it, so model and user text never stands
in it as Markdown: each is a fenced block it cannot close (a longer fence than any backtick run
it holds), and one-line fields a server controls (the model's name, a thread's) are code spans
likewise. Folds (thinking, tool calls) are ``<details>`` blocks with an escaped summary. The HTML
transcript is the notebook's own view: each answer rendered in the kernel and sanitized, as in
the cell.
"""

from __future__ import annotations

import html
import re
from collections.abc import Sequence

from nbchat._text import clip, duration, one_line, printable
from nbchat.render.bundles import answer_bundle, thought_summary, tool_rounds, tools_summary
from nbchat.render.html import escape
from nbchat.store.record import SYSTEM, Record

__all__ = ["html_transcript", "markdown_transcript"]

# In a <summary> line: no "$" or "\" for a viewer's math extraction either.
_SUMMARY_ENTITIES = str.maketrans({"$": "&#36;", "\\": "&#92;"})
_RESULT_SHOWN = 2_000


def _fence(text: str, language: str = "") -> str:
    """A fenced block that ``text`` cannot close, whatever backticks it holds."""
    longest = max((len(run) for run in re.findall(r"`+", text)), default=0)
    fence = "`" * max(3, longest + 1)
    return f"{fence}{language}\n{text}\n{fence}"


def _code_span(text: str) -> str:
    """One line of text as a code span that it cannot close."""
    line = one_line(text) or "-"
    longest = max((len(run) for run in re.findall(r"`+", line)), default=0)
    ticks = "`" * (longest + 1)
    return f"{ticks} {line} {ticks}"


def _fold(summary: str, body: str) -> str:
    escaped = html.escape(one_line(summary)).translate(_SUMMARY_ENTITIES)
    return f"<details><summary>{escaped}</summary>\n\n{body}\n\n</details>"


def _markdown_turn(record: Record) -> list[str]:
    """The Markdown blocks of one stored turn."""
    if record.kind == SYSTEM:
        return ["**System:**", _fence(record.prompt, "text")]
    blocks = ["*(new conversation)*"] if record.new_thread else []
    blocks += ["**User:**", _fence(record.prompt, "text")]
    rounds = tool_rounds(record.messages[1:-1], record.timing.get("tool_s"))
    if rounds:
        calls = []
        for text, shown in rounds:
            calls += [_fence(text, "text")] if text.strip() else []
            for call in shown:
                result = "(no result)" if call.result is None else clip(call.result, _RESULT_SHOWN)
                took = f"   [{duration(call.seconds)}]" if call.seconds is not None else ""
                calls.append(_fence(f"{call.name}({call.arguments}){took}\n→ {result}", "text"))
        blocks.append(_fold(tools_summary(rounds, replayed=True), "\n\n".join(calls)))
    if record.reasoning:
        summary = thought_summary(record.reasoning, record.timing.get("thinking_s"))
        blocks.append(_fold(summary, _fence(record.reasoning, "text")))
    blocks.append(f"**Assistant** ({_code_span(str(record.model or '?'))}):")
    blocks.append(_fence(record.answer, "markdown") if record.answer else "*(no text)*")
    if record.finish_reason != "stop":
        blocks.append(f"*finish reason:* {_code_span(record.finish_reason or 'none')}")
    return blocks


def _by_thread(records: Sequence[Record]) -> dict[str, list[Record]]:
    threads: dict[str, list[Record]] = {}
    for record in records:
        threads.setdefault(record.thread, []).append(record)
    return threads


def markdown_transcript(title: str, records: Sequence[Record]) -> str:
    """A transcript per thread, threads in order of first appearance, turns in notebook order
    (control characters neutralised: it goes to a terminal by default)."""
    threads = _by_thread(records)
    blocks = [f"# nbchat transcript: {_code_span(title)}"]
    if not threads:
        blocks.append("*No stored turns.*")
    for name, turns in threads.items():
        blocks.append(f"## Thread {_code_span(name)}")
        for record in turns:
            blocks.extend(_markdown_turn(record))
    return printable("\n\n".join(blocks)) + "\n"


_PAGE = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{title}</title>
<style>body {{ font-family: system-ui, sans-serif; max-width: 50em; margin: 2em auto;
padding: 0 1em; line-height: 1.5 }} .prompt {{ white-space: pre-wrap; background: #8881;
padding: 0.5em 0.8em; border-radius: 4px }} pre {{ overflow-x: auto }}</style></head>
<body><h1>{title}</h1>
{body}
</body></html>
"""


def html_transcript(title: str, records: Sequence[Record]) -> str:
    """A standalone HTML page: each thread's prompts (as text) and answers (as the cell shows
    them, sanitized)."""
    parts = []
    for name, turns in _by_thread(records).items():
        parts.append(f"<h2>Thread {escape(name)}</h2>")
        for record in turns:
            label = "System prompt" if record.kind == SYSTEM else "User"
            parts.append(f'<p><strong>{label}</strong></p><div class="prompt">')
            parts.append(f"{escape(record.prompt)}</div>")
            if record.kind != SYSTEM:
                answer = answer_bundle(record, with_record=False)[0]["text/html"]
                parts.append(f"<p><strong>Assistant</strong></p>{answer}")
    body = "\n".join(parts) or "<p>No stored turns.</p>"
    page = _PAGE.format(title=escape(f"nbchat transcript: {title}"), body=body)
    return printable(page)  # it goes to a terminal by default
