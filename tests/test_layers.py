"""The package's layers: every import goes down, never up or sideways, and third parties stay home.

Each module's imports are read with ``ast`` (deferred imports inside functions and
``TYPE_CHECKING`` blocks included) and checked against the rule the package docstrings state:

    0  nbchat.errors, nbchat._version and the private utilities nbchat._text, _json, _files, _gc
    1  nbchat.wire, nbchat.mcp
    2  nbchat.prompt, nbchat.schema, nbchat.store, nbchat.money
    3  nbchat.engine, nbchat.render
    4  nbchat.ipython, nbchat.cli
    5  nbchat (the lazy public interface) and nbchat.__main__

A module may import its own package and any package of a lower level; the CLI never imports the
kernel front end. No import cycle, deferred ones included; no module over 400 lines.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "nbchat"
LEVELS = {
    "errors": 0,
    "_version": 0,
    "_text": 0,
    "_json": 0,
    "_files": 0,
    "_gc": 0,
    "wire": 1,
    "mcp": 1,
    "prompt": 2,
    "schema": 2,
    "store": 2,
    "money": 2,
    "engine": 3,
    "render": 3,
    "ipython": 4,
    "cli": 4,
    "__init__": 5,
    "__main__": 5,
}
FORBIDDEN = {"cli": {"ipython"}}  # same level, but the command never needs a kernel
# Third-party packages and the only places that may import them.
HOMES = {
    "httpx": {"wire"},
    "mcp": {"mcp"},  # the MCP SDK, and what it brings
    "anyio": {"mcp"},
    "httpx2": {"mcp"},
    "IPython": {"ipython"},
    "traitlets": {"ipython"},
    "ipywidgets": {"ipython"},
    "nbformat": {"store", "cli"},
    "nbclient": {"cli"},
    "pydantic": {"schema"},
    "genai_prices": {"money"},
    "pandas": {"prompt"},
    "polars": {"prompt"},
    "numpy": {"prompt"},
    "matplotlib": {"prompt"},
    "PIL": {"prompt"},
    "markdown_it": {"render"},
    "mdit_py_plugins": {"render"},
    "nh3": {"render"},
    "pygments": {"render"},
}
MAX_LINES = 400


def modules() -> Iterator[tuple[str, Path]]:
    """(dotted name, path) of every module of the package."""
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        yield name, path


def imports(path: Path, name: str) -> Iterator[tuple[str, int]]:
    """Every module ``path`` imports (absolute names), with its line; relative imports made
    absolute against ``name``."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name, node.lineno
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            yield base, node.lineno
            for alias in node.names:  # `from nbchat.wire import client` imports a module too
                yield f"{base}.{alias.name}", node.lineno


def room(name: str) -> str:
    """The layer a module of nbchat belongs to: its subpackage, or itself at the top."""
    parts = name.split(".")
    if len(parts) == 1:
        return "__init__"
    return parts[1]


def violations(name: str, path: Path) -> list[str]:
    """What in this module breaks the layering rule."""
    found = []
    home = room(name)
    for target, line in imports(path, name):
        top = target.split(".")[0]
        if top == "nbchat":
            there = room(target)
            if there not in LEVELS:  # `from nbchat import x` of a lazy name: the top level
                there = "__init__"
            upward = LEVELS[there] > LEVELS[home]
            sideways = LEVELS[there] == LEVELS[home] and there != home
            if upward or sideways or there in FORBIDDEN.get(home, ()):
                found.append(f"{path.name}:{line} {name} imports {target} ({home} -> {there})")
        elif top in HOMES and home not in HOMES[top] and home not in ("__init__", "__main__"):
            found.append(f"{path.name}:{line} {name} imports {top} outside {sorted(HOMES[top])}")
    return found


def test_every_module_has_a_layer():
    assert {room(name) for name, _ in modules()} <= LEVELS.keys()


@pytest.mark.parametrize(("name", "path"), list(modules()), ids=lambda value: str(value))
def test_imports_go_down_and_third_parties_stay_home(name, path):
    assert violations(name, path) == []


def test_a_planted_upward_import_is_caught(tmp_path):
    planted = tmp_path / "settings.py"
    planted.write_text("def f():\n    from nbchat.ipython.magics import ChatMagics\n")
    assert violations("nbchat.engine.settings", planted) == [
        "settings.py:2 nbchat.engine.settings imports nbchat.ipython.magics (engine -> ipython)",
        "settings.py:2 nbchat.engine.settings imports nbchat.ipython.magics.ChatMagics "
        "(engine -> ipython)",
    ]
    sideways = tmp_path / "live.py"
    sideways.write_text("import httpx\nfrom nbchat.cli import main\n")
    assert violations("nbchat.ipython.live", sideways) == [
        "live.py:1 nbchat.ipython.live imports httpx outside ['wire']",
        "live.py:2 nbchat.ipython.live imports nbchat.cli (ipython -> cli)",
        "live.py:2 nbchat.ipython.live imports nbchat.cli.main (ipython -> cli)",
    ]


def test_no_import_cycle_deferred_imports_included():
    graph = {
        name: {t for t, _ in imports(path, name) if t in dict(modules())}
        for name, path in modules()
    }
    state: dict[str, int] = {}  # 1: on the path, 2: done

    def visit(node: str, trail: list[str]) -> list[str] | None:
        state[node] = 1
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:  # the cycle itself: from nxt back to nxt
                path = [*trail, node]
                return [*path[path.index(nxt) :], nxt]
            if nxt not in state and (cycle := visit(nxt, [*trail, node])):
                return cycle
        state[node] = 2
        return None

    for start in sorted(graph):
        if start not in state:
            assert visit(start, []) is None


def test_no_module_is_over_400_lines():
    long = {name: n for name, path in modules() if (n := len(path.read_text().splitlines())) > 400}
    assert long == {}


def test_no_function_is_over_50_lines():
    long = {}
    for name, path in modules():
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                size = node.end_lineno - node.lineno + 1 if node.end_lineno else 0
                if size > 50:
                    long[f"{name}.{node.name}"] = size
    assert long == {}
