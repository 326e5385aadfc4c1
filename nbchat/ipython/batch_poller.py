"""The background poller of a ``%%chat --map --batch`` cell that returned: a daemon thread that
asks for its batches' status every ``ChatMagics.batch_poll_s`` seconds and updates the cell's
output, until the batches end and their answers are stored.

It touches the cell only through callbacks that update a display id the cell created (the one
way a thread reaches its own cell: ipykernel gives a thread's ``print`` and ``display`` the
parent of whatever cell ran last). A status request that failed in passing (the network, a 5xx,
a 429) is said in the output and tried again at the next tick; one that will fail again (a wrong
key, a batch the provider does not know) is said and ends the thread, as do the batches ending,
a re-run of its cell (`BatchPollers.stop`) and the extension unloading.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

from nbchat._text import clip, one_line
from nbchat.engine.map import MapOutcome
from nbchat.engine.provider_batch import ProviderBatchRun
from nbchat.errors import PASSING_ERRORS, NbchatError

__all__ = ["BatchPoller", "BatchPollers"]


class BatchPoller:
    """Follows one run's batches from a daemon thread."""

    def __init__(
        self,
        run: ProviderBatchRun,
        *,
        interval: float,
        show: Callable[[], None],
        finish: Callable[[MapOutcome], None],
        failed: Callable[[str], None],
    ) -> None:
        self.run = run
        self._interval = interval
        self._show, self._finish, self._failed = show, finish, failed
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="nbchat-batch-poller", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        """No more requests or updates (a request under way is finished, not shown)."""
        self._stop.set()

    @property
    def alive(self) -> bool:
        return self._thread.is_alive()

    def join(self, timeout: float) -> None:
        self._thread.join(timeout)

    def _loop(self) -> None:
        while not self._stop.wait(self._interval):
            try:
                self.run.refresh()
            except Exception as error:  # a thread's error would otherwise vanish
                if self._stop.is_set() or not self._checking_goes_on(error):
                    return
                continue
            if self._stop.is_set():
                return
            try:
                if self.run.finished:
                    self._finish(self.run.outcome(listed=True))
                    return
                self._show()
            except Exception as error:  # showing or keeping failed: tried again next tick
                said = str(error) if isinstance(error, NbchatError) else repr(error)
                self._failed(f"Updating the output failed: {clip(one_line(said), 200)}.")

    def _checking_goes_on(self, error: Exception) -> bool:
        """Say why a status check failed; whether to check again (a failure in passing)."""
        said = str(error) if isinstance(error, NbchatError) else repr(error)
        said = f"Status check failed: {clip(one_line(said), 200)}"
        if not isinstance(error, PASSING_ERRORS):  # a wrong key stays wrong: stop asking
            self._failed(f"{said}. Stopped checking; run the cell again to check.")
            return False
        self._failed(f"{said} (next in {self._interval:g} s).")
        return True


class BatchPollers:
    """The kernel's pollers, one per cell: a re-run of a cell replaces its poller."""

    def __init__(self) -> None:
        self._pollers: dict[str, BatchPoller] = {}
        self._lock = threading.Lock()

    def start(self, place: str, poller: BatchPoller) -> None:
        self.stop(place)
        with self._lock:
            self._pollers[place] = poller
        poller.start()

    def stop(self, place: str, *, wait: float = 0.0) -> None:
        """Stop the cell's poller, waiting up to ``wait`` seconds for a request under way (what
        it collected is then in the session, for the run taking over)."""
        with self._lock:
            poller = self._pollers.pop(place, None)
        if poller is not None:
            poller.stop()
            poller.join(wait)

    def running(self) -> list[BatchPoller]:
        with self._lock:
            return [poller for poller in self._pollers.values() if poller.alive]

    def close(self) -> None:
        """Stop them all (the extension unloads)."""
        with self._lock:
            pollers, self._pollers = list(self._pollers.values()), {}
        for poller in pollers:
            poller.stop()
