"""nbchat in JupyterLab, driven in a real headless Chromium.

The frontend people actually use, one JupyterLab shared by the tests of this module:

- the life of an answer: the live view shows the answer as HTML rendered in the kernel as it
  streams, the same output slot then becomes the final HTML carrying the record, ``--raw`` adds
  JupyterLab's collapsible JSON tree, after a save and a page reload the answers are still there
  without a single new request, and a restarted kernel running every cell replays them from the
  saved notebook;
- model and server text is untrusted: HTML, ``javascript:`` links, images and the three families
  of text that ran script in JupyterLab before issue 16 (HTML inside what only looked like math,
  a ``$`` in a link title, doubled backslashes before math delimiters in a bare URL) never run
  or load, live, replayed, or rendered from the saved file the way nbviewer does; nor from the
  thinking and tool folds, the footer (the server's model name), ``%chat history`` or a
  ``--map`` failure reason. No dialog opens, no trace is left in ``window.__pwned``, and no
  element of an output has an event handler, a ``javascript:``/``data:`` URL, or is an active
  element (script, frame, object, image, form, SVG, MathML other than MathJax's own copy);
- benign Markdown renders: headings, lists, tables, code coloured by JupyterLab's theme (light
  and dark), and math typeset by JupyterLab's MathJax;
- a tool call shows live while the function runs, then folds (collapsed) above the answer; the
  names, arguments and results of tool calls are untrusted text too, live, folded and replayed;
- a reasoning model's thinking shows dimmed above the answer as it streams, then folds above it;
- a figure sent with a prompt shows as a thumbnail above the answer, and again when replayed;
- a notebook renamed by JupyterLab (every ``Untitled.ipynb`` on its first save) keeps its answers;
- a file without cell ids (nbformat 4.4) replays every cell with exactly its own context.

The screenshots (``docs/streaming.png``, ``docs/answer.png``, ``docs/raw-json.png``,
``docs/untrusted.png``, ``docs/tools.png``, ``docs/thinking.png``, ``docs/thinking-live.png``,
``docs/code-dark.png``) are for the README: set ``NBCHAT_SCREENSHOTS=1`` to refresh them.

Everything stays on 127.0.0.1: the fake OpenAI server, JupyterLab (news, update checks and the
PyPI extension manager off) and Chromium (background networking off, every other host
unresolvable). Without Chromium, Playwright or JupyterLab the tests skip, except under ``CI=true``
where they fail: CI must not go green by skipping its only browser check.
"""

from __future__ import annotations

import contextlib
import importlib.util
import itertools
import json
import os
import re
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
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_notebook, new_output

from nbchat.render.bundles import answer_bundle
from nbchat.store.record import RECORD_MIME

from support.env import ISOLATED, TEST_KEY, kernel_env
from support.fake_openai import THINKING_MODEL, FakeOpenAI, Fault
from support.kernel_driver import WIDGET_MIME
from support.nbfactory import make_record

pytestmark = pytest.mark.browser

DOCS = Path(__file__).resolve().parent.parent / "docs"
# The committed README images are refreshed only on request; a plain run leaves them alone.
# Read at import: conftest's isolation removes every NBCHAT_* variable before a test runs.
SCREENSHOTS = os.environ.get("NBCHAT_SCREENSHOTS") == "1"
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
KERNELSPEC = {"name": "python3", "display_name": "Python 3", "language": "python"}

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


def _fill(template: str, **values: str) -> str:
    """``template`` (script) with each NAME replaced by its value."""
    for name, value in values.items():
        template = template.replace(name, value)
    return template


def _pwn(name: str, target: str = "window") -> str:
    """Script that leaves a trace if it ever runs: ``name`` appended to ``window.__pwned``."""
    return f"{target}.__pwned=({target}.__pwned||[]).concat('{name}')"


# An animation JupyterLab's own style sheets define (Font Awesome's spinner): an element given
# it in a style attribute would fire its ``onanimationstart`` at once, without a click.
KEYFRAME = "fa-spin"
ALERT_IMG = "<img src=x onerror=alert(1)>"
FAMILIES_END = "Those were the three families."


def _img(name: str) -> str:
    return f'<img src=x onerror="{_pwn(name)}">'


def _family_three(name: str) -> str:
    """Doubled backslashes before math delimiters around a bare URL (issue 16, family 3): once as
    found (a dialog, were it to run) and once leaving the trace ``name``."""
    return f"\\\\(http://a.com/{ALERT_IMG}\\\\) \\\\(http://b.com/{_img(name)}\\\\)"


def _family_three_shown(name: str) -> list[str]:
    """What `_family_three` must show as text, whatever the frontend does with its backslashes
    (JupyterLab's MathJax takes ``\\\\`` for an escaped backslash: see
    `test_nbchat_text_is_not_typeset_outside_its_math`)."""
    return [f"http://a.com/{ALERT_IMG}", f"http://b.com/{_img(name)}"]


def _families(name: str) -> str:
    """Markdown holding the three families of text that ran script in JupyterLab before issue 16,
    each once as the attacker wrote it (``alert(1)``: a dialog) and once leaving a trace named
    ``name``: (1) HTML inside what looked like math (``\\(..\\)``, ``\\[..\\]``, ``$$..\\$$``,
    ``\\begin{x}``), (2) a ``$`` in a link title hiding its quotes, with a style that starts a
    loaded animation, (3) doubled backslashes before math delimiters in a bare URL."""
    blocks = []
    for img, handler in ((ALERT_IMG, "alert(1)"), (_img(name), _pwn(name))):
        blocks += [
            f"Docs: \\(http://a.com\\{img}\\)",
            f"\\[http://a.com\\{img}\\]",
            f"$$http://a.com\\{img}\\$$",
            f"\\begin{{x}}http://a.com\\{img}\\end{{x}}",
            f'[a](http://x "$" onanimationstart={handler} style=animation-name:{KEYFRAME} "$")',
            f"\\\\(http://a.com/{img}\\\\)",
        ]
    return "\n\n".join(blocks)


def _hostile_answer(pixel: str) -> str:
    """Real Markdown around every kind of HTML a model could use to run script or fetch, the
    three families of issue 16, and TeX asking MathJax for a link, a style and a class."""
    return f"""\
## Safety check

Everything below is **text**:

- headings, lists and tables render
- code keeps `<div>` and math keeps $a<b$

```html
<b>code</b>
```

| tag | shown as |
|---|---|
| script | text |

<img src=x onerror="{_pwn("img")}">
<script>{_pwn("script")}</script>
<iframe srcdoc="<script>{_pwn("iframe", "parent")}</script>"></iframe>
<svg onload="{_pwn("svg")}"></svg>

[click me](javascript:{_pwn("link")})

Docs: http://a/\\<img src=x onerror="{_pwn("autolink")}">
and www.a.b\\<img src=x onerror="{_pwn("www")}">

<!-- hidden -->

![x]({pixel})

That is all.

## Issue 16

{_families("answer")}

And TeX that asks MathJax for a link, a style and a class: \
$\\href{{javascript:{_pwn("href")}}}{{x}}$, $\\style{{animation-name: {KEYFRAME}}}{{y}}$, \
$\\class{{jp-Dialog}}{{z}}$.

{FAMILIES_END} Whatever an answer holds, it is shown as text or typeset as math; nothing in it \
runs, loads or submits anything, live or replayed, and a link goes only where it says."""


# What the hostile answer must show as plain, visible text.
HOSTILE_VISIBLE = [
    "<img src=x onerror=",
    "<script>window.__pwned",
    '<iframe srcdoc="<script>',
    "<svg onload=",
    "click me",
    "javascript:window.__pwned",
    "<!-- hidden -->",
]


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


def _lab_env(server: FakeOpenAI, base: Path) -> dict[str, str]:
    """The server's (and so its kernels') environment. The lab outlives one test, so the
    per-test isolation of conftest does not apply: the developer's settings are dropped here."""
    env = {name: value for name, value in os.environ.items() if not name.startswith(ISOLATED)}
    return {
        **env,
        **kernel_env(server),
        "IPYTHONDIR": str(base / ".ipython"),
        "JUPYTER_CONFIG_DIR": str(base / "jupyter-config"),
        "JUPYTER_RUNTIME_DIR": str(base / "jupyter-runtime"),
    }


@pytest.fixture(scope="module")
def lab(fake_server: FakeOpenAI, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    """JupyterLab on a free loopback port, its kernels pointed at the fake server. Shared by the
    module's tests: each opens its own notebook in its own workspace and ends its sessions."""
    _require_browser()
    base = tmp_path_factory.mktemp("lab")
    root = base / "root"
    root.mkdir()
    _write_settings(base / "jupyter-config")
    port, token = _free_port(), secrets.token_hex(16)
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
            command, env=_lab_env(fake_server, base), cwd=root, stdout=sink,
            stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True,
        )  # fmt: skip
    try:
        deadline = time.monotonic() + STARTUP_TIMEOUT
        while True:
            if process.poll() is not None:
                pytest.fail(f"JupyterLab exited with {process.returncode}:\n{_tail(log)}")
            try:
                lab.api("status")
                break
            except OSError:
                if time.monotonic() > deadline:
                    pytest.fail(f"JupyterLab did not answer in {STARTUP_TIMEOUT:.0f} s")
                time.sleep(0.2)
        yield lab
    finally:
        _stop(process, lab)


def _tail(path: Path, lines: int = 40) -> str:
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


@pytest.fixture
def browser(lab: Lab, server: FakeOpenAI, tmp_path: Path) -> Iterator[Browser]:
    """A fresh Chromium profile and page; afterwards, no request may have left 127.0.0.1."""
    from playwright.sync_api import sync_playwright

    chromium = _require_browser()
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
            print(f"--- JupyterLab log ---\n{_tail(lab.log)}")  # shown only on failure
    assert not session.outside(), f"the page reached beyond 127.0.0.1: {session.outside()}"
    assert session.dialogs == [], f"the page opened dialogs: {session.dialogs}"


def _dialog(session: Browser, dialog: Any) -> None:
    """Note a script's dialog (``alert(1)`` ran) and close it; leaving a page may ask too."""
    if dialog.type != "beforeunload":
        session.dialogs.append(f"{dialog.type}: {dialog.message}")
    dialog.dismiss()


# -- the page ------------------------------------------------------------------------------

CELLS = ".jp-NotebookPanel .jp-Notebook .jp-Cell"
# A cell's own outputs (an Output widget nests an output area of its own inside one of them).
OUTPUTS = ".jp-Cell-outputArea > .jp-OutputArea-child > .jp-OutputArea-output"

_KERNEL_IDLE = """() => {
    const kernel = window.jupyterapp?.shell.currentWidget?.sessionContext?.session?.kernel;
    return kernel?.connectionStatus === 'connected' && kernel?.status === 'idle';
}"""


def _write_notebook(path: Path, sources: list[str]) -> None:
    notebook = new_notebook(
        cells=[new_code_cell(source) for source in sources], metadata={"kernelspec": KERNELSPEC}
    )
    assert (notebook.nbformat, notebook.nbformat_minor) == (4, 5)
    nbformat.validate(notebook)
    nbformat.write(notebook, path)


def _wait_idle(page: Any) -> None:
    """Until the notebook's kernel is connected and idle (the app is exposed for this)."""
    page.wait_for_function(_KERNEL_IDLE, timeout=UI_TIMEOUT)


def _open_notebook(browser: Browser, name: str, cells: int) -> Any:
    """Open ``name`` in this test's workspace; its cells, once shown with an idle kernel."""
    browser.goto(name)
    _notebook_ready(browser.page, cells)
    return browser.page.locator(CELLS)


def _notebook_ready(page: Any, cells: int) -> None:
    """Until the notebook shows its cells and its kernel is connected and idle."""
    page.wait_for_function(
        f"() => document.querySelectorAll({CELLS!r}).length === {cells}", timeout=UI_TIMEOUT
    )
    # Give the notebook the whole window (cosmetic: nicer screenshots).
    page.evaluate("() => window.jupyterapp?.shell.collapseLeft()")
    _wait_idle(page)


def _run_all(page: Any, *, restart: bool) -> None:
    """Run every cell (after a kernel restart if asked), until every execution has replied and
    the kernel is idle again: its outputs are then all shown."""
    _start_run_all(page, restart=restart)
    _wait_run_all(page)


def _start_run_all(page: Any, *, restart: bool) -> None:
    """Start running every cell (after a kernel restart if asked); `_wait_run_all` waits."""
    page.evaluate(  # not awaited here: the wait has the timeout
        """(restart) => {
            const app = window.jupyterapp;
            const kernel = app.shell.currentWidget.sessionContext.session.kernel;
            window.__runAll = 'running';
            void (restart ? kernel.restart() : Promise.resolve())
                .then(() => app.commands.execute('notebook:run-all-cells'))
                .then(() => { window.__runAll = 'done'; },
                      (error) => { window.__runAll = `failed: ${error}`; });
        }""",
        restart,
    )


def _wait_run_all(page: Any) -> None:
    """Until the run started by `_start_run_all` is done, the kernel is idle and every output
    is drawn (JupyterLab renders an output some time after the output arrives)."""
    page.wait_for_function("() => window.__runAll !== 'running'", timeout=UI_TIMEOUT)
    assert page.evaluate("() => window.__runAll") == "done"
    _wait_idle(page)
    page.wait_for_function(_OUTPUTS_DRAWN, timeout=UI_TIMEOUT)


# Every output element holds what its renderer drew (an empty one is still being rendered).
_OUTPUTS_DRAWN = f"""() => [...document.querySelectorAll({f"{CELLS} {OUTPUTS}"!r})]
    .every((output) => output.childElementCount > 0)"""


def _type_and_run(page: Any, *lines: str) -> None:
    """Type ``lines`` into the cell being edited as a person would, then run it with Shift+Enter
    (which, in the last cell, adds a new one below and edits it)."""
    for number, line in enumerate(lines):
        if number:
            page.keyboard.press("Enter")
        page.keyboard.type(line)
    page.keyboard.press("Shift+Enter")


# An output of HTML made in the kernel (JupyterLab's HTML renderer, not its Markdown one), and
# the quiet line that ends an answer's document: its footer.
HTML_OUTPUT = f"{OUTPUTS}.jp-RenderedHTMLCommon"
FOOTER = ".nbchat > div[style*='opacity']:last-child"


def _footer(cell: Any) -> str:
    """The answer's footer line ('' while there is none)."""
    footers = cell.locator(f"{HTML_OUTPUT} {FOOTER}")
    return footers.last.inner_text() if footers.count() else ""


def _wait_output(page: Any, cell: Any) -> None:
    """Until the cell shows an output and the kernel is idle."""
    cell.locator(OUTPUTS).first.wait_for(timeout=UI_TIMEOUT)
    _wait_idle(page)


def _wait_answer(page: Any, cell: Any) -> None:
    """Until the cell shows a final answer (its footer) and the kernel is idle."""
    cell.locator(f"{HTML_OUTPUT} {FOOTER}").last.wait_for(timeout=UI_TIMEOUT)
    _wait_idle(page)


def _outputs_text(page: Any) -> str:
    """Every output of the notebook as the user reads it."""
    return "\n".join(page.locator(f"{CELLS} {OUTPUTS}").all_inner_texts())


def _deselect(page: Any, cell: Any) -> None:
    """Make the first cell the active one and scroll ``cell`` to the top (for a screenshot
    without the active cell's outline)."""
    page.keyboard.press("Escape")
    page.evaluate("() => { window.jupyterapp.shell.currentWidget.content.activeCellIndex = 0; }")
    cell.evaluate("(cell) => cell.scrollIntoView({block: 'start'})")


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
    folder = DOCS if SCREENSHOTS else Path(tempfile.gettempdir())
    folder.mkdir(exist_ok=True)
    page.screenshot(path=str(folder / name), clip=clip)


_JSON_TREE = """(tree) => [...tree.querySelectorAll('li')].map((li) => ({
    key: li.querySelector(':scope > label')?.textContent ?? '',
    arrow: li.querySelector(':scope > div > div')?.style.transform ?? '',
}))"""


def _tree_keys(tree: Any) -> dict[str, str]:
    """Keys shown in a JSON tree -> their arrow's rotation ('' for leaves)."""
    return {node["key"]: node["arrow"] for node in tree.evaluate(_JSON_TREE)}


def _stored_records(text: str) -> int:
    """How many records a saved notebook holds (in an answer's bundle or a ``--raw`` tree)."""
    try:
        cells = json.loads(text)["cells"]
    except (ValueError, KeyError):
        return 0  # not written yet, or caught mid-write
    outputs = [output for cell in cells for output in cell.get("outputs", [])]
    return sum(
        RECORD_MIME in output.get("data", {})
        or "record" in output.get("metadata", {}).get("nbchat", {})
        for output in outputs
    )


def _saved(path: Path, records: int) -> str:
    """The notebook file once it holds ``records`` records (JupyterLab saves asynchronously)."""
    deadline = time.monotonic() + SAVE_TIMEOUT
    while True:
        try:
            text = path.read_text()
        except OSError:  # not there yet, or renamed just now
            text = ""
        if _stored_records(text) >= records:
            return text
        if time.monotonic() > deadline:
            pytest.fail(f"{path.name} never got {records} record(s) on disk:\n{text[:2000]}")
        time.sleep(0.2)


def _save(page: Any, path: Path, records: int) -> str:
    """Save with Ctrl+S; the file's text once it holds the records and the panel is clean."""
    page.keyboard.press("Control+s")
    _saved(path, records)
    page.wait_for_function(
        "() => !document.querySelector('.jp-NotebookPanel.jp-mod-dirty')", timeout=UI_TIMEOUT
    )
    return path.read_text()


# -- the life of an answer -----------------------------------------------------------------


def test_stream_render_save_reload(browser: Browser, server: FakeOpenAI) -> None:
    page, lab = browser.page, browser.lab
    server.default_fault = Fault(text=ANSWER, delay=0.05)  # ~75 pieces: ~3.8 s of streaming
    notebook_path = lab.root / "chat.ipynb"
    sources = [
        "%load_ext nbchat",
        "%%chat\nExplain tides briefly.",
        "%%chat --raw\nAnd spring tides?",
    ]
    _write_notebook(notebook_path, sources)
    cells = _open_notebook(browser, "chat.ipynb", 3)
    ask, raw = cells.nth(1), cells.nth(2)

    # Run `%load_ext nbchat`, then the first %%chat cell (Shift+Enter moves on to the next).
    cells.nth(0).locator(".jp-InputArea-editor").click()
    page.keyboard.press("Shift+Enter")
    page.keyboard.press("Shift+Enter")
    heading = _check_live(page, ask)
    _shoot_streaming(page, cells.nth(0), ask)
    assert ask.locator(".widget-output").count() == 1, "the answer ended before the screenshot"

    # After: the same (only) output slot holds the rendered answer; no widget is left.
    ask.locator(HTML_OUTPUT).wait_for(timeout=UI_TIMEOUT)
    _wait_idle(page)
    _check_answer(ask, "Why the sea rises and falls", "Moon's gravity", bullets=3)
    assert ask.locator(OUTPUTS).count() == 1
    # The final answer takes the live view's place without a jump: the heading stays put.
    final = ask.evaluate(f"(cell) => ({_OFFSET})(cell, cell.querySelector('{OUTPUTS} h2'))")
    moved = (final["x"] - heading["x"], final["y"] - heading["y"])
    assert max(map(abs, moved)) <= 4, f"the answer moved by {moved} px when it completed"
    _shoot(page, "answer.png", cells.nth(0), ask)
    assert len(server.chat_requests) == 1

    _check_raw(page, server, raw)
    _check_saved(page, notebook_path)

    # Reload: without running anything, the answers are still rendered and nothing is asked.
    page.reload(timeout=UI_TIMEOUT)
    _notebook_ready(page, 3)
    cells = page.locator(CELLS)
    ask, raw = cells.nth(1), cells.nth(2)
    ask.locator(HTML_OUTPUT).wait_for(timeout=UI_TIMEOUT)
    raw.locator(".jp-RenderedJSON").wait_for(timeout=UI_TIMEOUT)
    _check_answer(ask, "Why the sea rises and falls", "Moon's gravity", bullets=3)
    _check_answer(raw, None, "Spring tides", bullets=0)
    assert page.locator(".jp-NotebookPanel .jupyter-widgets").count() == 0
    time.sleep(1.0)  # room for a (wrong) re-execution to reach the server
    assert len(server.chat_requests) == 2

    # The notebook is the cache: a fresh kernel running every cell replays, asking nothing.
    _run_all(page, restart=True)
    assert "replayed" in _footer(ask) and "replayed" in _footer(raw)
    _check_answer(ask, "Why the sea rises and falls", "Moon's gravity", bullets=3)
    assert raw.locator(".jp-RenderedJSON").count() == 1
    assert len(server.chat_requests) == 2


# Where an element is drawn, relative to its cell.
_OFFSET = """(cell, el) => {
    const [outer, inner] = [cell.getBoundingClientRect(), el.getBoundingClientRect()];
    return {x: inner.left - outer.left, y: inner.top - outer.top};
}"""
_LIVE_VIEW = f"""([cell, min]) => {{
    const views = cell.querySelectorAll('.widget-output .jp-RenderedHTMLCommon');
    const status = [...cell.querySelectorAll('.widget-html')].pop();
    if (views.length !== 1 || !status || views[0].textContent.length < min) return null;
    const view = views[0];
    return {{
        text: view.innerText,
        headings: [...view.querySelectorAll('h2')].map((h) => h.textContent),
        bold: [...view.querySelectorAll('strong')].map((b) => b.textContent),
        status: status.textContent,
        outputs: cell.querySelectorAll('.jp-Cell-outputArea > .jp-OutputArea-child').length,
        heading: ({_OFFSET})(cell, view.querySelector('h2')),
    }};
}}"""


def _check_live(page: Any, cell: Any) -> dict[str, float]:
    """While streaming: one output, the widget, showing a prefix of the answer rendered (no raw
    ``##`` or ``**``) above a status line that says it is streaming. Returns where the heading is
    drawn."""
    live = page.wait_for_function(
        _LIVE_VIEW, arg=[cell.element_handle(), len(ANSWER) // 2], timeout=UI_TIMEOUT
    ).json_value()
    assert "Why the sea rises and falls" in live["headings"][0], live
    assert "Moon's gravity" in live["bold"], live
    assert "##" not in live["text"] and "**Moon" not in live["text"], live
    assert "the oceans answer the Moon" not in live["text"], "the whole answer arrived at once"
    assert "streaming" in live["status"] and "peer-small" in live["status"], live
    assert live["outputs"] == 1, live
    return live["heading"]


# When the live view shows whole Markdown (no bold still open) in a list, still streaming: a still
# copy of the widget takes its place, so a screenshot cannot catch an update half-way.
_FREEZE_LIVE = r"""(cell) => {
    const view = cell.querySelector('.widget-output .jp-RenderedHTMLCommon');
    const status = [...cell.querySelectorAll('.widget-html')].pop();
    if (!view || !status?.textContent.includes('streaming')) return null;
    const text = view.innerText;
    if (text.includes('**') || text.includes('In short') || !view.querySelector('li')) return null;
    // The status line comes in its own message, after the text's: not one update behind it.
    if (Number(/(\d+) tokens/.exec(status.textContent)?.[1] ?? 0) < 20) return null;
    const widget = view.closest('.widget-vbox');
    const still = widget.cloneNode(true);
    still.id = 'nbchat-still';
    widget.style.display = 'none';
    widget.after(still);
    return text;
}"""
_THAW_LIVE = """() => {
    const still = document.getElementById('nbchat-still');
    still.previousElementSibling.style.display = '';
    still.remove();
}"""


def _shoot_streaming(page: Any, first: Any, cell: Any) -> None:
    """Screenshot the live view at a moment it shows whole Markdown (it updates 15 times a
    second, faster than a screenshot is taken)."""
    page.wait_for_function(_FREEZE_LIVE, arg=cell.element_handle(), timeout=UI_TIMEOUT)
    try:
        _shoot(page, "streaming.png", first, cell)
    finally:
        page.evaluate(_THAW_LIVE)


# Every change of the live view's text: [ms since the page opened, characters shown].
_WATCH_LIVE_TEXT = """(cell) => {
    window.__liveText = [];
    new MutationObserver(() => {
        const view = cell.querySelector('.widget-output .jp-RenderedHTMLCommon');
        const shown = view?.textContent.length;
        if (shown && shown !== window.__liveText.at(-1)?.[1]) {
            window.__liveText.push([performance.now(), shown]);
        }
    }).observe(cell, {childList: true, subtree: true, characterData: true});
}"""


def test_the_live_view_keeps_up_from_the_first_token(browser: Browser, server: FakeOpenAI) -> None:
    page = browser.page
    server.default_fault = Fault(text=ANSWER, delay=0.05)  # ~75 pieces: ~3.8 s of streaming
    _write_notebook(browser.lab.root / "pace.ipynb", ["%load_ext nbchat", "%%chat\nTides?"])
    cells = _open_notebook(browser, "pace.ipynb", 2)
    cells.nth(1).evaluate(_WATCH_LIVE_TEXT)
    _run_all(page, restart=False)
    shown = page.evaluate("() => window.__liveText")
    assert len(shown) >= 10, shown
    gaps = [round(later[0] - earlier[0]) for earlier, later in itertools.pairwise(shown)]
    assert max(gaps) < 1000, f"ms between updates of the live view: {gaps}"


def _check_raw(page: Any, server: FakeOpenAI, raw: Any) -> None:
    """``--raw``: the answer, then the record as JupyterLab's collapsed, expandable JSON tree."""
    server.script(Fault(text=SPRING, delay=0.02))
    raw.locator(".jp-InputArea-editor").click()
    page.keyboard.press("Control+Enter")
    tree = raw.locator(".jp-OutputArea-output.jp-RenderedJSON")
    tree.wait_for(timeout=UI_TIMEOUT)
    _wait_idle(page)
    _check_answer(raw, None, "Spring tides", bullets=0)
    outputs = raw.locator(OUTPUTS)
    assert outputs.count() == 2
    assert "jp-RenderedJSON" in (outputs.nth(1).get_attribute("class") or "")
    keys = _tree_keys(tree)
    assert {"schema", "kind", "messages", "request", "responses", "sent"} <= keys.keys(), keys
    assert keys["sent"] == "rotateZ(0deg)", keys  # collapsed ...
    assert "base_url" not in keys and "body" not in keys, keys
    _deselect(page, raw)
    _shoot(page, "raw-json.png", raw, raw)
    tree.locator("li > label", has_text="sent").first.click()  # ... and expandable
    page.wait_for_function(
        """(tree) => [...tree.querySelectorAll('li > label')]
            .some((label) => label.textContent === 'body')""",
        arg=tree.element_handle(),
        timeout=UI_TIMEOUT,
    )
    assert _tree_keys(tree)["sent"] == "rotateZ(90deg)"
    assert len(server.chat_requests) == 2


def _check_saved(page: Any, notebook_path: Path) -> None:
    """Save: the file holds the records (next to the answer's HTML and plain text: no Markdown
    copy), and neither a widget nor the key."""
    saved = _save(page, notebook_path, records=2)
    assert TEST_KEY not in saved
    assert WIDGET_MIME not in saved and WIDGET_STATE_MIME not in saved
    on_disk = nbformat.reads(saved, as_version=4)
    first, second = on_disk.cells[1].outputs, on_disk.cells[2].outputs
    answer_mimes = {"text/html", "text/plain"}
    assert [set(out.data) for out in first] == [{*answer_mimes, RECORD_MIME}]
    # --raw: the record is stored once, as the JSON tree's payload.
    assert [set(out.data) for out in second] == [answer_mimes, {"application/json", "text/plain"}]
    record = first[0].data[RECORD_MIME]
    assert record["cell_id"] == on_disk.cells[1].id  # JupyterLab told the kernel the cell id
    assert record["messages"][1]["content"] == ANSWER
    raw_record = second[1].data["application/json"]
    assert raw_record["cell_id"] == on_disk.cells[2].id
    assert raw_record["messages"][0]["content"] == "And spring tides?"
    assert raw_record["sent"]["body"]["messages"][-1]["content"] == "And spring tides?"


def _check_answer(cell: Any, heading: str | None, bold: str, *, bullets: int) -> None:
    """The cell's first output is the answer, rendered to HTML in the kernel, with its footer."""
    rendered = cell.locator(OUTPUTS).first
    assert rendered.get_attribute("data-mime-type") == "text/html"
    assert "jp-RenderedHTMLCommon" in (rendered.get_attribute("class") or "")
    if heading is not None:
        assert heading in rendered.locator("h1, h2, h3").first.inner_text()
    assert bold in " ".join(rendered.locator("strong").all_inner_texts())
    assert rendered.locator("li").count() == bullets
    assert "peer-small" in rendered.locator(FOOTER).last.inner_text()
    assert cell.locator(".jupyter-widgets, .widget-html").count() == 0


# -- model HTML never runs -----------------------------------------------------------------

# What no output may hold: elements that run script, embed, fetch or submit by themselves, or
# open a foreign namespace (SVG, MathML); event-handler attributes; URLs with a scheme that runs
# or embeds (javascript:, data:, vbscript:); style that fetches or animates. Two things nbchat and
# JupyterLab put there themselves are not model text and are allowed: the style sheet nbchat
# appends after a document with coloured code (only its `.nbchat .highlight` rules), and the
# MathML copy MathJax makes from TeX for screen readers (inside `<mjx-assistive-mml>`).
_ACTIVE = (
    "script, iframe, frame, frameset, object, embed, applet, img, image, picture, svg, math, "
    "form, input:not([type=checkbox]), button, textarea, select, base, meta, link, style, "
    "video, audio, source, track, portal, template, [srcdoc], [src], [srcset], [formaction]"
)
_URL_ATTRIBUTES = ["href", "src", "action", "formaction", "xlink:href", "data", "poster"]
_OUR_STYLE = r"^(\.nbchat \.highlight \.[a-z0-9]+ \{ [a-z0-9:;(),#\- %.]+ \})+$"
# (element) => what is wrong with it, or null.
_UNSAFE = _fill(
    r"""(el) => {
    const problems = [];
    const ours = el.matches('style') && !!el.previousElementSibling?.matches('div.nbchat')
        && /OUR_STYLE/.test(el.textContent.trim());
    const mathjax = el.matches('mjx-assistive-mml > math');
    if (el.matches(ACTIVE) && !ours && !mathjax) problems.push(`<${el.localName}>`);
    for (const {name, value} of el.attributes) {
        const url = value.replace(/[\s\x00-\x1f]/g, '').toLowerCase();
        if (name.startsWith('on')) problems.push(name);
        if (URLS.includes(name) && /^(javascript|data|vbscript):/.test(url)) {
            problems.push(`${name}=${value}`);
        }
        if (name === 'style' && /url\(|animation|expression|binding|@import/i.test(value)) {
            problems.push(`style=${value}`);
        }
    }
    return problems.length ? `${problems.join(' ')} in ${el.outerHTML.slice(0, 200)}` : null;
}""",
    OUR_STYLE=_OUR_STYLE,
    ACTIVE=json.dumps(_ACTIVE),
    URLS=json.dumps(_URL_ATTRIBUTES),
)
_WATCH_OUTPUTS = f"""() => {{
    window.__active = [];  // every unsafe element ever added to an output, live or final
    window.__liveRenders = 0;  // renders of the answer's HTML inside the live view
    window.__liveMath = 0;  // formulas MathJax typeset inside the live view
    const unsafe = {_UNSAFE};
    // In an output: the node, or where it was added. (A live render may be replaced, so
    // detached, by the time this runs: it is then counted as live.)
    const area = '.jp-OutputArea-output';
    const inspect = (el, live) => {{
        const problem = unsafe(el);
        if (problem) window.__active.push(problem);
        if (live && el.matches('.jp-RenderedHTMLCommon')) window.__liveRenders += 1;
        if (live && el.matches('mjx-container')) window.__liveMath += 1;
    }};
    new MutationObserver((mutations) => {{
        for (const mutation of mutations) {{
            const where = mutation.target;
            const live = !!where.closest('.widget-output') || !where.isConnected;
            for (const node of mutation.addedNodes) {{
                if (!(node instanceof Element)) continue;
                if (!node.closest(area) && !where.closest(area)) continue;
                [node, ...node.querySelectorAll('*')].forEach((el) => inspect(el, live));
            }}
            if (mutation.type === 'attributes' && where.closest(area)) inspect(where, false);
        }}
    }}).observe(document.querySelector('.jp-NotebookPanel .jp-Notebook'),
                {{childList: true, subtree: true, attributes: true}});
}}"""
# Every problem of an element and everything inside it, now.
_ACTIVE_NOW = f"""(output) => [output, ...output.querySelectorAll('*')]
    .map({_UNSAFE}).filter((problem) => problem !== null)"""
# The same for every output of a cell's output area (not JupyterLab's own icons around them).
_OUTPUTS_ACTIVE_NOW = f"""(area) => [...area.querySelectorAll('.jp-OutputArea-output')]
    .flatMap({_ACTIVE_NOW})"""
# Names of the animations the page's style sheets define.
_KEYFRAMES = """() => [...document.styleSheets]
    .flatMap((sheet) => { try { return [...sheet.cssRules]; } catch { return []; } })
    .filter((rule) => rule instanceof CSSKeyframesRule).map((rule) => rule.name)"""
# Markup the check must catch, each checked in an inert document (nothing loads or runs): the
# samples it misses.
_MUST_CATCH = [
    "<img src=x>",
    '<a href=" JaVaScRiPt:x">a</a>',
    '<a href="data:text/html,x">a</a>',
    '<p onclick="x">p</p>',
    "<svg></svg>",
    "<math></math>",
    "<style>p { }</style>",
    f'<span style="animation-name: {KEYFRAME}">a</span>',
    "<form></form>",
    "<iframe></iframe>",
    "<object></object>",
    "<base>",
]
_MISSED = f"""(samples) => samples.filter((sample) => {{
    const doc = document.implementation.createHTMLDocument('');
    doc.body.innerHTML = sample;
    return ({_ACTIVE_NOW})(doc.body).length === 0;
}})"""
_LIVE_HOSTILE = f"""(cell) => {{
    const view = cell.querySelector('.widget-output .jp-RenderedHTMLCommon');
    const status = [...cell.querySelectorAll('.widget-html')].pop();
    // The last paragraph: everything else is in the view.
    if (!view || !view.innerText.includes({FAMILIES_END!r}) || !status) return null;
    return {{text: view.innerText, status: status.textContent, active: ({_ACTIVE_NOW})(view)}};
}}"""


def _nothing_ran(browser: Browser) -> None:
    """No script of the model or the server ran: no trace, no dialog, nothing unsafe ever added
    to an output (when `_WATCH_OUTPUTS` watches)."""
    page = browser.page
    assert page.evaluate("() => window.__pwned ?? null") is None
    assert browser.dialogs == []
    assert page.evaluate("() => window.__active ?? []") == []


def _check_outputs_inert(cell: Any) -> None:
    """Nothing unsafe in any of the cell's outputs, as they are now."""
    for output in cell.locator(OUTPUTS).all():
        assert output.evaluate(_ACTIVE_NOW) == []


def test_model_html_never_runs_live_or_replayed(browser: Browser, server: FakeOpenAI) -> None:
    page, lab = browser.page, browser.lab
    pixel = f"http://127.0.0.1:{_free_port()}/pixel.png"  # a closed port: nothing would answer
    answer = _hostile_answer(pixel)
    server.default_fault = Fault(text=answer, delay=0.04)  # ~140 pieces: ~6 s of streaming
    notebook_path = lab.root / "hostile.ipynb"
    _write_notebook(notebook_path, ["%load_ext nbchat", "%%chat\nShow me some HTML."])
    cells = _open_notebook(browser, "hostile.ipynb", 2)
    assert page.evaluate(_MISSED, _MUST_CATCH) == []
    page.evaluate(_WATCH_OUTPUTS)
    ask = cells.nth(1)

    cells.nth(0).locator(".jp-InputArea-editor").click()
    page.keyboard.press("Shift+Enter")
    page.keyboard.press("Shift+Enter")
    # Live: the hostile part is in the view as text, and nothing ran, while still streaming.
    live = page.wait_for_function(_LIVE_HOSTILE, arg=ask.element_handle()).json_value()
    assert "streaming" in live["status"], live
    _nothing_ran(browser)
    assert live["active"] == [], live
    assert "<img src=x onerror=" in live["text"] and "<svg onload=" in live["text"], live
    assert KEYFRAME in page.evaluate(_KEYFRAMES), "the family-2 payload would not even fire"
    _wait_answer(page, ask)
    assert page.evaluate("() => window.__liveRenders") >= 3, "the live view hardly rendered"
    # The families were in the live view too, typeset by MathJax: as text, never as HTML.
    assert page.evaluate("() => window.__liveMath") > 0
    _check_harmless(browser, ask)
    _deselect(page, ask)
    end = ask.locator(OUTPUTS).first.locator("p", has_text="That is all.")
    _shoot(page, "untrusted.png", ask, end)  # the classic cases, down to "That is all."
    assert len(server.chat_requests) == 1

    # Saved, then opened again (JupyterLab shows the stored HTML as untrusted): the same.
    saved = _save(page, notebook_path, records=1)
    page.reload(timeout=UI_TIMEOUT)
    _notebook_ready(page, 3)  # Shift+Enter in the last cell added an empty one
    page.evaluate(_WATCH_OUTPUTS)
    _check_harmless(browser, ask)

    # Replayed from the saved file by a fresh kernel (a fresh, trusted output): the same, and
    # no request.
    _run_all(page, restart=True)
    assert "replayed" in _footer(ask)
    _check_harmless(browser, ask)
    assert len(server.chat_requests) == 1
    _nothing_ran(browser)

    # Without a kernel, as nbviewer renders it (nbconvert's HTML exporter): readable text.
    _check_exported(nbformat.reads(saved, as_version=4), pixel)


def _check_harmless(browser: Browser, cell: Any) -> None:
    """The hostile answer shows as text inside real Markdown, its math typeset; nothing ran,
    loaded or linked."""
    page = browser.page
    output = cell.locator(OUTPUTS).first
    assert output.get_attribute("data-mime-type") == "text/html"
    # MathJax typesets an output in one pass: once a formula shows, all of them do.
    output.locator(".nbchat-math mjx-container").first.wait_for(state="attached")
    _nothing_ran(browser)
    assert output.evaluate(_ACTIVE_NOW) == []
    # The family-2 link is a plain link: no title, handler or style was smuggled into it.
    for link in output.locator("a[href='http://x']").all():
        names = link.evaluate("(a) => [...a.attributes].map((attribute) => attribute.name)")
        assert set(names) <= {"href", "rel", "target"}, names
    text = output.inner_text()
    for shown in HOSTILE_VISIBLE:
        assert shown in text, (shown, text)
    assert "Safety check" in output.locator("h2").first.inner_text()
    assert output.locator("li").count() == 2
    assert output.locator("table th").all_inner_texts() == ["tag", "shown as"]
    assert output.locator("pre code").inner_text().strip() == "<b>code</b>"
    assert output.locator("pre b").count() == 0
    assert "<div>" in output.locator("li code").all_inner_texts()
    assert output.locator("a[href$='/pixel.png']").inner_text() == "image: x"  # a link
    # Clicking the would-be link runs nothing and goes nowhere.
    url = page.url
    output.get_by_text("click me").click()
    page.wait_for_timeout(300)
    _nothing_ran(browser)
    assert page.url == url and len(page.context.pages) == 1
    fetched = [u for u in browser.requests if "pixel.png" in u or u.split("?")[0].endswith("/x")]
    assert fetched == [], "the page fetched an image of the answer"


class _Visible(HTMLParser):
    """Text a reader sees (outside script and style), and every place script could hide."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.text: list[str] = []
        self.code: list[str] = []  # script and style bodies
        self.attributes: list[tuple[str, str, str]] = []  # (tag, name, value) that run or load
        self._in: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in ("script", "style"):
            self._in.append(tag)
        for name, value in attrs:
            if name.startswith("on") or name in ("src", "srcdoc", "srcset", "href", "data"):
                self.attributes.append((tag, name, value or ""))

    def handle_endtag(self, tag: str) -> None:
        if self._in and self._in[-1] == tag:
            self._in.pop()

    def handle_data(self, data: str) -> None:
        (self.code if self._in else self.text).append(data)


def _check_exported(notebook: nbformat.NotebookNode, pixel: str) -> None:
    """nbconvert's HTML (what nbviewer shows) has the hostile parts as visible text only."""
    from nbconvert import HTMLExporter

    html, _ = HTMLExporter().from_notebook_node(notebook)
    page = _Visible()
    page.feed(html)
    text = " ".join("".join(page.text).split())
    for shown in HOSTILE_VISIBLE:
        assert shown in text, shown
    assert "Safety check" in text and "<b>code</b>" in text
    assert not [body for body in page.code if "pwned" in body]
    loads = [
        (tag, name, value)
        for tag, name, value in page.attributes
        if "pwned" in value
        or (name != "href" and "pixel.png" in value)
        or value.strip().lower().startswith("javascript:")
    ]
    assert loads == [], loads
    assert ("a", "href", pixel) in page.attributes  # a link, not an image
    assert "<h2" in html and "<table" in html and "<li>" in html


# A server is untrusted too: the model name it answers with (shown in the footer), an error
# message (a --map item's failure reason), and the answer it streams (in %chat history).
HOSTILE_MODEL = _family_three("model")
HOSTILE_REASON = _family_three("reason")


def _sse(model: str, text: str) -> bytes:
    """A streamed answer as a server sends it, each chunk naming ``model`` as the answering one."""
    head = {"id": "chatcmpl-1", "object": "chat.completion.chunk", "created": 1, "model": model}

    def event(choices: list[Any], **extra: Any) -> str:
        return f"data: {json.dumps({**head, 'choices': choices, **extra})}\n\n"

    def delta(content: dict[str, str], finish: str | None = None) -> list[Any]:
        return [{"index": 0, "delta": content, "logprobs": None, "finish_reason": finish}]

    usage = {"prompt_tokens": 5, "completion_tokens": 7, "total_tokens": 12}
    events = [event(delta({"role": "assistant", "content": ""}))]
    events += [event(delta({"content": word})) for word in re.findall(r"\S+\s*|\s+", text)]
    events += [event(delta({}, "stop")), event([], usage=usage), "data: [DONE]\n\n"]
    return "".join(events).encode()


def test_server_text_never_runs(browser: Browser, server: FakeOpenAI) -> None:
    page, lab = browser.page, browser.lab
    answer = f"{_family_three('history')} is what I found."
    refusal = {"error": {"message": HOSTILE_REASON, "type": "invalid_request_error"}}
    server.script(
        Fault(raw_sse=_sse(HOSTILE_MODEL, answer)),  # the %%chat cell
        Fault(status=400, body=refusal),  # --map: the first item fails,
        Fault(text=_family_three("map-answer")),  # the second is answered
    )
    notebook_path = lab.root / "hostile_server.ipynb"
    sources = [
        "%load_ext nbchat",
        f"%%chat\n{_family_three('question')}",
        "%chat history",
        'xs = ["a", "b"]',
        "%%chat --map xs --concurrency 1 -o out\nAbout {item}",  # last: it fails, Run All stops
    ]
    _write_notebook(notebook_path, sources)
    cells = _open_notebook(browser, "hostile_server.ipynb", 5)
    page.evaluate(_WATCH_OUTPUTS)

    _run_all(page, restart=False)
    _check_server_text_harmless(browser, cells, replayed=False)
    assert len(server.chat_requests) == 3

    # Replayed from the saved file by a fresh kernel: the answer and the answered item without a
    # request, the failed item asked again (and failing again).
    _save(page, notebook_path, records=2)
    server.script(Fault(status=400, body=refusal))
    _run_all(page, restart=True)
    _check_server_text_harmless(browser, cells, replayed=True)
    assert len(server.chat_requests) == 4


def _check_server_text_harmless(browser: Browser, cells: Any, *, replayed: bool) -> None:
    """The model name in the footer, the thread in ``%chat history``, the --map answer (in its
    summary) and failure reason (in the cell's error) show as text; nothing ran."""
    ask, history, mapped = cells.nth(1), cells.nth(2), cells.nth(4)
    footer = _footer(ask)
    assert all(shown in footer for shown in _family_three_shown("model")), footer
    assert ("replayed" in footer) == replayed, footer
    rows = history.locator(f"{HTML_OUTPUT} table tbody tr")
    assert rows.count() == 2, history.inner_text()  # the question and the answer
    question, answer = (row.locator("td").last.inner_text() for row in rows.all())
    # Previews, cut short.
    assert _family_three_shown("question")[0] in question, question
    assert _family_three_shown("history")[0] in answer, answer
    summary = mapped.locator(HTML_OUTPUT).first
    counts = "1 answered (1 replayed) · 1 failed" if replayed else "1 answered · 1 failed"
    assert counts in summary.inner_text()
    assert _family_three_shown("map-answer")[0] in summary.locator("td").last.inner_text()
    error = mapped.locator(OUTPUTS).last  # the cell's error names the failure: text, not HTML
    assert error.get_attribute("data-mime-type") == "application/vnd.jupyter.stderr"
    shown = error.inner_text()
    assert f"item 0: The server rejected the request (400). Server said: {HOSTILE_REASON}" in shown
    for cell in (ask, history, mapped):
        _check_outputs_inert(cell)
    _nothing_ran(browser)


LIST_TABLE_CODE = """\
- one
- two

| a | b |
|---|---|
| 1 | 2 |

```html
<b>code</b>
```"""


def test_code_below_a_list_and_a_table_shows_literally(
    browser: Browser, server: FakeOpenAI
) -> None:
    server.default_fault = Fault(text=LIST_TABLE_CODE)
    sources = ["%load_ext nbchat", "%%chat\nA list, a table, then code."]
    _write_notebook(browser.lab.root / "table.ipynb", sources)
    cells = _open_notebook(browser, "table.ipynb", 2)
    _run_all(browser.page, restart=False)
    output = cells.nth(1).locator(OUTPUTS).first
    assert output.locator("li").count() == 2 and output.locator("table td").count() == 2
    assert output.locator("pre code").inner_text().strip() == "<b>code</b>"


# -- benign Markdown renders ---------------------------------------------------------------

BENIGN = r"""## Tides in numbers

The height follows $h(t) = A\cos(\omega t)$, its energy grows as $x^2$, and \(a<b\) at neap tide.

- one
- two

| station | level |
|---|---|
| Brest | 4.2 |

```python
# The water level now, in metres.
def level(station: str) -> float:
    return {"Brest": 4.2}[station] if station else 0.0
```"""
# The colours of the first keyword of the coloured code, of the code's text, and of JupyterLab's
# editor keyword colour (a probe coloured by the theme variable itself).
_CODE_COLOURS = """(output) => {
    const code = output.querySelector('pre.highlight');
    const probe = document.createElement('span');
    probe.style.color = 'var(--jp-mirror-editor-keyword-color)';
    code.append(probe);
    const theme = getComputedStyle(probe).color;
    probe.remove();
    return {
        keyword: getComputedStyle(code.querySelector('.k')).color,
        text: getComputedStyle(code).color,
        theme,
    };
}"""
_THEME_IS = "(light) => document.body.dataset.jpThemeLight === String(light)"


def test_benign_markdown_renders_in_light_and_dark(browser: Browser, server: FakeOpenAI) -> None:
    page = browser.page
    server.default_fault = Fault(text=BENIGN)
    sources = ["%load_ext nbchat", "%%chat\nTides in numbers, with some code."]
    _write_notebook(browser.lab.root / "benign.ipynb", sources)
    cells = _open_notebook(browser, "benign.ipynb", 2)
    _run_all(page, restart=False)
    ask = cells.nth(1)
    output = ask.locator(OUTPUTS).first
    assert output.get_attribute("data-mime-type") == "text/html"
    assert "Tides in numbers" in output.locator("h2").inner_text()
    assert output.locator("li").count() == 2
    assert output.locator("table th").all_inner_texts() == ["station", "level"]
    assert output.locator("table td").all_inner_texts() == ["Brest", "4.2"]
    # The three formulas typeset by JupyterLab's MathJax, and nothing else.
    output.locator("mjx-container").first.wait_for(state="visible")
    assert output.locator(".nbchat-math mjx-container").count() == 3
    assert output.locator("mjx-container").count() == 3
    # Python, coloured by JupyterLab's own editor colours.
    code = output.locator("pre.highlight code")
    assert "def level(station: str) -> float:" in code.inner_text()
    assert code.locator(".k").first.inner_text() == "def"
    _check_code_colours(output)
    _check_outputs_inert(ask)

    # The same in JupyterLab's dark theme (the theme is the lab's setting: put back after).
    try:
        page.evaluate(
            "() => window.jupyterapp.commands.execute("
            "'apputils:change-theme', {theme: 'JupyterLab Dark'})"
        )
        page.wait_for_function(_THEME_IS, arg=False, timeout=UI_TIMEOUT)
        page.wait_for_timeout(500)  # the theme's style sheet applied
        _check_code_colours(output)
        _deselect(page, ask)
        _shoot(page, "code-dark.png", ask, ask)
    finally:
        page.evaluate(
            "() => window.jupyterapp.commands.execute("
            "'apputils:change-theme', {theme: 'JupyterLab Light'})"
        )
        page.wait_for_function(_THEME_IS, arg=True, timeout=UI_TIMEOUT)


def _check_code_colours(output: Any) -> None:
    """Keywords take the theme's editor keyword colour, which is not the code's text colour."""
    colours = output.evaluate(_CODE_COLOURS)
    assert colours["keyword"] == colours["theme"] != colours["text"], colours


def test_nbchat_text_is_not_typeset_outside_its_math(browser: Browser, server: FakeOpenAI) -> None:
    prose = "It costs $5 and $10, while $x^2$ is math. A share: \\\\\\\\server\\\\docs."
    server.default_fault = Fault(text=prose)
    _write_notebook(browser.lab.root / "dollars.ipynb", ["%load_ext nbchat", "%%chat\nPrices?"])
    cells = _open_notebook(browser, "dollars.ipynb", 2)
    _run_all(browser.page, restart=False)
    output = cells.nth(1).locator(OUTPUTS).first
    output.locator("mjx-container").first.wait_for(state="visible")
    assert output.locator("mjx-container").count() == 1  # $x^2$ only
    text = output.locator("p").first.inner_text()
    assert "It costs $5 and $10, while" in text and "A share: \\\\server\\docs." in text, text


def test_bracket_display_math_shows_once(browser: Browser, server: FakeOpenAI) -> None:
    server.default_fault = Fault(text="The sum:\n\n\\[a+b\\]\n\nThat is all.")
    _write_notebook(browser.lab.root / "bracket.ipynb", ["%load_ext nbchat", "%%chat\nA sum?"])
    cells = _open_notebook(browser, "bracket.ipynb", 2)
    _run_all(browser.page, restart=False)
    display = cells.nth(1).locator(OUTPUTS).first.locator("div.nbchat-math")
    display.locator("mjx-container").wait_for(state="visible")
    beside = display.evaluate(
        "(div) => [...div.childNodes].filter((node) => node.nodeType === Node.TEXT_NODE)"
        ".map((node) => node.textContent).join('').trim()"
    )
    assert beside == "", f"shown next to the formula: {beside!r}"


# -- tool calls, thinking and figures ------------------------------------------------------

LEVEL_TOOL = '''\
import time

def level(station: str) -> float:
    """The water level at a tide station now, in metres.

    Args:
        station: The station's city.
    """
    time.sleep(1.5)  # a gauge that answers slowly
    return {"Brest": 4.2, "Cadiz": 1.1}[station]'''
TOOL_ANSWER = "The water at **Brest** stands at **4.2 m** now: close to high tide."

# The calls shown live (ipywidgets HTML: the tool's line, then the status line) and the cell's
# outputs, once the call ``name(`` shows ``running``.
_LIVE_CALL = """([cell, name]) => {
    const lines = [...cell.querySelectorAll('.widget-html')].map((el) => el.innerText);
    const call = lines.find((text) => text.includes(`⚙ ${name}(`));
    if (!call || !call.includes('running')) return null;
    return {
        call, status: lines[lines.length - 1],
        outputs: cell.querySelectorAll('.jp-Cell-outputArea > .jp-OutputArea-child').length,
    };
}"""
# Whether an element is inside a ``<details>`` fold.
_IN_FOLD = "(el) => el.closest('details') !== null"


def test_a_tool_call_shows_live_then_folds(browser: Browser, server: FakeOpenAI) -> None:
    page, lab = browser.page, browser.lab
    server.script(Fault(tool_calls=[("level", {"station": "Brest"})]), Fault(text=TOOL_ANSWER))
    sources = ["%load_ext nbchat", LEVEL_TOOL, "%%chat --tools level\nHow high is it at Brest?"]
    _write_notebook(lab.root / "tools.ipynb", sources)
    cells = _open_notebook(browser, "tools.ipynb", 3)
    ask = cells.nth(2)

    # Live: while the function runs (1.5 s), its call shows above the status line.
    _start_run_all(page, restart=False)
    live = page.wait_for_function(_LIVE_CALL, arg=[ask.element_handle(), "level"]).json_value()
    assert '⚙ level({"station": "Brest"})' in live["call"], live
    # The status line (not the call's) names the function running.
    assert live["status"].startswith("peer-small · "), live
    assert live["status"].endswith("running level…") and "⚙" not in live["status"], live
    assert live["outputs"] == 1, live
    _wait_run_all(page)

    # Done: one HTML output, the calls folded (collapsed) above the answer.
    output = ask.locator(OUTPUTS).first
    assert ask.locator(OUTPUTS).count() == 1
    assert output.get_attribute("data-mime-type") == "text/html"
    fold = output.locator("details")
    assert fold.count() == 1
    summary = fold.locator("summary").inner_text()
    assert summary.startswith("Tools · 1 call · level · "), summary
    assert float(summary.split(" · ")[-1].removesuffix(" s")) >= 1.5, summary
    _check_fold_closed(fold, "→ 4.2")
    answer = output.locator("strong", has_text="4.2 m")
    assert answer.is_visible() and not answer.evaluate(_IN_FOLD)
    assert "peer-small" in _footer(ask)

    fold.locator("summary").click()  # opens: the call and its result, as text
    call = fold.locator("pre")
    call.wait_for(state="visible", timeout=UI_TIMEOUT)
    shown = call.inner_text()
    assert shown.startswith('level({"station": "Brest"})'), shown
    assert shown.rstrip().endswith("→ 4.2"), shown
    _deselect(page, cells.nth(1))
    page.evaluate("() => document.activeElement?.blur()")  # no focus ring on the summary
    _shoot(page, "tools.png", cells.nth(1), ask)

    # The result went back to the model as the call's tool message.
    first, second = (request.body for request in server.chat_requests)
    assert [spec["function"]["name"] for spec in first["tools"]] == ["level"]
    call_id = second["messages"][-2]["tool_calls"][0]["id"]
    assert second["messages"][-1] == {"role": "tool", "tool_call_id": call_id, "content": "4.2"}


def _check_fold_closed(fold: Any, hidden: str) -> None:
    """The fold is collapsed: its summary shows, ``hidden`` (inside it) does not."""
    assert fold.evaluate("(el) => el.open") is False
    assert fold.locator("summary").is_visible()
    assert hidden in fold.text_content()
    assert hidden not in fold.inner_text()  # not rendered: only the summary is


# A model's tool calls are untrusted text too: HTML in the arguments, in a function's result
# (a web page, say, with a family-3 URL), in the name of a function that was never offered, and
# the three families in the text the model writes with its calls.
HOSTILE_ARGUMENT = f'<img src=x onerror="{_pwn("argument")}">'
HOSTILE_RESULT = (
    f'<img src=x onerror="{_pwn("result")}"> <script>{_pwn("result-script")}</script> '
    + _family_three("result-family")
)
HOSTILE_NAME = f"<script>{_pwn('name')}</script>"
HOSTILE_RAW_ARGUMENTS = f'<svg onload="{_pwn("raw-arguments")}">'  # not even JSON
PAGE_TOOL = f'''\
PAGE = {HOSTILE_RESULT!r}

def fetch_page(query: str) -> str:
    """A web page about the query, as text."""
    with open("fetch_page.log", "a") as log:  # each run leaves a line
        log.write("ran\\n")
    return f"{{PAGE}} about {{query}}"'''
# The calls and their results, live, once both have run and the answer streams.
_LIVE_HOSTILE_CALLS = f"""(cell) => {{
    const widgets = [...cell.querySelectorAll('.widget-html')];
    const calls = widgets.find((el) => el.innerText.includes('⚙'));
    const status = widgets[widgets.length - 1];
    if (!calls || !status?.innerText.includes('streaming')) return null;
    if (calls.innerText.split('⚙').length !== 3 || calls.innerText.includes('running')) return null;
    const area = cell.querySelector('.jp-Cell-outputArea');
    const active = ({_OUTPUTS_ACTIVE_NOW})(area);
    return {{calls: calls.innerText, status: status.innerText, active}};
}}"""


def test_tool_call_text_never_runs(browser: Browser, server: FakeOpenAI) -> None:
    page, lab = browser.page, browser.lab
    calls = [("fetch_page", {"query": HOSTILE_ARGUMENT}), (HOSTILE_NAME, HOSTILE_RAW_ARGUMENTS)]
    # The calls with text of their own, then the answer ("From the tools: ..." and the results).
    server.script(Fault(tool_calls=calls, text=_families("tool-text")), Fault(delay=0.05))
    notebook_path = lab.root / "hostile_tools.ipynb"
    sources = ["%load_ext nbchat", PAGE_TOOL, "%%chat --tools fetch_page\nLook it up."]
    _write_notebook(notebook_path, sources)
    cells = _open_notebook(browser, "hostile_tools.ipynb", 3)
    page.evaluate(_WATCH_OUTPUTS)
    ask = cells.nth(2)

    _start_run_all(page, restart=False)
    live = page.wait_for_function(_LIVE_HOSTILE_CALLS, arg=ask.element_handle()).json_value()
    _nothing_ran(browser)
    assert live["active"] == [], live
    assert '⚙ fetch_page({"query": "<img src=x onerror=' in live["calls"], live
    assert "→ <img src=x onerror=" in live["calls"], live
    assert f"⚙ {HOSTILE_NAME}({HOSTILE_RAW_ARGUMENTS})" in live["calls"], live
    assert '✗ Error: there is no tool named "<script>window.' in live["calls"], live
    _wait_run_all(page)
    _check_tool_text_harmless(browser, ask, replayed=False)
    assert (lab.root / "fetch_page.log").read_text() == "ran\n"
    assert len(server.chat_requests) == 2

    # Replayed from the saved file by a fresh kernel: the same text, no request, nothing run.
    _save(page, notebook_path, records=1)
    _run_all(page, restart=True)
    assert "replayed" in _footer(ask)
    _check_tool_text_harmless(browser, ask, replayed=True)
    assert (lab.root / "fetch_page.log").read_text() == "ran\n"
    assert len(server.chat_requests) == 2


def _check_tool_text_harmless(browser: Browser, cell: Any, *, replayed: bool) -> None:
    """The calls' names, arguments and results show as text in the fold, as does the answer
    quoting them, and the model's text with the calls as Markdown, its math typeset; nothing ran
    or loaded, before or after the fold is opened."""
    output = cell.locator(OUTPUTS).first
    assert output.get_attribute("data-mime-type") == "text/html"
    fold = output.locator("details")
    summary = fold.locator("summary").inner_text()
    assert summary.startswith("Tools · 2 calls · fetch_page, <script>window.__pwned"), summary
    assert summary.endswith("stored results, not run again") == replayed, summary
    _check_fold_closed(fold, HOSTILE_RESULT)
    answer = output.locator("p", has_text="From the tools:")
    assert not answer.evaluate(_IN_FOLD)
    assert "From the tools: <img src=x onerror=" in answer.inner_text()
    assert 'there is no tool named "<script>window.' in answer.inner_text()

    fold.locator("summary").click()
    fold.locator("pre").first.wait_for(state="visible", timeout=UI_TIMEOUT)
    assert fold.locator("p", has_text="Docs:").count() == 2  # the families, in the fold
    fold.locator(".nbchat-math mjx-container").first.wait_for(state="visible")
    shown = "\n".join(fold.locator("pre").all_inner_texts())
    assert f"→ {HOSTILE_RESULT} about {HOSTILE_ARGUMENT}" in shown, shown
    assert f"{HOSTILE_NAME}({HOSTILE_RAW_ARGUMENTS})" in shown, shown
    assert 'fetch_page({"query": "<img src=x onerror=\\"window.__pwned' in shown, shown
    assert output.evaluate(_ACTIVE_NOW) == []
    _nothing_ran(browser)
    fetched = [url for url in browser.requests if url.split("?")[0].endswith("/x")]
    assert fetched == [], "the page fetched an image named in a tool call"


THINKING_ANSWER = """\
Because the Earth turns under **two bulges** of water: one facing the Moon, one on the far side.

- Each coast passes through both bulges in a day.
- So most coasts see two high tides, about 12 h 25 min apart."""
# The live view of a reasoning model: its thinking (dimmed, above) and the answer so far.
_LIVE_THINKING = """(cell) => {
    const view = cell.querySelector('.widget-output .jp-RenderedHTMLCommon');
    const widgets = [...cell.querySelectorAll('.widget-html')];
    const thought = widgets.find((el) => el.innerText.includes('Thinking ·'));
    const status = widgets[widgets.length - 1];
    if (!view?.innerText.trim() || !thought || !status?.innerText.includes('streaming')) {
        return null;
    }
    const body = [...thought.querySelectorAll('div')].find((el) => el.style.whiteSpace);
    return {
        thought: thought.innerText, answer: view.innerText,
        above: thought.getBoundingClientRect().bottom <= view.getBoundingClientRect().top,
        opacity: body ? Number(getComputedStyle(body).opacity) : 1,
    };
}"""


def test_thinking_folds_above_the_answer(browser: Browser, server: FakeOpenAI) -> None:
    page, lab = browser.page, browser.lab
    server.default_fault = Fault(text=THINKING_ANSWER, delay=0.04)
    question = "Why are there two tides a day?"
    sources = ["%load_ext nbchat", f"%%chat -m {THINKING_MODEL}\n{question}"]
    _write_notebook(lab.root / "thinking.ipynb", sources)
    cells = _open_notebook(browser, "thinking.ipynb", 2)
    ask = cells.nth(1)

    # Live: the thinking, dimmed, above the answer as it streams.
    _start_run_all(page, restart=False)
    live = page.wait_for_function(_LIVE_THINKING, arg=ask.element_handle()).json_value()
    assert f"The user asks: {question}" in live["thought"], live
    assert live["above"] and live["opacity"] < 1, live
    assert live["answer"].startswith("Because"), live
    _shoot(page, "thinking-live.png", ask, ask)  # the thinking apart, the answer streaming
    _wait_run_all(page)

    # Done: the thinking folded (collapsed) under its summary line, the answer below, outside.
    output = ask.locator(OUTPUTS).first
    fold = output.locator("details")
    assert fold.count() == 1
    summary = fold.locator("summary").inner_text()
    words = len(f"The user asks: {question}. I will answer briefly.".split())
    assert summary.startswith(f"Thinking · {words} words · "), summary
    _check_fold_closed(fold, "I will answer briefly")
    answer = output.locator("strong", has_text="two bulges")
    assert answer.is_visible() and not answer.evaluate(_IN_FOLD)
    assert output.locator("li").count() == 2
    assert "thinking)" in _footer(ask)  # the tokens spent thinking
    _deselect(page, ask)
    _shoot(page, "thinking.png", ask, ask)  # folded, as a reader first sees it

    fold.locator("summary").click()
    thought = fold.locator("p", has_text="I will answer briefly")
    thought.wait_for(state="visible", timeout=UI_TIMEOUT)
    assert thought.inner_text().startswith(f"The user asks: {question}")
    assert not answer.evaluate(_IN_FOLD)
    assert len(server.chat_requests) == 1


# The live thinking of a question holding the three families (the fake thinker repeats the
# question), once all of it has arrived and the answer streams.
_LIVE_HOSTILE_THINKING = f"""(cell) => {{
    const widgets = [...cell.querySelectorAll('.widget-html')];
    const thought = widgets.find((el) => el.innerText.includes('Thinking ·'));
    const status = widgets[widgets.length - 1];
    if (!thought?.innerText.includes('I will answer briefly')) return null;
    if (!status?.innerText.includes('streaming')) return null;
    const area = cell.querySelector('.jp-Cell-outputArea');
    return {{thought: thought.innerText, active: ({_OUTPUTS_ACTIVE_NOW})(area)}};
}}"""


def test_hostile_thinking_never_runs(browser: Browser, server: FakeOpenAI) -> None:
    page, lab = browser.page, browser.lab
    server.default_fault = Fault(text=THINKING_ANSWER, delay=0.03)
    question = f"What do these mean?\n\n{_families('thinking')}"
    notebook_path = lab.root / "hostile_thinking.ipynb"
    _write_notebook(notebook_path, ["%load_ext nbchat", f"%%chat -m {THINKING_MODEL}\n{question}"])
    cells = _open_notebook(browser, "hostile_thinking.ipynb", 2)
    page.evaluate(_WATCH_OUTPUTS)
    ask = cells.nth(1)

    # Live: the whole thinking shown, as text, while the answer streams; nothing ran.
    _start_run_all(page, restart=False)
    live = page.wait_for_function(_LIVE_HOSTILE_THINKING, arg=ask.element_handle()).json_value()
    assert "The user asks: What do these mean?" in live["thought"], live
    assert live["active"] == [], live
    _nothing_ran(browser)
    _wait_run_all(page)
    _check_thinking_harmless(browser, ask, replayed=False)
    assert len(server.chat_requests) == 1

    # Replayed from the saved file by a fresh kernel: the same, and no request.
    _save(page, notebook_path, records=1)
    _run_all(page, restart=True)
    _check_thinking_harmless(browser, ask, replayed=True)
    assert len(server.chat_requests) == 1


def _check_thinking_harmless(browser: Browser, cell: Any, *, replayed: bool) -> None:
    """The thinking is folded above the answer, its Markdown rendered in the kernel and its math
    typeset, before and after the fold is opened; nothing ran."""
    output = cell.locator(OUTPUTS).last  # below a note: "{x}: not defined, sent as written"
    assert output.get_attribute("data-mime-type") == "text/html"
    assert ("replayed" in _footer(cell)) == replayed
    fold = output.locator("details")
    assert fold.locator("summary").inner_text().startswith("Thinking · ")
    _check_fold_closed(fold, "I will answer briefly")
    _check_outputs_inert(cell)
    fold.locator("summary").click()
    fold.locator("p", has_text="I will answer briefly").wait_for(state="visible")
    assert fold.locator("p", has_text="Docs:").count() == 2  # the families, as Markdown
    fold.locator(".nbchat-math mjx-container").first.wait_for(state="visible")
    assert output.locator("strong", has_text="two bulges").is_visible()
    _check_outputs_inert(cell)
    _nothing_ran(browser)


FIGURE = """\
import matplotlib
matplotlib.use("Agg")
import matplotlib.pyplot as plt

fig, ax = plt.subplots(figsize=(6.4, 4.8))
ax.plot([0.6, 2.1, 3.9, 4.3, 3.1, 1.2, 0.5, 1.8, 3.7, 4.4, 3.3, 1.4], marker="o")
ax.set(title="Brest", xlabel="hour", ylabel="level (m)")
plt.close(fig)"""
FIGURE_ANSWER = "Two **high tides**, about twelve hours apart: a semi-diurnal tide."
# Every image of a cell's outputs: its natural size and where it is drawn, once each has loaded.
_IMAGES = """(cell) => [...cell.querySelectorAll('.jp-OutputArea-output img')].map((img) => ({
    loaded: img.complete, width: img.naturalWidth, height: img.naturalHeight,
    bottom: img.getBoundingClientRect().bottom,
}))"""


def test_a_figure_shows_its_thumbnail_and_replays(browser: Browser, server: FakeOpenAI) -> None:
    page, lab = browser.page, browser.lab
    server.default_fault = Fault(text=FIGURE_ANSWER)
    notebook_path = lab.root / "figure.ipynb"
    sources = ["%load_ext nbchat", FIGURE, "%%chat\nWhat does {fig} show?"]
    _write_notebook(notebook_path, sources)
    cells = _open_notebook(browser, "figure.ipynb", 3)
    ask = cells.nth(2)

    _run_all(page, restart=False)
    _check_thumbnail(ask, replayed=False)
    (request,) = server.chat_requests
    parts = request.body["messages"][-1]["content"]
    assert [part["type"] for part in parts].count("image_url") == 1, parts

    # Saved, then a fresh kernel runs every cell: the thumbnail again, and no request.
    _save(page, notebook_path, records=1)
    _run_all(page, restart=True)
    _check_thumbnail(ask, replayed=True)
    assert len(server.chat_requests) == 1


def _check_thumbnail(cell: Any, *, replayed: bool) -> None:
    """The figure's thumbnail (an image output, at most 160 px a side, drawn) above the answer."""
    outputs = cell.locator(OUTPUTS)
    assert outputs.count() == 2
    assert outputs.first.get_attribute("data-mime-type") == "image/png"
    answer = outputs.nth(1)
    assert answer.get_attribute("data-mime-type") == "text/html"
    assert "high tides" in answer.locator("strong").inner_text()
    assert ("replayed" in _footer(cell)) == replayed
    cell.page.wait_for_function(
        "(cell) => [...cell.querySelectorAll('img')].every((img) => img.complete)",
        arg=cell.element_handle(),
        timeout=UI_TIMEOUT,
    )
    (image,) = cell.evaluate(_IMAGES)
    assert image["loaded"] and 0 < image["width"] <= 160 and 0 < image["height"] <= 160, image
    top = answer.bounding_box()
    assert top is not None and image["bottom"] <= top["y"], (image, top)


# -- a rename is followed ------------------------------------------------------------------


def test_a_rename_in_jupyterlab_is_followed(browser: Browser, server: FakeOpenAI) -> None:
    page, lab = browser.page, browser.lab
    server.default_fault = Fault(text="Tides are the **rise and fall** of the sea.")
    browser.goto()
    page.locator(".jp-LauncherCard[data-category='Notebook']").first.click()
    _notebook_ready(page, 1)
    assert (lab.root / "Untitled.ipynb").exists()
    cells = page.locator(CELLS)
    cells.nth(0).locator(".jp-InputArea-editor").click()
    _type_and_run(page, "%load_ext nbchat")
    _type_and_run(page, "%%chat", "What are tides?")
    _wait_answer(page, cells.nth(1))

    # The first save of an untitled notebook asks for a name: JupyterLab renames the file, and
    # the server's session follows.
    page.keyboard.press("Control+s")
    dialog = page.locator(".jp-Dialog")
    dialog.locator("input:not([type=checkbox])").fill("tides.ipynb")
    dialog.locator(".jp-mod-accept").click()
    path = lab.root / "tides.ipynb"
    _saved(path, records=1)
    assert not (lab.root / "Untitled.ipynb").exists()
    _wait_session_path(lab, "tides.ipynb")

    cells.nth(2).locator(".jp-InputArea-editor").click()
    _type_and_run(page, "%%chat", "Why twice a day?")
    _wait_answer(page, cells.nth(2))
    _type_and_run(page, "%chat notebook")
    _wait_output(page, cells.nth(3))
    assert f"Notebook: {path} (from the Jupyter server's session)" in _outputs_text(page)
    assert "no such notebook" not in _outputs_text(page)
    asked = server.chat_requests
    assert len(asked) == 2 and len(asked[1].body["messages"]) == 3  # q1, its answer, q2

    # Saved, then a fresh kernel runs every cell: both answers replay from the renamed file.
    saved = _save(page, path, records=2)
    assert "no such notebook" not in saved
    _run_all(page, restart=True)
    assert "replayed" in _footer(cells.nth(1)) and "replayed" in _footer(cells.nth(2))
    assert f"Notebook: {path} (from the Jupyter server's session)" in _outputs_text(page)
    assert "no such notebook" not in _outputs_text(page)
    assert len(server.chat_requests) == 2


def _wait_session_path(lab: Lab, path: str) -> None:
    """Until the server's only session names ``path`` (JupyterLab tells it after a rename)."""
    deadline = time.monotonic() + SAVE_TIMEOUT
    while (paths := lab.session_paths()) != [path]:
        if time.monotonic() > deadline:
            pytest.fail(f"the server's sessions name {paths}, not [{path!r}]")
        time.sleep(0.1)


# -- a file without cell ids ---------------------------------------------------------------

OLD_TURNS = [
    ("What are tides?", "The rise and fall of the sea."),
    ("Why twice a day?", "Two bulges of water, one on each side of the Earth."),
    ("And spring tides?", "The biggest ones, at new and full moon."),
]


def _write_old_notebook(path: Path, base_url: str) -> None:
    """A nbformat 4.4 file (no cell ids, as older tools write) holding one thread's answers."""
    cells = [new_code_cell("%load_ext nbchat")]
    messages: list[dict[str, str]] = []
    for question, answer in OLD_TURNS:
        messages = [*messages, {"role": "user", "content": question}]
        record = make_record(question, answer, messages=messages, base_url=base_url)
        data, metadata = answer_bundle(record)
        output = new_output("display_data", data=data, metadata=metadata)
        cells.append(new_code_cell(f"%%chat\n{question}", outputs=[output]))
        messages = [*messages, {"role": "assistant", "content": answer}]
    notebook = new_notebook(cells=cells, metadata={"kernelspec": KERNELSPEC})
    notebook.nbformat_minor = 4
    for cell in notebook.cells:
        del cell["id"]
    nbformat.validate(notebook)
    path.write_text(json.dumps(notebook, indent=1))


def test_a_file_without_cell_ids_replays_every_cell(browser: Browser, server: FakeOpenAI) -> None:
    page, lab = browser.page, browser.lab
    path = lab.root / "old.ipynb"
    _write_old_notebook(path, server.base_url)
    before = path.read_bytes()
    cells = _open_notebook(browser, "old.ipynb", 4)
    # JupyterLab gives the cells ids the file does not have; nothing is saved before running.
    _run_all(page, restart=False)
    footers = [_footer(cells.nth(index)) for index in (1, 2, 3)]
    assert all("replayed" in footer for footer in footers), footers
    assert server.chat_requests == []
    assert "not reading stored answers" not in _outputs_text(page)
    assert path.read_bytes() == before, "the notebook was saved before it ran"
