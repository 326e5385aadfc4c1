"""The pending state of a ``--map --batch`` cell (`nbchat.store.batch_state`), read back from a
notebook a real kernel saved while its batch ran (``tests/support/fixtures/batch-pending.ipynb``:
two items answered by an earlier batch, three waiting for the second), and kept apart from the
records, so older readers and older notebooks are unaffected."""

from __future__ import annotations

import copy
import json

import pytest

from nbchat.store.batch_state import BATCHES_MIME, BatchState, PendingBatch
from nbchat.store.notebook import read_notebook_json, read_records
from nbchat.store.record import RECORD_MIME_PATTERN

from support.paths import FIXTURES

PENDING = FIXTURES / "batch-pending.ipynb"


def test_the_saved_pending_state_is_read_beside_the_records():
    records = read_records(read_notebook_json(PENDING), PENDING)
    assert records.problems == []
    [(cell, state)] = records.batches
    assert cell == 2 and state.cell_id == "c2" and state.endpoint == "/v1/chat/completions"
    [batch] = state.batches
    assert batch.status == "validating" and batch.total == 2
    assert all(key.startswith("v2:") for key in batch.keys) and len(set(batch.keys)) == 2
    answered = [record for _, record in records.records()]
    assert [r.answer for r in answered] == [
        "Reply #1 to: Classify: great",
        "Reply #1 to: Classify: awful",
    ]
    assert not set(batch.keys) & {r.key for r in answered}, "a batch holds only unanswered items"
    assert all(r.batch_id and r.batch_id != batch.id for r in answered)


def test_the_state_round_trips_and_a_malformed_one_is_named_not_fatal():
    raw = json.loads(PENDING.read_text())
    stored = raw["cells"][2]["outputs"][0]["data"][BATCHES_MIME]
    assert BatchState.from_json(stored).to_json() == stored
    broken = copy.deepcopy(raw)
    broken["cells"][2]["outputs"][0]["data"][BATCHES_MIME]["batches"][0]["keys"] = "v2:x"
    records = read_records(broken, PENDING)
    assert records.problems == [
        "cell 3: malformed batches state: batches[0].keys is a string, not a list"
    ]
    assert records.batches == [] and len(list(records.records())) == 2, "the records still read"


@pytest.mark.parametrize(
    ("field", "value"),
    [("schema", 2), ("kind", "batch"), ("batches", {}), ("base_url", None)],
)
def test_a_state_of_another_shape_is_refused(field, value):
    raw = json.loads(PENDING.read_text())["cells"][2]["outputs"][0]["data"][BATCHES_MIME]
    with pytest.raises(ValueError):
        BatchState.from_json({**raw, field: value})
    with pytest.raises(ValueError, match="completed"):
        PendingBatch.from_json({**raw["batches"][0], "completed": -1}, "batches[0]")


def test_older_readers_and_older_notebooks_are_unaffected():
    assert RECORD_MIME_PATTERN.match(BATCHES_MIME) is None, "not a record to any version"
    old = FIXTURES / "nbchat-0.1.ipynb"
    assert read_records(read_notebook_json(old), old).batches == []
