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
signature ever reach the function. pydantic is imported only here and only when needed: nbchat
runs without it until a tool or a schema is asked for.
"""

from __future__ import annotations

import functools
import hashlib
import inspect
import json
import re
import typing
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from nbchat.digest import canonical
from nbchat.errors import ConfigError
from nbchat.text import clip, one_line

__all__ = [
    "ArgumentError",
    "Tool",
    "describe",
    "describe_all",
    "map_subschemas",
    "need_pydantic",
    "parse_docstring",
    "path_text",
    "quiet_generator",
    "tidy_schema",
    "tool_spec",
    "tool_specs",
    "tools_digest",
    "validation_summary",
]

TOOL_NAME = re.compile(r"^[a-zA-Z0-9_-]{1,64}$")
_POSITIONAL_ONLY = inspect.Parameter.POSITIONAL_ONLY
_VARIADIC = (inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.VAR_KEYWORD)


class ArgumentError(ValueError):
    """A model's arguments do not fit the function's signature (one line, for the model)."""


def need_pydantic(feature: str) -> Any:
    """The pydantic module, or a `ConfigError` naming the flag (``--tools``, ``--schema``)."""
    try:
        import pydantic
    except ImportError as err:
        raise ConfigError(f"{feature} needs pydantic: pip install 'nbchat[tools]'") from err
    return pydantic


# -- docstrings --------------------------------------------------------------------------------

_GOOGLE = re.compile(
    r"^(Args|Arguments|Parameters|Params|Keyword Args|Keyword Arguments|Other Parameters):\s*$"
)
_GOOGLE_ITEM = re.compile(r"^\*{0,2}(\w+)\s*(?:\([^)]*\))?\s*:(.*)$")
_NUMPY_RULE = re.compile(r"^\s*-{3,}\s*$")
_NUMPY_ITEM = re.compile(r"^(\*{0,2}\w+(?:\s*,\s*\*{0,2}\w+)*)\s*(?::.*)?$")
_REST = re.compile(
    r"^:(?:param|parameter|arg|argument|key|keyword)\s+(?:[^:]*\s)?\*{0,2}(\w+):(.*)$"
)
_REST_ANY = re.compile(r"^:\w+")


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip())


def _block(lines: list[str], start: int, base: int) -> list[str]:
    """The lines after ``start`` that are indented deeper than ``base`` (blank lines kept)."""
    block = []
    for line in lines[start + 1 :]:
        if line.strip() and _indent(line) <= base:
            break
        block.append(line)
    return block


def _items(block: list[str], header: re.Pattern[str]) -> dict[str, str]:
    """Entries at the block's first indent, each with its deeper-indented continuation."""
    texts: dict[str, list[str]] = {}
    names: list[str] = []
    level = min((_indent(line) for line in block if line.strip()), default=0)
    for line in block:
        match = header.match(line.strip()) if _indent(line) == level else None
        if match:
            names = [name.strip().lstrip("*") for name in match.group(1).split(",")]
            first = match.group(2) if header.groups > 1 else ""
            for name in names:
                texts[name] = [first or ""]
        elif names and line.strip():
            for name in names:
                texts[name].append(line.strip())
    return {
        name: one_line(" ".join(parts))
        for name, parts in texts.items()
        if one_line(" ".join(parts))
    }


def _numpy_section(lines: list[str], start: int) -> list[str]:
    """The lines of a NumPy section from ``start`` up to the next section's header (a line
    followed by a rule of dashes)."""
    end = start
    while end < len(lines) and not (end + 1 < len(lines) and _NUMPY_RULE.match(lines[end + 1])):
        end += 1
    return lines[start:end]


def _param_docs(lines: list[str]) -> dict[str, str]:
    docs: dict[str, str] = {}
    for index, line in enumerate(lines):
        stripped = line.strip()
        if _GOOGLE.match(stripped):
            docs.update(_items(_block(lines, index, _indent(line)), _GOOGLE_ITEM))
        elif stripped in ("Parameters", "Other Parameters") and index + 1 < len(lines):
            if _NUMPY_RULE.match(lines[index + 1]):
                docs.update(_items(_numpy_section(lines, index + 2), _NUMPY_ITEM))
        elif match := _REST.match(stripped):
            more = [ln.strip() for ln in _block(lines, index, _indent(line)) if ln.strip()]
            docs[match.group(1)] = one_line(" ".join([match.group(2), *more]))
    return docs


def parse_docstring(doc: str | None) -> tuple[str, dict[str, str]]:
    """The summary (first paragraph, on one line) and each documented parameter's description."""
    lines = inspect.cleandoc(doc or "").splitlines()
    if lines and _GOOGLE.match(lines[0].strip()):
        # cleandoc took the items' indent for the margin: give them back a level below the header
        lines = [lines[0], *("    " + line for line in lines[1:])]
    summary: list[str] = []
    for index, line in enumerate(lines):
        stripped = line.strip()
        section = _GOOGLE.match(stripped) or _REST_ANY.match(stripped)
        numpy = index + 1 < len(lines) and _NUMPY_RULE.match(lines[index + 1])
        if not stripped or section or numpy:
            break
        summary.append(stripped)
    return one_line(" ".join(summary)), _param_docs(lines)


# -- JSON Schema tidying -------------------------------------------------------------------------

_SCHEMA_MAPS = ("properties", "$defs", "patternProperties", "dependentSchemas")
_SCHEMA_LISTS = ("anyOf", "allOf", "oneOf", "prefixItems")
_SCHEMA_ONES = ("items", "additionalProperties", "not", "if", "then", "else", "contains")


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


def _is_json(value: Any) -> bool:
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
        if key != "title" and (key != "default" or _is_json(value))
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


def validation_summary(error: Any, limit: int = 300) -> str:
    """A pydantic ``ValidationError`` as one line: ``where: problem`` of the first error, and how
    many more there are."""
    errors = error.errors(include_url=False)
    first = errors[0] if errors else {"loc": (), "msg": str(error)}
    message = _FRIENDLY.get(first.get("type", ""), first["msg"])
    text = f"{path_text(first['loc'])}: {message}"
    if len(errors) > 1:
        text += f" (and {len(errors) - 1} more)"
    return clip(one_line(text), limit)


_FRIENDLY = {"missing": "Field required", "extra_forbidden": "not a parameter of this function"}


# -- functions as tools --------------------------------------------------------------------------


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
            raise ArgumentError(validation_summary(err)) from None
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


def tool_specs(fns: Iterable[Callable[..., Any]]) -> list[dict[str, Any]]:
    """The specs of several functions, sorted by name (the canonical order: the same set of
    functions always gives the same request); two functions of one name are refused."""
    return [tool.spec for tool in describe_all(fns)]


def tools_digest(specs: list[dict[str, Any]]) -> str:
    """A sha256 of the specs' canonical JSON: it changes exactly when what is sent changes."""
    return hashlib.sha256(canonical(specs)).hexdigest()


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
    if not _is_json(spec):  # e.g. Literal[float("nan")]: Python writes it, JSON cannot
        raise ConfigError(f"{name}: its schema holds NaN or an infinity, which JSON cannot carry")
    return Tool(name, fn, spec, parameters, model)


def _unwrap_partial(fn: Callable[..., Any]) -> Any:
    while isinstance(fn, functools.partial):
        fn = fn.func
    return fn


def _tool_name(fn: Callable[..., Any]) -> str:
    shown = clip(one_line(repr(fn)), 60)
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
