"""Effective settings for one request, and the built-in provider profiles.

Precedence, highest first: a cell flag, the chosen profile, ``%config ChatMagics.*`` (or
``ipython_config.py``), the environment (``OPENAI_BASE_URL``, ``NBCHAT_MODEL``, ...), the built-in
default. A profile bundles a base URL, the name of the key's variable and a model.

A key goes only where the user paired it: the key variable comes from the layer that set the base
URL (or a higher one). ``OPENAI_BASE_URL`` pairs with ``OPENAI_API_KEY``, as in the openai SDK;
a profile or ``%config`` that sets a base URL must name its key variable too (``""``: no key), so
``$OPENAI_API_KEY`` is never sent to a host it was not meant for.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from typing import Any
from urllib.parse import urlsplit

from nbchat.engine.profiles import BUILTIN_PROFILES, DEFAULT_MODEL, colab_url
from nbchat.errors import ConfigError
from nbchat.money.prices import check_price_table
from nbchat.prompt.values import DEFAULT_BUDGET
from nbchat.wire.config import DEFAULT_BASE_URL, ClientConfig, check_base_url
from nbchat.wire.protocol import RESERVED_FIELDS
from nbchat.wire.redaction import mask_url

__all__ = [
    "DEFAULTS",
    "DEFAULT_BATCH_POLL_S",
    "DEFAULT_BATCH_TIMEOUT",
    "DEFAULT_CONCURRENCY",
    "DEFAULT_MAX_TOOL_CALLS",
    "DEFAULT_MAX_TOOL_ROUNDS",
    "DEFAULT_MCP_TIMEOUT",
    "DEFAULT_THREAD",
    "EFFORTS",
    "MIN_CONTEXT_CHARS",
    "Settings",
    "check_setting",
    "resolve_settings",
    "setting",
]

EFFORTS = ("low", "medium", "high")  # OpenAI's reasoning_effort
DEFAULT_THREAD = "default"  # the thread of a cell that names none
DEFAULT_MAX_TOOL_ROUNDS = 10  # rounds of tool calls before the turn fails
# Calls of one round that run (--max-tool-calls); the others go back to the model unrun. A model
# fanning out over a short list stays under it; a runaway answer of hundreds of calls runs 20.
DEFAULT_MAX_TOOL_CALLS = 20
DEFAULT_CONCURRENCY = 8  # --map: requests at once
DEFAULT_MCP_TIMEOUT = 60.0  # seconds: an MCP server's start, listing or call
DEFAULT_BATCH_POLL_S = 30.0  # --map --batch: seconds between status requests
DEFAULT_BATCH_TIMEOUT = 24 * 3600.0  # --map --batch --wait: the provider's completion window
MIN_CONTEXT_CHARS = 200  # a table needs about 120 characters with no row at all
_CLIENT_DEFAULTS = ClientConfig(base_url=DEFAULT_BASE_URL)  # the HTTP defaults are defined there
_OPENAI_KEY = "OPENAI_API_KEY"
_OPENAI_HOST = urlsplit(DEFAULT_BASE_URL).hostname


def _finite(value: float) -> None:
    if not math.isfinite(value):
        raise ConfigError("budget must be a finite number of dollars")


def _check_mcp_servers(value: Any) -> None:
    from nbchat.mcp.config import read_servers  # only when they are configured

    read_servers(value)


def setting(default: Any, help: str, **rules: Any) -> Any:
    """A field of `Settings` that is a setting: its default, its help (the ``%config`` and
    ``ipython_config.py`` text, which says the default unless ``default_doc`` does) and the
    rules a configured value must follow (``minimum``, ``above``, ``choices``, ``check``)."""
    kind = {"default_factory": default} if callable(default) else {"default": default}
    return field(**kind, metadata={"help": help, **rules})


@dataclass(frozen=True)
class Settings:
    """Everything that shapes one request. Holds the key's variable name, never the key.

    Each field declared with `setting` is a setting, declared here once: the kernel front end
    derives its ``%config ChatMagics.*`` traits (type, help, checks) from these fields."""

    base_url: str = setting(
        DEFAULT_BASE_URL,
        "Endpoint base URL.",
        default_doc="$OPENAI_BASE_URL, else OpenAI's",
        check=check_base_url,
    )
    api_key_env: str = setting(
        _OPENAI_KEY,
        "Name of the environment variable that holds the API key (the key itself is never stored).",
    )
    model: str = setting(
        DEFAULT_MODEL, "Model name.", default_doc=f"$NBCHAT_MODEL, else {DEFAULT_MODEL}"
    )
    temperature: float | None = setting(None, "Sampling temperature.")
    max_tokens: int | None = setting(None, "Cap on answer tokens.", minimum=1)
    reasoning_effort: str | None = setting(
        None, "How hard a reasoning model thinks (OpenAI's reasoning_effort).", choices=EFFORTS
    )
    system_prompt: str | None = setting(
        None, "System prompt of every thread without a --system cell."
    )
    timeout: float = setting(
        _CLIENT_DEFAULTS.timeout, "Seconds to wait for each piece of an answer.", above=0
    )
    connect_timeout: float = setting(
        _CLIENT_DEFAULTS.connect_timeout, "Seconds to wait for a connection.", above=0
    )
    max_retries: int = setting(
        _CLIENT_DEFAULTS.max_retries,
        "Retries of failed requests before the answer starts (429, 5xx, connection errors).",
        minimum=0,
    )
    stream: bool = setting(True, "Stream answers as they are written.")
    update_rate: float = setting(15.0, "Most live-view updates per second.", above=0)
    offline: bool = setting(
        False, "Only replay stored answers; never send.", default_doc="$NBCHAT_OFFLINE"
    )
    cache: bool = setting(True, "Store answers in the notebook and replay them.")
    profile: str | None = setting(
        None, "Profile applied to every cell (see `profiles`).", default_doc="$NBCHAT_PROFILE"
    )
    options: dict[str, Any] = setting(dict, "Extra request fields sent with every request.")
    context_chars: int = setting(
        DEFAULT_BUDGET,
        "Characters a {value} may take in a prompt (a DataFrame is shortened to fit, marked; "
        "text is clipped, marked).",
        minimum=MIN_CONTEXT_CHARS,
    )
    send_reasoning: bool | str = setting(
        "auto",
        "Send a reasoning model's earlier thinking back with the context: True, False or "
        "'auto' (what the endpoint wants: DeepSeek's thinking mode yes, OpenAI no; learned from "
        "a 400 that names it).",
        choices=(True, False, "auto"),
    )
    mcp_servers: dict[str, Any] = setting(
        dict,
        "MCP servers whose tools a cell may offer (--tools mcp:NAME), by name: {'files': "
        "{'command': ['python', '-m', 'server'], 'env': {...}, 'cwd': ...}} (stdio) or {'search': "
        "{'url': 'http://127.0.0.1:8765/mcp', 'headers_env': {'Authorization': 'TOKEN_VAR'}}} "
        "(streamable HTTP). Secrets come from environment variables: headers_env names them, "
        "$NAME in an env value is filled in.",
        check=_check_mcp_servers,
    )
    mcp_timeout: float = setting(
        DEFAULT_MCP_TIMEOUT,
        "Seconds an MCP server may take to start, to list its tools or to answer a call.",
        above=0,
    )
    prices: dict[str, Any] = setting(
        dict,
        "Your prices, in US dollars per million tokens, used before genai-prices': "
        '{"MODEL": {"input": 0.4, "output": 1.6, "cached_input": 0.1}} ("cached_input" '
        'defaults to "input"; "*" names every model). A profile may carry its own.',
        check=check_price_table,
    )
    budget: float | None = setting(
        None,
        "US dollars this kernel session may spend; once spent, nothing more is sent (stored "
        "answers still replay). Answers without a known price are not counted.",
        minimum=0,
        check=_finite,
    )
    batch_poll_s: float = setting(
        DEFAULT_BATCH_POLL_S,
        "Seconds between status requests of a provider's batch (--map --batch).",
        above=0,
    )
    batch_timeout: float = setting(
        DEFAULT_BATCH_TIMEOUT,
        "Seconds a --map --batch cell waits for its batch with --wait or when run headless "
        "(--batch-timeout overrides); the batch goes on after, and a re-run picks it up.",
        above=0,
    )
    key_problem: str | None = None  # why no key may be sent (an unpaired base URL), if so

    def client_config(self) -> ClientConfig:
        """What the HTTP client needs (a `ConfigError` when the base URL has no key paired)."""
        if self.key_problem:
            raise ConfigError(self.key_problem)
        return ClientConfig(
            base_url=self.base_url,
            api_key_env=self.api_key_env,
            timeout=self.timeout,
            connect_timeout=self.connect_timeout,
            max_retries=self.max_retries,
        )

    def request_params(self) -> dict[str, Any]:
        """The sampling parameters and extra fields sent with every request."""
        params: dict[str, Any] = {}
        if self.temperature is not None:
            params["temperature"] = self.temperature
        if self.max_tokens is not None:
            params["max_tokens"] = self.max_tokens
        if self.reasoning_effort is not None:
            params["reasoning_effort"] = self.reasoning_effort
        params.update(self.options)
        return params

    def masked(self) -> dict[str, Any]:
        """The settings for display: the key appears only as set / not set, and the base URL
        without credentials or query values."""
        shown = {f.name: getattr(self, f.name) for f in fields(self) if f.name != "key_problem"}
        shown["base_url"] = mask_url(self.base_url)
        key_set = bool(self.api_key_env and os.environ.get(self.api_key_env, "").strip())
        shown["api_key"] = ("set" if key_set else "not set") + (
            f" (${self.api_key_env})" if self.api_key_env else " (no key sent)"
        )
        if self.key_problem:
            shown["api_key"] = "not paired: stored answers replay, nothing is sent"
        return shown


def check_setting(name: str, value: Any) -> None:
    """`ConfigError` when ``value`` breaks setting ``name``'s rules (None is "not set")."""
    declared = {f.name: f for f in fields(Settings) if "help" in f.metadata}[name]
    rules = declared.metadata
    if value is None:
        return
    number = isinstance(value, int | float) and not isinstance(value, bool)
    if ("minimum" in rules or "above" in rules) and not number:
        raise ConfigError(f"{name} must be a number")
    if "minimum" in rules and value < rules["minimum"]:
        raise ConfigError(f"{name} must be at least {rules['minimum']}")
    if "above" in rules and not value > rules["above"]:
        raise ConfigError(f"{name} must be > {rules['above']}")
    if "check" in rules:
        rules["check"](value)


_SETTING_NAMES = frozenset(f.name for f in fields(Settings) if "help" in f.metadata)
DEFAULTS = Settings()  # every default, defined once (the HTTP ones come from ClientConfig)


def _truthy(value: str | None) -> bool:
    return (value or "").strip().lower() in {"1", "true", "yes", "on"}


def _environment(environ: Mapping[str, str]) -> dict[str, Any]:
    found: dict[str, Any] = {}
    if environ.get("OPENAI_BASE_URL"):
        found["base_url"] = environ["OPENAI_BASE_URL"]
    if environ.get("NBCHAT_MODEL"):
        found["model"] = environ["NBCHAT_MODEL"]
    if environ.get("NBCHAT_PROFILE"):
        found["profile"] = environ["NBCHAT_PROFILE"]
    if "NBCHAT_OFFLINE" in environ:
        found["offline"] = _truthy(environ["NBCHAT_OFFLINE"])
    return found


def _key_variable(
    layers: list[tuple[str, Mapping[str, Any]]], base_url: str
) -> tuple[str, str | None]:
    """The key variable paired with the base URL, and why there is none when it is unpaired.

    It comes from the highest layer that names one, unless a higher layer set the base URL
    without naming its key: then only OpenAI's own host (over https), the environment's
    ``OPENAI_BASE_URL`` and the default pair with ``$OPENAI_API_KEY``. An unpaired URL fails
    only when a request is to be sent (stored answers still replay, offline too).
    """
    for name, layer in reversed(layers):
        if "api_key_env" in layer:
            return str(layer["api_key_env"] or ""), None
        if "base_url" not in layer:
            continue
        parts = urlsplit(base_url)
        if name in ("environment", "default") or (
            parts.scheme == "https" and parts.hostname == _OPENAI_HOST
        ):
            return _OPENAI_KEY, None
        where = (
            "%config ChatMagics.base_url is set without ChatMagics.api_key_env"
            if name == "config"
            else f"Profile {name!r} sets base_url but names no api_key_env"
        )
        # Never quote a value without a host: it may be a key pasted in the wrong place.
        host = parts.hostname if parts.scheme in ("http", "https") else None
        return "", (
            f"{where}: name the variable that holds the key for {host or 'its host'} (or '' "
            "when it needs no key), so that no other key is sent there."
        )
    return _OPENAI_KEY, None


def _profile(
    name: str,
    profiles: Mapping[str, Mapping[str, Any]],
    environ: Mapping[str, str],
    prices: Mapping[str, Any],
) -> dict[str, Any]:
    """The settings profile ``name`` sets, checked; its prices over ``prices`` (those set for
    every cell)."""
    all_profiles = {**BUILTIN_PROFILES, **profiles}
    if name not in all_profiles:
        known = ", ".join(sorted(all_profiles))
        raise ConfigError(f"Unknown profile {name!r}. Known profiles: {known}.")
    profile = dict(all_profiles[name])
    if name == "colab" and "colab" not in profiles:
        profile["base_url"] = colab_url(environ)
    if "prices" in profile:
        check_price_table(profile["prices"])
        # Its "*" prices every model at its endpoint: the ones named for all cells yield.
        kept = {} if "*" in profile["prices"] else prices
        profile["prices"] = {**kept, **profile["prices"]}
    for key, value in profile.items():  # a profile's values follow the settings' rules
        if key in _SETTING_NAMES and key != "base_url":  # checked only when sending
            check_setting(key, value)
    return profile


def resolve_settings(
    configured: Mapping[str, Any],
    flags: Mapping[str, Any],
    profiles: Mapping[str, Mapping[str, Any]],
    environ: Mapping[str, str] = os.environ,
) -> Settings:
    """Merge the layers; ``None`` in ``configured`` or ``flags`` means "not set here"."""
    config = {k: v for k, v in configured.items() if v is not None}
    set_flags = {k: v for k, v in flags.items() if v is not None}
    layers: list[tuple[str, Mapping[str, Any]]] = [
        ("default", {"base_url": DEFAULT_BASE_URL}),
        ("environment", _environment(environ)),
        ("config", config),
    ]
    merged: dict[str, Any] = {**layers[1][1], **config}
    name = set_flags.get("profile") or merged.get("profile")
    if name:
        profile = _profile(name, profiles, environ, merged.get("prices", {}))
        layers.append((name, profile))
        merged.update(profile)
        merged["profile"] = name
        if "model" not in merged:
            # A server profile (vllm, llamacpp) serves whatever was loaded: never guess a model.
            merged["model"] = ""
    options = {**merged.get("options", {}), **set_flags.pop("options", {})}
    reserved = sorted(set(options) & RESERVED_FIELDS)
    if reserved:
        raise ConfigError(
            f"{', '.join(reserved)} cannot be set as an option: use -m for the model; the "
            "messages come from the thread, and nbchat sets the stream flags itself."
        )
    merged.update(set_flags)
    merged["options"] = options
    known_fields = {f.name for f in fields(Settings)}
    unknown = set(merged) - known_fields
    if unknown:
        raise ConfigError(f"Unknown setting(s) in profile: {', '.join(sorted(unknown))}.")
    merged["api_key_env"], merged["key_problem"] = _key_variable(
        layers, merged.get("base_url", DEFAULT_BASE_URL)
    )
    return replace(Settings(), **merged)
