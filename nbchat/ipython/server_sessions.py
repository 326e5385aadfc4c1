"""Where the running notebook is now, asked of the Jupyter server that started this kernel.

``JPY_SESSION_NAME`` holds the notebook's path when the kernel started and never changes, so a
notebook renamed in JupyterLab (every ``Untitled.ipynb`` on its first save) would lose its stored
answers until a restart. The server knows the current path: jupyter_server writes a runtime file
``jpserver-<pid>.json`` (its URL, token and root) and lists its sessions, each with its kernel's id
and the notebook's path, at ``GET /api/sessions``. The kernel's id is in its connection file's name
(``kernel-<id>.json``).

The server that is this kernel's parent process is asked first, then any other live server of
this machine's runtime directory (a kernel started by nbclient or papermill is known to none of
them: a few loopback requests, after which "no server" is remembered for a minute). An answer is
kept for a few seconds, and asked again at once when the file it named is gone (a rename).
"""

from __future__ import annotations

import json
import os
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = ["ServerSessionLookup", "kernel_id"]

_REQUEST_TIMEOUT = 0.5  # seconds: a loopback request that is slower than this is not worth waiting
_FRESH_FOR = 3.0  # seconds an answer is reused without asking again
_NO_SERVER_FOR = 60.0  # seconds a "no server owns this kernel" answer is reused


@dataclass(frozen=True)
class _Server:
    url: str
    token: str
    root_dir: Path
    pid: int


def kernel_id() -> str | None:
    """This kernel's id, from its connection file's name (None outside a Jupyter kernel)."""
    try:
        from ipykernel.connect import get_connection_file

        name = Path(get_connection_file()).name
    except Exception:  # not an ipykernel, or no kernel app running
        return None
    if name.startswith("kernel-") and name.endswith(".json"):
        return name[len("kernel-") : -len(".json")]
    return None


def _runtime_dir() -> Path | None:
    try:
        from jupyter_core.paths import jupyter_runtime_dir
    except ImportError:
        return None
    return Path(jupyter_runtime_dir())


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # exists, but not ours to signal
        return True
    return True


def _servers(runtime_dir: Path) -> Iterator[_Server]:
    """The live servers of the runtime dir, this kernel's parent first."""
    found = []
    for info_file in runtime_dir.glob("jpserver-*.json"):
        try:
            info = json.loads(info_file.read_text(encoding="utf-8"))
            server = _Server(
                str(info["url"]),
                str(info.get("token") or ""),
                Path(info["root_dir"]),
                int(info["pid"]),
            )
        except (OSError, ValueError, KeyError, TypeError):
            continue
        if server.url.startswith(("http://", "https://")) and _alive(server.pid):
            found.append(server)
    parent = os.getppid()
    found.sort(key=lambda server: server.pid != parent)
    yield from found


def _session_path(server: _Server, kernel: str) -> Path | None:
    """The notebook path of ``kernel``'s session on ``server``, if it has one."""
    request = urllib.request.Request(
        server.url.rstrip("/") + "/api/sessions",
        headers={"Authorization": f"token {server.token}"} if server.token else {},
    )
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # loopback: no proxy
    try:
        with opener.open(request, timeout=_REQUEST_TIMEOUT) as reply:
            sessions: Any = json.load(reply)
    except (OSError, ValueError, urllib.error.URLError):
        return None
    if not isinstance(sessions, list):
        return None
    for session in sessions:
        if not isinstance(session, dict) or not isinstance(session.get("kernel"), dict):
            continue
        path = session.get("path")
        if session["kernel"].get("id") == kernel and isinstance(path, str) and path:
            return server.root_dir / path
    return None


class ServerSessionLookup:
    """The notebook path of this kernel's Jupyter server session, kept for a few seconds."""

    def __init__(
        self,
        *,
        kernel: Callable[[], str | None] = kernel_id,
        runtime_dir: Callable[[], Path | None] = _runtime_dir,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._kernel = kernel
        self._runtime_dir = runtime_dir
        self._clock = clock
        self._path: Path | None = None
        self._until = 0.0
        self.requests = 0  # how many times a server was asked (for tests and `%chat notebook`)

    def path(self) -> Path | None:
        """The current path, asking the server again when the answer is old or the file gone."""
        now = self._clock()
        if now < self._until and (self._path is None or self._path.exists()):
            return self._path
        self._path = self._ask()
        self._until = now + (_FRESH_FOR if self._path is not None else _NO_SERVER_FOR)
        return self._path

    def _ask(self) -> Path | None:
        kernel = self._kernel()
        runtime_dir = self._runtime_dir() if kernel else None
        if kernel is None or runtime_dir is None or not runtime_dir.is_dir():
            return None
        for server in _servers(runtime_dir):
            self.requests += 1
            path = _session_path(server, kernel)
            if path is not None:
                return path
        return None
