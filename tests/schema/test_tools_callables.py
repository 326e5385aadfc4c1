"""Tool specs from every kind of callable (`nbchat.schema.tools`): methods, partials, decorated
functions and builtins; each refusal's exact message; and arguments bound per the hints."""

from __future__ import annotations

import functools
import time
import typing
from collections.abc import Callable
from typing import Any

import pytest

from nbchat.errors import ConfigError
from nbchat.schema.tools import ArgumentError, describe, tool_spec

from support.tool_samples import Plain, Point, Unit, get_weather, params

# -- kinds of callables -------------------------------------------------------------------------


class Library:
    def __init__(self, books: list[str]) -> None:
        self.books = books

    def search(self, word: str, limit: int = 5) -> list[str]:
        """Books whose title holds a word.

        Args:
            word: The word to look for.
        """
        return [b for b in self.books if word in b][:limit]

    @classmethod
    def build(cls, title: str) -> Library:
        """A library of one book."""
        return cls([title])

    @staticmethod
    def count(titles: list[str]) -> int:
        """How many."""
        return len(titles)


def test_bound_methods_classmethods_and_staticmethods():
    spec = tool_spec(Library(["a"]).search)["function"]
    assert spec["name"] == "search"
    assert spec["description"] == "Books whose title holds a word."
    assert list(spec["parameters"]["properties"]) == ["word", "limit"]
    assert list(params(Library.build)["properties"]) == ["title"]
    assert list(params(Library.count)["properties"]) == ["titles"]


def test_a_method_taken_from_the_class_is_refused():
    with pytest.raises(ConfigError) as err:
        tool_spec(Library.search)
    assert str(err.value) == "search is a method: offer it bound to an object (obj.search)"


def test_partial_hides_what_it_binds():
    spec = tool_spec(functools.partial(get_weather, "Paris"))["function"]
    assert spec["name"] == "get_weather"
    assert spec["description"] == "Get the current weather in a city."
    assert list(spec["parameters"]["properties"]) == ["unit"]
    keyword_bound = params(functools.partial(get_weather, unit="F"))
    assert keyword_bound["properties"]["unit"]["default"] == "F"
    assert keyword_bound["required"] == ["city"]


def test_a_decorated_function_keeps_its_signature():
    def logged(fn: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(fn)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            return fn(*args, **kwargs)

        return wrapper

    assert tool_spec(logged(get_weather)) == tool_spec(get_weather)


def test_builtins_with_and_without_a_signature():
    spec = tool_spec(len)["function"]
    assert spec["name"] == "len"
    assert spec["parameters"]["properties"] == {"obj": {}}
    with pytest.raises(ConfigError) as err:
        tool_spec(dict)
    assert str(err.value) == "dict is a class: offer a function that builds one"
    with pytest.raises(ConfigError) as err:
        tool_spec(print)
    assert str(err.value) == "print(*args): a model sends named arguments; list each parameter"


def test_a_builtin_that_has_no_signature():
    with pytest.raises(ConfigError) as err:
        tool_spec(time.monotonic)
    assert str(err.value) == "monotonic has no signature Python can read: wrap it in a def"


REFUSALS = [
    (lambda x: x, "a lambda has no name a model can call: define it with def"),
    (Plain, "Plain is a class: offer a function that builds one"),
    (42, "42 is not callable: offer a function as a tool"),
]


def test_lambda_class_and_non_callable_are_refused():
    for target, message in REFUSALS:
        with pytest.raises(ConfigError) as err:
            tool_spec(target)
        assert str(err.value) == message


def test_a_callable_object_without_a_name_is_refused():
    class Scorer:
        def __call__(self, x: int) -> int:
            return x

    with pytest.raises(ConfigError) as err:
        tool_spec(Scorer())
    assert str(err.value).endswith("has no name: wrap it in a def to offer it as a tool")
    assert str(err.value).startswith(f"<{__name__}.")  # the object's repr, clipped


def test_async_and_generator_functions_are_refused():
    async def fetch(url: str) -> str:
        return url

    async def stream(url: str) -> typing.AsyncIterator[str]:
        yield url

    def numbers(n: int) -> typing.Iterator[int]:
        yield from range(n)

    messages = {
        fetch: "fetch is async; tools run synchronously: offer a plain def",
        functools.partial(fetch, "x"): "fetch is async; tools run synchronously: offer a plain def",
        stream: "stream is async; tools run synchronously: offer a plain def",
        numbers: "numbers is a generator; a tool returns its result: return a list",
    }
    for fn, message in messages.items():
        with pytest.raises(ConfigError) as err:
            tool_spec(fn)
        assert str(err.value) == message


def test_star_args_and_kwargs_are_refused():
    def a(x: int, *rest: int) -> None:
        pass

    def b(x: int, **options: Any) -> None:
        pass

    for fn, message in (
        (a, "a(*rest): a model sends named arguments; list each parameter"),
        (b, "b(**options): a model sends named arguments; list each parameter"),
    ):
        with pytest.raises(ConfigError) as err:
            tool_spec(fn)
        assert str(err.value) == message


def test_names_a_model_cannot_call_are_refused():
    def café() -> None:
        pass

    def long() -> None:
        pass

    long.__name__ = "x" * 65
    with pytest.raises(ConfigError) as err:
        tool_spec(café)
    assert str(err.value) == "'café' is not a tool name (1-64 letters, digits, _ or -): rename it"
    with pytest.raises(ConfigError) as err:
        tool_spec(long)
    assert "is not a tool name (1-64 letters, digits, _ or -): rename it" in str(err.value)
    long.__name__ = "x" * 64
    assert tool_spec(long)["function"]["name"] == "x" * 64


def test_a_type_without_json_form_names_the_parameter():
    def f(a: int, callback: Callable[[int], int]) -> None:
        pass

    def g(a: int, thing: Plain) -> None:
        pass

    tail = (
        "has no JSON form; use str, numbers, bool, lists, dicts, Literal, dataclasses or "
        "pydantic models"
    )
    with pytest.raises(ConfigError) as err:
        tool_spec(f)
    assert str(err.value) == f"f: parameter callback: collections.abc.Callable[[int], int] {tail}"
    with pytest.raises(ConfigError) as err:
        tool_spec(g)
    assert str(err.value) == f"g: parameter thing: Plain {tail}"


def test_hints_that_cannot_be_read():
    def f(a: NoSuchType) -> None:  # type: ignore[name-defined]  # noqa: F821
        pass

    with pytest.raises(ConfigError) as err:
        tool_spec(f)
    assert str(err.value) == (
        "f: its type hints cannot be read (NameError: name 'NoSuchType' is not defined)"
    )


# -- arguments ----------------------------------------------------------------------------------


def test_bind_coerces_per_the_hints_and_passes_only_what_was_given():
    def f(a: int, /, b: Point, *, c: Unit = Unit.CELSIUS, d: list[int] | None = None) -> None:
        pass

    tool = describe(f)
    args, kwargs = tool.bind({"a": "3", "b": {"x": 1}, "c": "F"})
    assert args == [3]
    assert kwargs == {"b": Point(1.0, 0.0), "c": Unit.FAHRENHEIT}


def test_positional_only_defaults_are_filled_up_to_the_last_given():
    def f(a: int = 1, b: int = 2, c: int = 3, /) -> None:
        pass

    tool = describe(f)
    assert tool.bind({}) == ([], {})
    assert tool.bind({"b": 5}) == ([1, 5], {})


def test_bind_refuses_in_one_line():
    tool = describe(get_weather)
    cases = {
        "city: Field required": {},
        "zip: not a parameter of this function": {"city": "x", "zip": 1},
        "city: Input should be a valid string": {"city": 3},
        "unit: Input should be 'C' or 'F'": {"city": "x", "unit": "K"},
        "city: Input should be a valid string (and 1 more)": {"city": [], "unit": "K"},
    }
    for message, arguments in cases.items():
        with pytest.raises(ArgumentError) as err:
            tool.bind(arguments)
        assert str(err.value) == message
