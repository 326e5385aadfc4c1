"""The batch API's input lines and limits: what a reader of stored batch state needs without
the HTTP client (`nbchat.wire.batches` sends them)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

__all__ = [
    "BATCH_URL",
    "COMPLETION_WINDOW",
    "MAX_FILE_BYTES",
    "MAX_REQUESTS",
    "TERMINAL",
    "request_line",
]

BATCH_URL = "/v1/chat/completions"  # what each line asks for, and the batch's endpoint
COMPLETION_WINDOW = "24h"
MAX_REQUESTS = 50_000  # lines per file (OpenAI's limit)
MAX_FILE_BYTES = 200 * 1024 * 1024  # bytes per file (OpenAI's limit: 200 MB)
# The statuses a batch ends in: it will not change again.
TERMINAL = frozenset({"completed", "failed", "expired", "cancelled"})


def request_line(custom_id: str, body: Mapping[str, Any]) -> bytes:
    """One line of a batch's input file (with its newline): ``body`` asked of the chat
    endpoint, answered under ``custom_id``."""
    line = {"custom_id": custom_id, "method": "POST", "url": BATCH_URL, "body": body}
    return json.dumps(line, ensure_ascii=False, separators=(",", ":")).encode() + b"\n"
