"""The worker side of a batch: threads that send items, with retries, behind one shared pause.

A worker (`run_worker`) takes ``(index, item)`` from `SharedState.work` until it gets None, and
puts ``(index, kind, payload)`` on `SharedState.results`: ``"ok"`` with the value, ``"failed"``
with the exception (not worth a retry, or out of retries), ``"stopped"`` with None (the batch
stopped first) or ``"abort"`` with the ``BaseException`` that ``send`` raised (Ctrl-C or worse:
every worker is stopped and the calling thread raises it).

A 429, or any answer carrying a Retry-After, closes the `Gate` that every worker waits behind,
so one worker's rate limit pauses them all; an ``rpm`` cap spaces requests evenly. Waits are
sleeps in short slices, so a worker notices within ``_SLICE`` seconds that the batch stopped.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Mapping
from typing import Any

from nbchat.errors import APIConnectionError, APIError
from nbchat.wire.retry import retry_delay, should_retry_status

__all__ = ["Gate", "SharedState", "run_worker"]

_SLICE = 0.05  # longest sleep between checks of the stop flag: how soon a worker stops


class Gate:
    """The shared pause: after a 429 or a Retry-After, no worker sends until it ends."""

    def __init__(self, clock: Callable[[], float]) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self.until = 0.0
        self.paused = 0.0  # total length of the pauses (overlaps counted once)

    def pause(self, seconds: float) -> None:
        """Close the gate for ``seconds`` from now, unless it is already closed for longer."""
        now = self._clock()
        with self._lock:
            end = now + seconds
            if end > self.until:
                self.paused += end - max(now, self.until)
                self.until = end

    def remaining(self) -> float:
        """Seconds until the gate opens (0 when it is open)."""
        return max(0.0, self.until - self._clock())


class _Pacer:
    """Spaces requests evenly to stay under ``rpm``; the first goes at once."""

    def __init__(self, rpm: float, clock: Callable[[], float]) -> None:
        self._interval = 60.0 / rpm
        self._clock = clock
        self._lock = threading.Lock()
        self._next = float("-inf")

    def reserve(self) -> float:
        """The time at which the caller may send; the slot is taken."""
        with self._lock:
            slot = max(self._clock(), self._next)
            self._next = slot + self._interval
            return slot


class SharedState:
    """What the workers share: time, the gate, the pacer, counters, the stop flag, queues."""

    def __init__(
        self, clock: Callable[[], float], sleep: Callable[[float], None], rpm: float | None
    ) -> None:
        self.clock = clock
        self._sleep = sleep
        self.stop = threading.Event()
        self.gate = Gate(clock)
        self.pacer = _Pacer(rpm, clock) if rpm else None
        self.work: queue.SimpleQueue[tuple[int, Any] | None] = queue.SimpleQueue()
        self.results: queue.SimpleQueue[tuple[int, str, Any]] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self.in_flight = self.requests = self.retries = 0
        self.busy = 0  # workers between taking an item and handing back its result

    def wait_until(self, deadline: float) -> bool:
        """Sleep until ``deadline``, in short slices; False if the batch stopped first."""
        while not self.stop.is_set():
            remaining = deadline - self.clock()
            if remaining <= 0:
                return True
            self._sleep(min(remaining, _SLICE))
        return False

    def wait_turn(self) -> bool:
        """Wait out the pause (which may grow meanwhile), then for an rpm slot; False if the
        batch stopped. A pause that began during the wait for the slot is waited out too."""
        while self.wait_until(self.gate.until):
            if self.gate.remaining() > 0:
                continue
            if self.pacer is None:
                return True
            if not self.wait_until(self.pacer.reserve()):
                return False
            if self.gate.remaining() == 0:
                return True
        return False

    def begin(self) -> bool:
        """Count a request about to be sent; False once stopped (then none may start)."""
        with self._lock:
            if self.stop.is_set():
                return False
            self.in_flight += 1
            self.requests += 1
            return True

    def end(self, retrying: bool) -> None:
        """Count a request that finished, and whether it will be retried."""
        with self._lock:
            self.in_flight -= 1
            self.retries += retrying

    def working(self, change: int) -> None:
        with self._lock:
            self.busy += change

    def halt(self) -> None:
        """Stop: after this returns, no call to send begins."""
        with self._lock:
            self.stop.set()


def _retry_headers(exc: Exception) -> Mapping[str, str]:
    """The retry headers an error carries (``retry-after``, ``x-should-retry``), if any."""
    headers = getattr(exc, "retry_headers", None)
    return headers if isinstance(headers, Mapping) else {}


def _retry_plan(exc: Exception, attempt: int, max_retries: int) -> tuple[float, bool] | None:
    """(delay, shared) when the failed ``attempt`` (from 0) is worth another, else None.

    The client's policy: connection errors, timeouts, 408/409/429/5xx. ``shared`` means every
    worker pauses: the server said it is rate limiting (429) or asked for a wait.
    """
    if attempt >= max_retries:
        return None
    headers = _retry_headers(exc)
    if isinstance(exc, APIError):
        if not should_retry_status(exc.status_code, headers):
            return None
        asked = "retry-after" in headers or "retry-after-ms" in headers
        return retry_delay(attempt, headers), exc.status_code == 429 or asked
    if isinstance(exc, APIConnectionError):
        return retry_delay(attempt), False
    return None


def _send_with_retries(
    shared: SharedState, send: Callable[[Any], Any], item: Any, max_retries: int
) -> tuple[str, Any]:
    """Send one item with retries: ("ok", value), ("failed", exc) or ("stopped", None)."""
    attempts = 0
    while shared.wait_turn() and shared.begin():
        plan = None
        try:
            return "ok", send(item)
        except KeyboardInterrupt:  # StreamInterrupted is an NbchatError too: still a Ctrl-C
            raise
        except Exception as exc:
            # An error the client already retried says so: those attempts count here too.
            attempts += 1 + (exc.retries if isinstance(exc, APIError) else 0)
            plan = _retry_plan(exc, attempts - 1, max_retries)
            if plan is None:
                return "failed", exc
        finally:
            shared.end(retrying=plan is not None)
        delay, everyone = plan  # type: ignore[misc]  # None returned above
        if everyone:
            shared.gate.pause(delay)
        elif not shared.wait_until(shared.clock() + delay):
            break
    return "stopped", None


def run_worker(shared: SharedState, send: Callable[[Any], Any], max_retries: int) -> None:
    """A worker thread: answer queued items until a None arrives."""
    while (task := shared.work.get()) is not None:
        index, item = task
        if shared.stop.is_set():
            continue
        shared.working(+1)
        try:
            kind, payload = _send_with_retries(shared, send, item, max_retries)
        except BaseException as exc:  # Ctrl-C from send, or worse: stop now, the caller raises
            shared.halt()
            kind, payload = "abort", exc
        shared.results.put((index, kind, payload))
        shared.working(-1)
