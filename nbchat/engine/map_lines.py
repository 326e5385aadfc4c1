"""The lines a ``--map`` run is summed up in: the summary's first line and the cell's error
line naming the failures (items that failed alike named together)."""

from __future__ import annotations

import re

from nbchat._text import clip, one_line, plural
from nbchat.engine.batch import BatchResult
from nbchat.store.batch_record import BatchItem
from nbchat.store.record import Record

__all__ = ["OFFLINE", "failure_line", "summary_line"]

_NAMED_FAILURES = 3  # reasons named in the cell's error line
_REQUEST_ID = re.compile(r" \(request id [^()]*\)")
OFFLINE = "no stored answer, and offline mode is on"


def summary_line(
    title: str,
    total: int,
    stored: list[BatchItem],
    result: BatchResult[Record],
    failures: dict[int, str],
    *,
    waiting: str = "not done",
) -> str:
    """``--map reviews: 200 items · 197 answered (12 replayed) · 3 failed · 8,400 tokens ·
    9.1 s`` (items not answered yet: ``waiting``, e.g. ``3 not done``)."""
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
    parts.append(f"{result.elapsed:.1f} s")
    return " · ".join(parts)


def failure_line(failures: dict[int, str], total: int) -> str:
    """``3 of 200 items failed: item 4: …; items 9, 12: …; run the cell again to retry them``
    (items that failed alike are named together)."""
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
