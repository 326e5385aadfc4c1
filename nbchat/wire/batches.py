"""The batch API of OpenAI-compatible servers: a JSONL file of requests in, a file of answers
out, within a completion window (OpenAI, DashScope's compatible mode, Groq, Together).

    api = BatchAPI(client)                       # a ChatClient: its key, retries, redaction
    file_id = api.upload(jsonl)                  # POST /files, purpose "batch"
    batch = api.create(file_id, {"nbchat": "0.3"})   # POST /batches
    batch = api.retrieve(batch.id)               # GET /batches/{id}: status and counts
    lines, malformed = api.lines(batch.output_file_id)   # GET /files/{id}/content

Each request line is ``{"custom_id", "method": "POST", "url": "/v1/chat/completions",
"body"}`` (`request_line`); each output line answers one ``custom_id``, in any order, with a
``response`` (``status_code`` and the ``body`` a request would have had) or an ``error``
(`BatchLine`). Calls go through the chat client (`ChatClient.request`): the same key, retry
policy (a 429 on create is retried as a chat request's is; a create whose connection was lost
once sent is not: it may have made the batch) and error translation. A server without the API
answers 404 or 405 on ``/files`` or ``/batches``: `BatchUnsupported`. Every text from the
server (answers, error messages, validation errors, ids) is redacted with the request's
`Redactor`.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from nbchat._text import clip, one_line
from nbchat.errors import (
    APIConnectionError,
    APIError,
    BatchUnsupported,
    NbchatError,
    ProtocolError,
)
from nbchat.wire.batch_lines import (
    BATCH_URL,
    COMPLETION_WINDOW,
    MAX_FILE_BYTES,
    MAX_REQUESTS,
    TERMINAL,
    request_line,
)
from nbchat.wire.checked import checked_completion
from nbchat.wire.protocol import error_code, error_detail
from nbchat.wire.redaction import Redactor, mask_url

if TYPE_CHECKING:  # httpx is loaded with the client, when a request is made
    from nbchat.wire.client import ChatClient, Upload

__all__ = [
    "BATCH_URL",
    "COMPLETION_WINDOW",
    "MAX_FILE_BYTES",
    "MAX_REQUESTS",
    "TERMINAL",
    "BatchAPI",
    "BatchLine",
    "BatchStatus",
    "request_line",
]

_NO_API = (404, 405)
_PROBLEMS_KEPT = 20  # validation errors of a failed batch kept (a file can have thousands)


@dataclass(frozen=True, kw_only=True)
class BatchStatus:
    """A batch as the server last reported it."""

    id: str
    status: str  # validating, failed, in_progress, finalizing, completed, expired, cancelling...
    input_file_id: str
    output_file_id: str | None = None
    error_file_id: str | None = None
    total: int = 0
    completed: int = 0
    failed: int = 0
    created_at: int | None = None  # Unix seconds
    ended_at: int | None = None  # when it completed, failed, expired or was cancelled
    problems: tuple[tuple[int | None, str], ...] = ()  # (input line from 1, message): rejected

    @property
    def finished(self) -> bool:
        """Whether the batch ended (well or not): its status will not change again."""
        return self.status in TERMINAL

    @classmethod
    def of(cls, payload: Any, redactor: Redactor, where: str) -> BatchStatus:
        """A batch object of the API; `ProtocolError` when it is not one."""
        if not isinstance(payload, dict) or not isinstance(payload.get("id"), str):
            raise ProtocolError(f"{where} did not answer with a batch object.")
        counts = payload.get("request_counts")
        counts = counts if isinstance(counts, dict) else {}
        ended = [payload.get(name) for name in ("completed_at", "failed_at", "expired_at")]
        ended += [payload.get("cancelled_at")]
        return cls(
            id=redactor.clip(payload["id"], 120),
            status=_text(payload.get("status")) or "unknown",
            input_file_id=_id(payload.get("input_file_id"), redactor),
            output_file_id=_id(payload.get("output_file_id"), redactor) or None,
            error_file_id=_id(payload.get("error_file_id"), redactor) or None,
            total=_count(counts.get("total")),
            completed=_count(counts.get("completed")),
            failed=_count(counts.get("failed")),
            created_at=_time(payload.get("created_at")),
            ended_at=next((_time(t) for t in ended if _time(t) is not None), None),
            problems=_problems(payload.get("errors"), redactor),
        )


@dataclass(frozen=True)
class BatchLine:
    """One line of a batch's output (or error) file: the answer to ``custom_id`` as a checked
    ``chat.completion``, or why there is none."""

    custom_id: str
    completion: dict[str, Any] | None
    error: str | None


class BatchAPI:
    """The batch API of the chat client's endpoint."""

    def __init__(self, client: ChatClient) -> None:
        self.client = client

    def upload(self, content: bytes, name: str = "nbchat-batch.jsonl") -> str:
        """Upload a JSONL input file (purpose ``batch``); its id."""
        from nbchat.wire.client import Upload  # a client exists: httpx is loaded

        form = Upload({"purpose": "batch"}, name, content, "application/jsonl")
        payload = self._call("POST", "/files", None, upload=form)
        file_id = payload.get("id") if isinstance(payload, dict) else None
        if not isinstance(file_id, str) or not file_id:
            raise ProtocolError(f"{self._shown('/files')} did not answer with a file id.")
        return _id(file_id, self.client.redactor())  # it is stored in the notebook

    def create(self, input_file_id: str, metadata: Mapping[str, str]) -> BatchStatus:
        """Start a batch of the uploaded file's requests."""
        body = {
            "input_file_id": input_file_id,
            "endpoint": BATCH_URL,
            "completion_window": COMPLETION_WINDOW,
            "metadata": dict(metadata),
        }
        try:  # not sent again once it may have arrived: a second batch bills everything twice
            payload = self._call("POST", "/batches", body, resend=False)
        except APIConnectionError as error:
            raise type(error)(
                f"{error} The batch may have been made all the same: look at the provider's "
                "batches before submitting it again."
            ) from None
        return self._status(payload, "/batches")

    def retrieve(self, batch_id: str) -> BatchStatus:
        """The batch's status and counts now."""
        path = f"/batches/{batch_id}"
        return self._status(self._call("GET", path, None, known=batch_id), path)

    def cancel(self, batch_id: str) -> BatchStatus:
        """Ask the server to cancel the batch (it goes to ``cancelling``, then ``cancelled``;
        what was answered before is kept in its output file)."""
        path = f"/batches/{batch_id}/cancel"
        return self._status(self._call("POST", path, None, known=batch_id), path)

    def content(self, file_id: str) -> bytes:
        """A file's content."""
        response = self._open("GET", f"/files/{file_id}/content", None, known=file_id)
        try:
            return response.read()
        finally:
            response.close()

    def lines(self, file_id: str) -> tuple[list[BatchLine], int]:
        """The lines of an output or error file, and how many were not lines of the API's
        shape (skipped)."""
        content = self.content(file_id)
        redactor = self.client.redactor()
        where = self._shown(f"/files/{file_id}/content")
        found: list[BatchLine] = []
        malformed = 0
        for raw in content.split(b"\n"):
            if not raw.strip():
                continue
            line = parse_line(raw, redactor, where)
            if line is None:
                malformed += 1
            else:
                found.append(line)
        return found, malformed

    # -- sending ---------------------------------------------------------------------------

    def _call(
        self,
        method: str,
        path: str,
        body: Mapping[str, Any] | None,
        *,
        upload: Upload | None = None,
        known: str | None = None,
        resend: bool = True,
    ) -> Any:
        response = self._open(method, path, body, upload=upload, known=known, resend=resend)
        try:
            return response.json()
        finally:
            response.close()

    def _open(
        self,
        method: str,
        path: str,
        body: Mapping[str, Any] | None,
        *,
        upload: Upload | None = None,
        known: str | None = None,
        resend: bool = True,
    ) -> Any:
        """The open response; a 404 or 405 says what is missing: the batch API (``known``
        None), or the batch or file named ``known``."""
        try:
            return self.client.request(method, path, body, upload=upload, resend=resend)
        except APIError as error:
            if error.status_code not in _NO_API:
                raise
            failure = error
        if known is None:
            root = "/" + path.strip("/").split("/")[0]
            raise BatchUnsupported(
                f"{self._host()} has no batch API ({failure.status_code} on {root})",
                status_code=failure.status_code,
                request_id=failure.request_id,
                body=failure.body,
            )
        redacted = self.client.redactor().clip(known, 80)
        raise APIError(
            f"{self._host()} does not know {redacted} ({failure.status_code}): it was made "
            "with another endpoint or key, or deleted.",
            status_code=failure.status_code,
            request_id=failure.request_id,
            body=failure.body,
        )

    def _status(self, payload: Any, path: str) -> BatchStatus:
        return BatchStatus.of(payload, self.client.redactor(), self._shown(path))

    def _shown(self, path: str) -> str:
        return mask_url(self.client.config.url(path))

    def _host(self) -> str:
        return mask_url(self.client.config.base_url)


def parse_line(raw: bytes, redactor: Redactor, where: str) -> BatchLine | None:
    """One output line as a `BatchLine`, or None when it is not of the API's shape."""
    try:
        line = json.loads(raw)
    except (ValueError, RecursionError):
        return None
    custom_id = line.get("custom_id") if isinstance(line, dict) else None
    if not isinstance(custom_id, str):
        return None
    response, error = line.get("response"), line.get("error")
    if isinstance(error, dict) and (response is None or not isinstance(response, dict)):
        code, message = _text(error.get("code")), _text(error.get("message"))
        said = redactor.clip(f"{code}: {message}" if code else message or "no reason given")
        return BatchLine(custom_id, None, f"The batch did not answer it: {said}")
    if not isinstance(response, dict):
        return None
    status, body = response.get("status_code"), response.get("body")
    request_id = _text(response.get("request_id")) or None
    if status != 200:
        return BatchLine(custom_id, None, _refusal(status, body, redactor))
    try:
        completion = checked_completion(
            body, redactor, url=where, status_code=200, request_id=request_id
        )
    except NbchatError as failure:
        return BatchLine(custom_id, None, str(failure))
    return BatchLine(custom_id, completion, None)


def _refusal(status: Any, body: Any, redactor: Redactor) -> str:
    """Why the request of a line was refused, as a chat request's refusal would say it."""
    detail = redactor.clip(error_detail(body) or error_code(body))
    shown = status if isinstance(status, int) else "no status"
    said = f" Server said: {detail}" if detail else ""
    return f"The server rejected the request ({shown}).{said}"


def _problems(errors: Any, redactor: Redactor) -> tuple[tuple[int | None, str], ...]:
    """A failed batch's validation errors: (input line, message)."""
    data = errors.get("data") if isinstance(errors, dict) else errors
    found: list[tuple[int | None, str]] = []
    for entry in data[:_PROBLEMS_KEPT] if isinstance(data, list) else ():
        if not isinstance(entry, dict):
            continue
        line = entry.get("line")
        message = redactor.clip(_text(entry.get("message")) or _text(entry.get("code")), 200)
        found.append(
            (
                line if isinstance(line, int) and not isinstance(line, bool) else None,
                message or "rejected",
            )
        )
    return tuple(found)


def _text(value: Any) -> str:
    return clip(one_line(value), 200) if isinstance(value, str) else ""


def _id(value: Any, redactor: Redactor) -> str:
    """A file id as the server gave it, any secret it echoes masked (ids are shown and
    stored)."""
    return redactor.clip(value, 200) if isinstance(value, str) else ""


def _count(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else 0


def _time(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None
