"""This kernel session's account: tokens and dollars spent on answers fetched and saved by
answers replayed, by model and thread, and the budget that stops sending."""

from __future__ import annotations

import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from nbchat.errors import BudgetExceeded
from nbchat.money.cost import Cost, Total, usd
from nbchat.money.prices import TokenCounts
from nbchat.wire.usage import reasoning_tokens

__all__ = ["Ledger", "Tally"]


@dataclass
class Tally:
    """Answers, their tokens and their cost."""

    answers: int = 0
    prompt: int = 0
    cached: int = 0
    completion: int = 0
    thinking: int = 0
    cost: Total = field(default_factory=Total)

    def add(self, usage: Mapping[str, Any], cost: Cost) -> None:
        """Count one answer (thinking: part of the completion)."""
        self.answers += 1
        counts = TokenCounts.of(usage)
        if counts is not None:
            self.prompt += counts.prompt
            self.cached += counts.cached
            self.completion += counts.completion
        self.thinking += reasoning_tokens(usage) or 0
        self.cost = self.cost + cost

    def __iadd__(self, other: Tally) -> Tally:
        self.answers += other.answers
        self.prompt += other.prompt
        self.cached += other.cached
        self.completion += other.completion
        self.thinking += other.thinking
        self.cost = self.cost + other.cost
        return self


_Row = tuple[str, str]  # (model, thread)


@dataclass
class Ledger:
    """Requests sent, answers replayed, and what they cost and saved, this session. Safe to
    count into from `--map`'s worker threads."""

    requests: int = 0
    replays: int = 0
    spent: dict[_Row, Tally] = field(default_factory=dict)
    saved: dict[_Row, Tally] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def sent(self) -> None:
        """One request went out."""
        with self._lock:
            self.requests += 1

    def spend(self, row: _Row, usage: Mapping[str, Any], cost: Cost) -> None:
        """A fresh answer (or one asked for and refused, which was paid for all the same)."""
        with self._lock:
            self.spent.setdefault(row, Tally()).add(usage, cost)

    def save(self, row: _Row, usage: Mapping[str, Any], cost: Cost) -> None:
        """A replayed answer: what asking again would have cost."""
        with self._lock:
            self.replays += 1
            self.saved.setdefault(row, Tally()).add(usage, cost)

    def total(self, rows: Mapping[_Row, Tally]) -> Tally:
        whole = Tally()
        with self._lock:
            for tally in rows.values():
                whole += tally
        return whole

    def check_budget(self, budget: float | None) -> None:
        """Refuse to send once this session has spent ``budget`` dollars (stored answers
        still replay; unpriced answers are not counted, which the caller has said)."""
        if budget is None:
            return
        spent = self.total(self.spent).cost
        if spent.usd >= Decimal(str(budget)):
            raise BudgetExceeded(
                f"This session has spent {spent} of its {usd(Decimal(str(budget)))} budget: "
                "nothing was sent"
            )
