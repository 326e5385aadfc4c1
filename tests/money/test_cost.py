"""Costs as people read them (`nbchat.money.cost`): dollars, estimates, local, unknown, sums."""

from __future__ import annotations

from decimal import Decimal

import pytest

from nbchat.money.cost import Basis, Cost, Total, usd


@pytest.mark.parametrize(
    ("amount", "shown"),
    [
        ("0", "$0"),
        ("1234.5", "$1,234.50"),
        ("1", "$1.00"),
        ("0.5", "$0.50"),
        ("0.225", "$0.23"),  # half up, as prices are read
        ("0.046", "$0.046"),
        ("0.0020", "$0.002"),  # two significant digits, no trailing zero
        ("0.00123", "$0.0012"),
        ("0.000000341", "$0.00000034"),  # never in exponent notation
        ("-0.5", "-$0.50"),
    ],
)
def test_usd(amount, shown):
    assert usd(Decimal(amount)) == shown


def test_a_cost_says_how_it_is_known():
    assert str(Cost(usd=Decimal("0.0012"), basis=Basis.PROVIDER)) == "$0.0012"
    assert str(Cost(usd=Decimal("0.0012"), basis=Basis.TABLE)) == "$0.0012"
    assert str(Cost(usd=Decimal("0.0012"), basis=Basis.ESTIMATE)) == "≈$0.0012"
    assert str(Cost(usd=Decimal(0), basis=Basis.LOCAL)) == "$0 (local)"
    unknown = Cost.unknown()
    assert (str(unknown), unknown.known, unknown.usd) == ("price unknown", False, None)


def test_a_total_keeps_the_unknown_and_the_estimated_in_sight():
    costs = [
        Cost(usd=Decimal("0.25"), basis=Basis.PROVIDER),
        Cost(usd=Decimal("0.10"), basis=Basis.ESTIMATE),
        Cost.unknown(),
        Cost.unknown(),
    ]
    total = Total.of(costs)
    assert (total.usd, total.estimated, total.unknown, total.priced) == (Decimal("0.35"), 1, 2, 2)
    assert str(total) == "≈$0.35 + 2 unpriced"
    assert str(Total.of(costs[:1])) == "$0.25"
    assert str(Total.of([Cost.unknown()])) == "price unknown", "never $0"
    assert str(Total()) == "$0"
    assert total + total == Total(Decimal("0.70"), 2, 4, 4)
