"""Structured output: an answer bound to a Python object (``--schema NAME``, ``--json``).

`OutputSchema.of(target)` takes a pydantic model class, a dataclass, a TypedDict or a JSON
Schema dict and gives the request's ``response_format`` (``json_schema``) and a `parse` that
turns the answer into a model instance, a dataclass instance or a dict. `JsonOutput` is
``--json``: ``response_format`` ``json_object`` and the parsed JSON value.

The schema is sent strict (the server constrains the answer to it) when it qualifies: a Python
type's schema is written for strict mode where the meaning stays the same, and sent with
``strict: false`` where it would not (`nbchat.schema.strict` says which schemas qualify and
why). A JSON Schema dict is sent as given, strict only when it already qualifies.

The answer is untrusted input: it is parsed as JSON (an answer that is one fenced
````` ```json ````` block is read inside the fence; prose around JSON is reported, never guessed
at) and validated; a failure is a `StructuredOutputError` whose message is one line naming the
field and the problem (``temperature: Input should be a valid number``).
"""

from __future__ import annotations

import copy
import dataclasses
import json
import re
import sys
from collections.abc import Callable
from typing import Any

from nbchat._text import clip, one_line
from nbchat.errors import ConfigError, StructuredOutputError
from nbchat.schema.json_schema import (
    map_subschemas,
    need_pydantic,
    path_text,
    quiet_generator,
    tidy_schema,
    validation_summary,
)
from nbchat.schema.strict import close_objects, strict_generator, strict_problem

__all__ = [
    "JsonOutput",
    "OutputSchema",
    "StructuredOutputError",
    "answer_json",
    "misfit",
]

_FENCED = re.compile(r"\A```[ \t]*(?:json|JSON|json5|jsonc)?[ \t]*\n(.*?)\n?[ \t]*```\Z", re.DOTALL)
_NAME_CHARS = re.compile(r"[^a-zA-Z0-9_-]")


# -- reading JSON from an answer ---------------------------------------------------------------


def _json_problem(err: ValueError) -> str:
    if isinstance(err, json.JSONDecodeError):
        return f"{err.msg} at line {err.lineno} column {err.colno}"
    return one_line(str(err))


def answer_json(text: str | None) -> Any:
    """The JSON value of an answer: the whole text, or the inside of the one fenced block that
    is the whole answer. `StructuredOutputError` says why not."""
    text = text or ""
    body = text.strip()
    if not body:
        raise StructuredOutputError("the answer is empty: there is no JSON to read", text=text)
    fenced = _FENCED.match(body)
    if fenced and "```" in fenced.group(1) and not _is_json(fenced.group(1)):
        fenced = None  # several blocks, not one (a JSON string may hold backticks, though)
    if fenced:
        body = fenced.group(1)
    try:
        return json.loads(body)
    except RecursionError:
        raise StructuredOutputError("the answer's JSON is nested too deeply", text=text) from None
    except ValueError as err:
        problem = _json_problem(err)
    if fenced:
        message = f"the answer's fenced block is not valid JSON ({problem})"
    elif "```" in body:
        message = "the answer has text around its fenced block: ask for the JSON alone"
    else:
        message = f"the answer is not JSON ({problem}); it starts {clip(one_line(body), 40)!r}"
    raise StructuredOutputError(message, text=text)


def _is_json(text: str) -> bool:
    try:
        json.loads(text)
    except (ValueError, RecursionError):
        return False
    return True


class JsonOutput:
    """``--json``: any JSON object, parsed; with a schema (``--schema NAME --json``, for servers
    without ``json_schema``), checked against it here, since the server is not told it."""

    strict = False

    def __init__(self, schema: OutputSchema | None = None) -> None:
        self.schema = schema

    @property
    def name(self) -> str:
        """The schema's name, or ``json``."""
        return self.schema.name if self.schema is not None else "json"

    def response_format(self) -> dict[str, Any]:
        """The request's ``response_format``."""
        return {"type": "json_object"}

    def parse(self, text: str | None) -> Any:
        """The answer's JSON value (validated, with a schema); `StructuredOutputError` when it
        is not JSON or does not fit."""
        return self.schema.parse(text) if self.schema is not None else answer_json(text)


# -- the schema of a Python type or a JSON Schema dict -------------------------------------------


def _root_object(schema: dict[str, Any]) -> dict[str, Any]:
    """A recursive model's schema is a ``$ref`` at the top; strict mode wants the object there,
    and refers to it as ``#``."""
    ref = schema.get("$ref")
    defs = schema.get("$defs", {})
    name = ref.removeprefix("#/$defs/") if isinstance(ref, str) else None
    if name not in defs:
        return schema
    root = "#/$defs/" + name

    def point_home(node: dict[str, Any]) -> dict[str, Any]:
        return {**node, "$ref": "#"} if node.get("$ref") == root else node

    rest = {key: value for key, value in defs.items() if key != name}
    body = map_subschemas({**defs[name], "$defs": rest}, point_home)
    if not body["$defs"]:
        del body["$defs"]
    return body


def _schema_name(raw: str) -> str:
    return _NAME_CHARS.sub("_", raw)[:64] or "output"


def _first_line(err: Exception) -> str:
    lines = str(err).strip().splitlines() or [type(err).__name__]
    return clip(one_line(lines[0]), 160)


def _is_typeddict(target: Any) -> bool:
    return (
        isinstance(target, type)
        and issubclass(target, dict)
        and hasattr(target, "__required_keys__")
    )


def _is_python_type(target: Any) -> bool:
    if not isinstance(target, type):
        return False
    if dataclasses.is_dataclass(target) or _is_typeddict(target):
        return True
    # A pydantic model exists only if pydantic was imported: no need to import it to check.
    base = getattr(sys.modules.get("pydantic"), "BaseModel", None)
    return base is not None and issubclass(target, base)


class OutputSchema:
    """The shape an answer must have: what the request says, and how the answer is read."""

    def __init__(
        self,
        name: str,
        schema: dict[str, Any],
        validate: Callable[[Any], Any],
        *,
        why_not_strict: str | None,
    ) -> None:
        self.name = name
        self.schema = schema
        self.why_not_strict = why_not_strict
        self._validate = validate

    @property
    def strict(self) -> bool:
        """Whether the server is asked to hold the answer to the schema."""
        return self.why_not_strict is None

    @classmethod
    def of(cls, target: Any, *, name: str | None = None) -> OutputSchema:
        """The schema of a pydantic model class, a dataclass, a TypedDict or a JSON Schema dict;
        ``name`` (else the class's name or the schema's title) names it in the request."""
        if isinstance(target, dict):
            return cls._of_dict(target, name)
        if _is_python_type(target):
            return cls._of_type(target, name)
        if dataclasses.is_dataclass(target):
            raise ConfigError(f"--schema {name or 'value'} is a dataclass instance: pass its class")
        raise ConfigError(
            f"--schema takes a pydantic model, a dataclass, a TypedDict or a JSON Schema dict, "
            f"not {type(target).__name__}"
        )

    @classmethod
    def _of_type(cls, target: type, name: str | None) -> OutputSchema:
        pydantic = need_pydantic("--schema")
        shown = name or target.__name__
        loose: list[str] = []
        try:
            adapter = pydantic.TypeAdapter(target)
            strict = adapter.json_schema(schema_generator=strict_generator(loose))
            plain = adapter.json_schema(schema_generator=quiet_generator())
        except Exception as err:  # pydantic's errors about a user's types, of several classes
            raise ConfigError(f"--schema {shown}: {_first_line(err)}") from None
        schema = map_subschemas(_root_object(tidy_schema(strict)), close_objects)
        problem = loose[0] if loose else strict_problem(schema)
        if problem:
            schema = _root_object(tidy_schema(plain))

        def validate(value: Any) -> Any:
            try:
                return adapter.validate_python(value)
            except pydantic.ValidationError as err:
                raise ValueError(validation_summary(err)) from None

        return cls(_schema_name(shown), schema, validate, why_not_strict=problem)

    @classmethod
    def _of_dict(cls, target: dict[str, Any], name: str | None) -> OutputSchema:
        try:
            import jsonschema
        except ImportError as err:
            raise ConfigError("--schema with a JSON Schema dict needs jsonschema") from err
        shown = name or str(target.get("title") or "output")
        try:
            schema = json.loads(json.dumps(target))
        except (TypeError, ValueError):
            raise ConfigError(f"--schema {shown} is not JSON: use JSON values only") from None
        validator_class = jsonschema.validators.validator_for(schema)
        try:
            validator_class.check_schema(schema)
        except jsonschema.SchemaError as err:
            problem = clip(one_line(err.message), 120)
            raise ConfigError(f"--schema {shown} is not a valid JSON Schema: {problem}") from None
        validator = validator_class(schema)

        def validate(value: Any) -> Any:
            errors = list(validator.iter_errors(value))
            if not errors:
                return value
            best = jsonschema.exceptions.best_match(errors)
            more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
            where = path_text(best.absolute_path)
            raise ValueError(clip(one_line(f"{where}: {best.message}{more}"), 300))

        return cls(_schema_name(shown), schema, validate, why_not_strict=strict_problem(schema))

    def response_format(self) -> dict[str, Any]:
        """The request's ``response_format``."""
        return {
            "type": "json_schema",
            "json_schema": {
                "name": self.name,
                "schema": copy.deepcopy(self.schema),
                "strict": self.strict,
            },
        }

    def parse(self, text: str | None) -> Any:
        """The answer as a model instance, dataclass instance or dict; `StructuredOutputError`
        (one line: the field and the problem) when it does not fit."""
        value = answer_json(text)
        try:
            return self._validate(value)
        except RecursionError:
            message = "the answer's JSON is nested too deeply"
        except ValueError as err:
            message = str(err)
        except Exception as err:  # the user's own validator or __post_init__, of any class
            message = clip(one_line(f"{type(err).__name__}: {err}"), 300)
        raise StructuredOutputError(message, text=text or "")

    def __repr__(self) -> str:
        strict = "strict" if self.strict else f"not strict: {self.why_not_strict}"
        return f"<OutputSchema {self.name} ({strict})>"


def misfit(output: OutputSchema | JsonOutput, error: StructuredOutputError) -> str:
    """``The answer does not fit City: population: …``: an answer not of the shape asked for."""
    schema = output.schema if isinstance(output, JsonOutput) else output
    return f"The answer does not fit {schema.name if schema is not None else 'JSON'}: {error}"
