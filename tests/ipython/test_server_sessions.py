"""Following renames: the notebook path is asked of the Jupyter server that owns the kernel.

A small loopback HTTP server stands in for jupyter_server's sessions API; a temporary runtime
directory holds its ``jpserver-<pid>.json`` as jupyter_server writes it. (The browser test renames
a notebook in a real JupyterLab.)
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from nbchat.ipython.server_sessions import ServerSessionLookup
from nbchat.store.notebook import find_notebook

KERNEL = "2f0c6e0e-0000-4000-8000-000000000001"
TOKEN = "t0k3n-for-tests"


class FakeJupyter:
    """GET /api/sessions with the token, as jupyter_server answers it."""

    def __init__(self) -> None:
        self.sessions: list[dict[str, Any]] = []
        self.requests = 0
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                fake.requests += 1
                ok = self.path == "/api/sessions" and (
                    self.headers.get("Authorization") == f"token {TOKEN}"
                )
                body = json.dumps(fake.sessions if ok else {"message": "Forbidden"}).encode()
                self.send_response(200 if ok else 403)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

    def open_notebook(self, path: str, kernel: str = KERNEL) -> None:
        self.sessions = [
            {"id": "s1", "path": "other.ipynb", "type": "notebook", "kernel": {"id": "k-other"}},
            {"id": "s2", "path": path, "type": "notebook", "kernel": {"id": kernel}},
        ]


@pytest.fixture
def jupyter(tmp_path: Path) -> Iterator[tuple[FakeJupyter, Path, Path]]:
    """The fake server, its runtime dir (with its info file) and its root dir."""
    server = FakeJupyter()
    runtime, root = tmp_path / "runtime", tmp_path / "root"
    runtime.mkdir()
    root.mkdir()
    info = {"url": server.url, "token": TOKEN, "root_dir": str(root), "pid": os.getpid()}
    (runtime / f"jpserver-{os.getpid()}.json").write_text(json.dumps(info))
    try:
        yield server, runtime, root
    finally:
        server.close()


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def lookup(runtime: Path, clock: Clock, kernel: str | None = KERNEL) -> ServerSessionLookup:
    return ServerSessionLookup(kernel=lambda: kernel, runtime_dir=lambda: runtime, clock=clock)


def test_a_rename_is_followed_without_a_restart(jupyter):
    server, runtime, root = jupyter
    (root / "work").mkdir()
    (root / "work" / "Untitled.ipynb").write_text("{}")
    server.open_notebook("work/Untitled.ipynb")
    clock = Clock()
    sessions = lookup(runtime, clock)
    assert sessions.path() == root / "work" / "Untitled.ipynb"

    # The first save asks for a name: the file moves, the session follows it.
    (root / "work" / "Untitled.ipynb").rename(root / "work" / "tides.ipynb")
    server.open_notebook("work/tides.ipynb")
    assert sessions.path() == root / "work" / "tides.ipynb", "asked again: the old file is gone"

    # While the file stays, the answer is reused for a few seconds, then checked again.
    asked = server.requests
    assert sessions.path() == root / "work" / "tides.ipynb"
    assert server.requests == asked
    clock.now += 60
    sessions.path()
    assert server.requests == asked + 1


def test_no_server_or_another_kernel_means_unknown_and_costs_nothing_more(jupyter, tmp_path):
    server, runtime, _ = jupyter
    server.open_notebook("a.ipynb", kernel="someone-else")
    clock = Clock()
    sessions = lookup(runtime, clock)
    assert sessions.path() is None
    asked = server.requests
    assert sessions.path() is None and server.requests == asked, "remembered for a while"

    # A kernel nobody started through a server (nbclient, a terminal): no request at all.
    assert lookup(tmp_path / "empty-runtime", clock).path() is None
    assert lookup(runtime, clock, kernel=None).path() is None
    assert server.requests == asked


def test_a_stale_or_broken_runtime_file_is_skipped(jupyter):
    server, runtime, root = jupyter
    (runtime / "jpserver-1.json").write_text("{not json")
    dead = {"url": "http://127.0.0.1:9/", "token": "x", "root_dir": "/", "pid": 2**22 + 12345}
    (runtime / "jpserver-99.json").write_text(json.dumps(dead))
    (root / "n.ipynb").write_text("{}")
    server.open_notebook("n.ipynb")
    assert lookup(runtime, Clock()).path() == root / "n.ipynb"


def test_the_server_comes_after_an_explicit_path_and_before_jpy_session_name(tmp_path):
    server_path = tmp_path / "renamed.ipynb"
    environ = {"JPY_SESSION_NAME": str(tmp_path / "Untitled.ipynb")}
    assert find_notebook({}, environ, lambda: server_path) == (
        server_path,
        "the Jupyter server's session",
    )
    assert find_notebook({}, environ, lambda: None)[1] == "JPY_SESSION_NAME"
    explicit = {**environ, "NBCHAT_NOTEBOOK": str(tmp_path / "x.ipynb")}
    assert find_notebook({}, explicit, lambda: server_path)[1] == "NBCHAT_NOTEBOOK"
