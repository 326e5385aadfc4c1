"""What the tool-spec tests describe: a documented function, a dataclass, an enum and a class
pydantic knows nothing about; and the parameters of a function's spec."""

from __future__ import annotations

import enum
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

from nbchat.schema.tools import tool_spec


@dataclass
class Point:
    """A point on the plane."""

    x: float
    y: float = 0.0


class Unit(enum.Enum):
    CELSIUS = "C"
    FAHRENHEIT = "F"


class Plain:
    """A class pydantic knows nothing about."""


def params(fn: Callable[..., Any]) -> dict[str, Any]:
    """The JSON Schema of ``fn``'s parameters, as its tool spec sends it."""
    return tool_spec(fn)["function"]["parameters"]


def get_weather(city: str, unit: Literal["C", "F"] = "C") -> str:
    """Get the current weather
    in a city.

    Longer text that is not sent.

    Args:
        city: The city's name, e.g.
            "Paris".
        unit: Temperature unit.
    """
    return f"{city}: 21 {unit}"
