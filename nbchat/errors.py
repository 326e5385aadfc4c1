"""Every error nbchat raises. A leaf: it imports nothing of nbchat's and no httpx.

    NbchatError
    ├── ConfigError                 settings that cannot work (no key, bad option)
    ├── APIError                    the server answered with an error status
    │   ├── BadRequestError         400
    │   │   └── ContextLengthError  400, the conversation is too long for the model
    │   ├── AuthenticationError     401 / 403: wrong or missing key
    │   ├── NotFoundError           404: usually a model that does not exist
    │   ├── RateLimitError          429, after the retries
    │   ├── TryAgainError           408 / 409, after the retries: the server asked for a new try
    │   ├── ServerError             5xx, after the retries
    │   └── BatchUnsupported        404 / 405 on /files or /batches: no batch API there
    ├── APIConnectionError          the server could not be reached, after the retries
    │   └── APITimeoutError         no answer in time
    ├── StreamError                 an answer that started but did not finish
    │   ├── TruncatedStreamError    the connection ended before the answer did
    │   ├── StreamErrorEvent        the server sent an error inside the stream
    │   ├── StreamInterrupted       Ctrl-C while streaming or running a tool (also a
    │   │                           KeyboardInterrupt); raised by the session and its tool
    │   │                           loop, never by the stream itself
    │   ├── ToolRoundsExceeded      the model still called tools after --max-tool-rounds
    │   └── MalformedStreamError    an event that is not a chunk (also a ProtocolError)
    ├── ProtocolError               a body that is not the protocol (bad JSON, wrong shape)
    │   └── StructuredOutputError   an answer that does not fit --schema or is not --json
    ├── BatchError                  some items of a --map failed; the others are kept
    │                               (``.values``: the results, None where an item failed)
    ├── BatchInterrupted            Ctrl-C during --map (also a KeyboardInterrupt); the
    │                               completed items are kept (``.result``)
    ├── BatchPending                a provider's batch (--batch) still running when the cell
    │                               stopped waiting for it; it goes on, and a re-run picks it up
    ├── OfflineMiss                 offline mode and no stored answer for this request
    ├── McpServerError              an MCP server that failed to start, timed out or stopped
    └── NotebookError               a notebook file that cannot be read

Every message is one short line; it never contains an API key. An error states facts, and
names what the user can do about it as `Remedy` values; the caller (the ``%%chat`` magic,
`nbchat.ask`) says those in its own words (``--new``, ``new=True``), appended by `advise`.
A `StreamError` carries the partial answer received so far (`.partial`, completion-shaped). Any
error of a turn that ran tools carries the messages of the rounds before it (`.exchange`).
httpx failures and error responses become these errors in one place, `nbchat.wire.transport`.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from typing import Any

__all__ = [
    "PASSING_ERRORS",
    "APIConnectionError",
    "APIError",
    "APITimeoutError",
    "AuthenticationError",
    "BadRequestError",
    "BatchError",
    "BatchInterrupted",
    "BatchPending",
    "BatchUnsupported",
    "ConfigError",
    "ContextLengthError",
    "MalformedStreamError",
    "McpServerError",
    "NbchatError",
    "NotFoundError",
    "NotebookError",
    "OfflineMiss",
    "ProtocolError",
    "RateLimitError",
    "Remedy",
    "ServerError",
    "StreamError",
    "StreamErrorEvent",
    "StreamInterrupted",
    "StructuredOutputError",
    "ToolRoundsExceeded",
    "TruncatedStreamError",
    "TryAgainError",
]


class Remedy(enum.Enum):
    """What the user can do about an error, said by the caller in its own words."""

    NEW_THREAD = "new_thread"  # start the thread afresh at this cell
    OTHER_THREAD = "other_thread"  # ask in another thread
    NAME_MODEL = "name_model"  # name a model
    MORE_TOKENS = "more_tokens"  # allow a longer answer
    MORE_TOOL_ROUNDS = "more_tool_rounds"  # allow more rounds of tool calls
    ANY_JSON = "any_json"  # ask for any JSON and check the schema here
    REFRESH_ONLINE = "refresh_online"  # ask again, online
    RAISE_BUDGET = "raise_budget"  # allow this session to spend more
    REAL_TIME = "real_time"  # send the items of a --map in real time, not as a provider batch


class NbchatError(Exception):
    """Base class of every nbchat error. ``exchange`` holds the messages of a tool turn's rounds
    before the failure (empty unless tools ran), so what ran can stay in sight; ``remedies``
    what the user can do, and ``advice`` those remedies in the words of the caller that raised
    the error to the user (`advise`)."""

    remedies: tuple[Remedy, ...] = ()

    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        self.exchange: list[dict[str, Any]] = []
        self.advice = ""

    def advise(self, words: Mapping[Remedy, str]) -> None:
        """Say the remedies in ``words`` (the caller's), after the facts."""
        said = [words[remedy] for remedy in self.remedies if remedy in words]
        self.advice = ", ".join(said)

    def __str__(self) -> str:
        facts = super().__str__()
        return f"{facts.rstrip('.')}: {self.advice}" if self.advice else facts

    def _render_traceback_(self) -> list[str]:
        """IPython shows this instead of a stack: the cell fails with one short line.

        (A ``UsageError`` would print the same way but leave the execute reply "ok", so
        "Run All" would not stop.)
        """
        return [f"\x1b[0;31m{type(self).__name__}\x1b[0m: {self}"]


class ConfigError(NbchatError):
    """The settings cannot work as given."""


class NotebookError(NbchatError):
    """A notebook file is missing, unreadable or not a notebook."""


class BudgetExceeded(NbchatError):
    """The session has spent its budget: the request was not sent."""

    remedies = (Remedy.RAISE_BUDGET,)


class OfflineMiss(NbchatError):
    """Offline mode is on and no stored answer matches the request."""


class McpServerError(NbchatError):
    """An MCP server failed to start, did not answer in time, or stopped during a call; the
    message ends with its stderr's last lines (secrets redacted). Nothing is stored."""


class BatchError(NbchatError):
    """Some items of a batch failed after the others completed; ``values`` holds the results
    (None where an item failed)."""

    def __init__(self, message: str, *, values: Any = None) -> None:
        super().__init__(message)
        self.values = values


class BatchInterrupted(NbchatError, KeyboardInterrupt):
    """Ctrl-C during a batch; ``result`` holds what completed (a `engine.batch.BatchResult`)."""

    def __init__(self, message: str, *, result: Any = None) -> None:
        super().__init__(message)
        self.result = result


class BatchPending(NbchatError):
    """A provider's batch is still running when the cell stops waiting for it (``--wait`` or a
    headless run past ``--batch-timeout``, or Ctrl-C); the batch goes on, and running the cell
    again picks up its results."""


class ProtocolError(NbchatError):
    """The server's answer does not follow the chat-completions protocol."""


class StructuredOutputError(ProtocolError):
    """The answer is not JSON or does not fit the schema; ``text`` is the answer as received."""

    def __init__(
        self, message: str, *, text: str, exchange: list[dict[str, Any]] | None = None
    ) -> None:
        super().__init__(message)
        self.text = text
        self.exchange = exchange or []  # the tool rounds before the answer, when there were some


class APIError(NbchatError):
    """The server answered with an error status."""

    def __init__(
        self,
        message: str,
        *,
        status_code: int,
        request_id: str | None = None,
        body: Any = None,
        retries: int = 0,
        retry_headers: dict[str, str] | None = None,
    ) -> None:
        if request_id:
            message = f"{message} (request id {request_id})"
        super().__init__(message)
        self.status_code = status_code
        self.request_id = request_id
        self.body = body
        self.retries = retries
        # The response's advice on retrying (retry-after, retry-after-ms, x-should-retry).
        self.retry_headers = retry_headers or {}


class BadRequestError(APIError):
    """400: the request was rejected as invalid."""


class ContextLengthError(BadRequestError):
    """400: the conversation does not fit in the model's context window."""

    remedies = (Remedy.NEW_THREAD,)


class AuthenticationError(APIError):
    """401/403: the key is wrong, missing or lacks permission."""


class NotFoundError(APIError):
    """404: usually a model name the server does not know."""


class RateLimitError(APIError):
    """429 after all retries."""


class TryAgainError(APIError):
    """408 (request timeout) or 409 (conflict) after all retries: the server asked for the
    request to be made again later."""


class ServerError(APIError):
    """5xx after all retries."""


class BatchUnsupported(APIError):
    """404 or 405 on ``/files`` or ``/batches``: the endpoint has no batch API."""

    remedies = (Remedy.REAL_TIME,)


class APIConnectionError(NbchatError):
    """The server could not be reached."""


class APITimeoutError(APIConnectionError):
    """The server did not answer in time."""


class StreamError(NbchatError):
    """An answer that started streaming but did not complete.

    `partial` is the answer received so far, folded into a `chat.completion`-shaped dict;
    `exchange`, the messages of the turn's earlier rounds (tool calls and their results).
    """

    def __init__(
        self,
        message: str,
        *,
        partial: dict[str, Any] | None = None,
        exchange: list[dict[str, Any]] | None = None,
    ) -> None:
        super().__init__(message)
        self.partial = partial
        self.exchange = exchange or []

    @property
    def partial_text(self) -> str:
        """The text of the first choice received before the failure."""
        choices = (self.partial or {}).get("choices")
        if not isinstance(choices, list) or not choices or not isinstance(choices[0], dict):
            return ""
        message = choices[0].get("message")
        content = message.get("content") if isinstance(message, dict) else None
        if isinstance(content, list):  # typed parts (Mistral): the text ones are the answer
            parts = (p for p in content if isinstance(p, dict) and p.get("type") == "text")
            return "".join(p["text"] for p in parts if isinstance(p.get("text"), str))
        return content if isinstance(content, str) else ""


class TruncatedStreamError(StreamError):
    """The connection closed before the answer finished."""


class StreamErrorEvent(StreamError):
    """The server reported an error inside a 200 stream."""


class StreamInterrupted(StreamError, KeyboardInterrupt):
    """Ctrl-C during a turn: while the answer streamed, a tool ran, or an MCP server listed its
    tools; still a `KeyboardInterrupt` for code that expects one."""


class ToolRoundsExceeded(StreamError):
    """The model asked for tools again after ``--max-tool-rounds`` rounds of them."""

    remedies = (Remedy.MORE_TOOL_ROUNDS,)


class MalformedStreamError(StreamError, ProtocolError):
    """An event in the stream is not valid JSON, not a chunk, or has a wrongly typed field."""


# Failures a later try may not meet (the network, the server, its rate limit, a body cut off):
# what polls a provider's batch says them and tries again at its next tick.
PASSING_ERRORS = (
    APIConnectionError,
    RateLimitError,
    TryAgainError,
    ServerError,
    TruncatedStreamError,
)
