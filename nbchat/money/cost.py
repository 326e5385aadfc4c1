"""A cost in US dollars, how it is known, and sums of costs that keep the unknown ones in sight."""

from __future__ import annotations

import enum
import math
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
        if other.usd is None:
            return Total(self.usd, self.estimated, self.unknown + 1, self.priced)
        estimate = int(other.basis is Basis.ESTIMATE)
        return Total(self.usd + other.usd, self.estimated + estimate, self.unknown, self.priced + 1)

    def __str__(self) -> str:
        """``$0.42``; ``≈$0.42`` when part of it is estimated; ``+ 3 unpriced``; ``price
        unknown`` when nothing in it had a price."""
        if self.unknown and not self.priced:
            return "price unknown"
        text = ("≈" if self.estimated else "") + usd(self.usd)
        return f"{text} + {self.unknown} unpriced" if self.unknown else text


def usd(amount: Decimal) -> str:
    """Dollars as people read them: ``$1.23``, ``$0.046``, ``$0.0012``, ``$0.00000034``: cents
    from a dollar up, else two significant digits."""
    if amount == 0:
        return "$0"
    sign, amount = ("-", -amount) if amount < 0 else ("", amount)
    if amount >= 1:
        return f"{sign}${_rounded(amount, 2):,.2f}"
    digits = max(2, 1 - math.floor(math.log10(amount)))
    text = f"{_rounded(amount, digits):.{digits}f}"
    if digits > 2:  # two significant digits, not a trailing zero: $0.002, not $0.0020
        text = text.rstrip("0").ljust(4, "0")
    return f"{sign}${text}"


def _rounded(amount: Decimal, digits: int) -> Decimal:
    """Half up, as prices are read ($0.225 is $0.23)."""
    return amount.quantize(Decimal(1).scaleb(-digits), rounding=ROUND_HALF_UP)
