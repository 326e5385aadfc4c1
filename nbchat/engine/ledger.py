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

    def add(
        self, usage: Mapping[str, Any], cost: Cost, *, answer: bool = True, times: int = 1
    ) -> None:
        """Count one answer, or (``answer=False``) one request of an answer's turn (thinking:
        part of the completion); ``times`` such answers alike."""
        self.answers += int(answer) * times
        counts = TokenCounts.of(usage)
        if counts is not None:
            self.prompt += counts.prompt * times
            self.cached += counts.cached * times
            self.completion += counts.completion * times
        self.thinking += (reasoning_tokens(usage) or 0) * times
        self.cost = self.cost.plus(cost, times)

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
        """One request's answer arrived (or was cut off: usage and cost unknown): paid for,
        whether or not its turn ends in an answer."""
        with self._lock:
            self.spent.setdefault(row, Tally()).add(usage, cost, answer=False)

    def answered(self, row: _Row) -> None:
        """A turn ended in an answer (its requests were counted as they arrived)."""
        with self._lock:
            self.spent.setdefault(row, Tally()).answers += 1

    def save(self, row: _Row, usage: Mapping[str, Any], cost: Cost, *, times: int = 1) -> None:
        """A replayed answer (``times`` alike): what asking again would have cost."""
        with self._lock:
            self.replays += times
            self.saved.setdefault(row, Tally()).add(usage, cost, times=times)

    def total(self, rows: Mapping[_Row, Tally]) -> Tally:
        whole = Tally()
        with self._lock:
            for tally in rows.values():
                whole += tally
        return whole

    def over_budget(self, budget: float | None) -> bool:
        """Whether this session has spent ``budget`` dollars (never, without one)."""
        return budget is not None and self.total(self.spent).cost.usd >= Decimal(str(budget))

    def check_budget(self, budget: float | None) -> None:
        """Refuse to send once this session has spent ``budget`` dollars (stored answers
        still replay; unpriced answers are not counted, which the caller has said)."""
        if budget is None:
            return
        spent = self.total(self.spent).cost
        if spent.usd >= Decimal(str(budget)):
            unpriced = f" (and {spent.unknown} unpriced)" if spent.unknown else ""
            raise BudgetExceeded(
                f"This session has spent {usd(spent.usd)}{unpriced} of its "
                f"{usd(Decimal(str(budget)))} budget: nothing was sent"
            )
