"""The batch API client (`nbchat.wire.batches`) against the fake server's ``/files`` and
``/batches``: a batch from upload to output, lines matched by ``custom_id`` whatever their order,
error lines, a failed batch's rejected lines, cancel, 429 on create, an endpoint without the
API, and the key kept out of everything shown."""

from __future__ import annotations

import json

import pytest

from nbchat.errors import APIError, BatchUnsupported, NbchatError, RateLimitError
from nbchat.wire.batch_lines import BATCH_URL, request_line
from nbchat.wire.batches import BatchAPI
from nbchat.wire.completion import completion_text

from support.chat_client import KEY, body
from support.fake_openai import answer_for


@pytest.fixture
def api(make_client) -> BatchAPI:
    return BatchAPI(make_client())


def jsonl(*prompts: str) -> bytes:
    return b"".join(request_line(f"id-{n}", body(p)) for n, p in enumerate(prompts))


def test_a_batch_goes_from_upload_to_its_answers_matched_by_custom_id(api, fake):
    file_id = api.upload(jsonl("a", "b", "c", "d"))
    [upload] = fake.batch_requests
    assert upload.path == "/v1/files" and upload.headers["authorization"] == f"Bearer {KEY}"
    assert b'name="purpose"\r\n\r\nbatch' in upload.raw_body
    created = api.create(file_id, {"nbchat": "test"})
    assert created.status == "validating" and created.input_file_id == file_id
    sent = fake.batch_requests[-1].body
    assert sent == {
        "input_file_id": file_id,
        "endpoint": BATCH_URL,
        "completion_window": "24h",
        "metadata": {"nbchat": "test"},
    }
    statuses = [api.retrieve(created.id) for _ in range(2)]
    assert [s.status for s in statuses] == ["in_progress", "completed"]
    done = statuses[-1]
    assert (done.total, done.completed, done.failed) == (4, 4, 0) and done.finished
    assert done.created_at is not None and done.ended_at is not None
    lines, malformed = api.lines(done.output_file_id)
    assert malformed == 0
    order = [line.custom_id for line in lines]
    assert sorted(order) == ["id-0", "id-1", "id-2", "id-3"] != order, "shuffled by the server"
    answers = {line.custom_id: completion_text(line.completion) for line in lines}
    assert answers == {f"id-{n}": answer_for(body(p)) for n, p in enumerate("abcd")}
    assert fake.batch_api.counts == {"upload": 1, "create": 1, "retrieve": 2, "content": 1}


def test_request_lines_are_the_chat_requests(fake):
    line = json.loads(request_line("v2:abc", {"model": "m", "messages": [], "stream": False}))
    assert line == {
        "custom_id": "v2:abc",
        "method": "POST",
        "url": "/v1/chat/completions",
        "body": {"model": "m", "messages": [], "stream": False},
    }


def test_error_lines_say_why_and_malformed_lines_are_counted(api, fake):
    fake.batch_api.item_errors["b"] = "error"
    fake.batch_api.outcome, fake.batch_api.answered_before_end = "expired", 2
    fake.batch_api.extra_lines = [b"not json", b'{"no": "custom id"}']
    batch = api.create(api.upload(jsonl("a", "b", "c")), {})
    api.retrieve(batch.id)
    ended = api.retrieve(batch.id)
    assert ended.status == "expired" and (ended.completed, ended.failed) == (1, 2)
    answered, malformed = api.lines(ended.output_file_id)
    assert [line.custom_id for line in answered] == ["id-0"] and malformed == 2
    failed, _ = api.lines(ended.error_file_id)
    reasons = {line.custom_id: line.error for line in failed}
    assert reasons == {
        "id-1": "The server rejected the request (400). Server said: Fake refusal of this item",
        "id-2": "The batch did not answer it: batch_expired: Batch expired",
    }


def test_a_rejected_file_fails_the_batch_with_its_lines_named(api, fake):
    fake.batch_api.reject[2] = "Model peer-nothing does not exist"
    batch = api.create(api.upload(jsonl("a", "b")), {})
    failed = api.retrieve(batch.id)
    assert failed.status == "failed" and failed.finished
    assert failed.problems == ((2, "Model peer-nothing does not exist"),)
    assert failed.output_file_id is None


def test_cancel_then_cancelled(api, fake):
    batch = api.create(api.upload(jsonl("a")), {})
    assert api.cancel(batch.id).status == "cancelling"
    assert api.retrieve(batch.id).status == "cancelled"


def test_a_429_on_create_is_retried_by_the_clients_policy(make_client, fake, sleeps):
    fake.batch_api.create_statuses.extend([429])
    api = BatchAPI(make_client())
    batch = api.create(api.upload(jsonl("a")), {})
    assert batch.status == "validating" and fake.batch_api.counts["create"] == 2
    assert sleeps == [0.001], "the server's retry-after-ms"
    fake.batch_api.create_statuses.extend([429])
    once = BatchAPI(make_client(max_retries=0))
    with pytest.raises(RateLimitError, match=r"Rate limited \(429\)"):
        once.create(once.upload(jsonl("a")), {})


@pytest.mark.parametrize("status", [404, 405])
def test_an_endpoint_without_the_batch_api_says_so(api, fake, status):
    fake.batch_api.missing_status = status
    with pytest.raises(BatchUnsupported) as caught:
        api.upload(jsonl("a"))
    assert str(caught.value).startswith(f"{fake.base_url} has no batch API ({status} on /files)")
    assert "%chat models" not in str(caught.value)


def test_an_unknown_batch_or_file_is_named(api, fake):
    unknown = r"does not know batch-nope \(404\): it was made with another"
    with pytest.raises(APIError, match=unknown):
        api.retrieve("batch-nope")
    with pytest.raises(APIError, match="does not know file-nope"):
        api.content("file-nope")


def test_answers_that_echo_the_key_are_redacted(api, fake):
    fake.responses["leak"] = f"your key is {KEY}"
    try:
        batch = api.create(api.upload(jsonl("leak")), {})
        api.retrieve(batch.id)
        done = api.retrieve(batch.id)
        [line], _ = api.lines(done.output_file_id)
    finally:
        del fake.responses["leak"]
    assert line.completion["choices"][0]["message"]["content"] == "your key is ***"
    assert KEY not in json.dumps(line.completion)


def test_file_ids_that_echo_the_key_are_masked_before_they_are_shown_or_stored():
    from nbchat.wire.batches import BatchStatus
    from nbchat.wire.redaction import Redactor

    redactor = Redactor.for_request(KEY, "http://127.0.0.1/v1")
    payload = {
        "id": "batch-1",
        "status": "completed",
        "input_file_id": f"file-in-{KEY}",
        "output_file_id": f"file-out-{KEY}",
        "error_file_id": f"file-err-{KEY}",
    }
    status = BatchStatus.of(payload, redactor, "test")
    shown = (status.input_file_id, status.output_file_id, status.error_file_id)
    assert all(KEY not in text and text.endswith("***") for text in shown), shown


def test_a_create_whose_reply_is_lost_is_not_sent_again(api, fake):
    """The server made the batch and the connection dropped before its reply: sending the
    create again would make (and bill) a second batch of the same requests."""
    file_id = api.upload(jsonl("a", "b"))
    fake.batch_api.lost_creates = 1
    with pytest.raises(NbchatError, match="may have been made all the same"):
        api.create(file_id, {"nbchat": "test"})
    assert fake.batch_api.counts["create"] == 1 and len(fake.batch_api.batches) == 1
