"""The session's spending (`engine.spending`): what replayed answers saved, priced once per
answer alike and never with prices that have changed since."""

from __future__ import annotations

from decimal import Decimal
from types import SimpleNamespace

import nbchat.engine.spending as spending_module
from nbchat.engine.ledger import Ledger
from nbchat.engine.settings import resolve_settings
from nbchat.engine.spending import Spending

from support.nbfactory import make_record

ENVIRON = {"OPENAI_BASE_URL": "https://gateway.example/v1"}


def turn_priced(input_usd: float) -> SimpleNamespace:
    """A turn whose settings price ``peer-small`` at ``input_usd`` per million input tokens."""
    prices = {"peer-small": {"input": input_usd, "output": 0}}
    settings = resolve_settings({"model": "peer-small", "prices": prices}, {}, {}, ENVIRON)
    return SimpleNamespace(settings=settings)


def answer(prompt_tokens: int = 1_000_000):
    return make_record("Hi", "Hello", usage=(prompt_tokens, 0))


def test_a_replay_after_the_prices_changed_is_priced_at_the_new_prices() -> None:
    spending = Spending(Ledger(), lambda message: None)
    assert spending.saved(turn_priced(1), answer()).usd == Decimal(1)
    assert spending.saved(turn_priced(10), answer()).usd == Decimal(10)
    assert spending.ledger.total(spending.ledger.saved).cost.usd == Decimal(11)


def test_answers_alike_are_priced_once_and_counted_each(monkeypatch) -> None:
    calls = []
    priced = spending_module.record_cost
    monkeypatch.setattr(
        spending_module, "record_cost", lambda *a, **k: calls.append(a) or priced(*a, **k)
    )
    spending, turn = Spending(Ledger(), lambda message: None), turn_priced(2)
    costs = [spending.saved(turn, answer()) for _ in range(3)]
    assert [cost.usd for cost in costs] == [Decimal(2)] * 3 and len(calls) == 1
    spending.saved(turn, answer(500_000))
    assert len(calls) == 2
    saved = spending.ledger.total(spending.ledger.saved)
    assert (saved.answers, saved.cost.usd) == (4, Decimal(7))
