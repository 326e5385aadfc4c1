"""What the session's requests cost, counted as they arrive.

Every request of a turn is paid for when its answer arrives, whether or not the turn ends in an
answer (a tool loop that runs out of rounds, a misfit for ``--schema``); a stream cut off part
way was paid for too, an amount nobody knows. The budget is checked before each request, so a
tool loop stops between rounds. A replayed answer is counted as saved: what asking again would
cost now.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from nbchat.engine.ledger import Ledger
from nbchat.engine.pricing import price_book, record_cost, response_cost, unpriced_note
from nbchat.engine.settings import Settings
from nbchat.engine.turns import PreparedTurn
from nbchat.money.cost import Basis, Cost, Total
from nbchat.money.prices import PriceBook, TokenCounts
from nbchat.store.record import Record
from nbchat.wire.usage import reasoning_tokens

__all__ = ["Spending"]


class Spending:
    """The session's ledger, fed request by request; a missing price is said once per model."""

    def __init__(self, ledger: Ledger, say_once: Callable[[str], None]) -> None:
        self.ledger = ledger
        self._say_once = say_once
        self._last: tuple[Settings, PriceBook, dict[tuple[Any, ...], Cost]] | None = None

    def before(self, turn: PreparedTurn) -> None:
        """A request is about to be sent: refused when the budget is spent, else counted."""
        self.ledger.check_budget(turn.settings.budget)
        self.ledger.sent()

    def paid(self, turn: PreparedTurn, response: Mapping[str, Any], *, say: bool = True) -> Cost:
        """One request's answer arrived: what it cost (``say=False`` on a worker thread: the
        caller says a missing price)."""
        settings = turn.settings
        cost = response_cost(
            price_book(settings), response, asked=settings.model, base_url=settings.base_url
        )
        usage = response.get("usage")
        model = str(response.get("model") or settings.model or "?")
        counted = usage if isinstance(usage, dict) else {}
        self.ledger.spend((model, turn.request.thread), counted, cost)
        if say:
            self.say_unpriced(turn, cost, model)
        return cost

    def paid_record(self, turn: PreparedTurn, record: Record) -> Cost:
        """An answer that arrived whole, outside a request of this session (a provider's
        batch, at its rate): paid for and answered."""
        cost = self.cost_of(turn, record)
        row = (record.model or "?", record.thread)
        self.ledger.spend(row, record.usage, cost)
        self.ledger.answered(row)
        return cost

    def lost(self, turn: PreparedTurn) -> None:
        """A request was cut off after it was sent: paid for, the amount unknown."""
        model = turn.settings.model or "?"
        self.ledger.spend((model, turn.request.thread), {}, Cost.unknown())

    def answered(self, record: Record) -> None:
        self.ledger.answered((record.model or "?", record.thread))

    def cost_of(self, turn: PreparedTurn, record: Record, *, now: bool = False) -> Cost:
        """What ``record`` cost when asked (``now``: what asking again would cost)."""
        book, kept = self._prices(turn.settings)
        if not now:
            return record_cost(record, book)
        # Kept per answer alike and minute: a replayed 50,000-item batch has a few thousand.
        key = (int(time.time() // 60), *_priced_by(record))
        cost = kept.get(key)
        if cost is None:
            if len(kept) >= _KEPT:
                kept.clear()
            cost = kept[key] = record_cost(record, book, now=True)
        return cost

    def _prices(self, settings: Settings) -> tuple[PriceBook, dict[tuple[Any, ...], Cost]]:
        """The prices of ``settings`` (the same object for the cells of a --map run) and the
        costs found with them. One tuple, read once: a poller's thread may change it."""
        last = self._last
        if last is None or last[0] is not settings:
            last = self._last = (settings, price_book(settings), {})
        return last[1], last[2]

    def saved(self, turn: PreparedTurn, record: Record) -> Cost:
        """A replayed answer: counted as saved, at what asking again would cost now."""
        cost = self.cost_of(turn, record, now=True)
        self.ledger.save((record.model or "?", record.thread), record.usage, cost)
        return cost

    def saved_all(self, turn: PreparedTurn, records: Iterable[Record]) -> Total:
        """Replayed answers of turns prepared alike (``turn``'s settings: the items of a
        ``--map`` run), counted as saved as `saved` counts each: answers alike (their model,
        thread, price and token counts) are priced and counted together."""
        alike: dict[tuple[Any, ...], list[Any]] = {}
        for record in records:
            usage, priced_by = record.usage, _priced_by(record)
            # One request's counts are priced_by's already: only the thinking is added.
            counted = reasoning_tokens(usage) if len(record.responses) == 1 else _counted_by(usage)
            key = (record.model or "?", record.thread, priced_by, counted)
            group = alike.get(key)
            if group is None:
                alike[key] = [record, usage, 1]
            else:
                group[2] += 1
        total = Total()
        for (model, thread, *_), (record, usage, times) in alike.items():
            cost = self.cost_of(turn, record, now=True)
            self.ledger.save((model, thread), usage, cost, times=times)
            total = total.plus(cost, times)
        return total

    def say_unpriced(self, turn: PreparedTurn, cost: Cost, model: str) -> None:
        """Say once per model why a fresh answer has no price, and what to do about it."""
        if not cost.known:
            self._say_once(unpriced_note(model, turn.settings, cost.basis is Basis.NO_USAGE))


_KEPT = 4096  # costs of answers alike kept at once


def _counted_by(usage: Mapping[str, Any]) -> tuple[Any, ...]:
    """What the ledger counts of a usage report (`Tally.add`)."""
    return TokenCounts.of(usage), reasoning_tokens(usage)


def _priced_by(record: Record) -> tuple[Any, ...]:
    """What a record's price now depends on: whether it was a provider batch's, the model and
    endpoint asked, and each request's answering model and token counts."""
    request = record.request
    return (
        record.batch_id is not None,
        request.model if request else None,
        request.base_url if request else None,
        tuple([_response_priced_by(response) for response in record.responses]),
    )


def _response_priced_by(response: Mapping[str, Any]) -> tuple[Any, ...]:
    answered, usage = response.get("model"), response.get("usage")
    return (
        answered if isinstance(answered, str) else None,
        TokenCounts.of(usage) if isinstance(usage, dict) else None,
    )
