"""OpenAI's strict mode for structured output: which JSON Schemas it accepts, and a Python
type's schema written to be one of them.

Strict mode (the server constrains the answer to the schema) accepts a subset of JSON Schema:
every object closed (``additionalProperties: false``) with every property required, every value
typed, no ``default`` and a short list of other keywords (`strict_problem`). For a model, a
dataclass or a TypedDict the schema is written that way when the meaning stays the same
(`strict_generator`, then `close_objects` on every schema object): a field with a default becomes
required (a field defaulting to ``None`` is already nullable, so "not given" is sent as
``null``), objects are closed (pydantic ignores extra keys anyway). Where that would change the
meaning (a TypedDict key that may be left out, ``x: int = None``, a ``dict[str, int]``, an
``Any``) the caller sends the ordinary schema with ``strict: false`` instead.
"""

from __future__ import annotations

from typing import Any

from nbchat.schema.json_schema import map_subschemas, quiet_generator

__all__ = ["close_objects", "strict_generator", "strict_problem"]

_MISSING = object()
# What OpenAI's strict mode accepts (its "supported schemas"); anything else is sent non-strict.
_STRICT_KEYWORDS = frozenset(
    {
        "$defs",
        "$ref",
        "additionalProperties",
        "anyOf",
        "const",
        "description",
        "enum",
        "exclusiveMaximum",
        "exclusiveMinimum",
        "format",
        "items",
        "maxItems",
        "maximum",
        "minItems",
        "minimum",
        "multipleOf",
        "pattern",
        "properties",
        "required",
        "title",
        "type",
    }
)
_STRICT_FORMATS = frozenset(
    {"date-time", "time", "date", "duration", "email", "hostname", "ipv4", "ipv6", "uuid"}
)
_TYPED = ("type", "$ref", "anyOf", "enum", "const")


def _node_problem(node: dict[str, Any]) -> str | None:
    unknown = sorted(set(node) - _STRICT_KEYWORDS)
    if unknown:
        return f"{unknown[0]!r} is not allowed"
    if not any(key in node for key in _TYPED):
        return "a value of any type is not allowed"
    if "$ref" in node and len(node) > 1:
        return "$ref with other keywords is not allowed"
    if node.get("format", "date") not in _STRICT_FORMATS:
        return f"format {node['format']!r} is not allowed"
    kinds = node.get("type")
    if kinds == "object" or (isinstance(kinds, list) and "object" in kinds):
        properties = node.get("properties")
        if not isinstance(properties, dict):
            return "an object without properties is not allowed"
        if node.get("additionalProperties") is not False:
            return "an object must set additionalProperties to false"
        missing = [name for name in properties if name not in node.get("required", ())]
        if missing:
            return f"property {missing[0]!r} must be required"
    if kinds == "array" and not isinstance(node.get("items"), dict):
        return "an array must say the type of its items"
    return None


def strict_problem(schema: dict[str, Any]) -> str | None:
    """Why OpenAI's strict mode would refuse ``schema``, or None when it would take it."""
    if schema.get("type") != "object":
        return "the top level must be an object"
    problems: list[str] = []

    def check(node: dict[str, Any]) -> dict[str, Any]:
        if not problems and (problem := _node_problem(node)):
            problems.append(problem)
        return node

    map_subschemas(schema, check)
    return problems[0] if problems else None


def _allows_null(schema: dict[str, Any]) -> bool:
    kinds = schema.get("type")
    if kinds == "null" or (isinstance(kinds, list) and "null" in kinds):
        return True
    if any(_allows_null(sub) for sub in schema.get("anyOf", []) + schema.get("oneOf", [])):
        return True
    if "enum" in schema:
        return None in schema["enum"]
    if "const" in schema:
        return schema["const"] is None
    return not any(key in schema for key in ("type", "$ref", "allOf", "not"))


def strict_generator(loose: list[str]) -> type:
    """A schema generator that makes every field required and leaves defaults out, noting in
    ``loose`` each field where that would change what the schema means."""

    class StrictGenerator(quiet_generator()):  # type: ignore[misc]
        def field_is_required(self, field: Any, total: bool) -> bool:
            if field["type"] == "typed-dict-field" and not field.get("required", total):
                loose.append("a TypedDict key may be left out")
            return True

        def default_schema(self, schema: Any) -> Any:
            inner = self.generate_inner(schema["schema"])
            if schema.get("default", _MISSING) is None and not _allows_null(inner):
                loose.append("a field defaults to None but its type has no None")
            return inner

    return StrictGenerator


def close_objects(node: dict[str, Any]) -> dict[str, Any]:
    """A schema object as strict mode takes it: an object with properties closed, and a
    ``$ref`` alone (one with siblings is wrapped in a one-member ``anyOf``)."""
    if node.get("type") == "object" and "properties" in node:
        node.setdefault("additionalProperties", False)
    if "$ref" in node and len(node) > 1:  # strict mode takes no keyword beside $ref
        node["anyOf"] = [{"$ref": node.pop("$ref")}]
    return node
