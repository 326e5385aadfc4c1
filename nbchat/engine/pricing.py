"""The prices that apply to a cell's settings, and what a stored answer cost.

A record holds what pricing needs: the model (as answered and as asked), the base URL, the
usage and when it was asked. So answers of any nbchat version are priced the same way: what
they cost when they were asked (prices at their time), or what asking again would cost now.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any

from nbchat._text import clip, one_line
from nbchat.engine.profiles import BUILTIN_PROFILES
from nbchat.engine.settings import Settings
from nbchat.money.cost import Cost
from nbchat.money.prices import PriceBook, endpoint_key, price_table
from nbchat.store.record import Record
from nbchat.wire.redaction import mask_url

__all__ = [
    "LOCAL_PROFILES",
    "local_urls",
    "price_book",
    "record_cost",
    "response_cost",
    "unpriced_note",
]

LOCAL_PROFILES = ("ollama", "llamacpp", "vllm")  # servers on your own machine: nothing to pay


@lru_cache(maxsize=64)  # asked for every replayed answer
def local_urls(extra: tuple[str, ...] = ()) -> frozenset[str]:
    """The base URLs of the local profiles (and ``extra`` ones), as prices compare them."""
    urls = [str(BUILTIN_PROFILES[name]["base_url"]) for name in LOCAL_PROFILES]
    return frozenset(endpoint_key(url) for url in (*urls, *extra))


def price_book(settings: Settings) -> PriceBook:
    """Your prices (the cell's profile's over ``ChatMagics.prices``) and the local endpoints:
    the built-in local profiles', and this one when its profile is a local one."""
    own = (settings.base_url,) if settings.profile in LOCAL_PROFILES else ()
    return PriceBook(price_table(settings.prices), local_urls(own))


def record_cost(
    record: Record, book: PriceBook, *, now: bool = False, batch: bool | None = None
) -> Cost:
    """What ``record``'s answer cost when it was asked, or (``now``) what asking again would
    cost now: each request of its turn priced on its own (tiered prices apply per request); an
    answer of a provider's batch at the batch rate (``batch=None``: as it was asked)."""
    batch = record.batch_id is not None if batch is None else batch
    request = record.request
    asked = request.model if request else None
    base_url = request.base_url if request else None
    at = None if now else asked_at(record)
    costs = [
        response_cost(book, response, asked=asked, base_url=base_url, at=at, batch=batch)
        for response in record.responses
    ]
    return Cost.of(costs) if costs else book.cost({}, models=(asked,), base_url=base_url)


def response_cost(
    book: PriceBook,
    response: Mapping[str, Any],
    *,
    asked: str | None,
    base_url: str | None,
    at: datetime | None = None,
    batch: bool = False,
) -> Cost:
    """What one request's answer cost: its usage, the model that answered (else the one
    asked for)."""
    usage = response.get("usage")
    answered = response.get("model")
    return book.cost(
        usage if isinstance(usage, dict) else {},
        models=(answered if isinstance(answered, str) else None, asked),
        base_url=base_url,
        at=at,
        batch=batch,
    )


def asked_at(record: Record) -> datetime | None:
    """When the answer was asked for (its start, else when it was stored), in UTC."""
    for stamp in (record.timing.get("started_at"), record.stored_at):
        if not isinstance(stamp, str):
            continue
        try:
            moment = datetime.fromisoformat(stamp.replace("Z", "+00:00"))
        except ValueError:
            continue
        return moment if moment.tzinfo else moment.replace(tzinfo=UTC)
    return None


def unpriced_note(model: str, settings: Settings, no_usage: bool = False) -> str:
    """Said once per model: why an answer has no price, and how to give it one (a model name
    from a server is shown as text, on one line, clipped)."""
    model = clip(one_line(model), 80)
    where = f"{model} at {mask_url(settings.base_url)}"
    budget = " The budget does not count it." if settings.budget is not None else ""
    if no_usage:
        return (
            f"nbchat: the server reported no token usage for {where}: its cost is unknown.{budget}"
        )
    return (
        f"nbchat: no price known for {where}: its cost is shown as unknown.{budget} Set one "
        f'with %config ChatMagics.prices = {{"{model}": {{"input": ..., "output": ...}}}} '
        "(US dollars per million tokens)."
    )
