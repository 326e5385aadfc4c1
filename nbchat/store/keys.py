"""The hashes that identify a request: canonical JSON, turn digests chained into a history.

A request is its endpoint, model, answer-changing parameters and messages. The messages are the
thread's system prompt, the turns above the cell, and the cell's user message. Hashing the turns
above afresh for every cell would cost each cell the length of its thread, so each turn is
hashed once (`turn_digest`, over its messages as sent) and the history is a chain of those
digests (`extend_history`): a cell's key costs the size of its own turn, plus one short hash per
turn above. The key still identifies exactly the request sent: any change to any message, the
system prompt, the model, the parameters or the endpoint (query string included, as a digest)
gives another key.

Version 1 keys (nbchat 0.1) hashed the whole message list; `request_key_v1` computes them, to
find the answers old notebooks stored.
"""

from __future__ import annotations

import enum
import functools
import hashlib
import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from json.encoder import encode_basestring  # type: ignore[attr-defined]
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from nbchat.wire.protocol import RESERVED_FIELDS
from nbchat.wire.redaction import mask_url, split_query

__all__ = [
    "HISTORY_START",
    "CellKey",
    "CellKind",
    "Endpoint",
    "canonical",
    "extend_history",
    "key_maker",
    "request_key",
    "request_key_v1",
    "turn_digest",
]

HISTORY_START = hashlib.sha256(b"nbchat/history/v2").hexdigest()  # no turn above the cell
_KEY_TAG = "nbchat/request/v2"


def canonical(value: Any) -> bytes:
    """One byte string per JSON value: sorted keys, no spaces, UTF-8."""
    text = json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)
    return text.encode("utf-8", "surrogatepass")  # a lone surrogate in a prompt still hashes


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def turn_digest(messages: Sequence[Mapping[str, Any]]) -> str:
    """The digest of one turn's messages, as sent."""
    return _sha256(canonical(list(messages)))


def extend_history(history: str, digest: str) -> str:
    """The history after one more turn (``digest``) on top of ``history``."""
    return _sha256(f"{history} {digest}".encode("ascii"))


def history_of(digests: Iterable[str]) -> str:
    """The history of these turns, oldest first."""
    history = HISTORY_START
    for digest in digests:
        history = extend_history(history, digest)
    return history


@dataclass(frozen=True)
class Endpoint:
    """A base URL as the key sees it (``url``: normalised, no query), as records and messages
    show it (``shown``: credentials and query values masked), and its query as a digest."""

    url: str
    shown: str
    query_digest: str | None

    @classmethod
    def of(cls, base_url: str) -> Endpoint:
        """The endpoint of a base URL (which may carry a query, e.g. Azure's api-version)."""
        return _endpoint_of(base_url)

    @classmethod
    def stored(cls, shown: str, query_digest: str | None) -> Endpoint:
        """The endpoint a record keeps (its shown URL and the query's digest)."""
        return _stored_endpoint(shown, query_digest)


# A notebook names a handful of endpoints, and a --map cell's thousands of items the same one:
# each is parsed once (the URL parsing and masking cost more than the key's hash).
@functools.lru_cache(maxsize=64)
def _endpoint_of(base_url: str) -> Endpoint:
    base, query = split_query(base_url.strip())
    parts = urlsplit(base)
    host = parts.netloc.rpartition("@")[2].lower()
    url = urlunsplit((parts.scheme.lower(), host, parts.path.rstrip("/"), "", ""))
    digest = _sha256(query.encode("utf-8")) if query else None
    return Endpoint(url, mask_url(base_url.strip()), digest)


@functools.lru_cache(maxsize=64)
def _stored_endpoint(shown: str, query_digest: str | None) -> Endpoint:
    return Endpoint(_endpoint_of(shown).url, shown, query_digest)


def request_key(
    endpoint: Endpoint,
    model: str,
    params: Mapping[str, Any],
    system: str | None,
    history: str,
    user_message: Mapping[str, Any],
) -> str:
    """The cache key of a request: everything that changes the answer, and nothing else."""
    answer_params = {k: v for k, v in params.items() if k not in RESERVED_FIELDS}
    fields = [
        _KEY_TAG,
        endpoint.url,
        endpoint.query_digest,
        model,
        answer_params,
        system,
        history,
        dict(user_message),
    ]
    return "v2:" + _sha256(canonical(fields))


def key_maker(
    endpoint: Endpoint,
    model: str,
    params: Mapping[str, Any],
    system: str | None,
    history: str,
) -> Callable[[Mapping[str, Any]], str]:
    """`request_key` of many requests that differ only in their user message (the items of a
    ``--map`` cell): what they share is hashed once, the same bytes in the same order."""
    answer_params = {k: v for k, v in params.items() if k not in RESERVED_FIELDS}
    fields = [_KEY_TAG, endpoint.url, endpoint.query_digest, model, answer_params, system, history]
    shared = hashlib.sha256(canonical(fields)[:-1] + b",")  # the list, open for one more field

    def key(user_message: Mapping[str, Any]) -> str:
        digest = shared.copy()
        digest.update(_message_bytes(user_message) + b"]")
        return "v2:" + digest.hexdigest()

    return key


def _message_bytes(message: Mapping[str, Any]) -> bytes:
    """`canonical` of a message, written directly when it is a role and a text (every item of a
    text ``--map`` cell, hashed when read and when prepared: a quarter of the time)."""
    role, content = message.get("role"), message.get("content")
    if len(message) != 2 or type(role) is not str or type(content) is not str:
        return canonical(dict(message))
    text = f'{{"content":{encode_basestring(content)},"role":{encode_basestring(role)}}}'
    return text.encode("utf-8", "surrogatepass")


def request_key_v1(
    base_url: str, model: str, messages: list[Any], params: Mapping[str, Any]
) -> str:
    """The key nbchat 0.1 gave a request (the whole message list hashed every time)."""
    parts = urlsplit(base_url.strip())
    normalised = urlunsplit(
        (parts.scheme.lower(), parts.netloc.lower(), parts.path.rstrip("/"), parts.query, "")
    )
    answer_params = {k: v for k, v in params.items() if k not in RESERVED_FIELDS}
    return "v1:" + _sha256(canonical([normalised, model, messages, answer_params]))


class CellKind(enum.Enum):
    """What a cell key names."""

    CELL = "cell"  # a cell by its id: the one the frontend sent, or one unique in the file
    INDEX = "index"  # a saved cell without a usable id, by its position in the file
    RUN = "run"  # a run with no cell id (terminal IPython, a headless runner): each is new
    ASK = "ask"  # the n-th `nbchat.ask` of a cell's execution: a turn of that cell
    ITEM = "item"  # the n-th item of a ``--map`` cell
    RECORD = "record"  # the n-th record (n > 0) a saved cell holds (each `nbchat.ask` shown)


@dataclass(frozen=True)
class CellKey:
    """Which cell a turn belongs to: a small value, never a string to parse (a frontend's cell
    id may hold any character). ``str()`` is for people."""

    kind: CellKind
    cell_id: str | None = None  # the id, for CELL, ASK and ITEM (None: a --map run without one)
    number: int = 0  # the position (INDEX), the run, the ask, the item or the record
    within: CellKey | None = None  # RECORD: the saved cell's own key

    # A dict key that ordering a thread looks up ~150 times per cell: its hash is computed
    # once (a dataclass's would hash a tuple, and the enum by its name, at every lookup).
    def __post_init__(self) -> None:
        fields = (self.kind.value, self.cell_id, self.number, self.within)
        object.__setattr__(self, "_hash", hash(fields))

    def __reduce__(self) -> tuple[Any, ...]:  # made again, its hash with it (a str's varies)
        return (CellKey, (self.kind, self.cell_id, self.number, self.within))

    def __hash__(self) -> int:
        return self._hash  # type: ignore[attr-defined,no-any-return]

    def __eq__(self, other: object) -> bool:
        if self is other:
            return True
        if type(other) is not CellKey:
            return NotImplemented
        return (
            self._hash == other._hash  # type: ignore[attr-defined]
            and self.kind is other.kind
            and self.cell_id == other.cell_id
            and self.number == other.number
            and self.within == other.within
        )

    @classmethod
    def cell(cls, cell_id: str) -> CellKey:
        """A cell by its id."""
        return cls(CellKind.CELL, cell_id)

    @classmethod
    def index(cls, index: int) -> CellKey:
        """A saved cell by its position (its id is missing or repeated in the file)."""
        return cls(CellKind.INDEX, number=index)

    @classmethod
    def run(cls, number: int) -> CellKey:
        """The ``number``-th run without a cell id."""
        return cls(CellKind.RUN, number=number)

    @classmethod
    def ask(cls, cell_id: str, number: int) -> CellKey:
        """The ``number``-th `nbchat.ask` of cell ``cell_id``'s execution."""
        return cls(CellKind.ASK, cell_id, number)

    @classmethod
    def item(cls, cell_id: str | None, number: int) -> CellKey:
        """Item ``number`` of a ``--map`` cell."""
        return cls(CellKind.ITEM, cell_id, number)

    def record(self, number: int) -> CellKey:
        """The ``number``-th record this saved cell holds (the first is the cell itself)."""
        return self if number == 0 else CellKey(CellKind.RECORD, number=number, within=self)

    @property
    def host(self) -> CellKey | None:
        """The cell an ask belongs to (None for any other key)."""
        return CellKey.cell(self.cell_id) if self.kind is CellKind.ASK and self.cell_id else None

    def __str__(self) -> str:
        if self.kind is CellKind.CELL:
            return str(self.cell_id)
        if self.kind is CellKind.RECORD:
            return f"{self.within} (record {self.number})"
        where = f"cell {self.cell_id} " if self.cell_id else ""
        return f"{where}{self.kind.value} {self.number}"
