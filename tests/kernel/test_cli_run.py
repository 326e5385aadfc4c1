"""``nbchat run`` with a kernel: a notebook executed headless against the loopback server,
then offline."""

from __future__ import annotations

import json
from pathlib import Path

import nbformat

from nbchat.cli.main import main
from nbchat.store.record import RECORD_MIME

from support.kernel_driver import WIDGET_MIME
from support.nbfactory import write_notebook

CHAT = ["%load_ext nbchat", "%%chat\nWhat is a tide?", "%%chat\nAnd a spring tide?"]


def run(capsys, *argv: str | Path) -> tuple[int, str, str]:
    code = main(["run", *(str(arg) for arg in argv)])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def answer_outputs(path: Path) -> list[dict]:
    data = json.loads(path.read_text())
    return [
        output
        for cell in data["cells"]
        for output in cell.get("outputs", [])
        if RECORD_MIME in output.get("data", {})
    ]


# -- with a kernel ---------------------------------------------------------------------------------


def test_a_first_run_asks_and_leaves_the_file_alone(capsys, chat_env, server):
    path = write_notebook(chat_env / "chat.ipynb", CHAT)
    before = path.read_bytes()
    code, out, err = run(capsys, "chat.ipynb")
    assert (code, err) == (0, "")
    assert out == "chat.ipynb: 3 cells run, 2 answers (0 replayed, 2 asked), 0 errors\n"
    assert len(server.chat_requests) == 2
    assert path.read_bytes() == before


def test_inplace_saves_and_an_offline_run_replays_everything(capsys, chat_env, server):
    path = write_notebook(chat_env / "chat.ipynb", CHAT)
    code, out, _ = run(capsys, path, "--inplace")
    assert code == 0 and out.endswith("(0 replayed, 2 asked), 0 errors; saved to " + f"{path}\n")
    assert len(answer_outputs(path)) == 2
    saved = path.read_text()
    assert WIDGET_MIME not in saved and "widget-state" not in saved
    asked = len(server.chat_requests)

    copy = chat_env / "replayed.ipynb"
    code, out, _ = run(capsys, path, "--offline", "-o", copy)
    assert code == 0
    assert out.startswith(f"{path}: 3 cells run, 2 answers (2 replayed, 0 asked), 0 errors")
    assert len(server.chat_requests) == asked, "offline: nothing was sent"
    assert path.read_text() == saved
    assert all(o["metadata"]["nbchat"]["replayed"] for o in answer_outputs(copy))


def test_offline_replays_a_notebook_recorded_with_openai_base_url_set_without_it(
    capsys, chat_env, server, monkeypatch
):
    path = write_notebook(chat_env / "chat.ipynb", CHAT)
    assert run(capsys, path, "--inplace")[0] == 0  # recorded with $OPENAI_BASE_URL set
    monkeypatch.delenv("OPENAI_BASE_URL")  # CI has neither the variable nor the key
    monkeypatch.delenv("OPENAI_API_KEY")
    copy = chat_env / "replayed.ipynb"
    code, out, err = run(capsys, path, "--offline", "-o", copy)
    assert (code, err) == (0, "")
    assert (
        out == f"{path}: 3 cells run, 2 answers (2 replayed, 0 asked), 0 errors; saved to {copy}\n"
    )
    assert len(server.chat_requests) == 2, "offline: nothing was sent"
    notes = [
        output["data"]["text/plain"]
        for cell in nbformat.read(copy, as_version=4).cells
        for output in cell.get("outputs", [])
        if output.get("metadata", {}).get("nbchat", {}).get("note")
        and "offline: replayed" in output["data"]["text/plain"]
    ]
    assert (
        notes
        == [
            f"nbchat: offline: replayed this cell's answer as stored from {server.base_url} "
            "(the endpoint now is https://api.openai.com/v1)."
        ]
        * 2
    )


def test_an_offline_miss_names_the_cell_and_saves_nothing(capsys, chat_env, server):
    path = write_notebook(chat_env / "chat.ipynb", CHAT)
    before = path.read_bytes()
    code, out, err = run(capsys, "chat.ipynb", "--offline", "--inplace")
    assert code == 1
    assert err == (
        "chat.ipynb: cell 3: OfflineMiss: Offline (NBCHAT_OFFLINE): no stored answer for this "
        "cell in thread 'default'; nothing is stored for it. Run it online once to store an "
        "answer.\n"
    )
    assert out == (
        "chat.ipynb: 2 cells run, 0 answers (0 replayed, 0 asked), 1 error; "
        "not saved (a cell failed)\n"
    )
    assert path.read_bytes() == before and server.chat_requests == []


def test_a_cell_tagged_raises_exception_may_fail(capsys, chat_env):
    sources = ["1 / 0", "undefined_name", "print('not reached')"]
    write_notebook(chat_env / "errors.ipynb", sources, tags={0: ["raises-exception"]})
    code, out, err = run(capsys, "errors.ipynb")
    assert code == 1
    assert err.splitlines() == [
        "errors.ipynb: cell 2: ZeroDivisionError: division by zero "
        "(expected: tagged raises-exception)",
        "errors.ipynb: cell 3: NameError: name 'undefined_name' is not defined",
    ]
    assert (
        out == "errors.ipynb: 2 cells run, 0 answers (0 replayed, 0 asked), 2 errors (1 expected)\n"
    )


def test_a_cell_that_takes_too_long_is_named(capsys, chat_env):
    write_notebook(chat_env / "slow.ipynb", ["import time\ntime.sleep(30)", "print('not reached')"])
    code, out, err = run(capsys, "slow.ipynb", "--timeout", "1")
    assert code == 1
    assert err == "slow.ipynb: cell 2: timed out after 1 s\n"
    assert out == "slow.ipynb: 1 cell run, 0 answers (0 replayed, 0 asked), 1 error\n"
