"""The poller of a ``--map --batch`` cell (`ipython.batch_poller`): what it does when a status
check fails, with a stand-in for the provider batch run (its thread and timing are real)."""

from __future__ import annotations

import time

from nbchat.errors import AuthenticationError, ServerError
from nbchat.ipython.batch_poller import BatchPoller


class FailingRun:
    """A run whose status checks raise the errors given, one per check, the last for good."""

    finished = False

    def __init__(self, *errors: Exception) -> None:
        self.errors = list(errors)
        self.checks = 0

    def refresh(self) -> None:
        self.checks += 1
        raise self.errors.pop(0) if len(self.errors) > 1 else self.errors[0]


def poll(run: FailingRun, seconds: float) -> tuple[BatchPoller, list[str]]:
    said: list[str] = []
    poller = BatchPoller(
        run,  # type: ignore[arg-type]
        interval=0.01,
        show=lambda: None,
        finish=lambda outcome: None,
        failed=said.append,
    )
    poller.start()
    time.sleep(seconds)
    return poller, said


def test_a_wrong_key_stops_the_checks_and_says_how_to_check_again() -> None:
    run = FailingRun(AuthenticationError("The API key was refused (401)", status_code=401))
    poller, said = poll(run, 0.3)
    poller.join(1.0)
    assert not poller.alive and run.checks == 1
    assert said == [
        "Status check failed: The API key was refused (401). Stopped checking; run the cell "
        "again to check."
    ]


def test_a_failure_in_passing_is_tried_again_until_the_checks_stop() -> None:
    run = FailingRun(ServerError("The server failed (503)", status_code=503))
    poller, said = poll(run, 0.3)
    assert poller.alive and run.checks >= 3
    assert set(said) == {"Status check failed: The server failed (503) (next in 0.01 s)."}
    poller.stop()
    poller.join(1.0)
    assert not poller.alive


class Running:
    """A run whose status checks succeed and whose batches never end."""

    finished = False

    def __init__(self) -> None:
        self.checks = 0

    def refresh(self) -> None:
        self.checks += 1


def test_a_failure_to_show_is_not_blamed_on_the_status_check_and_checks_go_on() -> None:
    said: list[str] = []
    run = Running()

    def show() -> None:
        raise OSError("disk full")

    poller = BatchPoller(
        run,  # type: ignore[arg-type]
        interval=0.01,
        show=show,
        finish=lambda outcome: None,
        failed=said.append,
    )
    poller.start()
    time.sleep(0.3)
    assert poller.alive and run.checks >= 3
    assert set(said) == {"Updating the output failed: OSError('disk full')."}
    poller.stop()
    poller.join(1.0)
