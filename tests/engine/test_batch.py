"""The batch engine (`nbchat.engine.batch`): concurrency, shared rate-limit pauses, rpm, failures,
order, Ctrl-C and progress; against plain functions and against the loopback fake server."""

from __future__ import annotations

import _thread
import itertools
import signal
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest

from nbchat.engine.batch import BatchInterrupted, Progress, run_batch
from nbchat.errors import (
    APIConnectionError,
    APIError,
    BadRequestError,
    ConfigError,
    ProtocolError,
    RateLimitError,
)
from nbchat.wire.client import ChatClient
from nbchat.wire.config import ClientConfig

from support.env import TEST_KEY
from support.fake_openai import FakeOpenAI, Fault

pytestmark = pytest.mark.timeout(30)


RETRY_HEADERS = ("retry-after", "retry-after-ms", "x-should-retry")


def body(i: int) -> dict[str, Any]:
    return {"model": "peer-small", "messages": [{"role": "user", "content": f"item {i}"}]}


def text_of(completion: dict[str, Any] | None) -> str:
    assert completion is not None
    return completion["choices"][0]["message"]["content"]


class FakeTime:
    """A clock that only moves when slept on (for retry waits without real waiting)."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.slept = 0.0
        self._lock = threading.Lock()

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        with self._lock:
            self.now += seconds
            self.slept += seconds


class Tracker:
    """A send that records when each call starts and how many run at once."""

    def __init__(self, work: Callable[[Any], Any]) -> None:
        self.work = work
        self.starts: list[tuple[float, Any]] = []
        self.running = self.peak = 0
        self._lock = threading.Lock()

    def __call__(self, item: Any) -> Any:
        with self._lock:
            self.starts.append((time.monotonic(), item))
            self.running += 1
            self.peak = max(self.peak, self.running)
        try:
            return self.work(item)
        finally:
            with self._lock:
                self.running -= 1


class HeaderTap(httpx.HTTPTransport):
    """Keeps each thread's last response headers, so a test's send can attach them to an error
    (what `error_from_response` does not do yet: see the batch module's `_retry_headers`)."""

    def __init__(self) -> None:
        super().__init__()
        self.last = threading.local()

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        response = super().handle_request(request)
        self.last.headers = {k: v for k, v in response.headers.items() if k in RETRY_HEADERS}
        return response


@pytest.fixture
def client(server: FakeOpenAI, monkeypatch: pytest.MonkeyPatch) -> Iterator[ChatClient]:
    """A client of the fake server with its own retries off: the batch retries."""
    monkeypatch.setenv("OPENAI_API_KEY", TEST_KEY)
    with ChatClient(ClientConfig(base_url=server.base_url, max_retries=0)) as chat_client:
        yield chat_client


@pytest.fixture
def tapped(server: FakeOpenAI, monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[[Any], Any]]:
    """A send over a real client whose errors carry the response's retry headers."""
    monkeypatch.setenv("OPENAI_API_KEY", TEST_KEY)
    tap = HeaderTap()
    config = ClientConfig(base_url=server.base_url, max_retries=0)
    with ChatClient(config, transport=tap) as chat_client:

        def send(item: dict[str, Any]) -> dict[str, Any]:
            try:
                return chat_client.chat(item)
            except APIError as exc:
                exc.retry_headers = getattr(tap.last, "headers", {})  # type: ignore[attr-defined]
                raise

        yield send


def no_batch_threads(timeout: float = 2.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not [t for t in threading.enumerate() if t.name.startswith("nbchat-batch-")]:
            return True
        time.sleep(0.01)
    return False


# -- plain functions ---------------------------------------------------------------------------


def test_values_come_back_in_input_order_and_failures_stay_isolated() -> None:
    def send(i: int) -> str:
        time.sleep(0.02 * ((i * 7) % 3))  # later items often finish first
        if i % 5 == 0:
            raise ProtocolError(f"item {i} came back malformed; check the server.")
        return f"v{i}"

    result = run_batch(list(range(20)), send, concurrency=4)
    assert result.values == [None if i % 5 == 0 else f"v{i}" for i in range(20)]
    assert result.errors == {
        i: f"item {i} came back malformed; check the server." for i in (0, 5, 10, 15)
    }
    assert isinstance(result.exceptions[5], ProtocolError)
    assert (result.total, result.failed, result.succeeded, result.ok) == (20, 4, 16, False)
    assert result.requests == 20 and result.retries == 0 and result.pending == ()
    assert no_batch_threads()


def test_other_exceptions_fail_their_item_with_their_type_on_one_line() -> None:
    def send(i: int) -> int:
        if i == 1:
            raise ValueError("bad value\nsecond line of detail")
        if i == 2:
            raise KeyError("x" * 500)
        return i

    result = run_batch([0, 1, 2, 3], send, concurrency=2)
    assert result.values == [0, None, None, 3]
    assert result.errors[1] == "ValueError: bad value"
    assert result.errors[2].startswith("KeyError: 'xxx") and len(result.errors[2]) == 200


def test_no_more_than_concurrency_sends_run_at_once() -> None:
    tracker = Tracker(lambda i: time.sleep(0.02) or i)
    start = time.monotonic()
    result = run_batch(list(range(25)), tracker, concurrency=5)
    elapsed = time.monotonic() - start
    assert result.values == list(range(25))
    assert tracker.peak == 5
    assert 0.1 <= elapsed < 1.0  # five rounds of 20 ms, not 25


def test_retryable_errors_are_retried_with_the_clients_backoff() -> None:
    fake = FakeTime()
    calls: list[int] = []

    def send(i: int) -> str:
        calls.append(i)
        if len(calls) <= 2:
            raise APIConnectionError("Cannot connect to the server.")
        return "ok"

    result = run_batch([7], send, concurrency=1, clock=fake.clock, sleep=fake.sleep)
    assert result.values == ["ok"] and result.requests == 3 and result.retries == 2
    assert 0.375 + 0.75 <= fake.slept <= 0.5 + 1.0  # retry_delay(0) + retry_delay(1)
    assert result.paused == 0  # a connection error pauses only its own item

    calls.clear()
    result = run_batch([7], send, max_retries=1, clock=fake.clock, sleep=fake.sleep)
    assert result.errors == {0: "Cannot connect to the server."} and len(calls) == 2


def test_errors_not_worth_a_retry_fail_at_once() -> None:
    calls: list[int] = []

    def send(i: int) -> None:
        calls.append(i)
        if i == 0:
            raise BadRequestError("The server rejected the request (400).", status_code=400)
        # The client already retried twice: the batch must not retry again.
        raise RateLimitError("Rate limited (429) after 3 attempts.", status_code=429, retries=2)

    result = run_batch([0, 1], send, concurrency=1, max_retries=2)
    assert calls == [0, 1]
    assert result.errors == {
        0: "The server rejected the request (400).",
        1: "Rate limited (429) after 3 attempts.",
    }


def test_a_429_pauses_every_worker_for_the_time_the_server_asks() -> None:
    first = threading.Event()

    def work(i: int) -> int:
        if i == 0 and not first.is_set():
            first.set()
            error = RateLimitError("Rate limited (429).", status_code=429)
            error.retry_headers = {"retry-after-ms": "300"}  # type: ignore[attr-defined]
            raise error
        time.sleep(0.02)
        return i

    tracker = Tracker(work)
    result = run_batch(list(range(12)), tracker, concurrency=4)
    assert result.values == list(range(12)) and result.retries == 1
    assert 0.29 <= result.paused <= 0.35
    limited_at = min(t for t, i in tracker.starts if i == 0)  # item 0's first call: the 429
    # Calls already past the gate may start just after the 429; none starts during the pause.
    during = [t - limited_at for t, _ in tracker.starts if 0.05 < t - limited_at < 0.29]
    assert during == []


def test_replayed_items_cost_no_request_and_no_rpm() -> None:
    stored = {i: f"stored {i}" for i in range(1000) if i != 500}
    sent: list[int] = []

    def send(i: int) -> str:
        sent.append(i)
        return f"fresh {i}"

    start = time.perf_counter()
    result = run_batch(list(range(1000)), send, rpm=1, replay=stored.get)
    elapsed = time.perf_counter() - start
    assert sent == [500] and result.requests == 1
    assert result.values[500] == "fresh 500" and result.values[499] == "stored 499"
    assert len(result.replayed) == 999 and 500 not in result.replayed
    assert elapsed < 1.0  # rpm=1 would make a second request wait a minute


def test_replay_of_a_thousand_items_is_cheap() -> None:
    start = time.perf_counter()
    result = run_batch(list(range(1000)), lambda i: None, replay=lambda i: i)
    per_item = (time.perf_counter() - start) / 1000
    assert result.values == list(range(1000)) and result.requests == 0
    assert per_item < 0.002
    assert no_batch_threads()  # nothing to send: no worker was started


def test_callbacks_other_than_send_run_on_the_calling_thread() -> None:
    seen: dict[str, set[int]] = {"replay": set(), "usage": set(), "progress": set()}

    def note(kind: str) -> None:
        seen[kind].add(threading.get_ident())

    def replay(i: int) -> int | None:
        note("replay")
        return i if i % 2 else None

    def usage(value: int) -> int:
        note("usage")
        return 10

    result = run_batch(
        list(range(10)),
        lambda i: i,
        replay=replay,
        usage=usage,
        on_progress=lambda p: note("progress"),
    )
    assert result.tokens == 50  # usage counts what a request answered, not replays
    assert seen == {kind: {threading.get_ident()} for kind in seen}


def test_progress_is_throttled_and_ends_with_a_final_report() -> None:
    reports: list[tuple[float, Progress]] = []
    start = time.monotonic()
    result = run_batch(
        list(range(30)),
        lambda i: time.sleep(0.02) or i,
        concurrency=2,
        on_progress=lambda p: reports.append((time.monotonic(), p)),
        progress_rate=10,
        usage=lambda v: 3,
    )
    elapsed = time.monotonic() - start
    assert result.ok
    *live, (_, final) = reports
    assert final.finished and final.done == final.total == 30 and final.tokens == 90
    assert final.in_flight == 0 and final.eta == 0 and final.rate > 0
    assert not any(p.finished for _, p in live)
    assert 2 <= len(reports) <= elapsed * 10 + 2
    gaps = [b - a for (a, _), (b, _) in itertools.pairwise(live)]
    assert all(gap >= 0.09 for gap in gaps)
    dones = [p.done for _, p in live]
    assert dones == sorted(dones) and live[0][1].done < 30


def test_ctrl_c_from_send_keeps_what_completed() -> None:
    calls: list[int] = []

    def send(i: int) -> int:
        calls.append(i)
        if i == 3:
            raise KeyboardInterrupt
        return i

    with pytest.raises(BatchInterrupted) as caught:
        run_batch(list(range(10)), send, concurrency=1)
    partial = caught.value.result
    assert isinstance(caught.value, KeyboardInterrupt)
    assert partial.values[:3] == [0, 1, 2] and partial.values[3:] == [None] * 7
    assert partial.pending == tuple(range(3, 10)) and partial.errors == {}
    assert "3 of 10 items done" in str(caught.value)
    assert calls == [0, 1, 2, 3]


def sigint_main_thread() -> None:
    """A real SIGINT, delivered to the main thread as the kernel's interrupt is."""
    main = threading.main_thread().ident
    assert main is not None
    signal.pthread_kill(main, signal.SIGINT)


@pytest.mark.parametrize("interrupt", [_thread.interrupt_main, sigint_main_thread])
def test_ctrl_c_while_waiting_abandons_requests_in_flight(interrupt: Callable[[], None]) -> None:
    release = threading.Event()
    calls: list[int] = []
    lock = threading.Lock()

    def send(i: int) -> int:
        with lock:
            calls.append(i)
        if i >= 4:
            release.wait(10)  # a request that hangs
        return i

    timer = threading.Timer(0.3, interrupt)
    timer.start()
    start = time.monotonic()
    try:
        with pytest.raises(BatchInterrupted) as caught:
            run_batch(list(range(20)), send, concurrency=3)
        waited = time.monotonic() - start
    finally:
        timer.cancel()
        release.set()
    assert 0.3 <= waited < 0.8  # back soon after Ctrl-C, not when the requests end
    partial = caught.value.result
    assert partial.values[:4] == [0, 1, 2, 3] and partial.pending == tuple(range(4, 20))
    assert "3 in flight abandoned" in str(caught.value)
    assert no_batch_threads()  # released, the abandoned workers exit
    assert sorted(calls) == list(range(7))  # and start nothing new


def test_an_error_in_a_callback_propagates_and_stops_the_workers() -> None:
    calls: list[int] = []

    def progress(p: Progress) -> None:
        if p.done >= 2:
            raise RuntimeError("view broke")

    def send(i: int) -> int:
        calls.append(i)
        time.sleep(0.02)
        return i

    with pytest.raises(RuntimeError, match="view broke"):
        run_batch(list(range(50)), send, concurrency=2, on_progress=progress, progress_rate=50)
    assert no_batch_threads()
    count = len(calls)
    time.sleep(0.1)
    assert len(calls) == count < 50


def test_empty_and_invalid_batches() -> None:
    reports: list[Progress] = []
    result = run_batch([], lambda i: i, on_progress=reports.append)
    assert result.values == [] and result.ok
    assert [(p.done, p.total, p.finished) for p in reports] == [(0, 0, True)]
    for options in ({"concurrency": 0}, {"rpm": 0}, {"max_retries": -1}):
        with pytest.raises(ConfigError):
            run_batch([1], lambda i: i, **options)


# -- against the loopback server ---------------------------------------------------------------


def test_latency_is_overlapped_up_to_the_concurrency(
    server: FakeOpenAI, client: ChatClient
) -> None:
    server.latency = 0.05
    start = time.monotonic()
    result = run_batch(
        [body(i) for i in range(16)],
        client.chat,
        concurrency=4,
        usage=lambda c: c["usage"]["total_tokens"],
    )
    elapsed = time.monotonic() - start
    assert [text_of(v) for v in result.values] == [f"Reply #1 to: item {i}" for i in range(16)]
    assert server.peak_in_flight == 4
    assert 0.2 <= elapsed < 0.5  # four rounds of 50 ms
    assert result.tokens == sum(v["usage"]["total_tokens"] for v in result.values if v)


def test_a_failed_request_does_not_stop_the_others(server: FakeOpenAI, client: ChatClient) -> None:
    server.latency = 0.02
    server.script(Fault(), Fault(), Fault(status=400), Fault(status=503))
    result = run_batch([body(i) for i in range(10)], client.chat, concurrency=3, max_retries=0)
    assert result.failed == 2 and result.succeeded == 8
    assert sorted(m.split(" Server said")[0] for m in result.errors.values()) == [
        "The server failed (503). Try again later.",
        "The server rejected the request (400).",
    ]
    assert all(
        text_of(result.values[i]) == f"Reply #1 to: item {i}"
        for i in range(10)
        if i not in result.errors
    )


def test_retry_after_pauses_every_worker_and_every_item_is_answered(
    server: FakeOpenAI, tapped: Callable[[Any], Any]
) -> None:
    server.latency = 0.03
    server.script(Fault(status=429, headers={"retry-after": "1"}))
    result = run_batch([body(i) for i in range(12)], tapped, concurrency=4)
    assert [text_of(v) for v in result.values] == [f"Reply #1 to: item {i}" for i in range(12)]
    assert result.retries == 1 and 0.95 <= result.paused <= 1.1
    arrivals = [r.received for r in server.chat_requests]
    limited = arrivals[0] + 0.03  # the first request got the 429, after the latency
    assert [t for t in arrivals if 0.05 < t - limited < 0.95] == []
    assert len(arrivals) == 13


def test_a_429_without_retry_after_pauses_every_worker_by_the_backoff(
    server: FakeOpenAI, client: ChatClient
) -> None:
    server.latency = 0.03
    server.script(Fault(status=429))
    result = run_batch([body(i) for i in range(8)], client.chat, concurrency=4)
    assert result.ok and result.retries == 1
    assert 0.375 <= result.paused <= 0.5  # retry_delay(0): 0.5 s with a jitter of 0.75-1
    arrivals = [r.received for r in server.chat_requests]
    limited = arrivals[0] + 0.03
    assert [t for t in arrivals if 0.05 < t - limited < 0.37] == []


def test_a_rate_limited_server_still_answers_every_item(
    server: FakeOpenAI, tapped: Callable[[Any], Any]
) -> None:
    server.latency = 0.02
    server.rate_limit = (4, 0.2)
    result = run_batch([body(i) for i in range(16)], tapped, concurrency=4, max_retries=5)
    assert result.ok, result.errors
    assert [text_of(v) for v in result.values] == [f"Reply #1 to: item {i}" for i in range(16)]
    assert result.retries > 0 and result.paused > 0
    assert len(server.chat_requests) == 16 + result.retries


def test_rpm_spaces_the_requests(server: FakeOpenAI, client: ChatClient) -> None:
    server.latency = 0.02
    result = run_batch([body(i) for i in range(10)], client.chat, concurrency=4, rpm=1200)
    assert result.ok
    arrivals = sorted(r.received for r in server.chat_requests)
    gaps = [b - a for a, b in itertools.pairwise(arrivals)]
    assert min(gaps) >= 0.025  # one every 50 ms, give or take the scheduler (unpaced: 0)
    assert arrivals[-1] - arrivals[0] >= 9 * 0.05 * 0.95
