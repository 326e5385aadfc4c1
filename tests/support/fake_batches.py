"""The batch API of the fake server, in OpenAI's shapes: files, batches whose status moves under
the test's control, output and error files.

A batch's clock is its status reads: each ``GET /batches/{id}`` moves it on, so a test never
sleeps for it. A new batch is ``validating``; its first read makes it ``in_progress`` (or
``failed``, when lines were rejected); after ``steps`` reads in progress it ends with
``outcome``, unless ``hold`` keeps it going until `FakeBatches.finish`. Its output lines come in
a shuffled order (``shuffle``), so a client that matches by position fails::

    server.batch_api.steps = 2                     # two reads in progress, then it ends
    server.batch_api.hold = True                   # or: in progress until finish()
    server.batch_api.item_errors["Classify: b"] = "error"    # a line in the error file
    server.batch_api.item_errors["Classify: c"] = "missing"  # no line at all
    server.batch_api.outcome, server.batch_api.answered_before_end = "expired", 2
    server.batch_api.reject[3] = "invalid model"   # input line 3 is refused: the batch fails
    server.batch_api.create_statuses.append(429)   # the next create is refused (retry-after-ms)
    server.batch_api.content_statuses += [503] * 3 # the next file reads fail (no retry-after)
    server.batch_api.retrieve_statuses.append(503) # the next status read fails
    server.batch_api.lost_creates = 1              # the next batch is made, its reply lost
    server.batch_api.retrieve_delay = 2.0          # each status read takes 2 s
    server.batch_api.missing_status = 404          # no batch API at all (as vLLM): 404 or 405
    server.batch_api.extra_lines = [b"not json", b'{"custom_id": "nobody", ...}']

The requests are counted by kind (`FakeBatches.counts`: upload, create, retrieve, cancel,
content); the server's ``requests`` hold them too.
"""

from __future__ import annotations

import collections
import json
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

ENDPOINT = "/v1/chat/completions"
CREATED_AT = 1_700_000_000
Answer = Callable[[dict[str, Any], int], dict[str, Any]]  # (request body, number) -> completion
Reply = tuple[int, str, bytes, dict[str, str]]  # status, content type, body, headers
LOST: Reply = (0, "", b"", {})  # no reply: the server closes the connection


@dataclass
class _Batch:
    id: str
    input_file_id: str
    lines: list[dict[str, Any]]
    metadata: dict[str, Any]
    created_at: int
    status: str = "validating"
    reads: int = 0
    problems: list[dict[str, Any]] = field(default_factory=list)
    output_file_id: str | None = None
    error_file_id: str | None = None
    completed: int = 0
    failed: int = 0
    ended_at: int | None = None
    cancelling: bool = False

    def payload(self) -> dict[str, Any]:
        ended = {
            "completed": "completed_at",
            "failed": "failed_at",
            "expired": "expired_at",
            "cancelled": "cancelled_at",
        }
        data: dict[str, Any] = {
            "id": self.id,
            "object": "batch",
            "endpoint": ENDPOINT,
            "errors": {"object": "list", "data": self.problems} if self.problems else None,
            "input_file_id": self.input_file_id,
            "completion_window": "24h",
            "status": self.status,
            "output_file_id": self.output_file_id,
            "error_file_id": self.error_file_id,
            "created_at": self.created_at,
            "request_counts": {
                "total": len(self.lines),
                "completed": self.completed,
                "failed": self.failed,
            },
            "metadata": self.metadata,
        }
        if self.status in ended:
            data[ended[self.status]] = self.ended_at
        return data


class FakeBatches:
    """The ``/files`` and ``/batches`` endpoints; see the module docstring."""

    def __init__(self, answer: Answer) -> None:
        self._answer = answer
        self._lock = threading.Lock()
        self._next = 0  # ids never repeat, not even across resets
        self.reset()

    def reset(self) -> None:
        """Forget every file, batch, count and setting."""
        with self._lock:
            self.files: dict[str, bytes] = {}
            self.batches: dict[str, _Batch] = {}
            self.counts: collections.Counter[str] = collections.Counter()
            self.missing_status: int | None = None
            self.hold = False
            self.steps = 1
            self.outcome = "completed"
            self.answered_before_end = 0
            self.item_errors: dict[str, str] = {}
            self.reject: dict[int, str] = {}
            self.create_statuses: collections.deque[int] = collections.deque()
            self.content_statuses: collections.deque[int] = collections.deque()
            self.retrieve_statuses: collections.deque[int] = collections.deque()
            self.lost_creates = 0
            self.retrieve_delay = 0.0
            self.extra_lines: list[bytes] = []
            self.missing_output = False
            self.shuffle: int | None = 7  # the seed of the output's order (None: input order)
            self.max_lines = 50_000

    def finish(self, batch_id: str | None = None, outcome: str | None = None) -> None:
        """End a batch (every batch still running, by default) now, with ``outcome``."""
        with self._lock:
            for batch in list(self.batches.values()):
                if batch_id in (None, batch.id) and batch.status in ("validating", "in_progress"):
                    self._end(batch, outcome or self.outcome)

    def serves(self, route: str) -> bool:
        return route == "/files" or route.startswith(("/files/", "/batches"))

    def handle(self, method: str, route: str, content_type: str, raw: bytes) -> Reply:
        """The reply to one request of the batch API."""
        if self.missing_status is not None:
            return _error(self.missing_status, f"Invalid URL ({method} {route})")
        parts = route.strip("/").split("/")
        if method == "GET" and parts[0] == "batches" and self.retrieve_delay:
            time.sleep(self.retrieve_delay)  # outside the lock: other requests go on
        with self._lock:
            if method == "POST" and parts == ["files"]:
                return self._upload(content_type, raw)
            if (
                method == "GET"
                and len(parts) == 3
                and parts[0] == "files"
                and parts[2] == "content"
            ):
                return self._content(parts[1])
            if method == "POST" and parts == ["batches"]:
                return self._create(raw)
            if method == "GET" and len(parts) == 2 and parts[0] == "batches":
                return self._retrieve(parts[1])
            if method == "POST" and len(parts) == 3 and parts[2] == "cancel":
                return self._cancel(parts[1])
        return _error(404, f"Invalid URL ({method} {route})")

    # -- the endpoints ---------------------------------------------------------------------

    def _upload(self, content_type: str, raw: bytes) -> Reply:
        self.counts["upload"] += 1
        fields = _multipart(content_type, raw)
        if fields.get("purpose") != b"batch" or "file" not in fields:
            return _error(400, "a file and purpose 'batch' are required")
        file_id = self._id("file")
        self.files[file_id] = fields["file"]
        body = {"id": file_id, "object": "file", "bytes": len(fields["file"]), "purpose": "batch"}
        return _json(200, body)

    def _content(self, file_id: str) -> Reply:
        self.counts["content"] += 1
        if self.content_statuses:
            status = self.content_statuses.popleft()
            return _error(status, f"Fake error: HTTP {status}")
        if file_id not in self.files:
            return _error(404, f"No such File object: {file_id}")
        return 200, "application/octet-stream", self.files[file_id], {}

    def _create(self, raw: bytes) -> Reply:
        self.counts["create"] += 1
        if self.create_statuses:
            status = self.create_statuses.popleft()
            return _error(status, f"Fake error: HTTP {status}", {"retry-after-ms": "1"})
        body = json.loads(raw)
        content = self.files.get(body.get("input_file_id"))
        if content is None or body.get("endpoint") != ENDPOINT:
            return _error(400, "input_file_id and endpoint /v1/chat/completions are required")
        lines, problems = self._read_input(content)
        batch = _Batch(
            self._id("batch"), body["input_file_id"], lines, body.get("metadata") or {}, CREATED_AT
        )
        batch.problems = problems
        self.batches[batch.id] = batch
        if self.lost_creates:  # made, and the connection drops before the reply
            self.lost_creates -= 1
            return LOST
        return _json(200, batch.payload())

    def _retrieve(self, batch_id: str) -> Reply:
        self.counts["retrieve"] += 1
        if self.retrieve_statuses:
            status = self.retrieve_statuses.popleft()
            return _error(status, f"Fake error: HTTP {status}")
        batch = self.batches.get(batch_id)
        if batch is None:
            return _error(404, f"No batch found with id '{batch_id}'.")
        batch.reads += 1
        if batch.status == "validating":
            batch.status = "failed" if batch.problems else "in_progress"
            batch.ended_at = CREATED_AT + batch.reads if batch.problems else None
        elif batch.status == "cancelling":
            self._end(batch, "cancelled")
        elif batch.status == "in_progress" and not self.hold and batch.reads > self.steps:
            self._end(batch, self.outcome)
        return _json(200, batch.payload())

    def _cancel(self, batch_id: str) -> Reply:
        self.counts["cancel"] += 1
        batch = self.batches.get(batch_id)
        if batch is None:
            return _error(404, f"No batch found with id '{batch_id}'.")
        if batch.status in ("validating", "in_progress"):
            batch.status = "cancelling"
        return _json(200, batch.payload())

    # -- what a batch does -----------------------------------------------------------------

    def _read_input(self, content: bytes) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        lines: list[dict[str, Any]] = []
        problems: list[dict[str, Any]] = []
        seen: set[str] = set()
        for number, raw in enumerate(content.splitlines(), start=1):
            line = json.loads(raw)
            lines.append(line)
            message = self.reject.get(number)
            if line.get("custom_id") in seen:
                message = "The custom_id for this request is a duplicate of another request."
            if line.get("url") != ENDPOINT or line.get("method") != "POST":
                message = "The url and method of every request must be the batch's endpoint."
            if message:
                problems.append({"code": "invalid_request", "message": message, "line": number})
            seen.add(line.get("custom_id"))
        if len(lines) > self.max_lines:
            problems.append({"code": "too_many_requests", "message": "too many", "line": None})
        return lines, problems

    def _end(self, batch: _Batch, outcome: str) -> None:
        """The batch ends: its output and error files are written."""
        answered = len(batch.lines) if outcome == "completed" else self.answered_before_end
        output, errors = list(self.extra_lines), []
        for number, line in enumerate(batch.lines):
            custom_id, body = line["custom_id"], line["body"]
            fault = self.item_errors.get(_prompt(body))
            if fault == "missing":
                continue
            if number >= answered:
                code = f"batch_{outcome}"
                errors.append(_line(custom_id, None, {"code": code, "message": f"Batch {outcome}"}))
            elif fault == "error":
                refusal = {"error": {"message": "Fake refusal of this item", "type": "invalid"}}
                response = {"status_code": 400, "request_id": f"req_{number}", "body": refusal}
                errors.append(_line(custom_id, response, None))
            else:
                completion = self._answer(body, number)
                response = {"status_code": 200, "request_id": f"req_{number}", "body": completion}
                output.append(_line(custom_id, response, None))
        if self.shuffle is not None:
            random.Random(self.shuffle).shuffle(output)
        batch.completed, batch.failed = len(output) - len(self.extra_lines), len(errors)
        batch.output_file_id = self._file(output) if output else None
        batch.error_file_id = self._file(errors) if errors else None
        if self.missing_output and batch.output_file_id is not None:
            del self.files[batch.output_file_id]
        batch.status, batch.ended_at = outcome, CREATED_AT + 60 + batch.reads

    def _file(self, lines: list[bytes]) -> str:
        file_id = self._id("file")
        self.files[file_id] = b"".join(line + b"\n" for line in lines)
        return file_id

    def _id(self, kind: str) -> str:
        self._next += 1
        return f"{kind}-{self._next}"


def _line(custom_id: str, response: Any, error: Any) -> bytes:
    line = {"id": f"batch_req_{custom_id[-8:]}", "custom_id": custom_id}
    return json.dumps({**line, "response": response, "error": error}).encode()


def _prompt(body: dict[str, Any]) -> str:
    """The text of a request's last message (the item's prompt)."""
    content = body["messages"][-1].get("content")
    return content if isinstance(content, str) else json.dumps(content)


def _multipart(content_type: str, raw: bytes) -> dict[str, bytes]:
    """The fields of a multipart/form-data body, by name."""
    boundary = content_type.partition("boundary=")[2].strip('"').encode()
    fields: dict[str, bytes] = {}
    for part in raw.split(b"--" + boundary)[1:-1]:
        head, _, value = part.partition(b"\r\n\r\n")
        name = head.partition(b'name="')[2].partition(b'"')[0].decode()
        fields[name] = value[:-2] if value.endswith(b"\r\n") else value
    return fields


def _json(status: int, body: Any, headers: dict[str, str] | None = None) -> Reply:
    return status, "application/json", json.dumps(body).encode(), headers or {}


def _error(status: int, message: str, headers: dict[str, str] | None = None) -> Reply:
    error = {"message": message, "type": "invalid_request_error", "param": None, "code": None}
    return _json(status, {"error": error}, headers)
