"""nbchat in JupyterLab, driven in a real headless Chromium.

One test walks the whole life of an answer in the frontend people actually use: the ipywidgets
view streams partial text, the same output slot then becomes plain Markdown carrying the record,
``--raw`` adds JupyterLab's collapsible JSON tree, after a save and a page reload the answers are
still there without a single new request, and a restarted kernel running every cell replays them
from the saved notebook. The screenshots it takes (``docs/streaming.png``, ``docs/answer.png``,
``docs/raw-json.png``) are for the README: set ``NBCHAT_SCREENSHOTS=1`` to refresh them.

Everything stays on 127.0.0.1: the fake OpenAI server, JupyterLab (news, update checks and the
PyPI extension manager off) and Chromium (background networking off, every other host
unresolvable). Without Chromium, Playwright or JupyterLab the test skips, except under ``CI=true``
where it fails: CI must not go green by skipping its only browser check.
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import nbformat
import pytest
from conftest import TEST_KEY, WIDGET_MIME, kernel_env
from fake_openai import FakeOpenAI, Fault
from nbformat.v4 import new_code_cell, new_notebook

from nbchat.record import RECORD_MIME

pytestmark = pytest.mark.browser

DOCS = Path(__file__).resolve().parent.parent / "docs"
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
WIDGET_STATE_MIME = "application/vnd.jupyter.widget-state+json"

ANSWER = """\
## Why the sea rises and falls

The **Moon's gravity** pulls hardest on the ocean facing it, raising a bulge of water there \
and a second one on the far side of the Earth.

- Most coasts see **two high tides** and two low tides a day.
- The Sun adds a weaker pull of its own.
- The shape of the coast decides how big the tides get.

In short: the oceans answer the Moon."""
SPRING = "**Spring tides** come at new and full moon, when the Sun and Moon pull in line."

STARTUP_TIMEOUT = 60.0  # JupyterLab answering /api/status
UI_TIMEOUT = 30_000  # ms, any single wait in the page
SAVE_TIMEOUT = 15.0


# -- prerequisites -------------------------------------------------------------------------


def _chromium() -> str | None:
    if Path(CHROMIUM).is_file():
        return CHROMIUM
    return shutil.which("chromium")


def _require_browser() -> str:
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

    def status(self) -> dict[str, Any]:
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        with opener.open(f"{self.url}/api/status?token={self.token}", timeout=2) as reply:
            return json.load(reply)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _write_settings(config_dir: Path) -> None:
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


def _stop(process: subprocess.Popen[bytes], lab: Lab) -> None:
    """Ask the server to shut down (it stops its kernels), then end its process group."""
    if process.poll() is None:
        with contextlib.suppress(OSError):
            opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
            request = urllib.request.Request(
                f"{lab.url}/api/shutdown?token={lab.token}", method="POST"
            )
            opener.open(request, timeout=5).close()
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


@pytest.fixture
def lab(server: FakeOpenAI, tmp_path: Path) -> Iterator[Lab]:
    """JupyterLab on a free loopback port, its kernels pointed at the fake server."""
    _require_browser()
    root = tmp_path / "root"
    root.mkdir()
    config_dir = tmp_path / "jupyter-config"
    _write_settings(config_dir)
    port, token = _free_port(), secrets.token_hex(16)
    env = {
        **os.environ,
        **kernel_env(server),
        "JUPYTER_CONFIG_DIR": str(config_dir),
        "JUPYTER_RUNTIME_DIR": str(tmp_path / "jupyter-runtime"),
    }
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
    log = tmp_path / "jupyterlab.log"
    lab = Lab(f"http://127.0.0.1:{port}", token, root, log)
    with log.open("wb") as sink:
        process = subprocess.Popen(
            command, env=env, cwd=root, stdout=sink, stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL, start_new_session=True,
        )  # fmt: skip
    try:
        deadline = time.monotonic() + STARTUP_TIMEOUT
        while True:
            if process.poll() is not None:
                pytest.fail(f"JupyterLab exited with {process.returncode}:\n{_tail(log)}")
            try:
                lab.status()
                break
            except OSError:
                if time.monotonic() > deadline:
                    pytest.fail(f"JupyterLab did not answer in {STARTUP_TIMEOUT:.0f} s")
                time.sleep(0.2)
        yield lab
    finally:
        _stop(process, lab)
        print(f"--- JupyterLab log ---\n{_tail(log)}")  # shown only when the test fails


def _tail(path: Path, lines: int = 40) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


# -- the page ------------------------------------------------------------------------------


def _write_notebook(path: Path) -> None:
    notebook = new_notebook(
        cells=[
            new_code_cell("%load_ext nbchat"),
            new_code_cell("%%chat\nExplain tides briefly."),
            new_code_cell("%%chat --raw\nAnd spring tides?"),
        ],
        metadata={
            "kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}
        },
    )
    assert (notebook.nbformat, notebook.nbformat_minor) == (4, 5)
    nbformat.validate(notebook)
    nbformat.write(notebook, path)


_KERNEL_IDLE = """() => {
    const kernel = window.jupyterapp?.shell.currentWidget?.sessionContext?.session?.kernel;
    return kernel?.connectionStatus === 'connected' && kernel?.status === 'idle';
}"""


def _wait_idle(page: Any) -> None:
    """Until the notebook's kernel is connected and idle (the app is exposed for this)."""
    page.wait_for_function(_KERNEL_IDLE, timeout=UI_TIMEOUT)


def _open_notebook(page: Any, lab: Lab) -> None:
    page.goto(f"{lab.url}/lab/tree/chat.ipynb?token={lab.token}", timeout=UI_TIMEOUT)
    _notebook_ready(page)


def _notebook_ready(page: Any) -> None:
    """Until the notebook shows its three cells and its kernel is connected and idle."""
    page.wait_for_function(
        "() => document.querySelectorAll('.jp-NotebookPanel .jp-Notebook .jp-Cell').length === 3",
        timeout=UI_TIMEOUT,
    )
    # Give the notebook the whole window (cosmetic: nicer screenshots).
    page.evaluate("() => window.jupyterapp?.shell.collapseLeft()")
    _wait_idle(page)


def _shoot(page: Any, name: str, first: Any, last: Any) -> None:
    """Screenshot the notebook panel's width, from `first`'s top to `last`'s bottom."""
    panel = page.locator(".jp-NotebookPanel .jp-Notebook").first.bounding_box()
    top, bottom = first.bounding_box(), last.bounding_box()
    assert panel and top and bottom
    y = max(top["y"] - 6, panel["y"])
    following = last.evaluate("(el) => el.nextElementSibling?.getBoundingClientRect().top ?? null")
    end = min(bottom["y"] + bottom["height"] + 6, panel["y"] + panel["height"])
    if following is not None:
        end = min(end, following - 1)  # not a pixel of the next (active, outlined) cell
    clip = {"x": panel["x"], "y": y, "width": panel["width"], "height": end - y}
    # The committed README images are refreshed only on request; a plain run leaves them alone.
    folder = DOCS if os.environ.get("NBCHAT_SCREENSHOTS") == "1" else Path(tempfile.gettempdir())
    folder.mkdir(exist_ok=True)
    page.screenshot(path=str(folder / name), clip=clip)


_JSON_TREE = """(tree) => [...tree.querySelectorAll('li')].map((li) => ({
    key: li.querySelector(':scope > label')?.textContent ?? '',
    arrow: li.querySelector(':scope > div > div')?.style.transform ?? '',
}))"""


def _tree_keys(tree: Any) -> dict[str, str]:
    """Keys shown in a JSON tree -> their arrow's rotation ('' for leaves)."""
    return {node["key"]: node["arrow"] for node in tree.evaluate(_JSON_TREE)}


def _saved(path: Path) -> str:
    """The notebook file once it holds the record (JupyterLab saves asynchronously)."""
    deadline = time.monotonic() + SAVE_TIMEOUT
    while True:
        text = path.read_text()
        if RECORD_MIME in text and "application/json" in text:
            return text
        if time.monotonic() > deadline:
            pytest.fail(f"{path.name} never got the record on disk:\n{text[:2000]}")
        time.sleep(0.2)


# -- the test ------------------------------------------------------------------------------


def test_stream_render_save_reload(lab: Lab, server: FakeOpenAI, tmp_path: Path) -> None:
    from playwright.sync_api import sync_playwright

    chromium = _require_browser()
    server.default_fault = Fault(text=ANSWER, delay=0.05)  # ~75 pieces: ~3.8 s of streaming
    notebook_path = lab.root / "chat.ipynb"
    _write_notebook(notebook_path)
    outside: list[str] = []  # requests the page made beyond the loopback interface

    def watch(request: Any) -> None:
        scheme, _, rest = request.url.partition("://")
        if scheme in ("http", "https", "ws", "wss") and not rest.startswith("127.0.0.1"):
            outside.append(request.url)

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
        page.on("request", watch)
        page.on("dialog", lambda dialog: dialog.accept())
        try:
            _walk_through(page, lab, server, notebook_path)
        except BaseException:
            with contextlib.suppress(Exception):
                page.screenshot(path=str(tmp_path / "failure.png"))
                print(f"screenshot of the failure: {tmp_path / 'failure.png'}")
            raise
        finally:
            context.close()

    assert not outside, f"the page reached beyond 127.0.0.1: {outside}"


def _walk_through(page: Any, lab: Lab, server: FakeOpenAI, notebook_path: Path) -> None:
    _open_notebook(page, lab)
    cells = page.locator(".jp-NotebookPanel .jp-Notebook .jp-Cell")
    ask, raw = cells.nth(1), cells.nth(2)

    # Run `%load_ext nbchat`, then the first %%chat cell (Shift+Enter moves on to the next).
    cells.nth(0).locator(".jp-InputArea-editor").click()
    page.keyboard.press("Shift+Enter")
    page.keyboard.press("Shift+Enter")

    # While streaming: one output, the widget, holding a prefix of the answer and saying so.
    live = page.wait_for_function(
        """([cell, min]) => {
            const pre = cell.querySelector('.jupyter-widgets.widget-html pre');
            const htmls = cell.querySelectorAll('.jupyter-widgets.widget-html');
            if (!pre || pre.textContent.length < min || htmls.length < 2) return null;
            return {
                text: pre.textContent,
                status: htmls[htmls.length - 1].textContent,
                outputs: cell.querySelectorAll('.jp-OutputArea-output').length,
            };
        }""",
        arg=[ask.element_handle(), len(ANSWER) // 2],
        timeout=UI_TIMEOUT,
    ).json_value()
    _shoot(page, "streaming.png", cells.nth(0), ask)
    assert ANSWER.startswith(live["text"]), live
    assert len(live["text"]) < len(ANSWER), "the whole answer arrived at once"
    assert "streaming" in live["status"] and "peer-small" in live["status"], live
    assert live["outputs"] == 1, live
    still = ask.locator(".jupyter-widgets.widget-html pre").all_text_contents()
    assert still and len(still[0]) < len(ANSWER), "the answer ended before the screenshot"

    # After: the same (only) output slot holds rendered Markdown; no widget is left.
    ask.locator(".jp-OutputArea-output.jp-RenderedMarkdown").wait_for(timeout=UI_TIMEOUT)
    _wait_idle(page)
    _check_answer(ask, "Why the sea rises and falls", "Moon's gravity", bullets=3)
    assert ask.locator(".jp-OutputArea-output").count() == 1
    _shoot(page, "answer.png", cells.nth(0), ask)
    assert len(server.chat_requests) == 1

    # --raw: the answer, then the record as JupyterLab's collapsed, expandable JSON tree.
    server.script(Fault(text=SPRING, delay=0.02))
    raw.locator(".jp-InputArea-editor").click()
    page.keyboard.press("Control+Enter")
    tree = raw.locator(".jp-OutputArea-output.jp-RenderedJSON")
    tree.wait_for(timeout=UI_TIMEOUT)
    _wait_idle(page)
    _check_answer(raw, None, "Spring tides", bullets=0)
    outputs = raw.locator(".jp-OutputArea-output")
    assert outputs.count() == 2
    assert "jp-RenderedJSON" in (outputs.nth(1).get_attribute("class") or "")
    keys = _tree_keys(tree)
    assert {"schema", "kind", "prompt", "request", "response"} <= keys.keys(), keys
    assert keys["request"] == "rotateZ(0deg)", keys  # collapsed ...
    assert "base_url" not in keys and "messages" not in keys, keys
    page.keyboard.press("Escape")
    page.evaluate("() => { window.jupyterapp.shell.currentWidget.content.activeCellIndex = 0; }")
    raw.evaluate("(cell) => cell.scrollIntoView({block: 'start'})")
    _shoot(page, "raw-json.png", raw, raw)
    tree.locator("li > label", has_text="request").first.click()  # ... and expandable
    page.wait_for_function(
        """(tree) => [...tree.querySelectorAll('li > label')]
            .some((label) => label.textContent === 'messages')""",
        arg=tree.element_handle(),
        timeout=UI_TIMEOUT,
    )
    assert _tree_keys(tree)["request"] == "rotateZ(90deg)"
    assert len(server.chat_requests) == 2

    # Save, and wait for the file on disk to hold the records.
    page.keyboard.press("Control+s")
    saved = _saved(notebook_path)
    page.wait_for_function(
        "() => !document.querySelector('.jp-NotebookPanel.jp-mod-dirty')", timeout=UI_TIMEOUT
    )
    assert TEST_KEY not in saved
    assert WIDGET_MIME not in saved and WIDGET_STATE_MIME not in saved
    on_disk = nbformat.reads(saved, as_version=4)
    first, second = on_disk.cells[1].outputs, on_disk.cells[2].outputs
    answer_mimes = {"text/markdown", "text/plain", RECORD_MIME}
    assert [set(out.data) for out in first] == [answer_mimes]
    assert [set(out.data) for out in second] == [answer_mimes, {"application/json", "text/plain"}]
    record = first[0].data[RECORD_MIME]
    assert record["cell_id"] == on_disk.cells[1].id  # JupyterLab told the kernel the cell id
    assert record["response"]["choices"][0]["message"]["content"] == ANSWER
    assert second[1].data["application/json"] == second[0].data[RECORD_MIME]

    # Reload: without running anything, the answers are still rendered and nothing is asked.
    page.reload(timeout=UI_TIMEOUT)
    _notebook_ready(page)
    cells = page.locator(".jp-NotebookPanel .jp-Notebook .jp-Cell")
    ask, raw = cells.nth(1), cells.nth(2)
    ask.locator(".jp-RenderedMarkdown").wait_for(timeout=UI_TIMEOUT)
    raw.locator(".jp-RenderedJSON").wait_for(timeout=UI_TIMEOUT)
    _check_answer(ask, "Why the sea rises and falls", "Moon's gravity", bullets=3)
    _check_answer(raw, None, "Spring tides", bullets=0)
    assert page.locator(".jp-NotebookPanel .jupyter-widgets").count() == 0
    time.sleep(1.0)  # room for a (wrong) re-execution to reach the server
    assert len(server.chat_requests) == 2

    # The notebook is the cache: a fresh kernel running every cell replays, asking nothing.
    page.evaluate(  # not awaited here: the wait below has the timeout
        """() => {
            const app = window.jupyterapp;
            void app.shell.currentWidget.sessionContext.session.kernel
                .restart()
                .then(() => app.commands.execute('notebook:run-all-cells'));
        }"""
    )
    page.wait_for_function(
        """() => {
            const cells = document.querySelectorAll('.jp-NotebookPanel .jp-Notebook .jp-Cell');
            return [1, 2].every((i) => cells[i]
                ?.querySelector('.jp-RenderedMarkdown sub')?.textContent.includes('replayed'));
        }""",
        timeout=UI_TIMEOUT,
    )
    _wait_idle(page)
    _check_answer(ask, "Why the sea rises and falls", "Moon's gravity", bullets=3)
    assert raw.locator(".jp-RenderedJSON").count() == 1
    assert len(server.chat_requests) == 2


def _check_answer(cell: Any, heading: str | None, bold: str, *, bullets: int) -> None:
    """The cell's first output is the answer as rendered Markdown, with its footer."""
    rendered = cell.locator(".jp-OutputArea-output").first
    assert rendered.get_attribute("data-mime-type") == "text/markdown"
    assert "jp-RenderedMarkdown" in (rendered.get_attribute("class") or "")
    if heading is not None:
        assert heading in rendered.locator("h1, h2, h3").first.inner_text()
    assert bold in " ".join(rendered.locator("strong").all_inner_texts())
    assert rendered.locator("li").count() == bullets
    assert "peer-small" in rendered.locator("sub").last.inner_text()
    assert cell.locator(".jupyter-widgets, .widget-html").count() == 0
