"""A body that should be a ``chat.completion`` (a response's, or a line of a batch's output
file), checked and redacted. Apart from the transport so that reading a batch's results needs
no httpx."""

from __future__ import annotations

from typing import Any

from nbchat.errors import APIError, ProtocolError
from nbchat.wire.completion import has_answer, reported_error, whole_completion
from nbchat.wire.protocol import completion_problem, error_detail, is_error_body
from nbchat.wire.redaction import Redactor

__all__ = ["DETAIL_LIMIT", "checked_completion"]

DETAIL_LIMIT = 200  # characters of server text quoted in a message


def checked_completion(
    payload: Any, redactor: Redactor, *, url: str, status_code: int, request_id: str | None
) -> dict[str, Any]:
    """A body that should be a ``chat.completion`` (a response's, or a line of a batch's
    output file), redacted: an ``error`` object in it keeps its (redacted) message as an
    `APIError`; a wrongly typed field is named in a `ProtocolError`, as is a body with no
    answer at all. ``url`` (masked) says where it came from."""
    if is_error_body(payload) or reported_error(payload) is not None:
        detail = redactor.clip(error_detail(payload)) or "finish_reason: error"
        raise APIError(
            f"The server reported an error: {detail}",
            status_code=status_code,
            request_id=request_id,
            body=redactor.json(payload),
        )
    problem = completion_problem(payload)
    if problem is not None:
        raise ProtocolError(
            f"{url} did not answer with a valid chat completion: "
            f"{redactor.clip(problem, DETAIL_LIMIT)}."
        )
    if not has_answer(payload):
        raise ProtocolError(
            f"{url} answered without an answer (no text and no finish reason); "
            "nothing is stored. Run the cell again."
        )
    payload = whole_completion(payload)
    return redactor.json(payload) if redactor else payload
