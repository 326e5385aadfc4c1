"""The session's spending (`engine.spending`): what replayed answers saved, priced once per
answer alike and never with prices that have changed since."""

from __future__ import annotations

from decimal import Decimal
from types import SimpleNamespace

from hypothesis import given, settings
from hypothesis import strategies as st

import nbchat.engine.spending as spending_module
from nbchat.engine.ledger import Ledger
from nbchat.engine.settings import resolve_settings
from nbchat.engine.spending import Spending
from nbchat.money.cost import Total

from support.nbfactory import make_record

ENVIRON = {"OPENAI_BASE_URL": "https://gateway.example/v1"}
OPENAI = "https://api.openai.com/v1"
TABLE = {
    "peer-small": {"input": 1.5, "output": 3, "cached_input": 0.25},
}


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


def usage_report(prompt: int, completion: int, cached: int | None, thinking: int | None) -> dict:
    """A usage report as providers send it, its details where they say more."""
    usage: dict = {"prompt_tokens": prompt, "completion_tokens": completion}
    if cached is not None:
        usage["prompt_tokens_details"] = {"cached_tokens": cached}
    if thinking is not None:
        usage["completion_tokens_details"] = {"reasoning_tokens": thinking}
    return usage


ANSWERS = st.lists(
    st.tuples(
        st.sampled_from(["peer-small", "gpt-4o-mini", "nobody-prices-it"]),
        st.sampled_from(["default", "other"]),
        st.one_of(
            st.none(),
            st.builds(
                usage_report,
                st.integers(0, 2),
                st.integers(0, 2),
                st.one_of(st.none(), st.integers(0, 2)),
                st.one_of(st.none(), st.integers(0, 2)),
            ),
        ),
        st.booleans(),  # asked twice (a tool loop's two requests)
        st.booleans(),  # answered by a provider batch
    ),
    max_size=12,
)


@settings(max_examples=300)
@given(answers=ANSWERS)
def test_answers_saved_together_are_counted_as_each_saved_alone(answers) -> None:
    """`saved_all` (a --map run's replayed items) counts tokens, thinking, dollars and replays
    exactly as `saved` would, one answer at a time: priced by your table, by genai-prices (at
    its batch rate for a batch's answers) or not at all."""
    records = []
    for model, thread, usage, twice, batch in answers:
        record = make_record("Hi", "Hello", thread=thread, model=model, base_url=OPENAI)
        record.responses[0]["usage"] = usage
        if twice:
            record.responses.append({**record.responses[0], "usage": usage and dict(usage)})
        if batch:
            record.timing["batch_id"] = "batch_1"
        records.append(record)
    prices = resolve_settings({"prices": TABLE}, {}, {}, {"OPENAI_BASE_URL": OPENAI})
    turn = SimpleNamespace(settings=prices)
    alone, together = Spending(Ledger(), print), Spending(Ledger(), print)
    costs = [alone.saved(turn, record) for record in records]
    assert together.saved_all(turn, records) == Total.of(costs)
    assert together.ledger.replays == alone.ledger.replays == len(records)
    assert together.ledger.saved == alone.ledger.saved
