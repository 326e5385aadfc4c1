"""The prices that apply to a cell's settings, and what a stored answer cost.

A record holds what pricing needs: the model (as answered and as asked), the base URL, the
usage and when it was asked. So answers of any nbchat version are priced the same way: what
they cost when they were asked (prices at their time), or what asking again would cost now.
"""

from __future__ import annotations

from datetime import datetime, timezone

from nbchat.engine.settings import BUILTIN_PROFILES, Settings
from nbchat.money.cost import Cost
from nbchat.money.prices import PriceBook, price_table
from nbchat.store.record import Record
from nbchat.wire.redaction import mask_url

__all__ = ["LOCAL_PROFILES", "local_urls", "price_book", "record_cost", "unpriced_note"]

LOCAL_PROFILES = ("ollama", "llamacpp", "vllm")  # servers on your own machine: nothing to pay


def local_urls(extra: tuple[str, ...] = ()) -> frozenset[str]:
    """The base URLs of the local profiles (and ``extra`` ones), as prices compare them."""
    urls = [str(BUILTIN_PROFILES[name]["base_url"]) for name in LOCAL_PROFILES]
    return frozenset(url.rstrip("/").lower() for url in (*urls, *extra))


def price_book(settings: Settings) -> PriceBook:
    """Your prices (the cell's profile's over ``ChatMagics.prices``) and the local endpoints:
    the built-in local profiles', and this one when its profile is a local one."""
    own = (settings.base_url,) if settings.profile in LOCAL_PROFILES else ()
    return PriceBook(price_table(settings.prices), local_urls(own))


def record_cost(record: Record, book: PriceBook, *, now: bool = False, batch: bool = False) -> Cost:
    """What ``record``'s answer cost when it was asked, or (``now``) what asking again would
    cost now."""
    request = record.request
    models = (record.last_response.get("model"), request.model if request else None)
    return book.cost(
        record.usage,
        models=models,
        base_url=request.base_url if request else None,
        at=None if now else asked_at(record),
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
        return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)
    return None


def unpriced_note(record: Record, settings: Settings) -> str:
    """Said once per model: why an answer has no price, and how to give it one."""
    model = record.model or settings.model or "?"
    budget = " The budget does not count it." if settings.budget is not None else ""
    return (
        f"nbchat: no price known for {model} at {mask_url(settings.base_url)}: its cost is "
        f"shown as unknown.{budget} Set one with %config ChatMagics.prices = "
        f'{{"{model}": {{"input": ..., "output": ...}}}} (US dollars per million tokens).'
    )
