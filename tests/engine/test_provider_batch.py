"""``--map --batch`` in the engine (`nbchat.engine.provider_batch`), against the fake server's
batch API: the JSONL is the real-time requests, results are matched by ``custom_id``, stored as
the records a real-time run replays, a pending batch is re-attached (never resubmitted), files
are split at the limits, and every way a batch or an item fails is named."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from nbchat.engine.batch_status import skipped_line
from nbchat.engine.map import MapJob, map_items
from nbchat.engine.provider_batch import BatchLimits, ProviderBatchRun
from nbchat.engine.session import ChatSession
from nbchat.engine.settings import Settings, resolve_settings
from nbchat.errors import APIError, BatchUnsupported
from nbchat.schema.structured import OutputSchema
from nbchat.store.batch_record import read_stored
from nbchat.store.batch_state import BATCHES_MIME
from nbchat.store.notebook import NotebookWatcher
from nbchat.store.record import RECORD_MIME

from support.env import TEST_KEY
from support.fake_openai import FakeOpenAI

TEMPLATE = "Classify: {item}"
WORDS = ["good", "bad", "good", "odd", "fine"]


@pytest.fixture
def settings(server: FakeOpenAI, chat_env: Path) -> Settings:
    return resolve_settings({"model": "peer-small"}, {}, {}, {"OPENAI_BASE_URL": server.base_url})


def job(settings: Settings, items: list[Any] = WORDS, **more: Any) -> MapJob:
    return MapJob(
        name="words",
        items=items,
        cell=TEMPLATE,
        namespace={},
        settings=settings,
        cell_id="c1",
        **more,
    )


def run_until_done(run: ProviderBatchRun, reads: int = 5) -> None:
    for _ in range(reads):
        if run.finished:
            return
        run.refresh()
    assert run.finished


def save(path: Path, data: dict[str, Any]) -> NotebookWatcher:
    """A notebook whose --map cell's output holds ``data`` (a bundle's MIME types)."""
    output = {"output_type": "display_data", "metadata": {}, "data": data}
    cell = {
        "cell_type": "code",
        "id": "c1",
        "metadata": {},
        "execution_count": 1,
        "source": "%%chat --map words --batch\n" + TEMPLATE,
        "outputs": [output],
    }
    notebook = {"nbformat": 4, "nbformat_minor": 5, "metadata": {}, "cells": [cell]}
    path.write_text(json.dumps(notebook))
    return NotebookWatcher(path)


def uploaded_lines(server: FakeOpenAI) -> list[dict[str, Any]]:
    [content] = [server.batch_api.files[f] for f in sorted(server.batch_api.files)][:1]
    return [json.loads(line) for line in content.splitlines()]


def test_the_jsonl_holds_each_distinct_real_time_request_under_its_key(server, settings):
    run = ProviderBatchRun(job(settings), ChatSession(), None)
    run.start()
    lines = uploaded_lines(server)
    assert len(lines) == 4, "the two 'good' items are one request"
    upload = server.batch_requests[0]
    assert (
        TEST_KEY not in upload.raw_body.decode() and "authorization" not in upload.raw_body.decode()
    )
    real_time = ChatSession()
    outcome = map_items(job(settings), real_time, None)
    assert outcome.record is not None
    sent = {r.body["messages"][-1]["content"]: r.body for r in server.chat_requests}
    keys = {item.turn.key for item in run.run.items.values()}
    for line in lines:
        assert line["body"] == sent[line["body"]["messages"][-1]["content"]], "the same request"
        assert line["custom_id"] in keys and line["body"]["stream"] is False
    stored_keys = {record.key for record in read_stored(outcome.record, 2)}
    assert {line["custom_id"] for line in lines} == stored_keys, "custom_id: the key replayed"
    create = server.batch_requests[1].body
    assert create["metadata"] == {
        "nbchat": create["metadata"]["nbchat"],
        "map": "words",
        "cell": "c1",
    }


def test_answers_are_matched_by_custom_id_and_stored_as_real_time_replays_them(
    server, settings, tmp_path
):
    run = ProviderBatchRun(job(settings), ChatSession(), None)
    run.start()
    assert not run.finished and run.outcome().summary.pending == [0, 1, 2, 3, 4]
    assert run.state() is not None and len(run.state().batches[0].keys) == 4
    run_until_done(run)
    assert run.state() is None
    outcome = run.outcome()
    assert outcome.values == [f"Reply #1 to: Classify: {w}" for w in WORDS], "not line order"
    items = outcome.record["items"]
    assert outcome.record["timing"]["batch_id"] == next(iter(run.batches)), "said once"
    assert not any("timing" in item for item in items), "no item's own: they share it"
    for record in read_stored(outcome.record, 2):  # what prices the answer later
        assert record.usage["total_tokens"] > 0 and record.model == "peer-small"
        assert record.request.base_url == server.base_url and record.timing["started_at"]
        assert record.batch_id == next(iter(run.batches))
    notebook = save(tmp_path / "done.ipynb", {RECORD_MIME: outcome.record}).get()
    chats_before = len(server.chat_requests)
    again = map_items(job(settings), ChatSession(), notebook)
    assert again.values == outcome.values and len(server.chat_requests) == chats_before
    assert again.summary.replayed == 5


def test_a_pending_batch_is_reattached_by_a_new_session_never_resubmitted(
    server, settings, tmp_path
):
    server.batch_api.hold = True
    first = ProviderBatchRun(job(settings), ChatSession(), None)
    first.start()
    state = first.state()
    notebook = save(tmp_path / "pending.ipynb", {BATCHES_MIME: state.to_json()}).get()
    assert notebook.batches and notebook.batches[0][1].batches[0].id == state.batches[0].id
    server.batch_api.counts.clear()
    second = ProviderBatchRun(job(settings), ChatSession(), notebook)
    second.start()
    assert server.batch_api.counts == {"retrieve": 1}, "a status request, no submission"
    server.batch_api.finish()
    second.refresh()
    assert second.finished and second.outcome().values[4] == "Reply #1 to: Classify: fine"


def test_a_new_item_is_submitted_alone_beside_the_pending_batch(server, settings):
    server.batch_api.hold = True
    session = ChatSession()
    ProviderBatchRun(job(settings), session, None).start()
    grown = ProviderBatchRun(job(settings, [*WORDS, "new"]), session, None)
    grown.start()
    assert server.batch_api.counts["create"] == 2
    second_file = [json.loads(x) for x in list(server.batch_api.files.values())[-1].splitlines()]
    assert [line["body"]["messages"][-1]["content"] for line in second_file] == ["Classify: new"]
    assert len(grown.batches) == 2


def test_files_are_split_at_the_line_and_byte_limits(server, settings):
    run = ProviderBatchRun(job(settings), ChatSession(), None, limits=BatchLimits(lines=3))
    run.start()
    assert [len(b.batch.keys) for b in run.batches.values()] == [3, 1]
    one_line = len(uploaded_lines(server)[0])  # about the size of one line
    small = ProviderBatchRun(
        job(settings, ["x", "y"]), ChatSession(), None, limits=BatchLimits(bytes=one_line * 3)
    )
    small.start()
    assert [len(b.batch.keys) for b in small.batches.values()] == [1, 1]


def test_items_a_batch_did_not_answer_fail_by_name_and_a_rerun_resubmits_only_them(
    server, settings
):
    server.batch_api.item_errors["Classify: bad"] = "error"
    server.batch_api.item_errors["Classify: odd"] = "missing"
    server.batch_api.extra_lines = [
        b"{not json",
        b'{"custom_id": "v2:nobody", "response": null, "error": {"code": "x", "message": "y"}}',
    ]
    session = ChatSession()
    run = ProviderBatchRun(job(settings), session, None)
    run.start()
    run_until_done(run)
    outcome = run.outcome()
    assert outcome.values[1] is None and outcome.values[3] is None
    assert outcome.failures[1].startswith("The server rejected the request (400). Server said:")
    batch_id = next(iter(run.batches))
    assert outcome.failures[3] == f"the batch {batch_id} completed without a line for it"
    assert skipped_line(run) == (
        "skipped in the batch output: 1 malformed line and 1 line of an unknown custom_id"
    )
    server.batch_api.reset()
    rerun = ProviderBatchRun(job(settings), session, None)
    rerun.start()
    [content] = server.batch_api.files.values()
    prompts = sorted(json.loads(x)["body"]["messages"][-1]["content"] for x in content.splitlines())
    assert prompts == ["Classify: bad", "Classify: odd"]


@pytest.mark.parametrize("ending", ["expired", "cancelled"])
def test_an_expired_or_cancelled_batch_keeps_what_it_answered(server, settings, ending):
    server.batch_api.outcome, server.batch_api.answered_before_end = ending, 2
    server.batch_api.item_errors["Classify: fine"] = "missing"  # not even an error line
    run = ProviderBatchRun(job(settings), ChatSession(), None)
    run.start()
    run_until_done(run)
    result, batch_id = run.outcome(), next(iter(run.batches))
    assert [v is not None for v in result.values] == [True, True, True, False, False]
    assert result.failures == {
        3: f"The batch did not answer it: batch_{ending}: Batch {ending}",
        4: f"the batch {batch_id} {ending} before answering it",
    }


def test_a_rejected_file_names_the_line_and_its_item(server, settings):
    server.batch_api.reject[2] = "Invalid value for temperature"
    run = ProviderBatchRun(job(settings), ChatSession(), None)
    run.start()
    run.refresh()
    outcome, batch_id = run.outcome(), next(iter(run.batches))
    assert outcome.failures[1] == (
        f"the batch {batch_id} rejected its line 2: Invalid value for temperature"
    )
    assert outcome.failures[0] == (
        f"the batch {batch_id} failed: line 2: Invalid value for temperature"
    )


def test_a_missing_output_file_fails_the_items_in_one_reason(server, settings):
    server.batch_api.missing_output = True
    run = ProviderBatchRun(job(settings, ["a"]), ChatSession(), None)
    run.start()
    run_until_done(run)
    [reason] = run.outcome().failures.values()
    assert reason.startswith("the batch batch-") and "could not be read" in reason
    assert "does not know file-" in reason


def test_answers_are_checked_against_the_schema_per_item(server, settings):
    schema = {"type": "object", "properties": {"n": {"type": "integer"}}, "required": ["n"]}
    server.responses.update({"Classify: 1": '{"n": 1}', "Classify: 2": '{"n": "two"}'})
    try:
        run = ProviderBatchRun(
            job(settings, ["1", "2"], output=OutputSchema.of(schema)), ChatSession(), None
        )
        run.start()
        run_until_done(run)
    finally:
        server.responses.clear()
    outcome = run.outcome()
    assert outcome.values[0] == {"n": 1} and outcome.values[1] is None
    assert "does not fit" in outcome.failures[1]
    line = json.loads(next(iter(server.batch_api.files.values())).splitlines()[0])
    assert line["body"]["response_format"]["type"] == "json_schema"


def test_an_endpoint_without_the_batch_api_fails_before_anything_is_submitted(server, settings):
    server.batch_api.missing_status = 404
    run = ProviderBatchRun(job(settings), ChatSession(), None)
    with pytest.raises(BatchUnsupported, match="has no batch API"):
        run.start()
    assert run.batches == {} and server.chat_requests == []


def test_offline_nothing_is_sent(server, settings):
    run = ProviderBatchRun(job(replace(settings, offline=True)), ChatSession(), None)
    run.start()
    assert run.finished and server.requests == []
    assert len(run.outcome().failures) == 5


def test_batch_answers_are_priced_at_the_batch_rate_and_counted_once(server, chat_env):
    """genai-prices knows gpt-4.1-mini's batch rate (half price); at an endpoint it does not
    name, the model's name prices it, as an estimate."""
    from decimal import Decimal

    from nbchat.engine.pricing import price_book, record_cost

    models = server.models
    server.models = (*models, "gpt-4.1-mini")
    try:
        chosen = resolve_settings(
            {"model": "gpt-4.1-mini"}, {}, {}, {"OPENAI_BASE_URL": server.base_url}
        )
        session = ChatSession()
        run = ProviderBatchRun(job(chosen), session, None)
        run.start()
        run_until_done(run)
        outcome = run.outcome()
    finally:
        server.models = models
    book = price_book(chosen)
    records = list({r.key: r for r in read_stored(outcome.record, 2)}.values())  # 4 requests
    batch = sum((record_cost(r, book).usd for r in records), Decimal(0))
    real_time = sum((record_cost(r, book, batch=False).usd for r in records), Decimal(0))
    assert batch > 0 and batch * 2 == real_time, "half price"
    assert all(record_cost(r, book).batch for r in records)
    spent = session.ledger.total(session.ledger.spent)
    assert spent.cost.usd == batch, "what the batch answered is spent, at its rate, once"
    assert spent.answers == 4 and session.ledger.requests == 0, "no request of its own"
    line = outcome.summary.line
    assert "at batch rates (real time ≈$" in line and "spent ≈$" in line, line


def test_a_transient_failure_reading_the_output_file_is_read_again_never_resubmitted(
    server, settings
):
    """A batch that completed was paid for: a 503 on its output file (after the retries) must
    not fail its items, which a re-run would then submit (and pay for) again."""
    quick = replace(settings, max_retries=0)
    session = ChatSession()
    run = ProviderBatchRun(job(quick), session, None)
    run.start()
    run.refresh()  # in progress
    server.batch_api.content_statuses.append(503)
    with pytest.raises(APIError, match="503"):
        run.refresh()  # completed, its output file not readable this time
    assert not run.finished and run.outcome().failures == {}
    run.refresh()
    assert run.finished and run.outcome().failures == {}
    assert run.outcome().values[4] == "Reply #1 to: Classify: fine"
    ProviderBatchRun(job(quick), session, None).start()
    assert server.batch_api.counts["create"] == 1, "nothing submitted twice"


def test_ctrl_c_between_two_files_keeps_the_batch_made_for_the_cells_output(
    server, settings, tmp_path, monkeypatch
):
    """The first file's batch exists (and is paid for): Ctrl-C while the second is uploaded
    must leave it in the pending state, so that a re-run after a restart re-attaches."""
    from nbchat.wire.batches import BatchAPI

    upload = BatchAPI.upload
    calls = []

    def interrupted_second(api: BatchAPI, content: bytes, *more: Any) -> str:
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return upload(api, content, *more)

    monkeypatch.setattr(BatchAPI, "upload", interrupted_second)
    server.batch_api.hold = True
    run = ProviderBatchRun(job(settings), ChatSession(), None, limits=BatchLimits(lines=3))
    run.start()
    assert run.interrupted and server.batch_api.counts["create"] == 1
    state = run.state()
    assert state is not None and len(state.batches[0].keys) == 3
    assert run.outcome().failures == {4: "not submitted: interrupted (Ctrl-C)"}
    monkeypatch.setattr(BatchAPI, "upload", upload)
    notebook = save(tmp_path / "pending.ipynb", {BATCHES_MIME: state.to_json()}).get()
    again = ProviderBatchRun(job(settings), ChatSession(), notebook, limits=BatchLimits(lines=3))
    again.start()
    assert server.batch_api.counts["create"] == 2, "only the item not sent is submitted"
    assert [len(known.batch.keys) for known in again.batches.values()] == [3, 1]


def test_a_batch_collected_while_another_run_looks_up_its_items_is_not_submitted_again(
    server, settings
):
    """A poller (run ``first``) collects the batch while a run of the same items in another
    cell looks up what is stored: that run must find the answers, not submit them again."""
    session = ChatSession()
    first = ProviderBatchRun(job(settings), session, None)
    first.start()
    second = ProviderBatchRun(job(settings), session, None)
    begin = second.run.begin

    def collected_meanwhile() -> Any:
        template = begin()  # nothing stored yet: the batch still holds the items
        if not first.finished:
            run_until_done(first)  # the poller's thread, between the lookup and the submit
        return template

    second.run.begin = collected_meanwhile  # type: ignore[method-assign]
    second.start()
    assert server.batch_api.counts["create"] == 1, "paid for once"
    assert second.finished and second.outcome().values == first.outcome().values


def test_a_batch_collected_by_two_runs_is_counted_as_spent_once(server, settings):
    """A poller and a run of the same items in another cell both follow the batch: each binds
    the answers, the session counts them as spent once."""
    session = ChatSession()
    first = ProviderBatchRun(job(settings), session, None)
    first.start()
    second = ProviderBatchRun(job(settings), session, None)
    second.start()
    assert server.batch_api.counts["create"] == 1 and len(second.batches) == 1
    run_until_done(first)
    run_until_done(second)
    assert first.outcome().values == second.outcome().values
    assert session.ledger.total(session.ledger.spent).answers == 4, "four requests answered"


def test_a_failed_status_check_of_a_held_batch_keeps_it_pending_and_submits_the_new_items(
    server, settings
):
    """A re-run with one more item while the batch runs, and the status request fails: the
    cell's output must still get the pending state (the re-run replaced the output that had
    it), and the new item is submitted."""
    quick = replace(settings, max_retries=0)
    server.batch_api.hold = True
    session = ChatSession()
    ProviderBatchRun(job(quick), session, None).start()
    server.batch_api.retrieve_statuses.append(503)
    grown = ProviderBatchRun(job(quick, [*WORDS, "new"]), session, None)
    grown.start()
    assert "503" in grown.problem
    assert server.batch_api.counts["create"] == 2
    state = grown.state()
    assert state is not None and [len(b.keys) for b in state.batches] == [4, 1]
    server.batch_api.finish()
    run_until_done(grown)
    assert grown.outcome().values[5] == "Reply #1 to: Classify: new"


def test_a_batch_of_the_cells_earlier_items_is_named_when_a_rerun_leaves_it(server, settings):
    """The template changed while the batch ran: no item of the re-run is in it, so the cell's
    output stops showing it; it goes on (and is billed), which the re-run says."""
    server.batch_api.hold = True
    session = ChatSession()
    first = ProviderBatchRun(job(settings), session, None)
    first.start()
    notes: list[str] = []
    changed = replace(job(settings, note=notes.append), cell="Label: {item}")
    ProviderBatchRun(changed, session, None).start()
    [batch_id] = first.batches
    assert notes == [
        f"nbchat: batch {batch_id} of this cell's earlier items goes on at the provider "
        f"(%chat batch cancel {batch_id} stops it)."
    ]


def test_an_answer_wins_over_an_error_line_for_the_same_custom_id(server, settings):
    """A duplicate line that says the item failed must not hide its answer (paid for): the
    item would fail and the next run would submit it again."""
    server.batch_api.shuffle = None  # the duplicate comes first
    run = ProviderBatchRun(job(settings, ["a"]), ChatSession(), None)
    run.start()
    [key] = next(iter(run.batches.values())).batch.keys
    duplicate = {"custom_id": key, "response": None, "error": {"code": "x", "message": "lost"}}
    server.batch_api.extra_lines = [json.dumps(duplicate).encode()]
    run_until_done(run)
    outcome = run.outcome()
    assert outcome.failures == {} and outcome.values == ["Reply #1 to: Classify: a"]


def test_a_status_check_refused_for_good_raises_with_nothing_submitted(server, settings):
    """A 401 is not a blip: the re-run fails in its own words (the cell's output keeps the
    pending state, `batch_cell.keep_pending`) instead of submitting with a key refused."""
    server.batch_api.hold = True
    session = ChatSession()
    ProviderBatchRun(job(settings), session, None).start()
    server.batch_api.retrieve_statuses.append(401)
    grown = ProviderBatchRun(job(settings, [*WORDS, "new"]), session, None)
    with pytest.raises(APIError, match="401"):
        grown.start()
    assert server.batch_api.counts["create"] == 1
