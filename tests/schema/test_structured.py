"""Structured output (`schema.structured`): the response_format of each kind of target, when it
is strict, and answers parsed into objects or refused in one line."""

from __future__ import annotations

import datetime
import enum
import json
import sys
import typing
from dataclasses import dataclass, field
from typing import Any, Literal, NotRequired

import jsonschema
import pydantic
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from typing_extensions import TypedDict

from nbchat.errors import ConfigError, ProtocolError
from nbchat.schema.structured import JsonOutput, OutputSchema, StructuredOutputError, answer_json


class Weather(pydantic.BaseModel):
    """A weather report."""

    city: str
    temperature: float
    country: str | None = None
    tags: list[str] = pydantic.Field(default_factory=list)
    unit: Literal["C", "F"] = "C"


class Tree(pydantic.BaseModel):
    label: str
    children: list[Tree] = []


class Mood(enum.Enum):
    GOOD = "good"
    BAD = "bad"


@dataclass
class Point:
    x: float
    y: float = 0.0
    seen: datetime.date | None = None
    notes: list[str] = field(default_factory=list)


@dataclass
class Route:
    start: Point
    end: Point
    mood: Mood = Mood.GOOD


class Movie(TypedDict):
    title: str
    year: int


class Draft(TypedDict):
    title: str
    year: NotRequired[int]


class Sloppy(pydantic.BaseModel):
    count: int = None  # type: ignore[assignment]  # a default None without None in the type


class Open(pydantic.BaseModel, extra="allow"):
    name: str


class Scores(pydantic.BaseModel):
    scores: dict[str, int]


class Anything(pydantic.BaseModel):
    value: Any


class Short(pydantic.BaseModel):
    code: str = pydantic.Field(max_length=3)


WEATHER_SCHEMA = {
    "additionalProperties": False,
    "description": "A weather report.",
    "properties": {
        "city": {"type": "string"},
        "temperature": {"type": "number"},
        "country": {"anyOf": [{"type": "string"}, {"type": "null"}]},
        "tags": {"items": {"type": "string"}, "type": "array"},
        "unit": {"enum": ["C", "F"], "type": "string"},
    },
    "required": ["city", "temperature", "country", "tags", "unit"],
    "type": "object",
}


def test_a_model_is_strict_with_optional_fields_required_and_nullable():
    schema = OutputSchema.of(Weather)
    assert schema.name == "Weather" and schema.strict and schema.why_not_strict is None
    assert schema.response_format() == {
        "type": "json_schema",
        "json_schema": {"name": "Weather", "schema": WEATHER_SCHEMA, "strict": True},
    }


def test_a_recursive_model_is_strict_with_the_root_as_hash():
    schema = OutputSchema.of(Tree)
    assert schema.strict
    assert schema.schema == {
        "additionalProperties": False,
        "properties": {
            "label": {"type": "string"},
            "children": {"items": {"$ref": "#"}, "type": "array"},
        },
        "required": ["label", "children"],
        "type": "object",
    }
    tree = schema.parse('{"label": "a", "children": [{"label": "b", "children": []}]}')
    assert tree == Tree(label="a", children=[Tree(label="b")])


def test_a_dataclass_with_nested_dataclasses_and_an_enum():
    schema = OutputSchema.of(Route)
    assert schema.strict
    assert schema.schema["$defs"]["Point"]["required"] == ["x", "y", "seen", "notes"]
    assert schema.schema["$defs"]["Point"]["additionalProperties"] is False
    assert schema.schema["properties"]["start"] == {"$ref": "#/$defs/Point"}
    assert schema.schema["properties"]["mood"] == {"enum": ["good", "bad"], "type": "string"}
    route = schema.parse(
        '{"start": {"x": 1, "y": 2, "seen": "2024-05-01", "notes": []},'
        ' "end": {"x": 0, "y": 0, "seen": null, "notes": ["n"]}, "mood": "bad"}'
    )
    assert route == Route(
        Point(1, 2, datetime.date(2024, 5, 1)), Point(0, 0, notes=["n"]), Mood.BAD
    )


def test_a_typeddict_gives_a_dict():
    schema = OutputSchema.of(Movie)
    assert schema.strict
    assert schema.parse('{"title": "Alien", "year": 1979}') == {"title": "Alien", "year": 1979}


def test_a_description_beside_a_reference_moves_into_any_of_in_strict_mode():
    class Trip(pydantic.BaseModel):
        start: Point = pydantic.Field(description="where it begins")
        end: Point

    schema = OutputSchema.of(Trip)
    assert schema.strict
    assert schema.schema["properties"]["start"] == {
        "anyOf": [{"$ref": "#/$defs/Point"}],
        "description": "where it begins",
    }


NOT_STRICT = {
    Draft: "a TypedDict key may be left out",
    Sloppy: "a field defaults to None but its type has no None",
    Open: "an object must set additionalProperties to false",
    Scores: "an object without properties is not allowed",
    Anything: "a value of any type is not allowed",
    Short: "'maxLength' is not allowed",
}


def test_where_strict_would_change_the_meaning_the_plain_schema_is_sent():
    for target, reason in NOT_STRICT.items():
        schema = OutputSchema.of(target)
        assert (schema.strict, schema.why_not_strict) == (False, reason), target
        assert schema.response_format()["json_schema"]["strict"] is False
    assert OutputSchema.of(Draft).schema == {
        "properties": {"title": {"type": "string"}, "year": {"type": "integer"}},
        "required": ["title"],
        "type": "object",
    }
    assert OutputSchema.of(Sloppy).schema == {
        "properties": {"count": {"default": None, "type": "integer"}},
        "type": "object",
    }
    assert OutputSchema.of(Draft).parse('{"title": "x"}') == {"title": "x"}
    assert OutputSchema.of(Sloppy).parse("{}") == Sloppy()


# -- JSON Schema dicts --------------------------------------------------------------------------

REPORT = {
    "title": "weather report",
    "type": "object",
    "properties": {
        "t": {"type": "number"},
        "items": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {"n": {"type": "string"}},
                "required": ["n"],
                "additionalProperties": False,
            },
        },
    },
    "required": ["t", "items"],
    "additionalProperties": False,
}


def test_a_json_schema_dict_is_sent_as_given_and_strict_when_it_qualifies():
    schema = OutputSchema.of(REPORT)
    assert schema.name == "weather_report"
    assert schema.strict
    assert schema.response_format()["json_schema"]["schema"] == REPORT
    assert schema.parse('{"t": 1.5, "items": [{"n": "a"}]}') == {"t": 1.5, "items": [{"n": "a"}]}
    loose = {key: value for key, value in REPORT.items() if key != "additionalProperties"}
    assert OutputSchema.of(loose, name="report").why_not_strict == (
        "an object must set additionalProperties to false"
    )
    assert OutputSchema.of(loose, name="report").name == "report"


def test_the_dict_is_copied_when_taken_and_when_sent():
    target = json.loads(json.dumps(REPORT))
    schema = OutputSchema.of(target)
    target["properties"]["t"]["type"] = "string"
    sent = schema.response_format()
    sent["json_schema"]["schema"]["required"].append("x")
    assert schema.schema == REPORT


def test_a_json_schema_dict_refuses_in_one_line():
    schema = OutputSchema.of(REPORT)
    cases = {
        '{"t": "warm", "items": []}': "t: 'warm' is not of type 'number'",
        '{"t": 1}': "(top level): 'items' is a required property",
        '{"t": 1, "items": [{"n": 1}]}': "items[0].n: 1 is not of type 'string'",
        '{"t": "warm", "items": [{}]}': "t: 'warm' is not of type 'number' (and 1 more)",
    }
    for text, message in cases.items():
        with pytest.raises(StructuredOutputError) as err:
            schema.parse(text)
        assert str(err.value) == message
        assert err.value.text == text


def test_an_invalid_json_schema_or_a_dict_that_is_not_json():
    with pytest.raises(ConfigError) as err:
        OutputSchema.of({"type": "objectx"}, name="Bad")
    assert str(err.value) == (
        "--schema Bad is not a valid JSON Schema: 'objectx' is not valid under any of the given "
        "schemas"
    )
    with pytest.raises(ConfigError) as err:
        OutputSchema.of({"enum": {1, 2}})
    assert str(err.value) == "--schema output is not JSON: use JSON values only"


def test_targets_that_are_not_schemas():
    with pytest.raises(ConfigError) as err:
        OutputSchema.of(Point(1, 2), name="p")
    assert str(err.value) == "--schema p is a dataclass instance: pass its class"
    with pytest.raises(ConfigError) as err:
        OutputSchema.of(int)
    assert str(err.value) == (
        "--schema takes a pydantic model, a dataclass, a TypedDict or a JSON Schema dict, not type"
    )
    with pytest.raises(ConfigError) as err:
        OutputSchema.of("Weather")
    assert str(err.value).endswith("not str")


def test_a_typing_typeddict_on_old_python_is_one_line():
    class Old(typing.TypedDict):
        a: int

    if sys.version_info >= (3, 12):
        assert OutputSchema.of(Old).strict
        return
    with pytest.raises(ConfigError) as err:
        OutputSchema.of(Old)
    assert str(err.value) == (
        "--schema Old: Please use `typing_extensions.TypedDict` instead of `typing.TypedDict` on "
        "Python < 3.12."
    )


def test_names_are_made_fit_for_the_request():
    assert OutputSchema.of(Weather, name="my weather!").name == "my_weather_"
    assert OutputSchema.of(Weather, name="x" * 80).name == "x" * 64
    assert OutputSchema.of({"type": "object"}).name == "output"
    assert repr(OutputSchema.of(Draft)) == (
        "<OutputSchema Draft (not strict: a TypedDict key may be left out)>"
    )


# -- parsing answers ----------------------------------------------------------------------------

FIELD_ERRORS = {
    '{"city": "Oslo", "temperature": [1]}': "temperature: Input should be a valid number",
    '{"city": "Oslo"}': "temperature: Field required",
    '{"city": "Oslo", "temperature": 1, "unit": "K"}': "unit: Input should be 'C' or 'F'",
    '{"city": "Oslo", "temperature": 1, "tags": [1, "a", 2]}': (
        "tags[0]: Input should be a valid string (and 1 more)"
    ),
    "[1, 2]": "(top level): Input should be a valid dictionary or instance of Weather",
}


def test_a_model_answer_that_does_not_fit_names_the_field():
    schema = OutputSchema.of(Weather)
    for text, message in FIELD_ERRORS.items():
        with pytest.raises(StructuredOutputError) as err:
            schema.parse(text)
        assert str(err.value) == message
        assert err.value.text == text
        assert isinstance(err.value, ProtocolError)


JSON_ERRORS = {
    "": "the answer is empty: there is no JSON to read",
    "  \n ": "the answer is empty: there is no JSON to read",
    'Here it is: {"a": 1}': (
        "the answer is not JSON (Expecting value at line 1 column 1); it starts "
        "'Here it is: {\"a\": 1}'"
    ),
    '{"a": 1} I hope this helps': (
        "the answer is not JSON (Extra data at line 1 column 10); it starts "
        "'{\"a\": 1} I hope this helps'"
    ),
    '```json\n{"a": }\n```': (
        "the answer's fenced block is not valid JSON (Expecting value at line 1 column 7)"
    ),
    'Sure!\n```json\n{"a": 1}\n```': (
        "the answer has text around its fenced block: ask for the JSON alone"
    ),
    '```json\n{"a": 1}\n```\n```json\n{"b": 2}\n```': (
        "the answer has text around its fenced block: ask for the JSON alone"
    ),
    "[" * 100_000: "the answer's JSON is nested too deeply",
}


def test_answers_that_are_not_json():
    for text, message in JSON_ERRORS.items():
        with pytest.raises(StructuredOutputError) as err:
            answer_json(text)
        assert str(err.value) == message
        assert err.value.text == text
    with pytest.raises(StructuredOutputError) as err:
        answer_json(None)
    assert err.value.text == ""


def test_a_long_answer_is_clipped_in_the_message():
    with pytest.raises(StructuredOutputError) as err:
        answer_json("word " * 1000)
    assert len(str(err.value)) < 120 and "\n" not in str(err.value)


def test_one_fenced_block_is_read_inside_the_fence():
    for text in (
        '```json\n{"a": 1}\n```',
        '```\n{"a": 1}\n```',
        '  ```JSON  \n{"a": 1}```\n',
        '```json\n{\n  "a": 1\n}\n```',
    ):
        assert answer_json(text) == {"a": 1}, text


def test_json_output():
    output = JsonOutput()
    assert output.response_format() == {"type": "json_object"}
    assert output.name == "json" and output.strict is False
    assert output.parse('{"a": [1, 2]}') == {"a": [1, 2]}
    assert output.parse("```json\n[1]\n```") == [1]
    with pytest.raises(StructuredOutputError):
        output.parse("no")


# -- round trips: what a strict schema promises, pydantic accepts -------------------------------

NAMES = st.text(max_size=12)
FLOATS = st.floats(allow_nan=False, allow_infinity=False)
WEATHERS = st.builds(
    Weather,
    city=NAMES,
    temperature=FLOATS,
    country=st.none() | NAMES,
    tags=st.lists(NAMES, max_size=3),
    unit=st.sampled_from(["C", "F"]),
)
POINTS = st.builds(
    Point,
    x=FLOATS,
    y=FLOATS,
    seen=st.none() | st.dates(),
    notes=st.lists(NAMES, max_size=2),
)
ROUTES = st.builds(Route, start=POINTS, end=POINTS, mood=st.sampled_from(Mood))
TREES = st.recursive(
    st.builds(Tree, label=NAMES, children=st.just([])),
    lambda kids: st.builds(Tree, label=NAMES, children=st.lists(kids, max_size=3)),
    max_leaves=8,
)


def _round_trip(target: Any, value: Any) -> None:
    schema = OutputSchema.of(target)
    text = pydantic.TypeAdapter(target).dump_json(value).decode()
    jsonschema.validate(json.loads(text), {**schema.schema, "$schema": _DRAFT})  # what was sent
    assert schema.parse(text) == value
    assert schema.parse(f"```json\n{text}\n```") == value


_DRAFT = "https://json-schema.org/draft/2020-12/schema"


@settings(max_examples=150, deadline=None)
@given(WEATHERS, ROUTES, TREES)
def test_round_trips_through_the_strict_schema(weather, route, tree):
    _round_trip(Weather, weather)
    _round_trip(Route, route)
    _round_trip(Tree, tree)


@settings(max_examples=100, deadline=None)
@given(st.fixed_dictionaries({"title": NAMES, "year": st.integers()}))
def test_typeddict_round_trip(movie):
    schema = OutputSchema.of(Movie)
    assert schema.parse(json.dumps(movie)) == movie


# -- pydantic is optional -----------------------------------------------------------------------


def test_missing_pydantic(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setitem(sys.modules, "pydantic", None)  # `import pydantic` now fails
    with pytest.raises(ConfigError) as err:
        OutputSchema.of(Point)
    assert str(err.value) == "--schema needs pydantic: pip install 'nbchat-llm[tools]'"
    assert OutputSchema.of(REPORT).strict  # a JSON Schema dict needs only jsonschema
    assert JsonOutput().parse("[1]") == [1]


def test_missing_jsonschema(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setitem(sys.modules, "jsonschema", None)
    with pytest.raises(ConfigError) as err:
        OutputSchema.of(REPORT)
    assert str(err.value) == "--schema with a JSON Schema dict needs jsonschema"
