"""Start and stop the loopback fake OpenAI server (``tests/support/fake_openai.py``) in a
subprocess.

Shared by the benchmarks. The server runs in its own process so that it never competes with
the measured client for the GIL::

    from _server import fake_server

    with fake_server(30_000) as base_url:
        ...  # every chat answer is 30,000 content chunks "w0 ", "w1 ", ...

``api_key=None`` (the default) makes the server accept any key, or none.
"""

from __future__ import annotations

import queue
import subprocess
import sys
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

__all__ = ["FAKE_SERVER", "REPO_ROOT", "fake_server", "start_fake_server", "stop_fake_server"]

REPO_ROOT = Path(__file__).resolve().parent.parent
FAKE_SERVER = REPO_ROOT / "tests" / "support" / "fake_openai.py"
READY_TIMEOUT = 15.0


def start_fake_server(
    chunks: int | None,
    *,
    api_key: str | None = None,
    latency: float = 0.0,
    timeout: float = READY_TIMEOUT,
) -> tuple[subprocess.Popen[str], str]:
    """Launch the fake server answering every chat with ``chunks`` chunks (None: its usual
    answer) after ``latency`` seconds; return it and its URL.

    Waits for its ``READY http://127.0.0.1:PORT/v1`` line; raises ``RuntimeError`` (with the
    server's stderr) if it exits or stays silent for ``timeout`` seconds.
    """
    if not FAKE_SERVER.is_file():
        raise RuntimeError(f"fake server not found at {FAKE_SERVER}")
    command = [sys.executable, str(FAKE_SERVER), "--port", "0"]
    command += ["--chunks", str(chunks)] if chunks is not None else []
    command += ["--latency", str(latency)] if latency else []
    command += ["--any-key"] if api_key is None else ["--api-key", api_key]
    # stderr goes to a file, not a pipe: nobody drains it while the server runs. The child keeps
    # its own descriptor, so ours is closed once the server is up.
    with tempfile.TemporaryFile(mode="w+", encoding="utf-8", errors="replace") as stderr:
        process = subprocess.Popen(
            command,
            cwd=REPO_ROOT,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=stderr,
            text=True,
        )
        line = _first_line(process, timeout)
        if line is not None and line.startswith("READY "):
            return process, line.split(None, 1)[1].strip()
        stop_fake_server(process)
        stderr.seek(0)
        detail = stderr.read().strip()
    what = (
        f"did not print READY within {timeout:g} s"
        if line is None
        else f"exited with code {process.returncode} before READY (stdout: {line!r})"
    )
    raise RuntimeError(
        f"fake server {' '.join(command)} {what}" + (f"\n{detail}" if detail else "")
    )


def _first_line(process: subprocess.Popen[str], timeout: float) -> str | None:
    """The first stdout line ("" at EOF), or None if none came within ``timeout`` seconds."""
    lines: queue.Queue[str] = queue.Queue()
    stdout = process.stdout
    reader = threading.Thread(
        target=lambda: lines.put(stdout.readline() if stdout else ""),
        name="fake-server-ready",
        daemon=True,
    )
    reader.start()
    try:
        return lines.get(timeout=timeout)
    except queue.Empty:
        return None


def stop_fake_server(process: subprocess.Popen[str], *, timeout: float = 5.0) -> None:
    """Terminate the server (SIGTERM, then SIGKILL if it lingers) and reap it."""
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
    if process.stdout is not None:
        process.stdout.close()


@contextmanager
def fake_server(
    chunks: int | None, *, api_key: str | None = None, latency: float = 0.0
) -> Iterator[str]:
    """``start_fake_server`` as a context manager yielding the base URL; always stops it."""
    process, base_url = start_fake_server(chunks, api_key=api_key, latency=latency)
    try:
        yield base_url
    finally:
        stop_fake_server(process)
