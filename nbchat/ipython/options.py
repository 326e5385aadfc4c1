"""A cell's options: one object, validated once, built by the ``%%chat`` magic and by
`nbchat.ask`/`nbchat.map` alike.

Each option has one name per caller: the magic's flag (``--max-tool-rounds``) and the keyword
argument of `ask`/`map` (``max_tool_rounds``). Every message about an option uses the name of the
caller that built it, so a user of `ask` is never told about a flag.
"""

from __future__ import annotations

import enum
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from nbchat.engine.settings import (
    DEFAULT_CONCURRENCY,
    DEFAULT_MAX_TOOL_ROUNDS,
    DEFAULT_THREAD,
    EFFORTS,
)
from nbchat.errors import ConfigError

__all__ = ["Caller", "CellOptions", "parse_options"]


class Caller(enum.Enum):
    """Who set the options, and so how an option is named to the user."""

    MAGIC = "magic"  # %%chat --flag
    CODE = "code"  # nbchat.ask(keyword=...), nbchat.map(...)

    def name_of(self, option: str, value: object = None) -> str:
        """``max_tool_rounds`` as this caller writes it (with ``value``: setting it, as in
        ``allow_secrets=True`` or ``--allow-secrets``)."""
        if self is Caller.CODE:
            return option if value is None else f"{option}={value!r}"
        return "--" + option.replace("_", "-")


@dataclass(frozen=True, kw_only=True)
class CellOptions:
    """What one cell (or one call) asks for besides its text."""

    caller: Caller = Caller.CODE
    # settings for this cell (over the profile, %config and the environment)
    model: str | None = None
    profile: str | None = None
    temperature: float | None = None
    max_tokens: int | None = None
    reasoning_effort: str | None = None
    stream: bool | None = None
    cache: bool | None = None
    options: dict[str, Any] = field(default_factory=dict)
    # the turn
    thread: str = DEFAULT_THREAD
    new: bool = False
    system: bool = False
    refresh: bool = False
    raw: bool = False
    out: str | None = None  # the variable to bind
    tools: str | None = None  # names of notebook functions ("f,g"), as the magic gives them
    # the functions themselves, as `ask` gives them (and "mcp:SERVER" names)
    functions: Sequence[Callable[..., Any] | str] = ()
    max_tool_rounds: int = DEFAULT_MAX_TOOL_ROUNDS
    max_tool_calls: int | None = None  # None: ChatMagics.max_tool_calls, else the default
    schema: Any = None  # a name in the notebook (the magic) or the object (`ask`)
    json: bool = False
    allow_secrets: bool = False
    # --map
    map: str | None = None
    concurrency: int = DEFAULT_CONCURRENCY
    rpm: float | None = None
    batch: bool = False  # through the provider's batch API
    wait: bool = False  # wait in the cell for the batch (headless runs always do)
    batch_timeout: float | None = None  # seconds to wait (None: ChatMagics.batch_timeout)

    def __post_init__(self) -> None:
        name = self.caller.name_of
        if self.out is not None and not self.out.isidentifier():
            raise ConfigError(f"{name('out')} needs a Python name, not {self.out!r}")
        for option in ("max_tool_rounds", "max_tool_calls", "concurrency", "max_tokens"):
            value = getattr(self, option)
            if value is not None and value < 1:
                raise ConfigError(f"{name(option)} must be at least 1")
        if self.rpm is not None and not self.rpm > 0:
            raise ConfigError(f"{name('rpm')} must be a number of requests a minute above 0")
        if self.reasoning_effort not in (None, *EFFORTS):
            raise ConfigError(f"{name('reasoning_effort')} is one of {', '.join(EFFORTS)}")
        if self.batch_timeout is not None and not self.batch_timeout > 0:
            raise ConfigError(f"{name('batch_timeout')} must be a number of seconds above 0")
        if self.map is not None:
            self._check_map()
        for option in ("batch", "wait", "batch_timeout"):
            if getattr(self, option) not in (None, False) and self.map is None:
                raise ConfigError(f"{name(option)} goes with {name('map')}")
        for option in ("wait", "batch_timeout"):
            if getattr(self, option) not in (None, False) and not self.batch:
                raise ConfigError(f"{name(option)} goes with {name('batch', True)}")

    def _check_map(self) -> None:
        name = self.caller.name_of
        refused = {
            name("tools"): self.tools or self.functions,
            name("system"): self.system,
            name("raw"): self.raw,
            f"{name('new')} (items have no context)": self.new,
        }
        for flag in (flag for flag, given in refused.items() if given):
            raise ConfigError(f"{name('map')} does not take {flag}")

    def flags(self) -> dict[str, Any]:
        """The settings this cell sets (None: not set here)."""
        return {
            "model": self.model,
            "profile": self.profile,
            "temperature": self.temperature,
            "max_tokens": self.max_tokens,
            "reasoning_effort": self.reasoning_effort,
            "stream": self.stream,
            "cache": self.cache,
            "options": self.options or None,
        }


def parse_options(args: Any) -> CellOptions:
    """The magic's parsed arguments as options (``--option KEY=JSON`` read here)."""
    return CellOptions(
        caller=Caller.MAGIC,
        model=args.model,
        profile=args.profile,
        temperature=args.temperature,
        max_tokens=args.max_tokens,
        reasoning_effort=args.reasoning_effort,
        stream=False if args.no_stream else None,
        cache=False if args.no_cache else None,
        options=_request_fields(args.option),
        thread=args.thread,
        new=args.new,
        system=args.system,
        refresh=args.refresh,
        raw=args.raw,
        out=args.out,
        tools=args.tools,
        max_tool_rounds=args.max_tool_rounds,
        max_tool_calls=args.max_tool_calls,
        schema=args.schema,
        json=args.json,
        allow_secrets=args.allow_secrets,
        map=args.map,
        concurrency=args.concurrency,
        rpm=args.rpm,
        batch=args.batch,
        wait=args.wait,
        batch_timeout=args.batch_timeout,
    )


def _request_fields(items: list[str]) -> dict[str, Any]:
    """``--option KEY=JSON`` (repeatable) as request fields; a bare word is a string."""
    options: dict[str, Any] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"--option takes KEY=JSON, not {item!r}")
        try:
            options[key.strip()] = json.loads(value)
        except ValueError:
            options[key.strip()] = value
    return options
