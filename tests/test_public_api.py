"""The public interface (`nbchat.__all__`) and what each entry point loads.

What is public is what ``nbchat`` exports; everything in its subpackages is internal. Which
modules an entry point imports is behaviour too: ``%load_ext nbchat`` runs in every kernel that
has it, and ``nbchat show`` should not pay a second of imports it never uses. Each is checked in
a fresh interpreter.
"""

from __future__ import annotations

import builtins
import dataclasses
import inspect
import json
import subprocess
import sys

import pytest

import nbchat
from nbchat import errors

from support.nbfactory import make_chat_notebook, make_record
from support.paths import ROOT


def isort_order(name: str) -> tuple[int, str]:
    """Constants, then classes, then the rest (ruff's RUF022 order)."""
    kind = 0 if name.isupper() else 1 if name[:1].isupper() else 2
    return kind, name


def test_all_is_sorted_and_every_name_resolves():
    assert nbchat.__all__ == sorted(nbchat.__all__, key=isort_order)
    assert len(set(nbchat.__all__)) == len(nbchat.__all__)
    for name in nbchat.__all__:
        assert getattr(nbchat, name) is not None, name
    assert set(nbchat.__all__) <= set(dir(nbchat))


def test_every_public_error_is_exported():
    defined = {
        name
        for name, value in vars(errors).items()
        if inspect.isclass(value)
        and issubclass(value, BaseException)
        and value.__module__ == errors.__name__
        and not name.startswith("_")
    }
    assert defined, "the error tree is where it should be"
    assert defined <= set(nbchat.__all__), defined - set(nbchat.__all__)
    for name in defined:
        assert getattr(nbchat, name) is getattr(errors, name)


def test_star_import_shadows_no_builtin_and_map_stays_reachable():
    assert not set(nbchat.__all__) & set(dir(builtins))
    assert "map" not in nbchat.__all__
    assert callable(nbchat.map) and nbchat.map.__module__ == "nbchat.ipython.api"
    namespace: dict[str, object] = {}
    exec("from nbchat import *", namespace)
    assert namespace["ask"] is nbchat.ask
    assert "map" not in namespace


def test_an_unknown_name_is_an_attribute_error():
    with pytest.raises(AttributeError, match="no attribute 'chat_session'"):
        nbchat.chat_session  # noqa: B018 (the access is the test)


@pytest.mark.parametrize("name", ["Answer", "Record", "ClientConfig", "Cost"])
def test_public_dataclasses_are_keyword_only(name):
    cls = getattr(nbchat, name)
    assert dataclasses.is_dataclass(cls)
    assert all(field.kw_only for field in dataclasses.fields(cls) if field.init), name
    with pytest.raises(TypeError):
        cls("positional")


# -- what each entry point loads, in a fresh interpreter --------------------------------------

LOADED = """
import json, sys
before = set(sys.modules)
{action}
loaded = set(sys.modules) - before
print(json.dumps(sorted(loaded)))
"""
HEAVY = {"httpx", "IPython", "nbformat", "ipywidgets", "markdown_it", "nh3", "pydantic"}


def loaded_by(action: str) -> set[str]:
    """The top-level packages of the modules ``action`` imported in a fresh interpreter."""
    code = LOADED.format(action=action)
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True
    )
    return set(json.loads(done.stdout.strip().splitlines()[-1]))


def test_import_nbchat_loads_the_errors_and_the_version_only():
    ours = {name for name in loaded_by("import nbchat") if name.startswith("nbchat")}
    assert ours == {"nbchat", "nbchat._version", "nbchat.errors"}


def test_load_ext_loads_neither_the_client_nor_the_renderer():
    action = (
        "from IPython.core.interactiveshell import InteractiveShell\n"
        "shell = InteractiveShell.instance()\n"
        "before = set(sys.modules)\n"
        "shell.run_line_magic('load_ext', 'nbchat')\n"
        "assert 'chat' in shell.magics_manager.magics['cell']"
    )
    roots = {name.split(".")[0] for name in loaded_by(action)}
    assert not roots & (HEAVY - {"IPython"}), roots & HEAVY


@pytest.mark.parametrize("command", [["--version"], ["--help"], ["show", "NOTEBOOK"]])
def test_the_command_loads_no_kernel_client_or_nbformat(tmp_path, command):
    record = make_record("Why is the sea salty?", "Rivers carry salts.")
    notebook = make_chat_notebook(tmp_path / "chat.ipynb", [("%%chat\nWhy?", record)])
    argv = [str(notebook) if part == "NOTEBOOK" else part for part in command]
    action = (
        "from nbchat.cli.main import main\n"
        "import contextlib, io\n"
        f"with contextlib.redirect_stdout(io.StringIO()) as out:\n"
        f"    status = main({argv!r})\n"
        "assert status == 0, (status, out.getvalue())"
    )
    roots = {name.split(".")[0] for name in loaded_by(action)}
    assert not roots & HEAVY, roots & HEAVY


def test_python_dash_m_nbchat_is_the_command():
    done = subprocess.run(
        [sys.executable, "-m", "nbchat", "--version"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        check=True,
    )
    assert done.stdout == f"nbchat {nbchat.__version__}\n"
