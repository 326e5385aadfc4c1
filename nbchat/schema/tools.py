"""Notebook functions as tools: the JSON schema a model sees, and how its arguments are checked.

`tool_spec(fn)` is the ``{"type": "function", "function": {...}}`` entry of a request's
``tools``: the name is the function's ``__name__``, the description the docstring's summary, and
the parameters a JSON Schema built by pydantic from the signature and type hints, with each
parameter's description taken from a Google (``Args:``), NumPy (``Parameters`` + dashes) or reST
(``:param x:``) docstring. Parameters without a default are required; defaults are shown. An
unannotated parameter takes any JSON value. ``*args``, ``**kwargs``, async functions, generator
functions, lambdas, classes and callables without a name or a signature are refused with a
`ConfigError` that says what to do. A positional-only parameter is sent by name like any other
and passed by position.

The same description checks a model's arguments (`Tool.bind`): they are validated and coerced
per the hints (a dataclass argument is built from its JSON object), so only values that fit the
signature ever reach the function. pydantic is imported only when needed (`need_pydantic`):
nbchat runs without it until a tool or a schema is asked for.
"""

from __future__ import annotations

import functools
import inspect
import re
import typing
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from nbchat._text import clip, one_line
from nbchat.errors import ConfigError
from nbchat.schema.docstrings import parse_docstring
from nbchat.schema.json_schema import (
    is_json_value,
    need_pydantic,
    quiet_generator,
    tidy_schema,
    validation_summary,
)

__all__ = ["ArgumentError", "Tool", "describe", "describe_all", "tool_spec"]

TOOL_NAME = re.compile(r"^[a-zA-Z0-9_-]{1,64}$")
_POSITIONAL_ONLY = inspect.Parameter.POSITIONAL_ONLY
_VARIADIC = (inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.VAR_KEYWORD)


class ArgumentError(ValueError):
    """A model's arguments do not fit the function's signature (one line, for the model)."""


@dataclass(frozen=True)
class Tool:
    """A function offered to a model: its name, the spec sent, and how to call it."""

    name: str
    function: Callable[..., Any]
    spec: dict[str, Any]
    parameters: tuple[inspect.Parameter, ...]
    arguments: Any  # the pydantic model that validates the arguments

    def bind(self, arguments: dict[str, Any]) -> tuple[list[Any], dict[str, Any]]:
        """The positional and keyword arguments for a call; `ArgumentError` when they do not fit."""
        pydantic = need_pydantic("--tools")
        try:
            checked = self.arguments.model_validate(arguments)
        except pydantic.ValidationError as err:
            raise ArgumentError(
                validation_summary(err, extra="not a parameter of this function")
            ) from None
        given = checked.model_fields_set
        fields = [(f"p{i}", p) for i, p in enumerate(self.parameters)]
        positional = [f for f, p in fields if p.kind is _POSITIONAL_ONLY]
        last = max((positional.index(f) for f in positional if f in given), default=-1)
        args = [getattr(checked, f) for f in positional[: last + 1]]
        kwargs = {
            p.name: getattr(checked, f)
            for f, p in fields
            if f in given and p.kind is not _POSITIONAL_ONLY
        }
        return args, kwargs


def tool_spec(fn: Callable[..., Any]) -> dict[str, Any]:
    """The ``tools`` entry a request carries for ``fn``; `ConfigError` when it cannot be one."""
    return describe(fn).spec


def describe_all(fns: Iterable[Callable[..., Any]]) -> list[Tool]:
    """`describe` for each function, sorted by name; a repeated name is a `ConfigError`."""
    tools: dict[str, Tool] = {}
    for fn in fns:
        tool = describe(fn)
        if tool.name in tools and tools[tool.name].function is not fn:
            raise ConfigError(f"two tools are named {tool.name!r}: offer one of them")
        tools[tool.name] = tool
    return [tools[name] for name in sorted(tools)]


def describe(fn: Callable[..., Any]) -> Tool:
    """``fn`` as a `Tool`; `ConfigError` (one line, saying what to do) when it cannot be one."""
    name = _tool_name(fn)
    pydantic = need_pydantic("--tools")
    target = _unwrap_partial(fn)
    parameters = _parameters(fn, name)
    summary, docs = parse_docstring(inspect.getdoc(target))
    hints = _hints(target, name)
    model, schema = _arguments(pydantic, name, parameters, hints, docs)
    function: dict[str, Any] = {"name": name}
    if summary:
        function["description"] = summary
    function["parameters"] = schema
    spec = {"type": "function", "function": function}
    if not is_json_value(spec):  # e.g. Literal[float("nan")]: Python writes it, JSON cannot
        raise ConfigError(f"{name}: its schema holds NaN or an infinity, which JSON cannot carry")
    return Tool(name, fn, spec, parameters, model)


def _shown(fn: object) -> str:
    """``fn`` as an error line names it (its own ``repr`` may fail)."""
    try:
        return clip(one_line(repr(fn)), 60)
    except Exception:
        return f"a {type(fn).__name__}"


def _unwrap_partial(fn: Callable[..., Any]) -> Any:
    while isinstance(fn, functools.partial):
        fn = fn.func
    return fn


def _tool_name(fn: Callable[..., Any]) -> str:
    shown = _shown(fn)
    if not callable(fn):
        raise ConfigError(f"{shown} is not callable: offer a function as a tool")
    if inspect.isclass(fn):
        raise ConfigError(f"{fn.__name__} is a class: offer a function that builds one")
    target = _unwrap_partial(fn)
    name = getattr(target, "__name__", None)
    if not isinstance(name, str):
        raise ConfigError(f"{shown} has no name: wrap it in a def to offer it as a tool")
    if name == "<lambda>":
        raise ConfigError("a lambda has no name a model can call: define it with def")
    if not TOOL_NAME.match(name):
        raise ConfigError(
            f"{clip(name, 70)!r} is not a tool name (1-64 letters, digits, _ or -): rename it"
        )
    if inspect.iscoroutinefunction(fn) or inspect.isasyncgenfunction(target):
        raise ConfigError(f"{name} is async; tools run synchronously: offer a plain def")
    if inspect.isgeneratorfunction(target):
        raise ConfigError(f"{name} is a generator; a tool returns its result: return a list")
    return name


def _parameters(fn: Callable[..., Any], name: str) -> tuple[inspect.Parameter, ...]:
    try:
        parameters = tuple(inspect.signature(fn).parameters.values())
    except (TypeError, ValueError):
        raise ConfigError(f"{name} has no signature Python can read: wrap it in a def") from None
    for param in parameters:
        if param.kind in _VARIADIC:
            star = "*" if param.kind is inspect.Parameter.VAR_POSITIONAL else "**"
            raise ConfigError(
                f"{name}({star}{param.name}): a model sends named arguments; list each parameter"
            )
    qualname = getattr(_unwrap_partial(fn), "__qualname__", "").split(".")
    unbound = not inspect.ismethod(fn) and len(qualname) > 1 and qualname[-2] != "<locals>"
    if unbound and parameters and parameters[0].name == "self":
        raise ConfigError(f"{name} is a method: offer it bound to an object (obj.{name})")
    return parameters


def _hints(target: Any, name: str) -> dict[str, Any]:
    if not (inspect.isfunction(target) or inspect.ismethod(target)):
        return {}  # a builtin: no annotations to read
    try:
        return typing.get_type_hints(target, include_extras=True)
    except Exception as err:  # evaluating annotation strings can raise anything
        problem = clip(one_line(f"{type(err).__name__}: {err}"), 120)
        raise ConfigError(f"{name}: its type hints cannot be read ({problem})") from None


def _annotated_description(annotation: Any) -> bool:
    """Whether an ``Annotated`` hint already describes the parameter (a Field or a string)."""
    for item in getattr(annotation, "__metadata__", ()):
        if isinstance(item, str) or getattr(item, "description", None):
            return True
    return False


def _field(
    pydantic: Any, param: inspect.Parameter, hints: dict[str, Any], docs: dict[str, str]
) -> Any:
    from pydantic_core import PydanticUndefined

    annotation = hints.get(param.name, Any)  # unannotated: any JSON value
    text = next((m for m in getattr(annotation, "__metadata__", ()) if isinstance(m, str)), None)
    if text is None and not _annotated_description(annotation):
        text = docs.get(param.name)
    default = PydanticUndefined if param.default is param.empty else param.default
    described = {"description": text} if text else {}  # an explicit None would hide the hint's
    return annotation, pydantic.Field(default, alias=param.name, **described)


def _type_name(annotation: Any) -> str:
    name = getattr(annotation, "__qualname__", None) if isinstance(annotation, type) else None
    return clip(one_line(name or repr(annotation)), 60)


def _culprit(
    pydantic: Any, parameters: tuple[inspect.Parameter, ...], hints: dict[str, Any]
) -> inspect.Parameter | None:
    """The first parameter whose type pydantic cannot describe, for the error message."""
    for param in parameters:
        try:
            pydantic.TypeAdapter(hints.get(param.name, Any)).json_schema()
        except Exception:  # pydantic's errors about a user's types, of several classes
            return param
    return None


def _arguments(
    pydantic: Any,
    name: str,
    parameters: tuple[inspect.Parameter, ...],
    hints: dict[str, Any],
    docs: dict[str, str],
) -> tuple[Any, dict[str, Any]]:
    """The model that validates the arguments, and its JSON Schema (tidied)."""
    fields = {f"p{i}": _field(pydantic, param, hints, docs) for i, param in enumerate(parameters)}
    try:
        config = pydantic.ConfigDict(extra="forbid")
        model = pydantic.create_model(f"{name}_arguments", __config__=config, **fields)
        schema = model.model_json_schema(schema_generator=quiet_generator())
    except Exception as err:  # pydantic's errors about a user's types come in several classes
        raise _type_error(pydantic, name, err, parameters, hints) from None
    return model, tidy_schema(schema)


def _type_error(
    pydantic: Any,
    name: str,
    err: Exception,
    parameters: tuple[inspect.Parameter, ...],
    hints: dict[str, Any],
) -> ConfigError:
    culprit = _culprit(pydantic, parameters, hints)
    if culprit is None:  # only together do the types fail (pydantic's own words, first line)
        problem = clip(one_line((str(err).strip().splitlines() or [""])[0]), 120)
        return ConfigError(f"{name}: its parameters have no JSON Schema ({problem})")
    shown = _type_name(hints.get(culprit.name, Any))
    return ConfigError(
        f"{name}: parameter {culprit.name}: {shown} has no JSON form; use str, numbers, "
        "bool, lists, dicts, Literal, dataclasses or pydantic models"
    )
