"""Many independent requests at once: a thread pool that shares rate-limit pauses.

    result = run_batch(bodies, client.chat, concurrency=8, rpm=500, max_retries=2)
    result.values     # in input order; None where an item failed
    result.errors     # {index: one-line reason}

Threads, not asyncio: the kernel already runs an event loop, and ``httpx.Client`` is
thread-safe. ``send`` runs on worker threads; every other callback (``replay``, ``usage``,
``cost``, ``on_progress``) runs on the calling thread, so it may touch widgets and the cache.

Retries happen here, not in the client: give ``send`` a client with ``max_retries=0`` and pass
the client's ``max_retries`` to `run_batch`. A client sleeping out a 429 inside one worker would
let the other workers keep hitting the limit; here a 429 (or any answer carrying a Retry-After)
closes a gate that every worker waits behind. An error that says it was already retried
(``APIError.retries``) has those attempts counted, so nothing is retried twice over. The
workers, the gate and the retry policy are in `nbchat.engine.pool`; this module is the calling
thread's side: it hands out items, collects results and reports progress.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from nbchat.engine.pool import SharedState, run_worker
from nbchat.errors import BatchInterrupted, ConfigError, NbchatError
from nbchat.money.cost import Cost, Total

__all__ = ["BatchInterrupted", "BatchResult", "Progress", "run_batch"]

T = TypeVar("T")
Item = TypeVar("Item")

_POLL = 0.1  # longest wait of the calling thread: a simulated Ctrl-C is seen this soon
_HEARTBEAT = 1.0  # progress is re-sent this often even when no count changed (clock, ETA)
_MESSAGE_LIMIT = 200


@dataclass(frozen=True)
class Progress:
    """A snapshot for a progress view. ``done`` counts replayed and failed items too."""

    total: int
    done: int
    replayed: int
    failed: int
    in_flight: int
    requests: int  # calls to send, retries included
    retries: int
    tokens: int  # reported by ``usage`` for the items answered by a request
    elapsed: float
    rate: float  # items answered by a request, per second
    eta: float | None  # seconds left at that rate; None before the first answer
    paused: float  # seconds the shared rate-limit pause still lasts
    finished: bool = False
    asked: int = 0  # items answered by a request
    spent: Total = field(default_factory=Total)  # their cost, reported by ``cost``

    def projected(self) -> Total | None:
        """What the items not done yet will cost at the average of the priced answers so far
        (None before the first)."""
        left, priced = self.total - self.done, self.spent.priced
        if not left or not priced or self.spent.usd == 0:
            return None
        return Total(self.spent.usd / priced * left, self.spent.estimated, 0, left)


@dataclass(frozen=True)
class BatchResult(Generic[T]):
    """What a batch produced, in input order."""

    values: list[T | None]  # None for a failed or pending item
    errors: dict[int, str]  # index -> one-line reason
    exceptions: dict[int, Exception]  # index -> the exception behind that reason
    replayed: frozenset[int]  # answered by ``replay``, without a request
    pending: tuple[int, ...]  # never finished: the batch was interrupted
    requests: int
    retries: int
    tokens: int
    elapsed: float
    paused: float  # seconds every worker spent behind the shared rate-limit pause
    spent: Total = field(default_factory=Total)  # the cost of the items answered by a request
    real_time: Total | None = None  # a provider's batch: what real time would have cost

    @property
    def total(self) -> int:
        return len(self.values)

    @property
    def failed(self) -> int:
        return len(self.errors)

    @property
    def succeeded(self) -> int:
        return self.total - self.failed - len(self.pending)

    @property
    def ok(self) -> bool:
        return not self.errors and not self.pending


def _interrupted(result: BatchResult[Any], abandoned: int) -> BatchInterrupted:
    done = result.total - len(result.pending)
    return BatchInterrupted(
        f"Batch interrupted: {done} of {result.total} items done "
        f"({abandoned} in flight abandoned); the completed ones are kept.",
        result=result,
    )


# -- the calling thread ------------------------------------------------------------------------


def _one_line(exc: Exception) -> str:
    """An error as one short line (nbchat messages already are; others get their type)."""
    text = str(exc) if isinstance(exc, NbchatError) else f"{type(exc).__name__}: {exc}"
    line = text.strip().splitlines()[0] if text.strip() else type(exc).__name__
    return line if len(line) <= _MESSAGE_LIMIT else line[: _MESSAGE_LIMIT - 1] + "…"


class _Run(Generic[T]):
    """The calling thread's side: hands out items, collects results, reports progress."""

    def __init__(
        self,
        total: int,
        shared: SharedState,
        concurrency: int,
        usage: Callable[[T], int | None] | None,
        cost: Callable[[T], Cost] | None = None,
        stop_on: tuple[type[Exception], ...] = (),
    ) -> None:
        self.shared = shared
        self.stop_on = stop_on
        self.stopped = False  # an item failed with one of ``stop_on``: nothing more is sent
        self.concurrency = concurrency
        self.usage = usage
        self.cost = cost
        self.spent = Total()
        self.values: list[T | None] = [None] * total
        self.exceptions: dict[int, Exception] = {}
        self.replayed: set[int] = set()
        self.pending: set[int] = set(range(total))
        self.workers: list[threading.Thread] = []
        self.tokens = self.answered = 0
        self.abort: BaseException | None = None
        self.start = shared.clock()

    def hand_out(
        self,
        items: Sequence[Item],
        replay: Callable[[Item], T | None] | None,
        work: Callable[[], None],
        report: Callable[[], None],
    ) -> None:
        """Replay what can be replayed; queue the rest, starting workers up to the limit."""
        for index, item in enumerate(items):
            value = replay(item) if replay is not None else None
            if value is not None:
                self.values[index] = value
                self.replayed.add(index)
                self.pending.discard(index)
            else:
                self.shared.work.put((index, item))
                if len(self.workers) < self.concurrency:
                    name = f"nbchat-batch-{len(self.workers) + 1}"
                    self.workers.append(threading.Thread(target=work, name=name, daemon=True))
                    self.workers[-1].start()
            if index % 64 == 0:
                self.drain(0)
                report()

    def collect(self, index: int, kind: str, payload: Any) -> None:
        if kind == "abort":
            self.abort = self.abort or payload
        elif kind == "ok":
            self.values[index] = payload
            self.answered += 1
            self.tokens += (self.usage(payload) or 0) if self.usage else 0
            self.spent = self.spent + self.cost(payload) if self.cost else self.spent
            self.pending.discard(index)
        elif kind == "failed":
            self.exceptions[index] = payload
            self.pending.discard(index)
            if isinstance(payload, self.stop_on):
                self.stop()
        # "stopped": the item stays pending

    def stop(self) -> None:
        """Send nothing more: the calls in flight finish, the items not begun stay pending."""
        self.stopped = True
        self.shared.halt()

    def drain(self, timeout: float) -> None:
        """Collect what has arrived, waiting up to ``timeout`` for the first."""
        results = self.shared.results
        try:
            message = results.get(timeout=timeout) if timeout > 0 else results.get_nowait()
            while True:
                self.collect(*message)
                message = results.get_nowait()
        except queue.Empty:
            pass

    def close(self) -> None:
        """Stop the workers: nothing new is sent; idle ones exit, busy ones after their call."""
        self.shared.halt()
        for _ in self.workers:
            self.shared.work.put(None)

    def snapshot(self, finished: bool = False) -> Progress:
        elapsed = self.shared.clock() - self.start
        total, done = len(self.values), len(self.values) - len(self.pending)
        rate = self.answered / elapsed if self.answered and elapsed > 0 else 0.0
        shared = self.shared
        return Progress(
            total=total,
            done=done,
            replayed=len(self.replayed),
            failed=len(self.exceptions),
            in_flight=shared.in_flight,
            requests=shared.requests,
            retries=shared.retries,
            tokens=self.tokens,
            elapsed=elapsed,
            rate=rate,
            eta=(total - done) / rate if rate else None,
            paused=shared.gate.remaining(),
            finished=finished,
            asked=self.answered,
            spent=self.spent,
        )

    def result(self) -> BatchResult[T]:
        failures = dict(sorted(self.exceptions.items()))
        return BatchResult(
            values=self.values,
            errors={index: _one_line(exc) for index, exc in failures.items()},
            exceptions=failures,
            replayed=frozenset(self.replayed),
            pending=tuple(sorted(self.pending)),
            requests=self.shared.requests,
            retries=self.shared.retries,
            tokens=self.tokens,
            elapsed=self.shared.clock() - self.start,
            paused=self.shared.gate.paused,
            spent=self.spent,
        )


def _collect_all(
    run: _Run[Any],
    report: _Reporter | None,
    tick: Callable[..., None],
    keep_going: Callable[[], bool] | None,
) -> None:
    """Collect results until every item is done, Ctrl-C, or a stop and its calls in flight."""
    clock = run.shared.clock
    while run.pending and run.abort is None and (not run.stopped or run.shared.busy):
        due = report.due - clock() if report else _POLL
        run.drain(max(min(due, _POLL), 0.001))
        if keep_going is not None and not run.stopped and not keep_going():
            run.stop()
        tick()


class _Reporter:
    """Calls ``on_progress`` at most ``rate`` times a second, when a count changed (or once a
    second, for the clock and the ETA), and once at the end."""

    def __init__(
        self, run: _Run[Any], on_progress: Callable[[Progress], None], rate: float
    ) -> None:
        self._run = run
        self._on_progress = on_progress
        self._interval = 1.0 / rate
        self.due = self._last_sent = run.start
        self._last_key: tuple[object, ...] = ()

    def __call__(self, final: bool = False) -> None:
        now = self._run.shared.clock()
        if not final and now < self.due:
            return
        snap = self._run.snapshot(finished=final)
        key = (snap.done, snap.failed, snap.in_flight, snap.requests, snap.paused > 0)
        if final or key != self._last_key or now - self._last_sent >= _HEARTBEAT:
            self._last_key, self._last_sent, self.due = key, now, now + self._interval
            self._on_progress(snap)


def _check_options(concurrency: int, rpm: float | None, max_retries: int, rate: float) -> None:
    if concurrency < 1:
        raise ConfigError("concurrency must be at least 1.")
    if rpm is not None and rpm <= 0:
        raise ConfigError("rpm must be more than 0 (or None for no cap).")
    if max_retries < 0 or rate <= 0:
        raise ConfigError("max_retries must be >= 0 and progress_rate > 0.")


def run_batch(
    items: Sequence[Item],
    send: Callable[[Item], T],
    *,
    concurrency: int = 8,
    rpm: float | None = None,
    max_retries: int = 2,
    replay: Callable[[Item], T | None] | None = None,
    usage: Callable[[T], int | None] | None = None,
    cost: Callable[[T], Cost] | None = None,
    stop_on: tuple[type[Exception], ...] = (),
    keep_going: Callable[[], bool] | None = None,
    on_progress: Callable[[Progress], None] | None = None,
    progress_rate: float = 4.0,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> BatchResult[T]:
    """Answer every item with ``send`` (up to ``concurrency`` at once); see the module docstring.

    ``replay(item)`` (calling thread, input order) may answer an item without a request: a
    value other than None is taken as is, costs no rpm and never reaches ``send``. An item that
    fails with one of ``stop_on``, or ``keep_going()`` turning false (asked on the calling
    thread after each result), stops the batch: the calls in flight finish, the items not
    begun stay pending. Raises `BatchInterrupted` on Ctrl-C, `ConfigError` for bad options; an
    exception from ``replay``, ``usage`` or ``on_progress`` propagates (after the workers are
    stopped).
    """
    _check_options(concurrency, rpm, max_retries, progress_rate)
    shared = SharedState(clock, sleep, rpm)
    run: _Run[T] = _Run(len(items), shared, concurrency, usage, cost, stop_on)
    report = _Reporter(run, on_progress, progress_rate) if on_progress else None
    tick = report or (lambda final=False: None)
    try:
        run.hand_out(items, replay, lambda: run_worker(shared, send, max_retries), tick)
        _collect_all(run, report, tick, keep_going)
    except KeyboardInterrupt:
        run.abort = run.abort or KeyboardInterrupt()
    finally:
        run.close()
    if run.abort is not None and not isinstance(run.abort, KeyboardInterrupt):
        raise run.abort
    run.drain(0)
    tick(final=True)
    if run.abort is not None:
        raise _interrupted(run.result(), shared.in_flight) from None
    return run.result()
