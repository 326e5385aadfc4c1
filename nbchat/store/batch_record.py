"""The record of a ``%%chat --map`` cell: many standalone answers, stored compactly.

Every item of a batch is its own request with its own key, so it is found again by itself (in
the next run of the cell, in another cell, offline). What the items share is stored once: the
template, the endpoint, model and parameters, the system prompt. Per item only what differs:

==================  =========================================================================
``schema``          ``2``
``kind``            ``"batch"``
``nbchat_version``  the nbchat version that wrote it
``thread``          the thread whose system prompt the items were sent with
``cell_id``         the notebook cell id the kernel was told, or ``null``
``template``        ``{"literals": [...], "paths": [...]}``: the cell's text around its item
                    placeholders (`nbchat.prompt.template`), the other placeholders filled in
``request``         as a turn's: ``{"base_url", "query_digest", "model", "params", "system"}``
``history``         the history digest of an empty context (items have none)
``response``        the fields every item's completion shares (``object``, ``model``,
                    ``choices`` when they all stopped alike, ...)
``timing``          the timing fields every item shares, when some are (a provider batch's
                    id, submission time and duration); older records keep them per item
``items``           one object per answered item, in input order: ``index`` (its position in
                    the input), ``fills`` (the text of each placeholder) or, when an item is an
                    image, ``user`` (the user message's content); ``answer`` (the text, when
                    the message is just that) or ``message`` (as returned); ``response`` (the
                    completion's other fields: ``id``, ``usage``...) and ``timing`` (its
                    own timing fields, when it has some)
``stored_at``       ISO-8601 UTC time the batch ended
==================  =========================================================================

`read_stored` reads any stored record JSON, a turn, a system prompt or a batch, as `Record`s:
a batch gives one standalone turn record per item. An item's key is not stored: it is computed
from the request the record describes, so an edited item is found (or not) as that request.
`item_labels` and `map_title` say what an item was and which map it belongs to, for tables
whose rows would otherwise all start with the same template.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass
from typing import Any

from nbchat._json import need, required
from nbchat.errors import ConfigError
from nbchat.store.checks import check_timing
from nbchat.store.keys import key_maker
from nbchat.store.reading import read_record
from nbchat.store.record import SCHEMA_VERSION, STANDALONE, TURN, Record, utc_now
from nbchat.wire.messages import ItemTemplate, user_message
from nbchat.wire.protocol import completion_problem

__all__ = [
    "BATCH",
    "BatchItem",
    "batch_json",
    "item_labels",
    "map_title",
    "read_stored",
]

BATCH = "batch"
_MAP_FLAG = re.compile(r"^--map(?:=(.+))?$")


@dataclass(frozen=True, slots=True)
class BatchItem:
    """One answered item: where it was in the input, its fills, and its record."""

    index: int
    fills: list[str] | None  # None when the item is an image (its record holds the content)
    record: Record


def batch_json(
    template: ItemTemplate, items: list[BatchItem], *, thread: str, cell_id: str | None
) -> dict[str, Any]:
    """The JSON stored for a batch of answered ``items`` (all sent the same way)."""
    if not items:
        raise ConfigError("a batch record needs at least one answered item")
    first = items[0].record
    assert first.request is not None
    shared = _shared([item.record.last_response for item in items])
    timing = _shared([item.record.timing for item in items])
    timing.pop("streamed", None)
    return {
        "schema": SCHEMA_VERSION,
        "kind": BATCH,
        "nbchat_version": first.nbchat_version,
        "thread": thread,
        "cell_id": cell_id,
        "template": {"literals": list(template.literals), "paths": list(template.paths)},
        "request": first.request.to_json(),
        "history": first.history,
        "response": shared,
        **({"timing": timing} if timing else {}),
        "items": [_item_json(item, shared, timing) for item in items],
        "stored_at": utc_now(),
    }


def _shared(objects: list[dict[str, Any]]) -> dict[str, Any]:
    """The fields every one of ``objects`` has, with the same value."""
    first, others = objects[0], objects[1:]
    return {
        name: value
        for name, value in first.items()
        if all(name in other and other[name] == value for other in others)
    }


def _item_json(item: BatchItem, shared: dict[str, Any], timing: dict[str, Any]) -> dict[str, Any]:
    """What is stored of one item: only what the batch does not share."""
    record = item.record
    entry: dict[str, Any] = {"index": item.index}
    if item.fills is not None:
        entry["fills"] = item.fills
    else:
        entry["user"] = record.messages[0]["content"]
    message = record.messages[-1]
    text = message.get("content")
    if len(message) == 2 and "role" in message and isinstance(text, str):
        entry["answer"] = text
    else:
        entry["message"] = message
    entry["response"] = {
        name: value
        for name, value in record.last_response.items()
        if name not in shared or shared[name] != value
    }
    own = record.timing
    kept = {name: own[name] for name in own if name != "streamed" and name not in timing}
    if kept:
        entry["timing"] = kept
    return entry


def read_stored(raw: Any, version: int) -> list[Record]:
    """The records of one stored record JSON (a batch holds many); `ValueError` names what is
    wrong."""
    if version == SCHEMA_VERSION and isinstance(raw, dict) and raw.get("kind") == BATCH:
        return _read_batch(raw)
    return [read_record(raw, version=version)]


def _read_batch(data: dict[str, Any]) -> list[Record]:
    """Each item as the turn record it stands for, checked as any turn is (`Record.from_json`)."""
    if data.get("schema", SCHEMA_VERSION) != SCHEMA_VERSION:
        raise ValueError("a batch record is of schema 2")
    shape = required(data, "template", "")
    need(shape, "template", dict)
    literals, paths = required(shape, "literals", "template"), required(shape, "paths", "template")
    need(literals, "template.literals", list)
    need(paths, "template.paths", list)
    if len(literals) != len(paths) + 1 or not all(isinstance(t, str) for t in literals + paths):
        raise ValueError("template: its literals are texts, one more than its paths")
    template = ItemTemplate(tuple(literals), tuple(paths))
    items = required(data, "items", "")
    need(items, "items", list)
    shared = {
        "schema": SCHEMA_VERSION,
        "kind": TURN,
        "thread": STANDALONE,
        "new_thread": False,
        "parent": None,
        **{name: data.get(name) for name in ("nbchat_version", "cell_id", "stored_at")},
        **{name: required(data, name, "") for name in ("request", "history", "response")},
    }
    need(shared["response"], "response", dict)
    timing = data.get("timing", {})
    check_timing(timing)
    if not items:
        return []
    first = Record.from_json(_item_turn(template, items[0], 0, shared, timing))
    quick = _QuickItems(template, shared["response"], timing, first)
    records = [first]
    for number, entry in enumerate(items[1:], start=1):
        record = quick.read(entry) if quick.able else None
        if record is None:  # a less common shape, or a problem to name: the whole check
            record = Record.from_json(_item_turn(template, entry, number, shared, timing))
        records.append(record)
    assert first.request is not None
    request = first.request
    key = key_maker(request.endpoint, request.model, request.params, request.system, first.history)
    for record in records:
        record.key = key(record.messages[0])
        record.key_rule = _computed_key  # checked again, it would hash the same request again
    return records


class _QuickItems:
    """Reads the common item (its fills, its answer as text, a response that shares the
    batch's choices) without checking again what every item shares: `Record.from_json`
    checked it with the first item, and the shared response is checked here once. An item
    whose own fields are all checked here becomes the record `Record.from_json` would make;
    any other (or one with a problem) is left to it (None)."""

    def __init__(
        self,
        template: ItemTemplate,
        response: dict[str, Any],
        timing: dict[str, Any],
        first: Record,
    ) -> None:
        self.template, self.response, self.timing, self.first = template, response, timing, first
        choices = response.get("choices")
        shared = {**response, "choices": [{**choice} for choice in choices or ()]}
        if shared["choices"] and isinstance(shared["choices"][0], dict):
            shared["choices"][0]["message"] = {"role": "assistant", "content": ""}
        self.able = bool(choices) and completion_problem(shared) is None
        # The timings checked already (a batch's items share theirs), with their values' types:
        # true == 1 in Python, but it is no number of seconds.
        self.timings: set[tuple[tuple[str, type, Any], ...]] = set()
        # The fields every item's record shares, as `Record.__init__` would set them (it is
        # not called again for each item: a third of the time of reading one).
        self.fields = {**first.__dict__, "key": None, "key_rule": None}

    def read(self, entry: Any) -> Record | None:
        if not isinstance(entry, dict):
            return None
        fills, answer = entry.get("fills"), entry.get("answer")
        response, timing = entry.get("response"), entry.get("timing", {})
        paths = len(self.template.paths)
        if not (
            isinstance(fills, list)
            and len(fills) == paths
            and all(isinstance(fill, str) for fill in fills)
            and isinstance(answer, str)
            and isinstance(response, dict)
            and "choices" not in response
            and completion_problem({**response, "choices": []}) is None
        ):
            return None
        if not self._timing_checked(timing):
            return None
        record: Record = object.__new__(Record)
        record.__dict__.update(
            self.fields,
            messages=[
                user_message(self.template.content(fills)),
                {"role": "assistant", "content": answer},
            ],
            responses=[{**self.response, **response}],
            timing={**self.timing, **timing, "streamed": False},
        )
        return record

    def _timing_checked(self, timing: Any) -> bool:
        """Whether ``timing`` passes `check_timing` (checked once per distinct timing)."""
        try:
            shape = tuple((name, type(value), value) for name, value in timing.items())
            if shape in self.timings:
                return True
        except (AttributeError, TypeError):  # not a dict, or a value that is a list
            shape = None
        try:
            check_timing(timing)
        except ValueError:
            return False
        if shape is not None:
            self.timings.add(shape)
        return True


def _computed_key(record: Record) -> str | None:
    """An item's key: computed from its request when the batch was read (a --map cell holds
    thousands of items, and each hash costs as much as reading the item)."""
    return record.key


def _item_turn(
    template: ItemTemplate,
    entry: Any,
    number: int,
    shared: dict[str, Any],
    shared_timing: dict[str, Any],
) -> dict[str, Any]:
    """The turn record JSON an item stands for (its key left to compute)."""
    where = f"items[{number}]"
    need(entry, where, dict)
    if "fills" in entry:
        fills = entry["fills"]
        need(fills, f"{where}.fills", list)
        if len(fills) != len(template.paths) or not all(isinstance(f, str) for f in fills):
            raise ValueError(f"{where}.fills: one text per placeholder")
        user = user_message(template.content(fills))
    else:
        user = user_message(required(entry, "user", where))
    if "answer" in entry:
        need(entry["answer"], f"{where}.answer", str)
        message = {"role": "assistant", "content": entry["answer"]}
    else:
        message = required(entry, "message", where)
    response = required(entry, "response", where)
    need(response, f"{where}.response", dict)
    timing = entry.get("timing", {})
    need(timing, f"{where}.timing", dict)
    return {
        **{name: value for name, value in shared.items() if name != "response"},
        "messages": [user, message],
        "key": "",
        "responses": [{**shared["response"], **response}],
        "timing": {**shared_timing, **timing, "streamed": False},
    }


def item_labels(raw: Any) -> dict[str, str]:
    """What each answered item of a batch record JSON was, by the item's key: ``item 3: great``
    (its fills joined by `` · ``; an image item: its message's text). Empty for any other
    record, or a batch that cannot be read."""
    if not isinstance(raw, dict) or raw.get("kind") != BATCH:
        return {}
    try:
        records = _read_batch(raw)
    except (ValueError, TypeError, AttributeError, KeyError, IndexError):
        return {}
    labels = {}
    for entry, record in zip(raw["items"], records, strict=True):
        fills = entry.get("fills")
        what = " · ".join(fills) if isinstance(fills, list) else record.prompt
        index = entry.get("index")
        known = isinstance(index, int) and not isinstance(index, bool)
        labels[str(record.key)] = f"item {index}: {what}" if known else what
    return labels


def map_title(source: str) -> str:
    """What a batch cell is called: ``--map NAME`` as its first line says, else
    ``nbchat.map`` (a batch run from code)."""
    first = source.lstrip().partition("\n")[0]
    if not first.startswith("%%chat"):
        return "nbchat.map"
    try:
        words = shlex.split(first)
    except ValueError:  # unbalanced quotes: the magic refused it too
        words = first.split()
    for word, after in zip(words, [*words[1:], ""], strict=True):
        flag = _MAP_FLAG.match(word)
        if flag:
            return f"--map {flag.group(1) or after}".rstrip()
    return "--map"
