"""Text for the ``nbchat`` command: the ``show`` table and the ``stats`` tallies.

COST is what the stored answers cost when they were asked (prices at their time), NOW what
asking them again would cost today; an answer without a known price is counted apart, never
as $0.
"""

from __future__ import annotations

import textwrap
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from nbchat._text import clip, display_width, one_line, plural, render_table
from nbchat.money.cost import Cost, Total, usd
from nbchat.money.prices import TokenCounts
from nbchat.store.record import Record
from nbchat.wire.usage import reasoning_tokens

__all__ = [
    "Tally",
    "short_time",
    "show_lines",
    "tally_lines",
    "thread_name",
    "token_counts",
]


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


# -- nbchat show -----------------------------------------------------------------------------------

PROMPT_MIN = 32  # the prompt keeps this many columns whenever the width allows
ANSWER_MIN = 16  # an answer column narrower than this is not worth its room
SHORT_NAME = 12  # thread and model names are cut to this when room is short
GAP = "  "
_HEADER = {
    "cell": "CELL",
    "thread": "THREAD",
    "model": "MODEL",
    "tokens": "TOKENS",
    "finish": "FINISH",
    "stored": "STORED (UTC)",
    "prompt": "PROMPT",
    "answer": "ANSWER",
}
_FLEX = ("prompt", "answer")  # they take what the other columns leave


@dataclass
class _Layout:
    """The columns `show_lines` prints, and what it says once above the table instead."""

    width: int
    columns: list[str] = field(default_factory=lambda: list(_HEADER))
    notes: list[str] = field(default_factory=list)
    short_names: bool = False

    def size(self, rows: list[dict[str, str]], column: str) -> int:
        size = max(display_width(row[column]) for row in [_HEADER, *rows])
        return min(size, SHORT_NAME) if self.short_names and column in ("thread", "model") else size

    def fits(self, rows: list[dict[str, str]]) -> bool:
        """Whether the prompt (and the answer, if shown) get their minimum room."""
        fixed = [self.size(rows, column) for column in self.columns if column not in _FLEX]
        room = self.width - sum(fixed) - len(GAP) * (len(self.columns) - 1)
        need = sum(
            min(self.size(rows, column), PROMPT_MIN if column == "prompt" else ANSWER_MIN)
            for column in _FLEX
            if column in self.columns
        )
        return room >= need


_Reduction = Callable[[_Layout, list[dict[str, str]]], None]


def _drop(column: str) -> _Reduction:
    def drop(layout: _Layout, rows: list[dict[str, str]]) -> None:
        if column in layout.columns:
            layout.columns.remove(column)

    return drop


def _hoist(column: str) -> _Reduction:
    """Drop a column whose value is the same in every row, and say that value once above."""

    def hoist(layout: _Layout, rows: list[dict[str, str]]) -> None:
        values = {row[column] for row in rows} - {"-"}  # "-": a system prompt has no model
        if column in layout.columns and len(values) <= 1:
            layout.columns.remove(column)
            layout.notes += [f"{column}: {value}" for value in values]

    return hoist


def _short_names(layout: _Layout, rows: list[dict[str, str]]) -> None:
    layout.short_names = True


# What goes, in order, until the prompt has its room: the time; the finish reason ("stop" says
# nothing; any other reason moves into the answer as "[length] ..."); the model and the thread
# when every row has the same (said once above the table); long names; then whole columns.
_REDUCTIONS: tuple[_Reduction, ...] = (
    _drop("stored"),
    _drop("finish"),
    _hoist("model"),
    _hoist("thread"),
    _short_names,
    _drop("tokens"),
    _drop("model"),
    _drop("thread"),
    _drop("answer"),
)


def _show_row(cell: int, record: Record, width: int) -> dict[str, str]:
    counts = token_counts(record.usage)
    system = record.kind == "system"
    prompt = f"(system) {record.prompt}" if system else record.prompt
    return {
        "cell": str(cell),
        "thread": one_line(record.thread),
        "model": "-" if system else one_line(str(record.model or "-")),
        "tokens": f"{counts[0]}→{counts[1]}" if counts else "-",
        "finish": one_line(str(record.finish_reason or "-")),
        "stored": short_time(record.stored_at),
        "prompt": clip(one_line(prompt), width),  # never wider than the line: cheaper to measure
        "answer": "" if system else clip(one_line(record.answer), width),
    }


def show_lines(turns: Sequence[tuple[int, Record]], width: int) -> list[str]:
    """The ``nbchat show`` table of (cell number, record) turns; no line is wider than ``width``.

    Columns give way (see `_REDUCTIONS`) until the prompt gets ``PROMPT_MIN`` columns; then the
    prompt and the answer share what is left.
    """
    rows = [_show_row(cell, record, width) for cell, record in turns]
    layout = _Layout(width)
    for reduce in _REDUCTIONS:
        if layout.fits(rows):
            break
        reduce(layout, rows)
    table = []
    for row in rows:
        if "finish" not in layout.columns and row["finish"] not in ("stop", "-"):
            row = {**row, "answer": f"[{row['finish']}] {row['answer']}"}
        if layout.short_names:
            row = {**row, **{name: clip(row[name], SHORT_NAME) for name in ("thread", "model")}}
        table.append([row[column] for column in layout.columns])
    header = [_HEADER[column] for column in layout.columns]
    shrink = {
        layout.columns.index(c): PROMPT_MIN if c == "prompt" else 0
        for c in _FLEX
        if c in layout.columns
    }
    lines = render_table(header, table, width=width, right=frozenset({0}), shrink=shrink, gap=GAP)
    return [clip(GAP.join(layout.notes), width), *lines] if layout.notes else lines


# -- nbchat stats ---------------------------------------------------------------------------------


@dataclass
class Tally:
    """Answers, the tokens they took, what they cost when asked and what they would cost now."""

    answers: int = 0
    prompt: int = 0
    completion: int = 0
    total: int = 0
    unreported: int = 0
    thinking: int = 0  # of the completion tokens, those a reasoning model spent thinking
    cached: int = 0  # of the prompt tokens, those the provider served from its cache
    asked: Total = field(default_factory=Total)  # cost at the answers' time
    now: Total = field(default_factory=Total)  # cost of asking again now

    @classmethod
    def of(cls, usage: dict[str, Any], asked: Cost, now: Cost) -> Tally:
        """One answer's tally."""
        counts = token_counts(usage)
        spent = TokenCounts.of(usage)
        return cls(
            1,
            *(counts or (0, 0, 0)),
            unreported=0 if counts else 1,
            thinking=reasoning_tokens(usage) or 0,
            cached=spent.cached if spent else 0,
            asked=Total.of([asked]),
            now=Total.of([now]),
        )

    def add(self, other: Tally) -> None:
        for name in self.__dataclass_fields__:
            setattr(self, name, getattr(self, name) + getattr(other, name))

    def row(self, label: str) -> list[str]:
        """The table row; tokens are ``-`` when no answer reported them, a cost when no
        answer had a price."""
        tokens = [self.prompt, self.completion, self.total]
        known = self.unreported < self.answers
        costs = [_cost_cell(total, self.answers) for total in (self.asked, self.now)]
        return [label, str(self.answers), *(str(n) if known else "-" for n in tokens), *costs]

    def to_json(self) -> dict[str, Any]:
        """For ``--json``: counts, and costs as decimal strings with what they leave out."""
        counts = {name: getattr(self, name) for name in _COUNTS}
        asked, now = (_total_json(total, self.answers) for total in (self.asked, self.now))
        return {**counts, "cost_asked": asked, "cost_now": now}


_COUNTS = ("answers", "prompt", "completion", "total", "unreported", "thinking", "cached")


def _cost_cell(total: Total, answers: int) -> str:
    """A cost column's cell: the sum (``≈`` when part of it is estimated), ``-`` when no
    answer had a price (never $0)."""
    if total.unknown >= answers:
        return "-"
    return ("≈" if total.estimated else "") + usd(total.usd)


def _total_json(total: Total, answers: int) -> dict[str, Any]:
    """Dollars as a decimal string (null when no answer had a price), with how many answers
    were estimated and how many had no price (not in the sum)."""
    priced = total.unknown < answers
    usd_text = str(total.usd) if priced else None
    return {"usd": usd_text, "estimated": total.estimated, "unpriced": total.unknown}


def thread_name(thread: str) -> str:
    """A thread as ``stats`` lists it (``--map`` items and ``nbchat.ask`` stand alone)."""
    return thread or "(standalone)"


def tally_lines(
    title: str, by_model: dict[str, Tally], by_thread: dict[str, Tally], width: int | None = None
) -> list[str]:
    """The ``nbchat stats`` lines of one notebook (or of all of them): a table by model and
    one by thread, each fitting ``width``, then what the sums leave out."""
    grand = Tally()
    for tally in by_model.values():
        grand.add(tally)
    lines = [f"{title}: {plural(grand.answers, 'answer')}"]
    if not grand.answers:
        return lines
    room = None if width is None else width - 2
    for heading, tallies, every in (("MODEL", by_model, "all models"), ("THREAD", by_thread, "")):
        if heading == "THREAD" and len(tallies) < 2:
            continue  # one thread: the model table says it all
        rows = [tallies[name].row(name) for name in sorted(tallies)]
        if len(rows) > 1 and every:
            rows.append(grand.row(every))
        header = [heading, "ANSWERS", "PROMPT", "COMPLETION", "TOTAL", "COST", "NOW"]
        right = frozenset(range(1, 7))
        table = render_table(header, rows, width=room, right=right, shrink={0: 10})
        lines += [f"  {line}" for line in table]
    for note in _notes(grand):
        lines += textwrap.wrap(
            f"({note})", room or 1_000_000, initial_indent="  ", subsequent_indent="   "
        )
    return lines


def _notes(grand: Tally) -> list[str]:
    notes = []
    if grand.cached:
        notes.append(f"{grand.cached / max(grand.prompt, 1):.0%} of the prompt tokens were cached")
    if grand.thinking:
        notes.append(f"{grand.thinking} of the completion tokens were thinking")
    if grand.unreported:
        notes.append(f"{plural(grand.unreported, 'answer')} without token usage")
    unpriced = max(grand.asked.unknown, grand.now.unknown)
    if unpriced:
        notes.append(
            f"{plural(unpriced, 'answer')} without a known price, not counted in COST and NOW: "
            "give prices with --prices"
        )
    if grand.asked.estimated:
        notes.append("≈: priced by the model's name, the endpoint not being one genai-prices knows")
    return notes
