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
Notebook files are edited by hand, so `Record.from_json` checks the JSON type of every field
above (nested ones included: ``response.choices[0].finish_reason`` is a string or null, token
counts are integers, ...) and rejects a record whose field has the wrong type, naming it.
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
        """Read a stored record of schema ``version``.

        Raises ``ValueError`` with a short reason naming the field when the record is malformed
        (``response.usage.prompt_tokens is a string, not an integer``): every field the package
        reads is checked here, so a hand-edited record is reported and skipped, never a crash.
        """
        if not isinstance(data, dict):
            raise ValueError(f"a record is a JSON object, not {_json_kind(data)}")
        stated = data.get("schema", version)
        if not isinstance(stated, int) or isinstance(stated, bool):
            raise ValueError(f"record schema must be an integer, not {_json_kind(stated)}")
        if stated != version:
            raise ValueError(f"record says schema {stated} but is stored as version {version}")
        if version > SCHEMA_VERSION:
            raise ValueError(f"record schema {version} is newer than this nbchat understands")
        data = _UPGRADES.get(version, lambda d: d)(dict(data))
        _check_fields(data)
        known = cls.__dataclass_fields__
        return cls(**{k: v for k, v in data.items() if k in known})


# -- checking a stored record ----------------------------------------------------------------------
# Anyone can edit a notebook file. Each check raises ValueError naming the first bad field.


def _json_kind(value: Any) -> str:
    """``a string``, ``an integer``, ``null``...: a value's JSON type, for messages."""
    if value is None:
        return "null"
    for kinds, name in _KIND_NAMES:
        if isinstance(value, kinds):
            return name
    return f"a {type(value).__name__}"


_KIND_NAMES: tuple[tuple[type | tuple[type, ...], str], ...] = (
    (bool, "a boolean"),  # before int: True is an int to Python, not to JSON
    (int, "an integer"),
    (float, "a number"),
    (str, "a string"),
    (list, "a list"),
    (dict, "an object"),
)
_EXPECTED = {
    str: "a string",
    int: "an integer",
    bool: "a boolean",
    dict: "an object",
    list: "a list",
    (int, float): "a number",
    (str, list): "a string or a list",
}


def _need(value: Any, path: str, kinds: type | tuple[type, ...], *, null: bool = False) -> None:
    """Raise unless ``value`` is of ``kinds`` (or None when ``null``); a bool is no number."""
    if value is None and null:
        return
    wrong_bool = isinstance(value, bool) and not (kinds is bool or kinds == (bool,))
    if wrong_bool or not isinstance(value, kinds):
        expected = _EXPECTED[kinds] + (" or null" if null else "")
        raise ValueError(f"{path} is {_json_kind(value)}, not {expected}")


def _get(obj: dict[str, Any], name: str, path: str) -> Any:
    """A required field of ``obj`` (whose path is ``path``)."""
    if name not in obj:
        raise ValueError(f"{path}{'.' if path else ''}{name} is missing")
    return obj[name]


def _check_fields(data: dict[str, Any]) -> None:
    """Check the type of every field of a record (current schema); raise ValueError if wrong."""
    for name in ("kind", "thread", "prompt"):
        _need(_get(data, name, ""), name, str)
    for name in ("stored_at", "nbchat_version"):
        if name in data:
            _need(data[name], name, str)
    _need(data.get("cell_id"), "cell_id", str, null=True)
    _need(data.get("new_thread", False), "new_thread", bool)
    answer = data["kind"] == "answer"
    for name, kinds in (("key", str), ("request", dict), ("response", dict)):
        value = _get(data, name, "") if answer else data.get(name)
        if answer or value is not None:  # a system record has none of them, or nulls
            _need(value, name, kinds)
    if data.get("request") is not None:
        _check_request(data["request"])
    if data.get("response") is not None:
        _check_response(data["response"])
    _check_timing(data.get("timing", {}))


def _check_request(request: dict[str, Any]) -> None:
    for name in ("base_url", "model"):
        _need(_get(request, name, "request"), f"request.{name}", str)
    messages = _get(request, "messages", "request")
    _need(messages, "request.messages", list)
    for index, message in enumerate(messages):
        path = f"request.messages[{index}]"
        _need(message, path, dict)
        _need(_get(message, "role", path), f"{path}.role", str)
        content = _get(message, "content", path)
        _need(content, f"{path}.content", (str, list))
        for number, part in enumerate(content if isinstance(content, list) else ()):
            _need(part, f"{path}.content[{number}]", dict)
    _need(_get(request, "params", "request"), "request.params", dict)


def _check_response(response: dict[str, Any]) -> None:
    _need(response.get("model"), "response.model", str, null=True)
    choices = _get(response, "choices", "response")
    _need(choices, "response.choices", list)
    if not choices:
        raise ValueError("response.choices is an empty list")
    for index, choice in enumerate(choices):
        path = f"response.choices[{index}]"
        _need(choice, path, dict)
        if "index" in choice:
            _need(choice["index"], f"{path}.index", int)
        _need(choice.get("finish_reason"), f"{path}.finish_reason", str, null=True)
        message = _get(choice, "message", path)
        _need(message, f"{path}.message", dict)
        if "role" in message:
            _need(message["role"], f"{path}.message.role", str)
        _need(message.get("content"), f"{path}.message.content", str, null=True)
    if response.get("usage") is not None:
        _check_usage(response["usage"], "response.usage")


def _check_usage(usage: Any, path: str) -> None:
    """Token counts are integers; ``*_details`` objects (or null) hold integers or null."""
    _need(usage, path, dict)
    for name, value in usage.items():
        if not isinstance(name, str):
            continue
        if name.endswith("_tokens"):
            _need(value, f"{path}.{name}", int)
        elif name.endswith("_details") and value is not None:
            _need(value, f"{path}.{name}", dict)
            for detail, count in value.items():
                if isinstance(detail, str) and detail.endswith("_tokens"):
                    _need(count, f"{path}.{name}.{detail}", int, null=True)


def _check_timing(timing: Any) -> None:
    _need(timing, "timing", dict)
    for name, kinds in _TIMING_FIELDS.items():
        _need(timing.get(name), f"timing.{name}", kinds, null=True)


# The timing fields nbchat writes; a newer writer's extra fields are ignored, like its records'.
_TIMING_FIELDS: dict[str, type | tuple[type, ...]] = {
    "started_at": str,
    "elapsed_s": (int, float),
    "first_token_s": (int, float),
    "streamed": bool,
}


# Version -> function turning a record of that version into the current one.
_UPGRADES: dict[int, Any] = {}
