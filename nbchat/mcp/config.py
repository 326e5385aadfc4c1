"""The declared servers (``ChatMagics.mcp_servers``), and the secrets their launch needs.

A server is a stdio command or a streamable HTTP endpoint::

    {"files": {"command": ["python", "-m", "my_server"], "env": {"ROOT": "/data"}, "cwd": "~"},
     "search": {"url": "http://127.0.0.1:8765/mcp",
                "headers_env": {"Authorization": "Bearer $SEARCH_TOKEN"}}}

A secret never sits in the notebook: ``headers_env`` names the environment variable that holds a
header's value (``"SEARCH_TOKEN"``, or text with ``$NAME`` in it), and ``$NAME`` (or
``${NAME}``) in an ``env`` value is filled in from the kernel's environment when the server
starts. A stdio server gets a minimal environment (the SDK's: ``HOME``, ``PATH``, ``USER``...)
plus its ``env``. Every value filled in this way, and every variable named like a secret, is
redacted from what is shown of a server (its stderr, an error).
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from nbchat._json import json_kind
from nbchat._text import clip, one_line
from nbchat.errors import ConfigError

__all__ = ["Launch", "ServerConfig", "read_servers"]

SERVER_NAME = re.compile(r"^[A-Za-z0-9_-]{1,32}$")
_STDIO_KEYS = ("command", "env", "cwd")
_HTTP_KEYS = ("url", "headers_env")
_VARIABLE = re.compile(r"\$(?:\{([A-Za-z_][A-Za-z0-9_]*)\}|([A-Za-z_][A-Za-z0-9_]*))")
_BARE_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
# Variables whose names say they hold a secret (as `nbchat.prompt.key_guard` reads them).
_SECRET_NAME = re.compile(r"(?:API_?KEY|TOKEN|SECRET|PASSWORD|PASSWD)$", re.IGNORECASE)
_MIN_SECRET = 4  # shorter values would match ordinary text
REDACTED = "[redacted]"


@dataclass(frozen=True)
class Launch:
    """What starting one server takes, its secrets filled in (never shown: no repr of them)."""

    name: str
    command: tuple[str, ...] = ()
    env: dict[str, str] = field(default_factory=dict, repr=False)
    cwd: str | None = None
    url: str | None = None
    headers: dict[str, str] = field(default_factory=dict, repr=False)
    secrets: tuple[str, ...] = field(default=(), repr=False)

    def redact(self, text: str) -> str:
        """``text`` with every secret of this launch replaced by ``[redacted]``."""
        for secret in self.secrets:  # longest first: a secret inside another goes with it
            text = text.replace(secret, REDACTED)
        return text


@dataclass(frozen=True)
class ServerConfig:
    """One declared server, as written (``$NAME`` not yet filled in)."""

    name: str
    command: tuple[str, ...] = ()
    env: tuple[tuple[str, str], ...] = ()
    cwd: str | None = None
    url: str | None = None
    headers_env: tuple[tuple[str, str], ...] = ()

    @property
    def transport(self) -> str:
        """``stdio`` or ``http``."""
        return "stdio" if self.command else "http"

    @property
    def where(self) -> str:
        """The command, or the URL without credentials or query values, for display."""
        if self.command:
            return clip(one_line(shlex.join(self.command)), 120)
        parts = urlsplit(self.url or "")
        host = parts.hostname or ""
        port = f":{parts.port}" if parts.port else ""
        query = "?…" if parts.query else ""
        return clip(one_line(f"{parts.scheme}://{host}{port}{parts.path}{query}"), 120)

    def launch(self, environ: Mapping[str, str]) -> Launch:
        """The launch with its secrets filled in from ``environ``; `ConfigError` names a
        variable that is not set."""
        filled: list[str] = []
        env = {key: self._fill(value, environ, filled, f"env {key}") for key, value in self.env}
        headers = {}
        for header, value in self.headers_env:
            template = f"${value}" if _BARE_NAME.match(value) else value
            headers[header] = self._fill(template, environ, filled, f"headers_env {header}")
        named = [v for n, v in environ.items() if _SECRET_NAME.search(n)]
        # Stripped: a value read from a file keeps its newline, which a server may not show.
        secrets = {s.strip() for s in (*filled, *named) if len(s.strip()) >= _MIN_SECRET}
        cwd = _expand_home(self.cwd) if self.cwd else None
        return Launch(
            self.name,
            self.command,
            env,
            cwd,
            self.url,
            headers,
            tuple(sorted(secrets, key=len, reverse=True)),
        )

    def _fill(
        self, template: str, environ: Mapping[str, str], filled: list[str], where: str
    ) -> str:
        def value(match: re.Match[str]) -> str:
            variable = match.group(1) or match.group(2)
            if not environ.get(variable):
                raise ConfigError(
                    f"MCP server {self.name!r}: ${variable} ({where}) is not set in the "
                    "environment: set it before the server starts"
                )
            filled.append(environ[variable])
            return environ[variable]

        return _VARIABLE.sub(value, template)


def _expand_home(path: str) -> str:
    from pathlib import Path

    return str(Path(path).expanduser())


def read_servers(value: Any) -> dict[str, ServerConfig]:
    """``ChatMagics.mcp_servers`` as servers by name; `ConfigError` says what is wrong."""
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise ConfigError(f"mcp_servers is a dict of servers by name, not {json_kind(value)}")
    return {_name(name): _server(name, entry) for name, entry in value.items()}


def _name(name: Any) -> str:
    if not isinstance(name, str) or not SERVER_NAME.match(name):
        shown = clip(one_line(repr(name)), 40)
        raise ConfigError(f"mcp_servers: {shown} is not a server name (1-32 letters, digits, _, -)")
    return name


def _server(name: str, entry: Any) -> ServerConfig:
    where = f"mcp_servers[{name!r}]"
    if not isinstance(entry, Mapping):
        raise ConfigError(f"{where} is a dict (command or url), not {json_kind(entry)}")
    unknown = sorted(str(key) for key in entry if key not in (*_STDIO_KEYS, *_HTTP_KEYS))
    if unknown:
        known = ", ".join((*_STDIO_KEYS, *_HTTP_KEYS))
        raise ConfigError(f"{where}: unknown key(s) {', '.join(unknown)}; known: {known}")
    stdio = [key for key in _STDIO_KEYS if key in entry]
    http = [key for key in _HTTP_KEYS if key in entry]
    if "command" in entry and http:
        raise ConfigError(f"{where}: a stdio server (command) takes no {', '.join(http)}")
    if "url" in entry and stdio:
        raise ConfigError(f"{where}: an HTTP server (url) takes no {', '.join(stdio)}")
    if "command" in entry:
        return ServerConfig(
            name,
            command=_command(where, entry["command"]),
            env=_pairs(where, "env", entry.get("env")),
            cwd=_text(where, "cwd", entry.get("cwd")),
        )
    if "url" in entry:
        return ServerConfig(
            name,
            url=_url(where, entry["url"]),
            headers_env=_pairs(where, "headers_env", entry.get("headers_env")),
        )
    raise ConfigError(f"{where} needs a command (stdio) or a url (streamable HTTP)")


def _command(where: str, command: Any) -> tuple[str, ...]:
    parts = shlex.split(command) if isinstance(command, str) else command
    if not isinstance(parts, list | tuple) or not parts:
        raise ConfigError(f"{where}: command is a list of strings, e.g. ['python', 'server.py']")
    for part in parts:
        if not isinstance(part, str) or "\x00" in part:
            raise ConfigError(f"{where}: command is a list of strings, not {json_kind(part)}")
    return tuple(parts)


def _pairs(where: str, key: str, value: Any) -> tuple[tuple[str, str], ...]:
    if value is None:
        return ()
    ok = isinstance(value, Mapping) and all(
        isinstance(k, str) and isinstance(v, str) for k, v in value.items()
    )
    if not ok:
        raise ConfigError(f"{where}: {key} is a dict of strings")
    return tuple(sorted(value.items()))


def _text(where: str, key: str, value: Any) -> str | None:
    if value is not None and not isinstance(value, str):
        raise ConfigError(f"{where}: {key} is a string, not {json_kind(value)}")
    return value


def _url(where: str, url: Any) -> str:
    parts = urlsplit(url) if isinstance(url, str) else None
    try:
        usable = parts is not None and parts.scheme in ("http", "https") and bool(parts.hostname)
        usable = usable and (parts.port or 0) >= 0  # reading the port checks it
    except ValueError:  # a port that is not a number
        usable = False
    if not usable or parts is None:
        raise ConfigError(f"{where}: url is an http:// or https:// URL")
    if parts.username or parts.password:
        raise ConfigError(
            f"{where}: the url holds credentials; put them in an environment variable and name "
            "it in headers_env, so they stay out of the notebook"
        )
    return url
