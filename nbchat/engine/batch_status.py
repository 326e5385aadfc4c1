"""What a person is shown of a ``--map --batch`` run while it goes on: one line per batch, a
progress snapshot for a bar, what its output files held that was skipped: functions of the
run (`engine.provider_batch`)."""

from __future__ import annotations

from nbchat._text import plural
from nbchat.engine.batch import Progress
from nbchat.engine.provider_batch import ProviderBatchRun

__all__ = ["progress", "skipped_line", "status_lines"]


def status_lines(run: ProviderBatchRun) -> list[str]:
    """One line per batch: ``batch-7: in_progress · 1,200 / 5,000 done · 3 failed ·
    submitted 2026-05-01T09:00:00Z``."""
    lines = []
    for known in run.batches.values():
        batch = known.batch
        parts = [f"{batch.id}: {batch.status}"]
        parts.append(f"{batch.completed + batch.failed:,} / {len(batch.keys):,} done")
        if batch.failed:
            parts.append(f"{batch.failed:,} failed")
        parts.append(f"submitted {batch.submitted_at}")
        lines.append(" · ".join(parts))
    return lines


def progress(run: ProviderBatchRun) -> Progress:
    """A snapshot for a progress bar: the items done (stored, collected, or reported done
    by a running batch) of all items."""
    replayed = sum(1 for n in run.order if run.run.items[n].stored is not None)
    failed = sum(1 for reason in run.answers.values() if isinstance(reason, str))
    answered = (numbers for key, numbers in run.asked.items() if key in run.answers)
    done = replayed + sum(len(numbers) for numbers in answered)
    for known in run.batches.values():
        if not known.ended:
            done += known.batch.completed + known.batch.failed
            failed += known.batch.failed
    return Progress(
        total=len(run.run.rows),
        done=min(done + len(run.run.failures), len(run.run.rows)),
        replayed=replayed,
        failed=failed,
        in_flight=0,
        requests=run.tally.requests,
        retries=0,
        tokens=0,
        elapsed=run.elapsed(),
        rate=0.0,
        eta=None,
        paused=0.0,
        finished=run.finished,
    )


def skipped_line(run: ProviderBatchRun) -> str:
    """What was skipped of the output files, or ""."""
    parts = []
    if run.tally.malformed:
        parts.append(f"{plural(run.tally.malformed, 'malformed line')}")
    if run.tally.unknown:
        parts.append(f"{plural(run.tally.unknown, 'line')} of an unknown custom_id")
    return f"skipped in the batch output: {' and '.join(parts)}" if parts else ""
