"""What a person is told of a ``--map`` run: its summary and, when items failed, the cell's
error line. Data and words only; the front end renders them."""

from __future__ import annotations

import re
from dataclasses import dataclass

from nbchat._text import clip, one_line, plural
from nbchat.engine.batch import BatchResult
from nbchat.money.cost import Total
from nbchat.store.batch_record import BatchItem
from nbchat.store.record import Record

__all__ = ["OFFLINE", "MapSummary", "failure_line", "summary_line"]

_NAMED_FAILURES = 3  # reasons named in the cell's error line
_REQUEST_ID = re.compile(r" \(request id [^()]*\)")
OFFLINE = "no stored answer, and offline mode is on"


@dataclass(frozen=True)
class MapSummary:
    """What a person is shown of a run: its one line, the items and their answers, the
    failures to list (only after Ctrl-C: otherwise the cell's error names them), the items not
    done, and how many answers were replayed."""

    line: str
    name: str
    inputs: list[str]
    answers: list[str | None]
    listed: dict[int, str]
    labels: list[str] | None
    pending: list[int]
    replayed: int


def summary_line(
    title: str,
    total: int,
    stored: list[BatchItem],
    result: BatchResult[Record],
    failures: dict[int, str],
    saved: Total,
    *,
    waiting: str = "not done",
) -> str:
    """``--map reviews: 200 items · 197 answered (12 replayed) · 3 failed · 8,400 tokens ·
    spent $0.12 · 9.1 s`` (items not answered yet: ``waiting``, e.g. ``3 not done``)."""
    replayed = len(result.replayed)
    parts = [
        f"{title}: {plural(total, 'item')}",
        f"{len(stored)} answered ({replayed} replayed)" if replayed else f"{len(stored)} answered",
    ]
    if failures:
        parts.append(f"{len(failures)} failed")
    if result.pending:
        parts.append(f"{len(result.pending)} {waiting}")
    if result.tokens:
        parts.append(f"{result.tokens:,} tokens")
    if result.spent.usd or result.spent.unknown:
        rates = ""
        if result.real_time is not None and result.real_time.usd != result.spent.usd:
            rates = f" at batch rates (real time {result.real_time})"
        parts.append(f"spent {result.spent}{rates}")
    if saved.usd:
        parts.append(f"saved {saved}")
    parts.append(f"{result.elapsed:.1f} s")
    return " · ".join(parts)


def failure_line(failures: dict[int, str], total: int, over_budget: frozenset[int]) -> str:
    """``3 of 200 items failed: item 4: …; items 9, 12: …; run the cell again to retry them``
    (items that failed alike are named together)."""
    if over_budget and set(failures) == over_budget:
        answered = total - len(failures)
        return (
            f"Budget reached: {answered} of {plural(total, 'item')} answered, {len(failures)} "
            f"not sent ({clip(one_line(failures[min(failures)]), 200)})"
        )
    if all(reason == OFFLINE for reason in failures.values()):
        return (
            f"{len(failures)} of {plural(total, 'item')} have no stored answer and offline mode "
            "is on: unset NBCHAT_OFFLINE to ask for them."
        )
    alike: dict[str, list[int]] = {}
    for number, reason in sorted(failures.items()):
        general = _REQUEST_ID.sub("", one_line(reason))  # each request has its own id
        alike.setdefault(clip(general, 300), []).append(number)
    named = []
    for reason, numbers in list(alike.items())[:_NAMED_FAILURES]:
        shown = ", ".join(map(str, numbers[:5])) + (", …" if len(numbers) > 5 else "")
        named.append(f"item{'s' if len(numbers) > 1 else ''} {shown}: {reason}")
    more = "; and other reasons" if len(alike) > _NAMED_FAILURES else ""
    return (
        f"{len(failures)} of {plural(total, 'item')} failed: {'; '.join(named)}{more}; run the "
        "cell again to retry the failed ones."
    )
