"""JSON Schema helpers (`nbchat.schema.json_schema`): tidying pydantic's schemas."""

from __future__ import annotations

from nbchat.schema.json_schema import tidy_schema

# -- tidy_schema --------------------------------------------------------------------------------


def test_tidy_keeps_a_property_called_title():
    schema = {
        "title": "Book",
        "type": "object",
        "properties": {"title": {"title": "Title", "type": "string"}},
    }
    assert tidy_schema(schema) == {"properties": {"title": {"type": "string"}}, "type": "object"}


def test_tidy_keeps_mutually_recursive_definitions():
    schema = {
        "$defs": {
            "A": {"properties": {"b": {"$ref": "#/$defs/B"}}, "type": "object"},
            "B": {"properties": {"a": {"$ref": "#/$defs/A"}}, "type": "object"},
            "C": {"type": "string"},
        },
        "properties": {"a": {"$ref": "#/$defs/A"}, "c": {"$ref": "#/$defs/C"}},
        "type": "object",
    }
    tidy = tidy_schema(schema)
    assert sorted(tidy["$defs"]) == ["A", "B"]
    assert tidy["properties"]["c"] == {"type": "string"}
