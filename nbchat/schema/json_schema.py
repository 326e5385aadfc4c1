"""JSON Schema helpers shared by tools and structured output, and the gate to pydantic.

pydantic writes the schemas (of a function's parameters, of an output type); these helpers make
them small and deterministic (`tidy_schema`), walk them (`map_subschemas`) and turn pydantic's
validation errors into one line (`validation_summary`). pydantic is an optional dependency,
imported only when a tool or a schema is asked for: `need_pydantic` is where its absence is
reported.
"""

from __future__ import annotations

import json
import typing
from collections.abc import Callable, Iterable
from typing import Any

from nbchat._text import clip, one_line
from nbchat._version import DISTRIBUTION
from nbchat.errors import ConfigError

__all__ = [
    "is_json_value",
    "map_subschemas",
    "need_pydantic",
    "path_text",
    "quiet_generator",
    "tidy_schema",
    "validation_summary",
]

_SCHEMA_MAPS = ("properties", "$defs", "patternProperties", "dependentSchemas")
_SCHEMA_LISTS = ("anyOf", "allOf", "oneOf", "prefixItems")
_SCHEMA_ONES = ("items", "additionalProperties", "not", "if", "then", "else", "contains")
_FRIENDLY = {"missing": "Field required", "extra_forbidden": "not a field of the schema"}


def need_pydantic(feature: str) -> Any:
    """The pydantic module, or a `ConfigError` naming the flag (``--tools``, ``--schema``)."""
    try:
        import pydantic
    except ImportError as err:
        install = f"pip install '{DISTRIBUTION}[tools]'"
        raise ConfigError(f"{feature} needs pydantic: {install}") from err
    return pydantic


def map_subschemas(node: Any, fn: Callable[[dict[str, Any]], dict[str, Any]]) -> Any:
    """A copy of the schema ``node`` with ``fn`` applied to every schema object in it, inner
    ones first; values that are data (``enum``, ``const``, ``default``) are left alone."""
    if not isinstance(node, dict):
        return node
    out = dict(node)
    for key in _SCHEMA_MAPS:
        if isinstance(out.get(key), dict):
            out[key] = {name: map_subschemas(sub, fn) for name, sub in out[key].items()}
    for key in _SCHEMA_LISTS:
        if isinstance(out.get(key), list):
            out[key] = [map_subschemas(sub, fn) for sub in out[key]]
    for key in _SCHEMA_ONES:
        if isinstance(out.get(key), dict):
            out[key] = map_subschemas(out[key], fn)
    return fn(out)


def _refs(node: Any) -> list[str]:
    """The ``#/$defs/`` names referred to anywhere in ``node``."""
    found: list[str] = []

    def collect(sub: dict[str, Any]) -> dict[str, Any]:
        ref = sub.get("$ref")
        if isinstance(ref, str) and ref.startswith("#/$defs/"):
            found.append(ref.removeprefix("#/$defs/"))
        return sub

    map_subschemas(node, collect)
    return found


def _recursive(defs: dict[str, Any]) -> set[str]:
    """The definitions that reach themselves through references."""
    edges = {name: set(_refs(body)) for name, body in defs.items()}
    looped = set()
    for start in defs:
        seen, todo = set(), list(edges[start])
        while todo:
            name = todo.pop()
            if name == start:
                looped.add(start)
                break
            if name in edges and name not in seen:
                seen.add(name)
                todo.extend(edges[name])
    return looped


def is_json_value(value: Any) -> bool:
    """Whether ``value`` is JSON (NaN and infinities are not, though Python writes them)."""
    try:
        json.dumps(value, allow_nan=False)
    except ValueError:
        return False
    return True


def _plain_node(node: dict[str, Any]) -> dict[str, Any]:
    """A schema object without its title, without a default that is no JSON, and without the
    one-member ``allOf`` older pydantic wraps a reference in when it has a sibling."""
    plain = {
        key: value
        for key, value in node.items()
        if key != "title" and (key != "default" or is_json_value(value))
    }
    wrapped = plain.get("allOf")
    if isinstance(wrapped, list) and len(wrapped) == 1 and isinstance(wrapped[0], dict):
        del plain["allOf"]
        if not set(wrapped[0]) & set(plain):
            return {**plain, **wrapped[0]}
        plain["allOf"] = wrapped
    return plain


def tidy_schema(schema: dict[str, Any]) -> dict[str, Any]:
    """pydantic's schema made small: no titles; a definition used once and not recursive is
    written where it is used; ``$defs`` keeps only the others."""
    schema = map_subschemas(schema, _plain_node)
    defs: dict[str, Any] = schema.pop("$defs", {})
    counts: dict[str, int] = {}
    for name in _refs(schema) + [ref for body in defs.values() for ref in _refs(body)]:
        counts[name] = counts.get(name, 0) + 1
    kept = _recursive(defs) | {name for name, count in counts.items() if count > 1}

    def inline(sub: dict[str, Any]) -> dict[str, Any]:
        name = str(sub.get("$ref", "")).removeprefix("#/$defs/")
        if name not in defs or name in kept:
            return sub
        siblings = {k: v for k, v in sub.items() if k != "$ref"}
        return {**map_subschemas(defs[name], inline), **siblings}

    schema = map_subschemas(schema, inline)
    kept_defs = {name: map_subschemas(defs[name], inline) for name in sorted(kept) if name in defs}
    if kept_defs:
        schema["$defs"] = kept_defs
    return map_subschemas(schema, lambda sub: dict(sorted(sub.items())))


def path_text(parts: Iterable[Any]) -> str:
    """Where a value is in a JSON document: ``items[0].name``, or ``(top level)``."""
    where = "".join(f"[{part}]" if isinstance(part, int) else f".{part}" for part in parts)
    return where.lstrip(".") or "(top level)"


def validation_summary(
    error: Any, limit: int = 300, *, extra: str = _FRIENDLY["extra_forbidden"]
) -> str:
    """A pydantic ``ValidationError`` as one line: ``where: problem`` of the first error, and how
    many more there are; ``extra`` says what an unexpected name is not."""
    errors = error.errors(include_url=False)
    first = errors[0] if errors else {"loc": (), "msg": str(error)}
    friendly = {**_FRIENDLY, "extra_forbidden": extra}
    message = friendly.get(first.get("type", ""), first["msg"])
    text = f"{path_text(first['loc'])}: {message}"
    if len(errors) > 1:
        text += f" (and {len(errors) - 1} more)"
    return clip(one_line(text), limit)


def quiet_generator() -> type:
    """pydantic's schema generator, leaving out (instead of warning about) a default that has
    no JSON form."""
    from pydantic.json_schema import GenerateJsonSchema

    class QuietGenerator(GenerateJsonSchema):
        ignored_warning_kinds: typing.ClassVar[set[Any]] = {
            "skipped-choice",
            "non-serializable-default",
        }

    return QuietGenerator
