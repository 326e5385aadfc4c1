"""What an answer costs (`nbchat.money.prices`): your table, then genai-prices by provider, by
the model's name as an estimate, local servers free, and unknown never $0."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal

import genai_prices
import pytest

from nbchat.errors import ConfigError
from nbchat.money import prices
from nbchat.money.cost import Basis
from nbchat.money.prices import PriceBook, TokenCounts, endpoint_key, price_table

OPENAI = "https://api.openai.com/v1"


@pytest.fixture(autouse=True)
def prices_found_afresh():
    """Each test finds its prices itself, not from what an earlier test kept."""
    for kept in (prices._library_cost_at, prices._knows_model, prices._names_a_provider):
        kept.cache_clear()


LOCAL = "http://127.0.0.1:11434/v1"
WHEN = datetime(2026, 11, 2, 9, 30, tzinfo=UTC)


def usage(prompt: int, completion: int, cached: int | None = None) -> dict:
    report = {"prompt_tokens": prompt, "completion_tokens": completion}
    if cached is not None:
        report["prompt_tokens_details"] = {"cached_tokens": cached}
    return report


# The library's own answer for each (model, provider URL, prompt, cached, completion, time);
# nbchat must agree with it to the last decimal, cached and reasoning tokens included.
AGREED = [
    ("gpt-4.1-mini", OPENAI, 12_345, 0, 678, WHEN),
    ("gpt-4.1-mini-2025-04-14", OPENAI, 12_345, 10_000, 678, WHEN),
    ("gpt-4o", OPENAI, 1, 0, 1, None),
    ("o3-mini", OPENAI, 50_000, 20_000, 9_000, WHEN),
    ("deepseek-chat", "https://api.deepseek.com/v1", 30_000, 25_000, 2_000, WHEN),
    ("deepseek-reasoner", "https://api.deepseek.com", 30_000, 0, 12_000, WHEN),
    ("mistral-large-latest", "https://api.mistral.ai/v1", 4_000, 0, 1_000, WHEN),
    ("google/gemini-2.5-flash", "https://openrouter.ai/api/v1", 8_000, 0, 2_000, WHEN),
]


@pytest.mark.parametrize(("model", "url", "prompt", "cached", "completion", "at"), AGREED)
def test_prices_agree_with_genai_prices(model, url, prompt, cached, completion, at):
    cost = PriceBook().cost(usage(prompt, completion, cached), models=(model,), base_url=url, at=at)
    library = genai_prices.calc_price(
        genai_prices.Usage(input_tokens=prompt, cache_read_tokens=cached, output_tokens=completion),
        model,
        provider_api_url=url,
        genai_request_timestamp=at,
    )
    assert (cost.usd, cost.basis) == (library.total_price, Basis.PROVIDER)


def test_cached_input_is_cheaper_and_the_batch_rate_is_the_batch_rate():
    book = PriceBook()
    whole = book.cost(usage(100_000, 1_000), models=("gpt-4.1-mini",), base_url=OPENAI, at=WHEN)
    cached = book.cost(
        usage(100_000, 1_000, 90_000), models=("gpt-4.1-mini",), base_url=OPENAI, at=WHEN
    )
    batch = book.cost(
        usage(100_000, 1_000), models=("gpt-4.1-mini",), base_url=OPENAI, at=WHEN, batch=True
    )
    assert cached.usd < whole.usd
    assert batch.batch and batch.usd == whole.usd / 2  # OpenAI's Batch API: half price


def test_deepseeks_spelling_of_cached_tokens():
    counts = TokenCounts.of(
        {"prompt_tokens": 1000, "completion_tokens": 5, "prompt_cache_hit_tokens": 600}
    )
    assert counts == TokenCounts(1000, 5, 600)
    assert counts.cached_share == 0.6


@pytest.mark.parametrize(
    ("report", "counts"),
    [
        ({}, None),
        ({"prompt_tokens": "12", "completion_tokens": True}, None),
        ({"prompt_tokens": 10}, TokenCounts(10, 0, 0)),
        ({"prompt_tokens": 10, "completion_tokens": 1, "prompt_cache_hit_tokens": 99}, None),
    ],
)
def test_token_counts_take_only_counts(report, counts):
    found = TokenCounts.of(report)
    if report.get("prompt_cache_hit_tokens") == 99:
        assert found == TokenCounts(10, 1, 10), "never more cached than the prompt"
    else:
        assert found == counts


def test_the_order_local_table_provider_estimate_unknown():
    table = price_table(
        {"gpt-4.1-mini": {"input": 1, "output": 1}, "mine": {"input": 3, "output": 5}}
    )
    book = PriceBook(table, frozenset({endpoint_key(LOCAL)}))
    spent = usage(1_000_000, 1_000_000)
    assert book.cost(spent, models=("gpt-4.1-mini",), base_url=LOCAL + "/").basis is Basis.LOCAL
    listed = book.cost(spent, models=("gpt-4.1-mini",), base_url=OPENAI)
    assert (listed.usd, listed.basis) == (Decimal(2), Basis.TABLE), "your table wins"
    # the answering model's dated name, then the name asked for
    asked = book.cost(spent, models=("mine-2026-01-01", "mine"), base_url="https://x.example/v1")
    assert (asked.usd, asked.basis) == (Decimal(8), Basis.TABLE)
    provider = PriceBook().cost(spent, models=("gpt-4.1-mini",), base_url=OPENAI)
    assert provider.basis is Basis.PROVIDER
    estimate = PriceBook().cost(spent, models=("gpt-4.1-mini",), base_url="https://gw.example/v1")
    assert (estimate.basis, estimate.usd) == (Basis.ESTIMATE, provider.usd)
    unknown = PriceBook().cost(spent, models=("qwen3-max",), base_url="https://dashscope.example")
    assert (unknown.basis, unknown.usd) == (Basis.UNKNOWN, None)


def test_a_model_unknown_at_a_known_provider_is_unknown_not_guessed():
    cost = PriceBook().cost(usage(10, 10), models=("deepseek-chat",), base_url=OPENAI)
    assert cost.basis is Basis.UNKNOWN


def test_localhost_and_127_0_0_1_are_the_same_endpoint():
    local = PriceBook(local_urls=frozenset({endpoint_key("http://127.0.0.1:11434/v1")}))
    for url in ("http://localhost:11434/v1/", "http://[::1]:11434/v1", "HTTP://LOCALHOST:11434/v1"):
        assert local.cost(usage(1, 1), models=("m",), base_url=url).basis is Basis.LOCAL, url
    other = local.cost(usage(1, 1), models=("m",), base_url="http://localhost:8080/v1")
    assert other.basis is not Basis.LOCAL, "another port is another server"


def test_no_usage_is_unknown_unless_local():
    table = price_table({"*": {"input": 1, "output": 1}})
    unreported = PriceBook(table).cost({}, models=("m",), base_url=OPENAI)
    assert (unreported.basis, unreported.usd) == (Basis.NO_USAGE, None), "priced, but not counted"
    local = PriceBook(local_urls=frozenset({endpoint_key(LOCAL)}))
    assert local.cost({}, models=("m",), base_url=LOCAL).basis is Basis.LOCAL


def test_any_model_in_a_table():
    book = PriceBook(price_table({"*": {"input": 2, "output": 4}}))
    cost = book.cost(usage(500_000, 250_000), models=("whatever",), base_url=None)
    assert (cost.usd, cost.basis) == (Decimal(2), Basis.TABLE)


@pytest.mark.parametrize(
    ("table", "words"),
    [
        ([], "prices: a dict like"),
        ({"m": 0.4}, "prices['m']: give 'input' and 'output'"),
        ({"m": {"input": 1, "output": 2, "cache": 1}}, "prices['m']: unknown rate 'cache'"),
        ({"m": {"input": "x", "output": 2}}, "prices['m']['input']: a number of dollars >= 0"),
        ({"m": {"input": True, "output": 2}}, "prices['m']['input']"),
        ({"m": {"input": float("nan"), "output": 2}}, "prices['m']['input']"),
        ({"m": {"input": 1, "output": -2}}, "prices['m']['output']"),
        ({"<img src=x>" * 20: {}}, "prices['<img src=x><img src=x>"),
    ],
)
def test_a_bad_table_is_one_line_naming_the_entry(table, words):
    with pytest.raises(ConfigError) as caught:
        price_table(table)
    assert str(caught.value).startswith(words)
    assert "\n" not in str(caught.value) and len(str(caught.value)) < 200


@pytest.mark.parametrize(
    ("second_before", "second_after"), [("16:29:59", "16:30:00"), ("16:29:00", "16:30:59")]
)
def test_deepseeks_off_peak_starts_on_its_minute(second_before, second_after):
    """Prices are kept per minute: a price that changes at 16:30 UTC is not carried across."""
    day = "2025-06-01T"
    peak, off_peak = (
        PriceBook().cost(
            usage(1_000_000, 1_000_000),
            models=("deepseek-chat",),
            base_url="https://api.deepseek.com",
            at=datetime.fromisoformat(day + clock).replace(tzinfo=UTC),
        )
        for clock in (second_before, second_after)
    )
    assert (peak.usd, off_peak.usd) == (Decimal("1.37"), Decimal("0.685"))


def test_an_answer_like_one_already_priced_is_not_priced_again(monkeypatch):
    """Replaying a 50,000-item batch prices each distinct (usage, model, minute) once."""
    calls = []
    library = genai_prices.calc_price
    monkeypatch.setattr(
        genai_prices, "calc_price", lambda *a, **k: calls.append(a) or library(*a, **k)
    )
    book = PriceBook()
    minute = datetime(2026, 3, 4, 5, 6, tzinfo=UTC)
    costs = {
        book.cost(
            usage(7_919, 7), models=("gpt-4.1-mini",), base_url=OPENAI, at=minute.replace(second=s)
        )
        for s in (1, 30, 59)
    }
    assert len(costs) == 1 and len(calls) == 1
    book.cost(usage(7_919, 8), models=("gpt-4.1-mini",), base_url=OPENAI, at=minute)
    book.cost(
        usage(7_919, 7), models=("gpt-4.1-mini",), base_url=OPENAI, at=minute.replace(minute=7)
    )
    assert len(calls) == 3


def test_a_model_nobody_prices_is_looked_for_once(monkeypatch):
    calls = []
    library = genai_prices.calc_price
    monkeypatch.setattr(
        genai_prices, "calc_price", lambda *a, **k: calls.append(a) or library(*a, **k)
    )
    costs = [
        PriceBook().cost(usage(100 + n, 7), models=("nobodys-model-3",), base_url=OPENAI, at=WHEN)
        for n in range(3)
    ]
    assert [cost.known for cost in costs] == [False] * 3
    assert calls == [], "the library is not asked to price a model it does not have"


def test_a_time_given_in_another_zone_is_priced_at_its_utc_minute():
    """16:35:40 at +00:05:30 is 16:30:10 UTC: DeepSeek's off-peak price."""
    zone = timezone(timedelta(minutes=5, seconds=30))
    at = datetime(2025, 6, 1, 16, 35, 40, tzinfo=zone)
    cost = PriceBook().cost(
        usage(1_000_000, 1_000_000),
        models=("deepseek-chat",),
        base_url="https://api.deepseek.com",
        at=at,
    )
    assert cost.usd == Decimal("0.685")
