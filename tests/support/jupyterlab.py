"""JupyterLab and Chromium for the browser tests: what they need (skipped without it, failed
under ``CI=true``), a JupyterLab server on a loopback port and its REST API, and the page of
one test."""

from __future__ import annotations

import contextlib
import importlib.util
import json
import os
import shutil
import signal
import socket
import subprocess
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from support.env import ISOLATED, kernel_env
from support.fake_openai import FakeOpenAI

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-proxy-server",
    "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
]
VIEWPORT = {"width": 1200, "height": 800}

STARTUP_TIMEOUT = 60.0  # JupyterLab answering /api/status
UI_TIMEOUT = 30_000  # ms, any single wait in the page
SAVE_TIMEOUT = 15.0


# -- prerequisites -------------------------------------------------------------------------


def _chromium() -> str | None:
    if Path(CHROMIUM).is_file():
        return CHROMIUM
    return shutil.which("chromium")


def require_browser() -> str:
    """The Chromium to drive; skip (fail under CI=true) when the browser stack is missing."""
    missing = []
    chromium = _chromium()
    if chromium is None:
        missing.append(f"Chromium ({CHROMIUM} or `chromium` on PATH)")
    missing += [name for name in ("playwright", "jupyterlab") if not importlib.util.find_spec(name)]
    if missing:
        reason = "browser test needs " + ", ".join(missing)
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"{reason}; CI=true, so a missing browser is a failure, not a skip")
        pytest.skip(reason)
    assert chromium is not None
    return chromium


# -- JupyterLab ----------------------------------------------------------------------------


@dataclass
class Lab:
    url: str  # http://127.0.0.1:PORT
    token: str
    root: Path
    log: Path

    def api(self, path: str, method: str = "GET") -> Any:
        """Call the server's REST API; the JSON reply (None when empty)."""
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        request = urllib.request.Request(
            f"{self.url}/api/{path}",
            method=method,
            headers={"Authorization": f"token {self.token}"},
        )
        with opener.open(request, timeout=5) as reply:
            body = reply.read()
        return json.loads(body) if body else None

    def session_paths(self) -> list[str]:
        """The notebook path of every session (what the server believes is open)."""
        return [session["path"] for session in self.api("sessions")]

    def end_sessions(self) -> None:
        """Shut down every session and its kernel: the next test starts from none."""
        for session in self.api("sessions"):
            self.api(f"sessions/{session['id']}", "DELETE")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def write_settings(config_dir: Path) -> None:
    """JupyterLab user settings: no news prompt, every cell attached to the DOM."""
    settings = config_dir / "lab" / "user-settings" / "@jupyterlab"
    files = {
        "apputils-extension/notification.jupyterlab-settings": {"fetchNews": "false"},
        "notebook-extension/tracker.jupyterlab-settings": {"windowingMode": "none"},
    }
    for name, value in files.items():
        path = settings / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(value))


def stop_lab(process: subprocess.Popen[bytes], lab: Lab) -> None:
    """Ask the server to shut down (it stops its kernels), then end its process group."""
    if process.poll() is None:
        with contextlib.suppress(OSError):
            lab.api("shutdown", "POST")
    for sig, wait in ((None, 10), (signal.SIGTERM, 10), (signal.SIGKILL, 5)):
        if sig is not None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, sig)
        try:
            process.wait(wait)
            break
        except subprocess.TimeoutExpired:
            continue
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)  # anything left in the group


# The kernels' IPython profile prices the fake server's models (made up, dollars per million
# tokens), as a user's ipython_config.py would: footers show a cost, and no note of an unknown
# price is added to the outputs the tests count (tests/kernel/test_money.py tests that note).
PROFILE_CONFIG = 'c.ChatMagics.prices = {"*": {"input": 0.40, "output": 1.60}}\n'


def lab_env(server: FakeOpenAI, base: Path) -> dict[str, str]:
    """The server's (and so its kernels') environment. The lab outlives one test, so the
    per-test isolation of conftest does not apply: the developer's settings are dropped here."""
    env = {name: value for name, value in os.environ.items() if not name.startswith(ISOLATED)}
    profile = base / ".ipython" / "profile_default"
    profile.mkdir(parents=True, exist_ok=True)
    (profile / "ipython_config.py").write_text(PROFILE_CONFIG, encoding="utf-8")
    return {
        **env,
        **kernel_env(server),
        "IPYTHONDIR": str(base / ".ipython"),
        "JUPYTER_CONFIG_DIR": str(base / "jupyter-config"),
        "JUPYTER_RUNTIME_DIR": str(base / "jupyter-runtime"),
    }


def log_tail(path: Path, lines: int = 40) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


# -- the browser ---------------------------------------------------------------------------


@dataclass
class Browser:
    page: Any
    lab: Lab
    workspace: str  # a fresh JupyterLab workspace: no tab of an earlier test comes back
    requests: list[str] = field(default_factory=list)  # every URL the page asked for
    dialogs: list[str] = field(default_factory=list)  # every alert, confirm or prompt it opened

    def outside(self) -> list[str]:
        """Requests beyond the loopback interface."""
        found = []
        for url in self.requests:
            scheme, _, rest = url.partition("://")
            if scheme in ("http", "https", "ws", "wss") and not rest.startswith("127.0.0.1"):
                found.append(url)
        return found

    def goto(self, path: str = "") -> None:
        """Open JupyterLab (and ``path`` in it) in this test's workspace."""
        tree = f"/tree/{path}" if path else ""
        url = f"{self.lab.url}/lab/workspaces/{self.workspace}{tree}?token={self.lab.token}"
        self.page.goto(url, timeout=UI_TIMEOUT)
