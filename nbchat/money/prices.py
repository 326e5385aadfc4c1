"""What an answer costs: your price table first, then pydantic's genai-prices.

The order: an endpoint of a local profile (Ollama, llama.cpp, vLLM) costs nothing; a model in
your table (``%config ChatMagics.prices``, or the profile's ``prices``) is priced from it; then
genai-prices prices the model at the provider the base URL names, at the answer's time (so
DeepSeek's off-peak hours and price changes apply), with cached input at the cached rate and a
provider batch at the batch rate; an endpoint it cannot name (a gateway, a proxy) is priced by
the model's name alone, as an estimate; anything else has no known price, never $0.

genai-prices is imported on the first lookup (about 0.1 s, once) and is never asked to update
itself: no network.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from functools import lru_cache
from typing import Any
from urllib.parse import urlsplit

from nbchat._text import clip, one_line
from nbchat.errors import ConfigError
from nbchat.money.cost import Basis, Cost
from nbchat.wire.usage import cached_tokens

__all__ = [
    "PriceBook",
    "TablePrice",
    "TokenCounts",
    "check_price_table",
    "endpoint_key",
    "price_table",
]

PER_MILLION = Decimal(1_000_000)
ANY_MODEL = "*"  # in a profile's prices: every model of that profile
_RATES = ("input", "output", "cached_input")


@dataclass(frozen=True)
class TokenCounts:
    """The counts an answer is priced by (reasoning tokens are part of ``completion``)."""

    prompt: int
    completion: int
    cached: int = 0  # of the prompt, served from the provider's prompt cache

    @classmethod
    def of(cls, usage: Mapping[str, Any]) -> TokenCounts | None:
        """The counts a usage report gives, or None when it gives none."""
        prompt, completion = usage.get("prompt_tokens"), usage.get("completion_tokens")
        if not _is_count(prompt) and not _is_count(completion):
            return None
        prompt = prompt if _is_count(prompt) else 0
        cached = min(cached_tokens(usage) or 0, prompt)
        return cls(prompt, completion if _is_count(completion) else 0, cached)

    @property
    def cached_share(self) -> float | None:
        """The cached part of the prompt (0.83), or None when nothing was cached."""
        return self.cached / self.prompt if self.cached and self.prompt else None


def _is_count(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


@dataclass(frozen=True)
class TablePrice:
    """Your prices for one model, in US dollars per million tokens."""

    input: Decimal
    output: Decimal
    cached_input: Decimal

    def cost(self, counts: TokenCounts) -> Decimal:
        fresh = counts.prompt - counts.cached
        total = fresh * self.input + counts.cached * self.cached_input
        return (total + counts.completion * self.output) / PER_MILLION


def price_table(raw: Any) -> dict[str, TablePrice]:
    """``{"MODEL": {"input": 0.4, "output": 1.6, "cached_input": 0.1}}`` (dollars per million
    tokens; ``cached_input`` defaults to ``input``) as prices; a `ConfigError` names the first
    entry that is wrong."""
    if not isinstance(raw, Mapping):
        raise ConfigError('prices: a dict like {"MODEL": {"input": 0.4, "output": 1.6}}')
    table = {}
    for model, rates in raw.items():
        name = clip(one_line(str(model)), 60)
        if not isinstance(rates, Mapping) or not {"input", "output"} <= set(rates):
            raise ConfigError(f"prices[{name!r}]: give 'input' and 'output' in $ per 1M tokens")
        unknown = sorted(set(map(str, rates)) - set(_RATES))
        if unknown:
            raise ConfigError(f"prices[{name!r}]: unknown rate {clip(unknown[0], 40)!r}")
        values = [_rate(rates.get(rate, rates["input"]), name, rate) for rate in _RATES]
        table[str(model)] = TablePrice(*values)
    return table


def check_price_table(raw: Any) -> None:
    """The `Settings` check of ``prices``: a `ConfigError` when it is not a price table."""
    price_table(raw)


def _rate(value: Any, model: str, rate: str) -> Decimal:
    try:
        if isinstance(value, bool):
            raise InvalidOperation
        amount = Decimal(str(value))
    except (InvalidOperation, ValueError):
        amount = Decimal(-1)
    if not amount.is_finite() or amount < 0:
        raise ConfigError(f"prices[{model!r}][{rate!r}]: a number of dollars >= 0")
    return amount


@dataclass(frozen=True)
class PriceBook:
    """Prices for the answers of one endpoint configuration."""

    table: Mapping[str, TablePrice] = field(default_factory=dict)
    local_urls: frozenset[str] = frozenset()  # endpoints that cost nothing (`endpoint_key`)

    def cost(
        self,
        usage: Mapping[str, Any],
        *,
        models: tuple[str | None, ...],
        base_url: str | None,
        at: datetime | None = None,
        batch: bool = False,
    ) -> Cost:
        """What an answer with this usage cost: ``models`` are the answering model's names,
        the most specific first (as the response named it, then as it was asked for);
        ``at`` its time (None: now)."""
        if base_url is not None and endpoint_key(base_url) in self.local_urls:
            return Cost(usd=Decimal(0), basis=Basis.LOCAL)
        counts = TokenCounts.of(usage)
        if counts is None:
            return Cost(usd=None, basis=Basis.NO_USAGE)
        names = [name for name in models if name]
        listed = next((self.table[name] for name in names if name in self.table), None)
        listed = listed or self.table.get(ANY_MODEL)
        if listed is not None:
            return Cost(usd=listed.cost(counts), basis=Basis.TABLE, batch=batch)
        if not names:
            return Cost.unknown()
        return _library_cost(counts, names, base_url, at, batch)


_LOOPBACK = frozenset({"localhost", "127.0.0.1", "::1"})


@lru_cache(maxsize=256)  # a few endpoints per kernel; replaying 50,000 answers asks 200,000 times
def endpoint_key(url: str) -> str:
    """A base URL as endpoints are compared: scheme, host (every name of this machine alike:
    Ollama documents ``localhost``, nbchat's profile says ``127.0.0.1``), port, path."""
    try:
        parts = urlsplit(url.strip())
        host = (parts.hostname or "").lower()
        port = parts.port or {"http": 80, "https": 443}.get(parts.scheme.lower(), 0)
    except ValueError:
        return url.rstrip("/").lower()
    host = "localhost" if host in _LOOPBACK else host
    return f"{parts.scheme.lower()}://{host}:{port}{parts.path.rstrip('/')}"


def _library_cost(
    counts: TokenCounts, names: list[str], base_url: str | None, at: datetime | None, batch: bool
) -> Cost:
    """genai-prices' price: at the provider the base URL names, else by the model's name.

    Prices change on whole minutes (a date, DeepSeek's off-peak hours), so the time is taken to
    the minute and the price of each distinct answer kept: a 50,000-item batch has a few
    thousand distinct token counts, and one calculation costs ~60 µs."""
    at = datetime.now(UTC) if at is None else at
    at = at.replace(tzinfo=UTC) if at.tzinfo is None else at.astimezone(UTC)  # UTC minutes
    minute = at.replace(second=0, microsecond=0)
    return _library_cost_at(counts, tuple(names), base_url, minute, batch)


@lru_cache(maxsize=8192)
def _library_cost_at(
    counts: TokenCounts, names: tuple[str, ...], base_url: str | None, at: datetime, batch: bool
) -> Cost:
    import genai_prices

    usage = genai_prices.Usage(
        input_tokens=counts.prompt, cache_read_tokens=counts.cached, output_tokens=counts.completion
    )
    context = {"processing": "batch"} if batch else None
    where: dict[str, Any] = {}
    basis = Basis.ESTIMATE  # an endpoint genai-prices does not know: the model's name only
    if base_url and _names_a_provider(base_url):
        where, basis = {"provider_api_url": base_url}, Basis.PROVIDER
    for name in names:
        if not _knows_model(name, where.get("provider_api_url")):
            continue
        try:
            found = genai_prices.calc_price(
                usage, name, genai_request_timestamp=at, price_context=context, **where
            )
        except (LookupError, ValueError, ArithmeticError):
            continue
        return Cost(usd=found.total_price, basis=basis, batch=batch)
    return Cost.unknown()


# genai-prices' data is the copy bundled with it (nbchat never asks it to update itself), so
# what it knows is fixed for the kernel's life: each question below is asked once.


@lru_cache(maxsize=64)
def _names_a_provider(base_url: str) -> bool:
    """Whether genai-prices knows the provider at ``base_url``."""
    from genai_prices.data_snapshot import get_snapshot

    try:
        get_snapshot().find_provider(None, None, base_url)
    except LookupError:
        return False
    return True


@lru_cache(maxsize=256)
def _knows_model(name: str, provider_url: str | None) -> bool:
    """Whether genai-prices has ``name`` (at the provider of ``provider_url``): a model nobody
    prices is looked for once, not at every answer."""
    from genai_prices.data_snapshot import get_snapshot

    try:
        get_snapshot().find_provider_model(name, None, None, provider_url)
    except LookupError:
        return False
    return True
