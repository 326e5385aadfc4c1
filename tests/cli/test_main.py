"""The ``nbchat`` command as a whole: help, usage errors and exit codes, unreadable and odd
notebooks, Ctrl-C, a terminal that cannot show a character, and the real command."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from nbchat._text import display_width
from nbchat.cli import main as cli
from nbchat.cli import read
from nbchat.cli.help import ExitCode
from nbchat.store.record import RECORD_MIME

from support.command import assert_one_line_error, run
from support.nbfactory import edit_json, make_chat_notebook, make_record, stored_record
from support.paths import ROOT

# -- help and usage --------------------------------------------------------------------------------


def test_help_documents_commands_and_exit_codes(capsys):
    code, out, _ = run(capsys, "--help")
    assert code == 0
    for command in ("show", "export", "stats", "verify", "strip"):
        assert command in out
    assert "exit status:" in out
    for code in ExitCode:
        assert f"\n  {code.value:<3d}  " in out
    assert "1    verify found problems" in out
    assert (cli.__doc__ or "").count("Exit status") == 1


@pytest.mark.parametrize("command", ["show", "export", "stats", "verify", "strip"])
def test_every_command_has_help_with_an_example(capsys, command):
    code, out, _ = run(capsys, command, "--help")
    assert code == 0
    assert f"example:\n  nbchat {command}" in out


@pytest.mark.parametrize("columns", ["200", "80"])
@pytest.mark.parametrize(
    "command", [[], ["show"], ["export"], ["stats"], ["verify"], ["strip"], ["upgrade"], ["run"]]
)
def test_help_fits_80_columns_whatever_the_terminal(capsys, monkeypatch, command, columns):
    monkeypatch.setenv("COLUMNS", columns)
    code, out, _ = run(capsys, *command, "--help")
    assert code == 0
    assert max(display_width(line) for line in out.splitlines()) <= 80
    if command == ["run"]:  # the epilog's prose is wrapped, its summary line kept whole
        assert "\n  NOTEBOOK: N cells run, A answers (R replayed, S asked), E errors\n" in out
        assert "never saved when a cell fails. Then prints:\n\n  NOTEBOOK: " in out


def test_usage_errors_exit_2(capsys):
    assert run(capsys)[0] == 2
    code, _, err = run(capsys, "export", "x.ipynb", "--format", "pdf")
    assert code == 2
    assert "invalid choice" in err


@pytest.mark.parametrize(("width", "reason"), [("10", "at least 20"), ("wide", "whole number")])
def test_a_width_too_small_or_not_a_number_is_a_usage_error(capsys, chat, width, reason):
    code, out, err = run(capsys, "show", chat, "--width", width)
    assert (code, out) == (2, "")
    assert reason in err and "Traceback" not in err


# -- bad input -------------------------------------------------------------------------------------


@pytest.mark.parametrize("command", ["show", "export", "stats", "verify", "strip"])
def test_missing_notebook_exits_2(capsys, tmp_path, command):
    code, out, err = run(capsys, command, tmp_path / "nope.ipynb")
    assert (code, out) == (2, "")
    assert_one_line_error(err, "nope.ipynb")


@pytest.mark.parametrize("command", ["show", "export", "stats", "verify", "strip"])
def test_corrupt_notebook_exits_2(capsys, tmp_path, command):
    path = tmp_path / "broken.ipynb"
    path.write_text('{"cells": [', encoding="utf-8")
    code, out, err = run(capsys, command, path)
    assert (code, out) == (2, "")
    assert_one_line_error(err, f"nbchat: {path}: not a valid notebook (")
    assert path.read_text(encoding="utf-8") == '{"cells": ['


def odd_notebook(path: Path, edit) -> Path:
    """A notebook with one answer cell, edited into a shape nbformat still reads."""
    record = make_record("What is 2+2?", "4")
    make_chat_notebook(path, [("%%chat\nWhat is 2+2?", record), ("x = 1", None)])
    edit_json(path, edit)
    return path


ODD_SHAPES = {
    "source a number": lambda data: data["cells"][1].update(source=5),
    "stream text a number": lambda data: data["cells"][2]["outputs"].append(
        {"output_type": "stream", "name": "stdout", "text": 5}
    ),
    "record a string, nbchat marker a number": lambda data: data["cells"][1]["outputs"].append(
        {"output_type": "display_data", "data": {RECORD_MIME: "x"}, "metadata": {"nbchat": 5}}
    ),
    "nbchat marker a list": lambda data: data["cells"][1]["outputs"][0].update(
        metadata={"nbchat": [1]}
    ),
    "text as a list of lines": lambda data: stored_data(data, 2).update({"text/plain": ["4", ""]}),
    "a kind 100,000 characters long": lambda data: stored_record(data, 2).update(kind="k" * 10**5),
    "a thread with controls": lambda data: stored_record(data, 2).update(thread="\x1b[2J\n"),
}


def stored_data(data: dict, cell: int) -> dict:
    return data["cells"][cell - 1]["outputs"][0]["data"]


@pytest.mark.parametrize(
    "command", ["show", "stats", "export", "verify", "strip", "strip --keep-text"]
)
@pytest.mark.parametrize("shape", ODD_SHAPES)
def test_odd_but_readable_notebooks_never_traceback(capsys, tmp_path, command, shape):
    path = odd_notebook(tmp_path / "odd.ipynb", ODD_SHAPES[shape])
    code, out, err = run(capsys, *command.split(), path)
    assert code in (0, 1), err
    assert "Traceback" not in err and len(err.splitlines()) <= 1
    assert max((len(line) for line in out.splitlines()), default=0) < 1000
    assert "\x1b" not in out


def test_output_metadata_that_is_not_an_object_never_tracebacks(capsys, tmp_path):
    path = odd_notebook(
        tmp_path / "odd.ipynb", lambda data: data["cells"][1]["outputs"][0].update(metadata="x")
    )
    for command in ("show", "verify", "strip"):
        code, _, err = run(capsys, command, path)
        assert code in (0, 1) and "Traceback" not in err


def test_a_long_unknown_kind_is_clipped(capsys, tmp_path):
    path = odd_notebook(tmp_path / "odd.ipynb", ODD_SHAPES["a kind 100,000 characters long"])
    code, out, _ = run(capsys, "verify", path)
    assert code == 1
    assert out.startswith(f"{path}: cell 2: malformed record: unknown record kind 'kkkk")
    assert out.endswith("…'\n")


def test_ctrl_c_is_one_line_and_exit_130(capsys, chat, monkeypatch):
    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(read, "read_notebook_text", interrupted)
    code, out, err = run(capsys, "verify", chat)
    assert (code, out, err) == (ExitCode.INTERRUPTED, "", "nbchat: interrupted\n")


def test_a_terminal_that_cannot_show_a_character_gets_a_question_mark(tmp_path):
    record = make_record("Emoji please", "Here: 🙂 and 中文")
    path = make_chat_notebook(tmp_path / "emoji.ipynb", [("%%chat\nEmoji please", record)])
    env = dict(os.environ, PYTHONIOENCODING="ascii", COLUMNS="100")
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    command = [sys.executable, "-m", "nbchat.cli.main", "show", str(path)]
    result = subprocess.run(command, capture_output=True, text=True, env=env, timeout=60)
    assert (result.returncode, result.stderr) == (0, "")
    assert "Here: ? and ??" in result.stdout


# -- the real command ------------------------------------------------------------------------------


def test_the_real_command(chat, tmp_path):
    """One process only: each one pays nbformat's slow import (about 1.5 s)."""
    broken = tmp_path / "broken.ipynb"
    broken.write_text("not json at all", encoding="utf-8")
    env = dict(os.environ, PYTHONIOENCODING="utf-8")
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    command = [sys.executable, "-m", "nbchat.cli.main", "verify", str(chat), str(broken)]
    result = subprocess.run(command, capture_output=True, text=True, env=env, timeout=60)
    assert result.returncode == 2  # the unreadable file wins over a clean one
    assert result.stdout == f"ok: 5 records in {chat}\n"
    assert_one_line_error(result.stderr, str(broken), "not a valid notebook")
