"""The record: what nbchat stores in a cell's output, and the cache key that finds it again.

A record rides in the answer's ``display_data`` bundle under the MIME type
``application/vnd.nbchat.v1+json``. Schema version 1, every field JSON:

=================  ==========================================================================
``schema``         ``1``
``kind``           ``"answer"`` (a turn that was sent) or ``"system"`` (a ``--system`` cell)
``nbchat_version`` the nbchat version that wrote it
``key``            cache key of the request, ``"v1:" + sha256`` (answers only, else ``null``)
``cell_id``        the notebook cell id the kernel was told, or ``null``
``thread``         the thread name
``new_thread``     ``true`` when this cell started its thread afresh (``--new``)
``prompt``         the user message as sent (after ``{name}`` interpolation), or the system text
``request``        ``{"base_url", "model", "messages", "params"}`` exactly as sent, minus the key,
                   headers, ``stream`` and ``stream_options`` (answers only)
``response``       the answer as one ``chat.completion`` dict, streamed or not (answers only)
``timing``         ``{"started_at": ISO-8601, "elapsed_s", "first_token_s", "streamed"}``
``stored_at``      ISO-8601 UTC time the answer was complete
=================  ==========================================================================

Only complete answers become records. Readers accept every schema version they know (see
`_UPGRADES`) and ignore newer ones. A record is data: replaying it never executes anything.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from nbchat._version import __version__
from nbchat.completion import completion_text, finish_reason

__all__ = [
    "RECORD_MIME",
    "RECORD_MIME_PATTERN",
    "SCHEMA_VERSION",
    "Record",
    "normalise_base_url",
    "request_key",
    "utc_now",
]

SCHEMA_VERSION = 1
RECORD_MIME = f"application/vnd.nbchat.v{SCHEMA_VERSION}+json"
RECORD_MIME_PATTERN = re.compile(r"^application/vnd\.nbchat\.v(\d+)\+json$")
_KEY_PREFIX = "v1:"
# Request fields that never change the answer, so never change the key.
_TRANSPORT_FIELDS = frozenset({"stream", "stream_options", "model", "messages"})


def utc_now() -> str:
    """The current time as ISO-8601 UTC with a ``Z``."""
    return datetime.now(timezone.utc).isoformat(timespec="seconds").replace("+00:00", "Z")


def normalise_base_url(url: str) -> str:
    """Lower-case scheme and host, no trailing slash: equal endpoints give equal keys."""
    parts = urlsplit(url.strip())
    path = parts.path.rstrip("/")
    return urlunsplit((parts.scheme.lower(), parts.netloc.lower(), path, parts.query, ""))


def request_key(base_url: str, model: str, messages: list[Any], params: dict[str, Any]) -> str:
    """The cache key: a hash of everything that changes the answer, and nothing else."""
    answer_params = {k: v for k, v in params.items() if k not in _TRANSPORT_FIELDS}
    canonical = json.dumps(
        [normalise_base_url(base_url), model, messages, answer_params],
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=False,
        default=str,
    )
    return _KEY_PREFIX + hashlib.sha256(canonical.encode("utf-8")).hexdigest()


@dataclass
class Record:
    """One stored turn (or system prompt) of a thread."""

    kind: str
    thread: str
    prompt: str
    cell_id: str | None = None
    new_thread: bool = False
    key: str | None = None
    request: dict[str, Any] | None = None
    response: dict[str, Any] | None = None
    timing: dict[str, Any] = field(default_factory=dict)
    stored_at: str = field(default_factory=utc_now)
    nbchat_version: str = __version__
    schema: int = SCHEMA_VERSION

    @property
    def answer(self) -> str:
        """The answer's text ("" for a system record)."""
        return completion_text(self.response) if self.response else ""

    @property
    def finish_reason(self) -> str | None:
        """Why the answer ended (``stop``, ``length``, ...)."""
        return finish_reason(self.response) if self.response else None

    @property
    def usage(self) -> dict[str, Any]:
        """Token usage as the server reported it (empty when it did not)."""
        return dict((self.response or {}).get("usage") or {})

    @property
    def model(self) -> str | None:
        """The model that answered, else the model asked for."""
        answered = (self.response or {}).get("model")
        return answered or (self.request or {}).get("model")

    def expected_key(self) -> str | None:
        """The key recomputed from the stored request; differs from ``key`` if tampered with."""
        request = self.request
        if not request:
            return None
        params = request.get("params", {})
        messages = request.get("messages", [])
        if not isinstance(params, dict) or not isinstance(messages, list):
            return None
        return request_key(
            str(request.get("base_url", "")), str(request.get("model", "")), messages, params
        )

    def consistency_problem(self) -> str | None:
        """Why this record cannot be trusted as a cached answer, or None when it can."""
        if self.kind != "answer":
            return None
        if self.expected_key() != self.key:
            return "key does not match its request"
        messages = (self.request or {}).get("messages") or []
        last = messages[-1] if messages and isinstance(messages[-1], dict) else {}
        if last.get("role") != "user" or last.get("content") != self.prompt:
            return "prompt does not match the request's last user message"
        return None

    def to_json(self) -> dict[str, Any]:
        """The JSON object stored in the notebook (shallow: it shares the nested values)."""
        return {name: getattr(self, name) for name in self.__dataclass_fields__}

    @classmethod
    def from_json(cls, data: Any, *, version: int = SCHEMA_VERSION) -> Record:
        """Read a stored record of schema ``version``; raises ``ValueError`` when malformed."""
        if not isinstance(data, dict):
            raise ValueError("a record is a JSON object")
        stated = data.get("schema", version)
        if not isinstance(stated, int) or isinstance(stated, bool):
            raise ValueError(f"record schema must be an integer, not {stated!r}")
        if stated != version:
            raise ValueError(f"record says schema {stated} but is stored as version {version}")
        if version > SCHEMA_VERSION:
            raise ValueError(f"record schema {version} is newer than this nbchat understands")
        data = _UPGRADES.get(version, lambda d: d)(dict(data))
        problems = [f for f in ("kind", "thread", "prompt") if not isinstance(data.get(f), str)]
        if data.get("kind") == "answer":
            if not isinstance(data.get("request"), dict):
                problems.append("request")
            if not isinstance(data.get("response"), dict):
                problems.append("response")
            if not isinstance(data.get("key"), str):
                problems.append("key")
        if not isinstance(data.get("timing", {}), dict):
            problems.append("timing")
        if problems:
            raise ValueError(f"record fields missing or malformed: {', '.join(problems)}")
        known = cls.__dataclass_fields__
        return cls(**{k: v for k, v in data.items() if k in known})


# Version -> function turning a record of that version into the current one.
_UPGRADES: dict[int, Any] = {}
