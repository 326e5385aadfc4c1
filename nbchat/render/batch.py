"""What a ``%%chat --map`` cell shows when it is done: a compact summary, with the batch record.

The counts, the first few items with their answers, and the failures with their one-line
reasons when the cell's error does not name them (after Ctrl-C, or when a provider's batch ended
after the cell had returned); model and server text in it is escaped and the HTML sanitized
(`render.html.document`). While a provider's batch runs (``--batch``) the same summary says
which items wait for it, one line per batch, and carries the pending state
(`store.batch_state`). The live progress view before it is the kernel front end's
(`ipython.progress`).
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from typing import Any

from nbchat._text import clip, one_line, plural, render_table
from nbchat.render.bundles import Bundle, note_html
from nbchat.render.html import document, escape, table
from nbchat.store.batch_state import BATCHES_MIME
from nbchat.store.marker import OutputMarker
from nbchat.store.record import RECORD_MIME

__all__ = ["BatchSummary"]

_SHOWN_RESULTS = 5
_SHOWN_FAILURES = 10


class BatchSummary:
    """The persistent output of a batch: counts, the first results, the failures."""

    def __init__(
        self,
        name: str,
        inputs: Sequence[str],
        answers: Sequence[str | None],
        failures: dict[int, str],
        labels: Sequence[str] | None = None,
    ) -> None:
        self.name = name
        self.inputs = inputs
        self.answers = answers
        self.failures = failures
        self.labels = labels or [str(number) for number in range(len(inputs))]

    def bundle(
        self,
        line: str,
        record: dict[str, Any] | None,
        *,
        pending: Sequence[int] = (),
        replayed: int = 0,
        waiting: str = "not done (interrupted)",
        lines: Sequence[str] = (),
        state: dict[str, Any] | None = None,
    ) -> Bundle:
        """The summary as HTML and plain text (with the batch record, when stored); its
        metadata counts the answers, and the ``replayed`` ones, for `nbchat run`. ``pending``
        items are said to be ``waiting`` (unless it is ""); ``lines`` are quiet lines below (a
        provider's batches, what was bound); ``state``, the pending batches to store with it."""
        headers = ["#", self.name, "answer"]
        shown = ((n, answer) for n, answer in enumerate(self.answers) if answer is not None)
        rows = [  # only the first few are made (a batch may hold 50,000)
            [self.labels[index], clip(one_line(self.inputs[index]), 60), clip(one_line(answer), 80)]
            for index, answer in itertools.islice(shown, _SHOWN_RESULTS)
        ]
        answered = sum(answer is not None for answer in self.answers)
        more = answered - len(rows)
        html = [f"<p><strong>{escape(line)}</strong></p>"]
        plain = [line]
        if rows:
            html.append(table(headers, rows))
            plain += render_table(headers, rows)
            if more:
                html.append(f"<p><em>… and {plural(more, 'more answer')}.</em></p>")
                plain.append(f"… and {plural(more, 'more answer')}.")
        shown = self._failures()
        if shown:
            html.append("<ul>" + "".join(f"<li>⚠ {escape(text)}</li>" for text in shown) + "</ul>")
            plain += [f"⚠ {text}" for text in shown]
        if pending and waiting:
            note = f"{plural(len(pending), 'item')} {waiting}."
            html.append(f"<p><em>{escape(note)}</em></p>")
            plain.append(note)
        html += [note_html(line) for line in lines]
        plain += lines
        data: dict[str, Any] = {
            "text/html": document("".join(html)),
            "text/plain": "\n".join(plain),
        }
        if record is not None:
            data[RECORD_MIME] = record
        if state is not None:
            data[BATCHES_MIME] = state
        return data, OutputMarker(answered=answered, replayed_items=replayed).to_json()

    def _failures(self) -> list[str]:
        """The failures listed, each on one line (the first few)."""
        failures = sorted(self.failures.items())
        shown = [
            f"item {self.labels[index]} failed: {clip(one_line(reason), 200)}"
            for index, reason in failures[:_SHOWN_FAILURES]
        ]
        if len(failures) > _SHOWN_FAILURES:
            shown.append(f"… and {len(failures) - _SHOWN_FAILURES} more failures")
        return shown
