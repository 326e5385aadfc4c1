"""nbchat in JupyterLab, driven in a real headless Chromium: one JupyterLab for every browser test
(each opens its own notebook in its own workspace), a fresh Chromium page for each.

Everything stays on 127.0.0.1: the fake OpenAI server, JupyterLab (news, update checks and the
PyPI extension manager off) and Chromium (background networking off, every other host
unresolvable). Without Chromium, Playwright or JupyterLab the tests skip, except under ``CI=true``
where they fail: CI must not go green by skipping its only browser check.

The screenshots (``docs/streaming.png``, ``docs/answer.png``, ``docs/raw-json.png``,
``docs/untrusted.png``, ``docs/tools.png``, ``docs/thinking.png``, ``docs/thinking-live.png``,
``docs/code-dark.png``) are for the README: set ``NBCHAT_SCREENSHOTS=1`` to refresh them.
"""

from __future__ import annotations

import contextlib
import secrets
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from support.fake_openai import FakeOpenAI
from support.jupyterlab import (
    CHROMIUM_FLAGS,
    STARTUP_TIMEOUT,
    UI_TIMEOUT,
    VIEWPORT,
    Browser,
    Lab,
    free_port,
    lab_env,
    log_tail,
    require_browser,
    stop_lab,
    write_settings,
)


@pytest.fixture(scope="session")
def lab(fake_server: FakeOpenAI, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    """JupyterLab on a free loopback port, its kernels pointed at the fake server. Shared by every
    browser test: each opens its own notebook in its own workspace and ends its sessions."""
    require_browser()
    base = tmp_path_factory.mktemp("lab")
    root = base / "root"
    root.mkdir()
    write_settings(base / "jupyter-config")
    port, token = free_port(), secrets.token_hex(16)
    command = [
        sys.executable,
        "-m",
        "jupyterlab",
        "--no-browser",
        "--ServerApp.ip=127.0.0.1",
        f"--ServerApp.port={port}",
        "--ServerApp.port_retries=0",
        f"--IdentityProvider.token={token}",
        f"--ServerApp.root_dir={root}",
        "--ServerApp.allow_root=True",
        "--LabApp.news_url=None",
        "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
        "--LabApp.extension_manager=readonly",
        "--LabApp.expose_app_in_browser=True",
    ]
    log = base / "jupyterlab.log"
    lab = Lab(f"http://127.0.0.1:{port}", token, root, log)
    with log.open("wb") as sink:
        process = subprocess.Popen(
            command, env=lab_env(fake_server, base), cwd=root, stdout=sink,
            stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True,
        )  # fmt: skip
    try:
        deadline = time.monotonic() + STARTUP_TIMEOUT
        while True:
            if process.poll() is not None:
                pytest.fail(f"JupyterLab exited with {process.returncode}:\n{log_tail(log)}")
            try:
                lab.api("status")
                break
            except OSError:
                if time.monotonic() > deadline:
                    pytest.fail(f"JupyterLab did not answer in {STARTUP_TIMEOUT:.0f} s")
                time.sleep(0.2)
        yield lab
    finally:
        stop_lab(process, lab)


@pytest.fixture
def browser(lab: Lab, server: FakeOpenAI, tmp_path: Path) -> Iterator[Browser]:
    """A fresh Chromium profile and page; afterwards, no request may have left 127.0.0.1."""
    from playwright.sync_api import sync_playwright

    chromium = require_browser()
    with sync_playwright() as playwright:
        context = playwright.chromium.launch_persistent_context(
            str(tmp_path / "chromium-profile"),  # a fresh, empty profile
            executable_path=chromium,
            headless=True,
            args=CHROMIUM_FLAGS,
            viewport=VIEWPORT,
            device_scale_factor=1,
        )
        context.set_default_timeout(UI_TIMEOUT)
        page = context.pages[0] if context.pages else context.new_page()
        session = Browser(page, lab, f"test-{secrets.token_hex(4)}")
        page.on("request", lambda request: session.requests.append(request.url))
        page.on("websocket", lambda socket: session.requests.append(socket.url))
        page.on("dialog", lambda dialog: _dialog(session, dialog))
        try:
            yield session
        finally:
            with contextlib.suppress(Exception):  # what the page looked like, for a failure
                page.screenshot(path=str(tmp_path / "last.png"))
                print(f"last screenshot: {tmp_path / 'last.png'}")
            context.close()
            lab.end_sessions()
            print(f"--- JupyterLab log ---\n{log_tail(lab.log)}")  # shown only on failure
    assert not session.outside(), f"the page reached beyond 127.0.0.1: {session.outside()}"
    assert session.dialogs == [], f"the page opened dialogs: {session.dialogs}"


def _dialog(session: Browser, dialog: Any) -> None:
    """Note a script's dialog (``alert(1)`` ran) and close it; leaving a page may ask too."""
    if dialog.type != "beforeunload":
        session.dialogs.append(f"{dialog.type}: {dialog.message}")
    dialog.dismiss()
