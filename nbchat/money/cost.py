"""A cost in US dollars, how it is known, and sums of costs that keep the unknown ones in sight."""

from __future__ import annotations

import enum
from collections.abc import Iterable
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal

__all__ = ["Basis", "Cost", "Total", "usd"]


class Basis(enum.Enum):
    """Where a cost comes from."""

    TABLE = "your price table"  # %config ChatMagics.prices, or the profile's prices
    PROVIDER = "the provider's price"  # genai-prices, for the provider the base URL names
    ESTIMATE = "an estimate by the model's name"  # genai-prices, endpoint not identified
    LOCAL = "a local server"  # ollama, llama.cpp, vLLM profiles: nothing to pay
    UNKNOWN = "no known price"
    NO_USAGE = "no token usage reported"  # priced or not, nothing to count


@dataclass(frozen=True, kw_only=True)
class Cost:
    """What one answer cost (``usd`` None when nobody knows), and how that is known.

    ``str(cost)`` is the footer's word for it: ``$0.0012``, ``≈$0.0012`` (an estimate),
    ``$0 (local)`` or ``price unknown``."""

    usd: Decimal | None
    basis: Basis
    batch: bool = False  # priced at the provider's batch rate

    @classmethod
    def unknown(cls) -> Cost:
        return cls(usd=None, basis=Basis.UNKNOWN)

    @property
    def known(self) -> bool:
        return self.usd is not None

    @classmethod
    def of(cls, costs: list[Cost]) -> Cost:
        """The cost of several requests (a tool turn's): unknown when any of them is; an
        estimate when any of them is."""
        if len(costs) == 1:
            return costs[0]
        unknown = next((cost for cost in costs if cost.usd is None), None)
        if unknown is not None or not costs:
            return unknown or cls.unknown()
        bases = [cost.basis for cost in costs]
        basis = Basis.ESTIMATE if Basis.ESTIMATE in bases else bases[0]
        total = sum((cost.usd for cost in costs if cost.usd is not None), Decimal(0))
        return cls(usd=total, basis=basis, batch=any(cost.batch for cost in costs))

    def __str__(self) -> str:
        if self.usd is None:
            return "price unknown"
        if self.basis is Basis.LOCAL:
            return "$0 (local)"
        return ("≈" if self.basis is Basis.ESTIMATE else "") + usd(self.usd)


@dataclass(frozen=True)
class Total:
    """A sum of costs: the known amount, how many costs it sums (of which estimated), and how
    many had no price (not in the amount)."""

    usd: Decimal = Decimal(0)
    estimated: int = 0
    unknown: int = 0
    priced: int = 0

    @classmethod
    def of(cls, costs: Iterable[Cost]) -> Total:
        total = cls()
        for cost in costs:
            total = total + cost
        return total

    def __add__(self, other: Cost | Total) -> Total:
        if isinstance(other, Total):
            return Total(
                self.usd + other.usd,
                self.estimated + other.estimated,
                self.unknown + other.unknown,
                self.priced + other.priced,
            )
        return self.plus(other)

    def plus(self, cost: Cost, times: int = 1) -> Total:
        """The sum with ``times`` costs of ``cost`` (answers alike, counted together)."""
        if cost.usd is None:
            return Total(self.usd, self.estimated, self.unknown + times, self.priced)
        estimated = times if cost.basis is Basis.ESTIMATE else 0
        return Total(
            self.usd + cost.usd * times,
            self.estimated + estimated,
            self.unknown,
            self.priced + times,
        )

    def __str__(self) -> str:
        """``$0.42``; ``≈$0.42`` when part of it is estimated; ``+ 3 unpriced``; ``price
        unknown`` when nothing in it had a price."""
        if self.unknown and not self.priced:
            return "price unknown"
        text = ("≈" if self.estimated else "") + usd(self.usd)
        return f"{text} + {self.unknown} unpriced" if self.unknown else text


_HUGE = Decimal("1e15")  # past it (forged usage, a mistyped price) dollars are shown as 1.2e+40
_TINY = Decimal("1e-10")  # below it, "<$0.0000000001": never shown as $0


def usd(amount: Decimal) -> str:
    """Dollars as people read them: ``$1.23``, ``$0.046``, ``$0.0012``, ``$0.00000034``: cents
    from a dollar up, else two significant digits."""
    if amount == 0:
        return "$0"
    sign, amount = ("-", -amount) if amount < 0 else ("", amount)
    if amount >= _HUGE:
        return f"{sign}${amount:.2e}"
    if amount >= 1:
        return f"{sign}${_rounded(amount, 2):,.2f}"
    if amount < _TINY:
        return f"{sign}<${_TINY:f}"
    digits = max(2, 1 - amount.adjusted())
    text = f"{_rounded(amount, digits):.{digits}f}"
    if digits > 2:  # two significant digits, not a trailing zero: $0.002, not $0.0020
        text = text.rstrip("0").ljust(4, "0")
    return f"{sign}${text}"


def _rounded(amount: Decimal, digits: int) -> Decimal:
    """Half up, as prices are read ($0.225 is $0.23)."""
    return amount.quantize(Decimal(1).scaleb(-digits), rounding=ROUND_HALF_UP)
