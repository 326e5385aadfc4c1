"""Shared fixtures (an isolated environment, the loopback fake server, real kernels) and the
markers each folder sets: ``kernel/`` tests run real kernels, ``browser/`` tests drive JupyterLab in
Chromium, ``cli/`` tests run the ``nbchat`` command; every other test is a fast unit test."""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator
from pathlib import Path

import pytest

from support.env import ISOLATED, TEST_KEY, kernel_env
from support.fake_openai import FakeOpenAI
from support.kernel_driver import Kernel

TESTS = Path(__file__).resolve().parent
MARKED_FOLDERS = ("kernel", "browser", "cli")  # each folder's tests carry the marker of its name


def pytest_configure(config: pytest.Config) -> None:
    """Ctrl-C tests need Python's own SIGINT handler. A run started in the background (``nohup
    ... &``, some CI runners) inherits SIGINT ignored, and Python then installs none: a real
    or simulated Ctrl-C would not reach the code under test."""
    if signal.getsignal(signal.SIGINT) in (signal.SIG_IGN, signal.SIG_DFL):
        signal.signal(signal.SIGINT, signal.default_int_handler)


@pytest.hookimpl(tryfirst=True)  # before -m deselects by marker
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark each test by its folder: tests/kernel/... -> kernel, tests/browser/... -> browser.
    A test elsewhere that starts a kernel would slip into the fast subset: it is refused."""
    for item in items:
        if not item.path.is_relative_to(TESTS):
            continue
        folder = item.path.relative_to(TESTS).parts[0]
        if folder in MARKED_FOLDERS:
            item.add_marker(folder)
        elif "shared_kernel" in getattr(item, "fixturenames", ()):
            raise pytest.UsageError(f"{item.nodeid} runs a kernel: move it to tests/kernel/")


@pytest.fixture(autouse=True)
def isolated_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No test sees the developer's keys, endpoints or nbchat settings."""
    for name in list(os.environ):
        if name.startswith(ISOLATED):
            monkeypatch.delenv(name)
    monkeypatch.setenv("IPYTHONDIR", str(tmp_path / ".ipython"))


@pytest.fixture(scope="session")
def fake_server() -> Iterator[FakeOpenAI]:
    with FakeOpenAI(api_key=TEST_KEY) as server:
        yield server


@pytest.fixture
def server(fake_server: FakeOpenAI) -> Iterator[FakeOpenAI]:
    """The loopback server, with no faults and no recorded requests."""
    fake_server.reset()
    yield fake_server
    fake_server.reset()


@pytest.fixture
def chat_env(server: FakeOpenAI, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """Point nbchat (and kernels started from here) at the fake server; work in tmp_path."""
    monkeypatch.setenv("OPENAI_BASE_URL", server.base_url)
    monkeypatch.setenv("OPENAI_API_KEY", TEST_KEY)
    monkeypatch.setenv("NBCHAT_MODEL", "peer-small")
    monkeypatch.chdir(tmp_path)
    return tmp_path


# Run in the kernel before each test: a fresh nbchat, the test environment, no leftover config.
_RESET = """
import os
_isolated = ("NBCHAT_", "OPENAI_", "JPY_SESSION", "MODEL_PROXY_")
for _name in [n for n in os.environ if n.startswith(_isolated)]:
    del os.environ[_name]
os.environ.update({env!r})
os.chdir({cwd!r})
get_ipython().config.pop("ChatMagics", None)
get_ipython().run_line_magic("reload_ext", "nbchat")
get_ipython().__dict__.pop("_nbchat_batches_in_flight", None)  # an earlier test's, kept by it
"""


@pytest.fixture(scope="module")
def shared_kernel(
    fake_server: FakeOpenAI, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Kernel]:
    """One real kernel per test module (starting one takes seconds)."""
    started = Kernel(tmp_path_factory.mktemp("kernel"), kernel_env(fake_server))
    try:
        yield started
    finally:
        started.close()


@pytest.fixture
def kernel(shared_kernel: Kernel, chat_env: Path, server: FakeOpenAI) -> Kernel:
    """The module's kernel with nbchat freshly reloaded, working in this test's tmp_path."""
    reset = _RESET.format(env=kernel_env(server), cwd=str(chat_env))
    shared_kernel.run(reset, check=True)
    return shared_kernel
