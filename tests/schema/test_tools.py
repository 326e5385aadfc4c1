"""Tool specs from notebook functions (`nbchat.schema.tools`): every type form, descriptions,
the canonical form of several tools, and generated signatures that raise only config errors."""

from __future__ import annotations

import datetime
import enum
import inspect
import json
import keyword
import sys
import typing
from collections.abc import Callable
from typing import Annotated, Any, Literal, Optional, Union

import pydantic
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typing_extensions import TypedDict

from nbchat.engine.tool_calls import ToolBox
from nbchat.errors import ConfigError
from nbchat.schema.tools import describe, tool_spec

from support.tool_samples import Plain, Point, Unit, get_weather, params


class Address(pydantic.BaseModel):
    """Where someone lives."""

    street: str
    city: str


class Tree(pydantic.BaseModel):
    label: str
    children: list[Tree] = []


class Movie(TypedDict):
    title: str
    year: int


# -- the spec's shape ---------------------------------------------------------------------------


def test_a_whole_spec():
    assert tool_spec(get_weather) == {
        "type": "function",
        "function": {
            "name": "get_weather",
            "description": "Get the current weather in a city.",
            "parameters": {
                "additionalProperties": False,
                "properties": {
                    "city": {"description": 'The city\'s name, e.g. "Paris".', "type": "string"},
                    "unit": {
                        "default": "C",
                        "description": "Temperature unit.",
                        "enum": ["C", "F"],
                        "type": "string",
                    },
                },
                "required": ["city"],
                "type": "object",
            },
        },
    }


def test_no_docstring_no_description_and_no_parameters():
    def ping() -> str:
        return "pong"

    assert tool_spec(ping) == {
        "type": "function",
        "function": {
            "name": "ping",
            "parameters": {"additionalProperties": False, "properties": {}, "type": "object"},
        },
    }


def test_scalar_types_and_defaults():
    def f(a: int, b: float = 1.5, c: bool = False, d: str = "x", e: None = None, g: bytes = b""):
        pass

    props = params(f)["properties"]
    assert props["a"] == {"type": "integer"}
    assert props["b"] == {"default": 1.5, "type": "number"}
    assert props["c"] == {"default": False, "type": "boolean"}
    assert props["d"] == {"default": "x", "type": "string"}
    assert props["e"] == {"default": None, "type": "null"}
    assert props["g"]["type"] == "string"
    assert params(f)["required"] == ["a"]


def test_optional_union_list_dict_tuple_set():
    def f(
        a: Optional[int],  # noqa: UP045 - the old spelling is a form to support
        b: int | str,
        c: list[str],
        d: dict[str, int],
        e: tuple[int, str],
        g: set[int],
        h: Union[int, None] = None,  # noqa: UP007
    ):
        pass

    props = params(f)["properties"]
    assert props["a"] == {"anyOf": [{"type": "integer"}, {"type": "null"}]}
    assert props["b"] == {"anyOf": [{"type": "integer"}, {"type": "string"}]}
    assert props["c"] == {"items": {"type": "string"}, "type": "array"}
    assert props["d"] == {"additionalProperties": {"type": "integer"}, "type": "object"}
    assert props["e"]["prefixItems"] == [{"type": "integer"}, {"type": "string"}]
    assert props["g"] == {"items": {"type": "integer"}, "type": "array", "uniqueItems": True}
    assert props["h"] == {"anyOf": [{"type": "integer"}, {"type": "null"}], "default": None}
    assert params(f)["required"] == ["a", "b", "c", "d", "e", "g"]


def test_literal_enum_and_datetime():
    def f(
        mode: Literal["fast", "slow", 3],
        unit: Unit = Unit.CELSIUS,
        day: datetime.date = datetime.date(2024, 5, 1),
    ):
        pass

    props = params(f)["properties"]
    assert props["mode"] == {"enum": ["fast", "slow", 3]}
    assert props["unit"] == {"default": "C", "enum": ["C", "F"], "type": "string"}
    assert props["day"] == {"default": "2024-05-01", "format": "date", "type": "string"}


def test_dataclass_model_and_typeddict_are_written_inline():
    def f(where: Point, home: Address, movie: Movie):
        pass

    props = params(f)["properties"]
    props["where"].pop("description", None)  # the dataclass's docstring (pydantic >= 2.7)
    props["where"].pop("additionalProperties", None)  # closed by pydantic >= 2.14, not before
    assert props["where"] == {
        "properties": {"x": {"type": "number"}, "y": {"default": 0.0, "type": "number"}},
        "required": ["x"],
        "type": "object",
    }
    assert props["home"]["properties"] == {"city": {"type": "string"}, "street": {"type": "string"}}
    assert props["home"]["description"] == "Where someone lives."
    assert props["movie"]["required"] == ["title", "year"]
    assert "$defs" not in params(f)
    assert '"title": "' not in json.dumps(params(f))  # no pydantic titles (a field may be one)


def test_a_type_used_twice_or_recursive_stays_in_defs():
    def f(a: Point, b: list[Point], tree: Tree | None = None):
        pass

    schema = params(f)
    assert schema["properties"]["a"] == {"$ref": "#/$defs/Point"}
    assert schema["properties"]["b"] == {"items": {"$ref": "#/$defs/Point"}, "type": "array"}
    assert sorted(schema["$defs"]) == ["Point", "Tree"]
    assert schema["$defs"]["Tree"]["properties"]["children"]["items"] == {"$ref": "#/$defs/Tree"}


def test_a_parameter_description_beside_a_reference_wins_over_the_types_docstring():
    def f(where: Point):
        """Go.

        Args:
            where: Where to go.
        """

    assert params(f)["properties"]["where"]["description"] == "Where to go."


def test_annotated_descriptions_and_constraints():
    def f(
        a: Annotated[int, pydantic.Field(ge=1, le=5, description="from the hint")],
        b: Annotated[str, "a plain string describes too"],
        c: Annotated[float, pydantic.Field(gt=0)] = 1.0,
    ):
        """F.

        Args:
            a: from the docstring, not used.
            b: not used either.
            c: used.
        """

    props = params(f)["properties"]
    assert props["a"] == {
        "description": "from the hint",
        "maximum": 5,
        "minimum": 1,
        "type": "integer",
    }
    assert props["b"] == {"description": "a plain string describes too", "type": "string"}
    assert props["c"] == {
        "default": 1.0,
        "description": "used.",
        "exclusiveMinimum": 0,
        "type": "number",
    }


def test_unannotated_parameters_take_any_json_value():
    def f(a, b=3, c=None):
        pass

    assert params(f)["properties"] == {"a": {}, "b": {"default": 3}, "c": {"default": None}}


def test_a_default_without_json_form_is_left_out_quietly():
    marker = object()

    def f(a: Any = marker, b: list[int] = [1, 2], c: float = float("nan")):  # noqa: B006
        pass

    assert params(f)["properties"] == {
        "a": {},
        "b": {"default": [1, 2], "items": {"type": "integer"}, "type": "array"},
        "c": {"type": "number"},
    }


def test_a_number_json_cannot_carry_is_refused():
    def f(x: Literal[float("nan")]) -> None:  # type: ignore[valid-type]
        pass

    with pytest.raises(ConfigError) as err:
        tool_spec(f)
    assert str(err.value) == "f: its schema holds NaN or an infinity, which JSON cannot carry"


def test_parameter_names_pydantic_reserves_are_fine():
    def f(json: int, model_config: str, _private: bool, schema: float = 1.0, copy: int = 2):
        pass

    schema = params(f)
    assert list(schema["properties"]) == ["json", "model_config", "_private", "schema", "copy"]
    assert schema["required"] == ["json", "model_config", "_private"]
    arguments = {"json": "1", "model_config": "m", "_private": True, "copy": 5}
    assert describe(f).bind(arguments) == ([], {**arguments, "json": 1})


def test_parameters_named_like_the_internal_fields():
    def f(p1: int, p0: str) -> None:
        pass

    assert describe(f).bind({"p1": "5", "p0": "x"}) == ([], {"p1": 5, "p0": "x"})


def test_positional_only_and_keyword_only_parameters():
    def f(a: int, /, b: int, *, c: int = 0):
        pass

    schema = params(f)
    assert list(schema["properties"]) == ["a", "b", "c"]
    assert schema["required"] == ["a", "b"]


def test_descriptions_of_parameters_that_do_not_exist_are_ignored():
    def f(a: int):
        """F.

        Args:
            a: The a.
            ghost: Not a parameter.
        """

    assert params(f)["properties"] == {"a": {"description": "The a.", "type": "integer"}}


# -- several tools, and the canonical form ------------------------------------------------------


def lookup(key: str) -> str:
    """Look a key up."""
    return key


def test_tool_specs_are_sorted_by_name_and_deduplicated():
    specs = ToolBox([lookup, get_weather, lookup]).specs
    assert [s["function"]["name"] for s in specs] == ["get_weather", "lookup"]
    assert ToolBox([get_weather, lookup]).specs == ToolBox([lookup, get_weather]).specs


def test_two_functions_of_one_name_are_refused():
    def lookup(key: int) -> int:  # a second function of the same name
        return key

    with pytest.raises(ConfigError) as err:
        ToolBox([globals()["lookup"], lookup])
    assert str(err.value) == "two tools are named 'lookup': offer one of them"


def test_the_spec_changes_exactly_when_what_is_sent_changes():
    def version(source: str) -> Callable[..., Any]:
        namespace: dict[str, Any] = {}
        exec(source, namespace)  # a notebook cell re-run with an edited function
        return namespace["find"]

    base = (
        "def find(name: str, n: int = 3):\n"
        "    '''Find a name.\n\n    Args:\n        name: Who.\n    '''\n"
    )
    sent = ToolBox([version(base)]).specs  # part of the request, and so of its key
    assert ToolBox([version(base)]).specs == sent
    body_changed = base + "    return name * n\n"
    assert ToolBox([version(body_changed)]).specs == sent
    for edited in (
        base.replace("n: int = 3", "n: int = 4"),
        base.replace("n: int", "n: float"),
        base.replace("name: str, ", "name: str, exact: bool = False, "),
        base.replace("Find a name.", "Find a person."),
        base.replace("name: Who.", "name: Whom."),
    ):
        assert ToolBox([version(edited)]).specs != sent, edited


# -- pydantic is optional -----------------------------------------------------------------------


def test_missing_pydantic_is_one_line_naming_the_flag(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setitem(sys.modules, "pydantic", None)  # `import pydantic` now fails
    with pytest.raises(ConfigError) as err:
        tool_spec(get_weather)
    assert str(err.value) == "--tools needs pydantic: pip install 'nbchat-llm[tools]'"
    assert isinstance(err.value.__cause__, ImportError)


# -- property: never anything but a ConfigError -------------------------------------------------


class Colour(enum.Enum):
    RED = 1


LEAVES = [
    int,
    str,
    float,
    bool,
    None,
    bytes,
    Any,
    object,
    datetime.date,
    Colour,
    Point,
    Address,
    Tree,
    Movie,
    Plain,
    Callable,
    Callable[[int], int],
    type,
    42,
    "NoSuchName",
    "int",
    ...,
    Literal,
    Union,
    list,
    dict,
    set,
    tuple,
    typing.TypeVar("T"),
    typing.NoReturn,
    complex,
    range,
    bytearray,
]


def _combine(make: Callable[[Any], Any]) -> Callable[[Any], Any]:
    def safely(inner: Any) -> Any:
        try:
            return make(inner)
        except Exception:  # typing refuses some combinations itself: not what is tested here
            return inner

    return safely


def _wrapped(inner: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return st.one_of(
        inner.map(_combine(lambda t: list[t])),
        inner.map(_combine(lambda t: Optional[t])),  # noqa: UP045
        inner.map(_combine(lambda t: dict[str, t])),
        inner.map(_combine(lambda t: tuple[t, ...])),
        inner.map(_combine(lambda t: Annotated[t, pydantic.Field(ge=0)])),
        inner.map(_combine(lambda t: Annotated[t, "described"])),
        st.tuples(inner, inner).map(_combine(lambda pair: Union[pair])),  # noqa: UP007
        st.lists(st.one_of(st.integers(), st.text(max_size=3), st.none()), min_size=1, max_size=3)
        .map(tuple)
        .map(_combine(lambda values: Literal[values])),
    )


ANNOTATIONS = st.recursive(st.sampled_from(LEAVES), _wrapped, max_leaves=5)
NAMES = st.from_regex(r"[A-Za-z_][A-Za-z0-9_]{0,8}", fullmatch=True).filter(
    lambda name: not keyword.iskeyword(name)
)
KINDS = st.sampled_from(list(inspect._ParameterKind))
DEFAULTS = st.one_of(
    st.just(inspect.Parameter.empty),
    st.integers(),
    st.none(),
    st.text(max_size=3),
    st.just(object()),
    st.just([1]),
    st.just(float("nan")),
)
PARAMETER = st.tuples(
    NAMES, KINDS, st.one_of(st.just(inspect.Parameter.empty), ANNOTATIONS), DEFAULTS
)


def _function(parameters: list[tuple[str, Any, Any, Any]], name: str, doc: str) -> Any:
    def fn(*args: Any, **kwargs: Any) -> None:
        return None

    built = []
    for pname, kind, annotation, default in parameters:
        if kind in (inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.VAR_KEYWORD):
            default = inspect.Parameter.empty
        built.append(inspect.Parameter(pname, kind, annotation=annotation, default=default))
    built.sort(key=lambda p: p.kind)
    fn.__signature__ = inspect.Signature(built)  # may refuse: defaults out of order
    fn.__annotations__ = {p.name: p.annotation for p in built if p.annotation is not p.empty}
    fn.__name__ = name
    fn.__doc__ = doc
    return fn


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(PARAMETER, max_size=5, unique_by=lambda p: p[0]), NAMES, st.text(max_size=60))
def test_tool_spec_raises_only_config_errors(parameters, name, doc):
    try:
        fn = _function(parameters, name, doc)
    except ValueError:
        return  # not a valid signature: nothing a notebook could define
    try:
        spec = tool_spec(fn)
    except ConfigError as err:
        assert "\n" not in str(err)
        return
    json.dumps(spec, allow_nan=False)  # the spec is JSON
    assert spec["function"]["name"] == name


def test_a_callable_whose_repr_fails_is_named_by_its_type():
    class Opaque:
        def __call__(self) -> int:
            return 1

        def __repr__(self) -> str:
            raise RuntimeError("no repr")

    with pytest.raises(ConfigError, match=r"^a Opaque has no name: wrap it in a def"):
        tool_spec(Opaque())
