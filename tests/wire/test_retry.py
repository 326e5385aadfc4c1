"""The retry policy: which statuses, and how long to wait."""

from __future__ import annotations

import email.utils
import random
import time

import httpx
import pytest

from nbchat.wire.retry import INITIAL_DELAY, MAX_DELAY, retry_delay, should_retry_status


def backoff(attempt: int, seed: int) -> float:
    """The documented fallback, computed independently of the implementation."""
    jitter = 1 - 0.25 * random.Random(seed).random()
    return min(0.5 * 2**attempt, 8) * jitter


def test_constants():
    assert (INITIAL_DELAY, MAX_DELAY) == (0.5, 8.0)


@pytest.mark.parametrize("attempt", range(7))
def test_backoff_without_headers(attempt):
    assert retry_delay(attempt, rng=random.Random(3)) == pytest.approx(backoff(attempt, 3))
    assert retry_delay(attempt, {}, rng=random.Random(3)) == pytest.approx(backoff(attempt, 3))


def test_backoff_is_bounded_and_jittered():
    rng = random.Random(0)
    for attempt in range(10):
        base = min(0.5 * 2**attempt, 8)
        delays = {retry_delay(attempt, rng=rng) for _ in range(50)}
        assert all(0.75 * base <= d <= base for d in delays)
        assert len(delays) > 1


def test_retry_after_ms_wins():
    headers = {"retry-after-ms": "1500", "retry-after": "9"}
    assert retry_delay(0, headers) == 1.5
    assert retry_delay(5, httpx.Headers({"Retry-After-Ms": "250"})) == 0.25


def test_retry_after_seconds():
    assert retry_delay(0, {"retry-after": "3"}) == 3.0
    assert retry_delay(4, {"retry-after": "0.5"}) == 0.5
    assert retry_delay(0, httpx.Headers({"Retry-After": "60"})) == 60.0


def test_retry_after_http_date():
    when = email.utils.formatdate(time.time() + 30, usegmt=True)
    assert retry_delay(0, {"retry-after": when}) == pytest.approx(30, abs=2)


@pytest.mark.parametrize(
    "headers",
    [
        {"retry-after": "0"},
        {"retry-after": "-5"},
        {"retry-after": "61"},
        {"retry-after": "3600"},
        {"retry-after-ms": "0"},
        {"retry-after-ms": "60001"},
        {"retry-after": "nan"},
        {"retry-after": "soon"},
        {"retry-after-ms": "fast"},
        {"retry-after": email.utils.formatdate(time.time() - 30, usegmt=True)},
        {"retry-after": email.utils.formatdate(time.time() + 3600, usegmt=True)},
        {"x-other": "1"},
    ],
    ids=lambda h: "/".join(f"{k}={v}" for k, v in h.items()),
)
def test_out_of_range_or_bad_values_fall_back_to_backoff(headers):
    assert retry_delay(2, headers, rng=random.Random(7)) == pytest.approx(backoff(2, 7))


def test_bad_retry_after_ms_falls_through_to_retry_after():
    assert retry_delay(0, {"retry-after-ms": "fast", "retry-after": "2"}) == 2.0


@pytest.mark.parametrize("status", [408, 409, 429, 500, 502, 503, 504, 529])
def test_retryable_statuses(status):
    assert should_retry_status(status, {})


@pytest.mark.parametrize("status", [400, 401, 403, 404, 413, 422])
def test_non_retryable_statuses(status):
    assert not should_retry_status(status, {})


def test_x_should_retry_overrides():
    assert should_retry_status(400, {"x-should-retry": "true"})
    assert not should_retry_status(503, {"x-should-retry": "false"})
    assert should_retry_status(503, {"x-should-retry": "maybe"})
    assert not should_retry_status(404, httpx.Headers({"X-Should-Retry": "no"}))


def test_retry_after_http_date_without_zone_is_gmt(monkeypatch):
    # Read as local time, this date would be hours off on a machine far from GMT.
    monkeypatch.setenv("TZ", "Pacific/Kiritimati")  # UTC+14: an hour-scale error shows
    time.tzset()
    try:
        when = email.utils.formatdate(time.time() + 30, usegmt=True).removesuffix(" GMT")
        assert retry_delay(0, {"retry-after": when}) == pytest.approx(30, abs=2)
    finally:
        monkeypatch.undo()
        time.tzset()


@pytest.mark.parametrize("value", ["Wed, 21 Oct 99999 07:28:00 GMT", "1e400", "-inf", "nan"])
def test_absurd_retry_after_values_fall_back(value):
    assert retry_delay(1, {"retry-after": value}, rng=random.Random(1)) == pytest.approx(
        backoff(1, 1)
    )
