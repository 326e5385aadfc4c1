"""What OpenAI's strict mode refuses in a JSON Schema (`nbchat.schema.strict.strict_problem`)."""

from __future__ import annotations

from nbchat.schema.strict import strict_problem


def test_strict_problem():
    closed = {
        "type": "object",
        "properties": {"a": {"type": "string"}},
        "required": ["a"],
        "additionalProperties": False,
    }
    assert strict_problem(closed) is None
    cases = {
        "the top level must be an object": {"type": "array", "items": {"type": "string"}},
        "an object must set additionalProperties to false": {
            **closed,
            "additionalProperties": True,
        },
        "property 'a' must be required": {**closed, "required": []},
        "'default' is not allowed": {
            **closed,
            "properties": {"a": {"type": "string", "default": ""}},
        },
        "format 'uri' is not allowed": {
            **closed,
            "properties": {"a": {"type": "string", "format": "uri"}},
        },
        "a value of any type is not allowed": {**closed, "properties": {"a": {"description": "?"}}},
        "an array must say the type of its items": {
            **closed,
            "properties": {"a": {"type": "array"}},
        },
        "an object without properties is not allowed": {"type": "object"},
        "$ref with other keywords is not allowed": {
            **closed,
            "properties": {"a": {"$ref": "#/$defs/A", "description": "d"}},
            "$defs": {"A": {"type": "string"}},
        },
        "'oneOf' is not allowed": {**closed, "properties": {"a": {"oneOf": [{"type": "string"}]}}},
    }
    for reason, schema in cases.items():
        assert strict_problem(schema) == reason
    assert (
        strict_problem({**closed, "properties": {"a": {"type": "string", "format": "date"}}})
        is None
    )
