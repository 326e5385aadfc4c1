"""When to retry a request and how long to wait: the openai SDK's policy.

Connection errors, timeouts and statuses 408, 409, 429 and >= 500 are retried, only before the
first byte of an answer is accepted. The server's ``retry-after-ms`` / ``retry-after`` is honoured
when it asks for more than 0 and at most 60 s; otherwise the wait is ``min(0.5 * 2**n, 8)`` s
times a jitter of 0.75-1.
"""

from __future__ import annotations

import datetime
import email.utils
import random
import time
from collections.abc import Mapping

__all__ = ["INITIAL_DELAY", "MAX_DELAY", "retry_delay", "should_retry_status"]

INITIAL_DELAY = 0.5
MAX_DELAY = 8.0
_MAX_SERVER_DELAY = 60.0
_RETRY_STATUSES = frozenset({408, 409, 429})


def should_retry_status(status: int, headers: Mapping[str, str]) -> bool:
    """Whether a response with this status (and headers) is worth another attempt."""
    hint = headers.get("x-should-retry")
    if hint == "true":
        return True
    if hint == "false":
        return False
    return status in _RETRY_STATUSES or status >= 500


def _server_delay(headers: Mapping[str, str]) -> float | None:
    """The wait the server asked for, in seconds, if it asked for one."""
    millis = headers.get("retry-after-ms")
    if millis:
        try:
            return float(millis) / 1000
        except ValueError:
            pass
    value = headers.get("retry-after")
    if not value:
        return None
    try:
        return float(value)
    except ValueError:
        pass
    when = email.utils.parsedate_to_datetime(value)
    if when.tzinfo is None:  # an HTTP date is GMT even when it does not say so
        when = when.replace(tzinfo=datetime.UTC)
    return when.timestamp() - time.time()


def retry_delay(
    attempt: int,
    headers: Mapping[str, str] | None = None,
    *,
    rng: random.Random | None = None,
) -> float:
    """Seconds to wait before retry number ``attempt + 1`` (``attempt`` counts from 0)."""
    if headers:
        try:
            asked = _server_delay(headers)
        except (TypeError, ValueError, OverflowError):
            asked = None
        if asked is not None and 0 < asked <= _MAX_SERVER_DELAY:
            return asked
    base = min(INITIAL_DELAY * 2**attempt, MAX_DELAY)
    jitter = 1 - 0.25 * (rng or random).random()
    return base * jitter
