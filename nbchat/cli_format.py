"""Text for the ``nbchat`` command: help, aligned tables, previews, transcripts."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from nbchat.record import Record

__all__ = [
    "COMMAND_HELP",
    "HELP_EPILOG",
    "RUN_EPILOG",
    "Tally",
    "markdown_transcript",
    "plural",
    "preview",
    "render_table",
    "short_time",
    "show_row",
    "tally_lines",
    "token_counts",
]

HELP_EPILOG = """\
Files are read with nbformat only (no kernel, no network), except by `run`, which executes one.

exit status:
  0  success
  1  verify found problems, or run stopped at a cell error
  2  usage error, or a notebook that is missing, unreadable or corrupt

example:
  nbchat show analysis.ipynb --thread review
"""

# (one-line summary, example) of each subcommand, for its --help
COMMAND_HELP: dict[str, tuple[str, str]] = {
    "show": ("list the stored turns as a table", "nbchat show analysis.ipynb --width 120"),
    "export": (
        "write a Markdown transcript per thread, or one JSON record per line",
        "nbchat export analysis.ipynb --format jsonl -o turns.jsonl",
    ),
    "stats": ("count answers and the tokens they cost, by model", "nbchat stats *.ipynb"),
    "verify": (
        "check records are well-formed, keys consistent, and no API key leaked",
        "nbchat verify analysis.ipynb || echo 'see the problems above'",
    ),
    "strip": (
        "remove nbchat's records from a notebook (rewritten atomically)",
        "nbchat strip analysis.ipynb --keep-text -o shareable.ipynb",
    ),
    "run": (
        "execute a notebook headless with nbclient, replaying the answers stored in it",
        "nbchat run --offline analysis.ipynb",
    ),
}

RUN_EPILOG = """\
The kernel runs in the notebook's directory with NBCHAT_NOTEBOOK set to the file, so every
%%chat cell whose request is unchanged replays its stored answer at no cost; the others are
sent, unless --offline (NBCHAT_OFFLINE=1) makes them fail with OfflineMiss. The file is left
untouched unless --inplace or -o is given, and is never saved when a cell fails. Then prints:

  NOTEBOOK: N cells run, A answers (R replayed, S asked), E errors

Needs nbclient and ipykernel (pip install nbclient ipykernel).

exit status:
  0  every cell ran (cells tagged raises-exception may fail)
  1  a cell failed: its number and error are printed
  2  usage error, nbclient missing, or a notebook that is missing or corrupt

"""

GAP = "  "
MIN_FLEX = 12


def plural(count: int, word: str) -> str:
    """``1 record``, ``2 records``."""
    return f"{count} {word}" if count == 1 else f"{count} {word}s"


def preview(text: Any) -> str:
    """Text squeezed onto one line."""
    return " ".join(str(text or "").split())


def truncate(text: str, width: int) -> str:
    """``text`` cut to ``width`` characters, with an ellipsis when cut."""
    if len(text) <= width:
        return text
    return text[: width - 1].rstrip() + "…" if width > 0 else ""


def short_time(stamp: Any) -> str:
    """An ISO-8601 time as ``YYYY-MM-DD HH:MM`` in UTC (``-`` when there is none)."""
    if not isinstance(stamp, str) or not stamp:
        return "-"
    try:  # Python 3.10's fromisoformat does not take a "Z"
        moment = datetime.fromisoformat(stamp.replace("Z", "+00:00"))
    except ValueError:
        return stamp[:16]
    if moment.tzinfo is not None:
        moment = moment.astimezone(timezone.utc)
    return moment.strftime("%Y-%m-%d %H:%M")


def token_counts(usage: dict[str, Any]) -> tuple[int, int, int] | None:
    """(prompt, completion, total) tokens as reported, or None when the server did not say."""
    prompt, completion = usage.get("prompt_tokens"), usage.get("completion_tokens")
    if not isinstance(prompt, int) or not isinstance(completion, int):
        return None
    total = usage.get("total_tokens")
    return prompt, completion, total if isinstance(total, int) else prompt + completion


def _flex_widths(natural: list[int], room: int) -> list[int]:
    """Share ``room`` among columns: narrow ones keep their width, wide ones split the rest."""
    widths = [0] * len(natural)
    order = sorted(range(len(natural)), key=natural.__getitem__)
    for done, column in enumerate(order):
        share = max(room // (len(order) - done), 1)
        widths[column] = min(natural[column], share)
        room -= widths[column]
    return widths


def render_table(
    header: Sequence[str],
    rows: Sequence[Sequence[str]],
    *,
    width: int | None = None,
    flex: int = 0,
    right: frozenset[int] = frozenset(),
) -> list[str]:
    """Columns two spaces apart; the last ``flex`` columns shrink so a line fits ``width``."""
    natural = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]
    if width is not None and flex:
        fixed = natural[:-flex]
        room = width - sum(fixed) - len(GAP) * (len(header) - 1)
        room = max(room, MIN_FLEX * flex)  # too narrow: overflow rather than show nothing
        natural = fixed + _flex_widths(natural[-flex:], room)
    lines = []
    for row in [header, *rows]:
        cells = [truncate(text, size) for text, size in zip(row, natural, strict=True)]
        padded = [
            text.rjust(size) if i in right else text.ljust(size)
            for i, (text, size) in enumerate(zip(cells, natural, strict=True))
        ]
        lines.append(GAP.join(padded).rstrip())
    return lines


def _markdown_turn(record: Record) -> list[str]:
    """The Markdown blocks of one stored turn."""
    if record.kind == "system":
        return ["**System:**", record.prompt]
    blocks = ["*(new conversation)*"] if record.new_thread else []
    blocks += ["**User:**", record.prompt, f"**Assistant ({record.model or '?'}):**"]
    blocks.append(record.answer or "*(no text)*")
    if record.finish_reason != "stop":
        blocks.append(f"*(finish reason: {record.finish_reason or 'none'})*")
    return blocks


def markdown_transcript(title: str, records: Sequence[Record]) -> str:
    """A transcript per thread, threads in order of first appearance, turns in notebook order."""
    threads: dict[str, list[Record]] = {}
    for record in records:
        threads.setdefault(record.thread, []).append(record)
    blocks = [f"# nbchat transcript: {title}"]
    if not threads:
        blocks.append("*No stored turns.*")
    for name, turns in threads.items():
        blocks.append(f"## Thread: {name}")
        for record in turns:
            blocks.extend(_markdown_turn(record))
    return "\n\n".join(blocks) + "\n"


def show_row(cell: int, record: Record) -> list[str]:
    """One row of ``nbchat show``."""
    counts = token_counts(record.usage)
    if record.kind == "system":
        model, prompt, answer = "-", f"(system) {preview(record.prompt)}", ""
    else:
        model, prompt, answer = str(record.model or "-"), preview(record.prompt), record.answer
    return [
        str(cell),
        record.thread,
        model,
        f"{counts[0]}→{counts[1]}" if counts else "-",
        str(record.finish_reason or "-"),
        short_time(record.stored_at),
        prompt,
        preview(answer),
    ]


@dataclass
class Tally:
    """Answers and the tokens they cost."""

    answers: int = 0
    prompt: int = 0
    completion: int = 0
    total: int = 0
    unreported: int = 0

    def add(self, other: Tally) -> None:
        for name in self.__dataclass_fields__:
            setattr(self, name, getattr(self, name) + getattr(other, name))

    def row(self, label: str) -> list[str]:
        """The table row; tokens are ``-`` when no answer reported them."""
        tokens = [self.prompt, self.completion, self.total]
        known = self.unreported < self.answers
        return [label, str(self.answers), *(str(n) if known else "-" for n in tokens)]


def tally_lines(title: str, by_model: dict[str, Tally]) -> list[str]:
    """The ``nbchat stats`` lines of one notebook (or of all of them)."""
    grand = Tally()
    for tally in by_model.values():
        grand.add(tally)
    lines = [f"{title}: {plural(grand.answers, 'answer')}"]
    if not grand.answers:
        return lines
    rows = [by_model[model].row(model) for model in sorted(by_model)]
    if len(rows) > 1:
        rows.append(grand.row("all models"))
    header = ["MODEL", "ANSWERS", "PROMPT", "COMPLETION", "TOTAL"]
    lines += [f"  {line}" for line in render_table(header, rows, right=frozenset({1, 2, 3, 4}))]
    if grand.unreported:
        lines.append(f"  ({plural(grand.unreported, 'answer')} without token usage)")
    return lines
