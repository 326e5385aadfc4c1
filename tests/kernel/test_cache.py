"""The notebook is the cache: replay stored answers across runs, restarts and offline."""

from __future__ import annotations

import json
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError

from nbchat.store.record import RECORD_MIME

from support.env import TEST_KEY
from support.fake_openai import FakeOpenAI
from support.kernel_driver import WIDGET_MIME, Kernel, save_notebook


def write_notebook(path: Path, sources: list[str]) -> Path:
    notebook = nbformat.v4.new_notebook()
    notebook.cells = [nbformat.v4.new_markdown_cell("# Chat")]
    notebook.cells += [nbformat.v4.new_code_cell(source) for source in sources]
    nbformat.write(notebook, path)
    return path


def execute(path: Path, *, allow_errors: bool = False) -> nbformat.NotebookNode:
    """Run the notebook headless with nbclient (which sends no cell ids) and save it."""
    notebook = nbformat.read(path, as_version=4)
    client = NotebookClient(
        notebook,
        timeout=60,
        kernel_name="python3",
        allow_errors=allow_errors,
        resources={"metadata": {"path": path.parent}},
    )
    try:
        client.execute()
    finally:
        nbformat.write(notebook, path)
    return notebook


def answers(notebook: nbformat.NotebookNode) -> list[str]:
    found = []
    for cell in notebook.cells:
        for output in cell.get("outputs", []):
            record = output.get("data", {}).get(RECORD_MIME)
            if record and record["kind"] == "turn":
                found.append(record["messages"][1]["content"])
    return found


HTTP_LOADED = "import sys\nprint('httpx' in sys.modules)"
CHAT_NOTEBOOK = [
    "%load_ext nbchat",
    "%%chat --system\nYou are terse.",
    "%%chat\nWhat is a tide?",
    "%%chat --thread other\nName a moon.",
    "%%chat\nAnd a spring tide?",
]


@pytest.fixture
def notebook_path(chat_env: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = write_notebook(chat_env / "chat.ipynb", CHAT_NOTEBOOK)
    monkeypatch.setenv("NBCHAT_NOTEBOOK", str(path))
    return path


def test_a_notebook_executed_twice_spends_nothing_the_second_time(notebook_path, server):
    first = execute(notebook_path)
    assert len(server.chat_requests) == 3
    assert server.chat_requests[-1].body["messages"][0] == {
        "role": "system",
        "content": "You are terse.",
    }

    second = execute(notebook_path)
    assert len(server.chat_requests) == 3, "every answer was replayed from the saved file"
    assert (
        answers(second)
        == answers(first)
        == [
            "Reply #1 to: What is a tide?",
            "Reply #1 to: Name a moon.",
            "Reply #2 to: And a spring tide?",
        ]
    )
    footer = second.cells[3].outputs[-1]["data"]["text/html"]
    assert "replayed" in footer
    saved = notebook_path.read_text()
    assert TEST_KEY not in saved and WIDGET_MIME not in saved


def test_offline_replay_needs_no_server_and_a_miss_says_what_changed(
    chat_env, monkeypatch, tmp_path
):
    with FakeOpenAI(api_key=TEST_KEY) as private:
        monkeypatch.setenv("OPENAI_BASE_URL", private.base_url)
        path = write_notebook(tmp_path / "offline.ipynb", [*CHAT_NOTEBOOK, HTTP_LOADED])
        monkeypatch.setenv("NBCHAT_NOTEBOOK", str(path))
        execute(path)
        assert len(private.chat_requests) == 3
    # The server is gone; offline mode replays everything and never connects.
    monkeypatch.setenv("NBCHAT_OFFLINE", "1")
    replayed = execute(path)
    assert len(answers(replayed)) == 3
    assert replayed.cells[-1].outputs[0]["text"] == "False\n", "a replay loads no HTTP client"

    edited = nbformat.read(path, as_version=4)
    edited.cells[5].source = "%%chat\nAnd a neap tide?"
    nbformat.write(edited, path)
    with pytest.raises(CellExecutionError) as failure:
        execute(path)
    message = str(failure.value)
    assert "OfflineMiss" in message and "'default'" in message and "the prompt" in message
    assert "Traceback" not in message.split("OfflineMiss", 1)[1]


def run_cells(kernel: Kernel, cells: list[tuple[str, str]]) -> dict[str, object]:
    return {cell_id: kernel.run(source, cell_id=cell_id, check=True) for cell_id, source in cells}


THREAD_CELLS = [
    ("c1", "%%chat\nFirst"),
    ("c2", "%%chat\nSecond"),
    ("c3", "%%chat --thread b\nOther thread"),
    ("c4", "%%chat\nFourth"),
]


def save(path: Path, cells: list[tuple[str, str]], runs: dict) -> None:
    save_notebook(path, [(cell_id, source, runs.get(cell_id)) for cell_id, source in cells])


def test_after_a_restart_a_middle_cell_gets_its_context_back_and_hits(kernel, server, chat_env):
    path = chat_env / "restart.ipynb"
    kernel.run(f"import os; os.environ['NBCHAT_NOTEBOOK'] = {str(path)!r}", check=True)
    runs = run_cells(kernel, THREAD_CELLS)
    save(path, THREAD_CELLS, runs)
    assert len(server.chat_requests) == 4

    kernel.restart()
    kernel.run(f"import os; os.environ['NBCHAT_NOTEBOOK'] = {str(path)!r}", check=True)
    again = kernel.run("%%chat\nFourth", cell_id="c4", check=True)
    assert len(server.chat_requests) == 4, "rebuilt from the saved answers above, so a hit"
    (record,) = again.data(RECORD_MIME)
    assert record["messages"][1]["content"] == "Reply #3 to: Fourth"
    history = kernel.run("%chat history", cell_id="h", check=True).data("text/plain")[0]
    assert "Reply #2 to: Second" in history
    headless = kernel.run("%chat history", check=True).data("text/plain")[0]
    assert "Second" not in headless, "without cell ids the file's turns cannot be placed"


def test_editing_a_cell_re_asks_it_and_the_cells_below_in_its_thread(kernel, server, chat_env):
    path = chat_env / "edit.ipynb"
    kernel.run(f"import os; os.environ['NBCHAT_NOTEBOOK'] = {str(path)!r}", check=True)
    save(path, THREAD_CELLS, run_cells(kernel, THREAD_CELLS))
    kernel.run("%reload_ext nbchat", check=True)  # a fresh session: only the file remains
    server.reset()

    edited = [*THREAD_CELLS]
    edited[1] = ("c2", "%%chat\nSecond, edited")
    run_cells(kernel, edited)
    asked = [r.body["messages"][-1]["content"] for r in server.chat_requests]
    assert asked == ["Second, edited", "Fourth"]
    assert server.chat_requests[-1].body["messages"][2]["content"] == "Second, edited"


def test_refresh_asks_again_and_no_cache_neither_reads_nor_writes(kernel, server, chat_env):
    kernel.run("%%chat\nHello", cell_id="c1", check=True)
    kernel.run("%%chat\nHello", cell_id="c1", check=True)
    assert len(server.chat_requests) == 1
    refreshed = kernel.run("%%chat --refresh\nHello", cell_id="c1", check=True)
    assert len(server.chat_requests) == 2
    assert refreshed.data(RECORD_MIME)

    uncached = kernel.run("%%chat --no-cache\nHello", cell_id="c1", check=True)
    assert len(server.chat_requests) == 3
    assert uncached.data(RECORD_MIME) == []
    assert "not stored" in uncached.data("text/html")[0]


def test_an_answer_given_without_the_cache_is_never_replayed(kernel, server, chat_env):
    kernel.run("%%chat --no-cache\nFresh question", cell_id="c1", check=True)
    again = kernel.run("%%chat\nFresh question", cell_id="c1", check=True)
    assert len(server.chat_requests) == 2, "the --no-cache answer was not stored: asked again"
    assert again.data(RECORD_MIME)


def test_a_corrupt_notebook_file_warns_once_and_the_cell_still_works(kernel, server, chat_env):
    path = chat_env / "corrupt.ipynb"
    path.write_text("{ this is not json")
    kernel.run(f"import os; os.environ['NBCHAT_NOTEBOOK'] = {str(path)!r}", check=True)
    priced = {"peer-small": {"input": 1, "output": 1}}  # no note of an unknown price
    kernel.run(f"%config ChatMagics.prices = {priced!r}", check=True)
    first = kernel.run("%%chat\nHello", cell_id="c1", check=True)
    assert "not a valid notebook" in first.notes and len(first.notes.splitlines()) == 1
    assert first.stderr == "", "a quiet note, not an error"
    second = kernel.run("%%chat\nAgain", cell_id="c2", check=True)
    assert second.notes == ""
    assert len(server.chat_requests) == 2


def test_a_tampered_record_is_never_replayed(kernel, server, chat_env):
    path = chat_env / "tampered.ipynb"
    kernel.run(f"import os; os.environ['NBCHAT_NOTEBOOK'] = {str(path)!r}", check=True)
    cells = [("c1", "%%chat\nHello")]
    save(path, cells, run_cells(kernel, cells))
    data = json.loads(path.read_text())
    (output,) = [o for o in data["cells"][0]["outputs"] if RECORD_MIME in o.get("data", {})]
    record = output["data"][RECORD_MIME]
    record["messages"][1]["content"] = "Injected"
    record["messages"][0]["content"] = "Something else"
    path.write_text(json.dumps(data))

    kernel.run("%reload_ext nbchat", check=True)
    server.reset()
    # The record still carries the key of "Hello": only the consistency check stops it.
    again = kernel.run("%%chat\nHello", cell_id="c1", check=True)
    assert len(server.chat_requests) == 1
    assert "Injected" not in again.data("text/html")[0]


def test_the_file_is_parsed_once_while_it_does_not_change(kernel, server, chat_env):
    path = chat_env / "parsed.ipynb"
    cells = [(f"c{i}", f"%%chat\nQuestion {i}") for i in range(8)]
    kernel.run(f"import os; os.environ['NBCHAT_NOTEBOOK'] = {str(path)!r}", check=True)
    save(path, cells, run_cells(kernel, cells))
    kernel.run("%reload_ext nbchat", check=True)
    server.reset()
    run_cells(kernel, cells)
    assert server.chat_requests == []
    status = kernel.run("%chat notebook", check=True).stdout
    assert "8 stored answers" in status and "parsed 1 time " in status


def test_the_notebook_is_found_through_jpy_session_name(kernel, server, chat_env):
    path = chat_env / "session.ipynb"
    cells = [("c1", "%%chat\nHello")]
    save(path, cells, run_cells(kernel, cells))
    kernel.run("%reload_ext nbchat", check=True)
    kernel.run(f"import os; os.environ['JPY_SESSION_NAME'] = {str(path)!r}", check=True)
    server.reset()
    hit = kernel.run("%%chat\nHello", cell_id="c1", check=True)
    assert server.chat_requests == [] and "replayed" in hit.data("text/html")[0]


def test_offline_replays_refresh_cells_and_explains_no_cache(kernel, server, chat_env):
    kernel.run("%%chat\nHello", cell_id="c1", check=True)
    kernel.run("import os; os.environ['NBCHAT_OFFLINE'] = '1'", check=True)
    replayed = kernel.run("%%chat --refresh\nHello", cell_id="c1", check=True)
    assert "replayed" in replayed.data("text/html")[0]
    failed = kernel.run("%%chat --no-cache\nHello", cell_id="c1")
    assert failed.status == "error" and "--no-cache" in failed.error["evalue"]
    assert len(server.chat_requests) == 1


def without_ids(path: Path, ids: list[str | None] | None = None) -> None:
    """Rewrite the saved file as an older nbformat writes it (no cell ids), or with ``ids``
    exactly as given, repeats included (the raw JSON the kernel reads)."""
    data = json.loads(path.read_text())
    data["nbformat_minor"] = 4 if ids is None else 5
    for index, cell in enumerate(data["cells"]):
        cell.pop("id", None)
        if ids is not None and ids[index] is not None:
            cell["id"] = ids[index]
    path.write_text(json.dumps(data))


ID_LESS = [("c1", "%%chat\nq1"), ("c2", "%%chat\nq2"), ("c3", "%%chat\nq3")]


@pytest.mark.parametrize(
    ("ids", "sent"),
    [(None, ["lab-1", "lab-2", "lab-3"]), (["x", "x", "z"], ["x", "lab-2", "z"])],
    ids=["no-ids", "repeated-ids"],
)
def test_a_file_without_usable_ids_replays_every_cell_with_its_own_context(
    kernel, server, chat_env, ids, sent
):
    path = chat_env / "old.ipynb"
    kernel.run(f"import os; os.environ['NBCHAT_NOTEBOOK'] = {str(path)!r}", check=True)
    save(path, ID_LESS, run_cells(kernel, ID_LESS))
    without_ids(path, ids)
    kernel.run("%reload_ext nbchat", check=True)
    server.reset()
    # JupyterLab invents ids for cells the file gives none (or repeats): the kernel is told
    # ids the file does not have. Each cell must still get exactly the context it had.
    for cell_id, (_, source) in zip(sent, ID_LESS, strict=True):
        hit = kernel.run(source, cell_id=cell_id, check=True)
        assert "replayed" in hit.data("text/html")[0], (cell_id, source)
    assert server.chat_requests == []


def test_offline_without_the_file_says_the_file_is_unknown(kernel, server, chat_env):
    kernel.run("import os; os.environ['NBCHAT_OFFLINE'] = '1'", check=True)
    failed = kernel.run("%%chat\nHello", cell_id="c1")
    assert failed.status == "error"
    message = failed.error["evalue"]
    assert "notebook file is unknown" in message and "NBCHAT_NOTEBOOK" in message
    assert "nothing is stored" not in message


def test_an_offline_miss_compares_only_with_the_cells_own_answer(
    notebook_path, server, monkeypatch
):
    execute(notebook_path)
    notebook = nbformat.read(notebook_path, as_version=4)
    notebook.cells.append(nbformat.v4.new_code_cell("%%chat\nA question never asked"))
    nbformat.write(notebook, notebook_path)
    monkeypatch.setenv("NBCHAT_OFFLINE", "1")
    with pytest.raises(CellExecutionError) as failure:
        execute(notebook_path)
    message = str(failure.value).split("OfflineMiss", 1)[1].splitlines()[0]
    assert "nothing is stored for it" in message and "changed" not in message


def test_a_headless_run_without_the_file_says_so_and_saves_no_widget_state(chat_env, server):
    path = write_notebook(chat_env / "headless.ipynb", CHAT_NOTEBOOK)
    executed = execute(path)
    notes = [
        o["data"]["text/plain"]
        for o in executed.cells[3].outputs
        if o.get("metadata", {}).get("nbchat", {}).get("note")
    ]
    assert any("headless" in note and "nbchat run" in note for note in notes)
    assert "widgets" not in executed.metadata
    assert WIDGET_MIME not in path.read_text()


ELSEWHERE_CELLS = [("c1", "%%chat\nFirst"), ("c2", "%%chat\nSecond"), ("c3", "%%chat\nThird")]


def test_offline_a_cell_replays_its_own_answer_asked_of_another_endpoint_and_says_so(
    kernel, server, chat_env
):
    # Recorded with $OPENAI_BASE_URL set (its query holds a secret), replayed without it (CI).
    path = chat_env / "elsewhere.ipynb"
    recorded_at = f"{server.base_url}?api-version=2024-10-21&sig=sekrit-sig"
    kernel.run(
        f"import os; os.environ.update(OPENAI_BASE_URL={recorded_at!r}, "
        f"NBCHAT_NOTEBOOK={str(path)!r})",
        check=True,
    )
    save(path, ELSEWHERE_CELLS, run_cells(kernel, ELSEWHERE_CELLS))
    assert len(server.chat_requests) == 3
    kernel.run("%reload_ext nbchat", check=True)  # a fresh session: only the file remains
    kernel.run(
        "import os; del os.environ['OPENAI_BASE_URL'], os.environ['OPENAI_API_KEY']; "
        "os.environ['NBCHAT_OFFLINE'] = '1'",
        check=True,
    )
    shown_at = f"{server.base_url}?api-version=***&sig=***"
    for cell_id, source in ELSEWHERE_CELLS:
        replay = kernel.run(source, cell_id=cell_id, check=True)
        assert "replayed" in replay.data("text/html")[0]
        (record,) = replay.data(RECORD_MIME)
        assert record["request"]["base_url"] == shown_at, "the answer says where it was asked"
        assert replay.notes.strip().splitlines()[-1] == (
            f"nbchat: offline: replayed this cell's answer as stored from {shown_at} "
            "(the endpoint now is https://api.openai.com/v1)."
        )
        assert "sekrit" not in json.dumps(replay.outputs)
    assert len(server.chat_requests) == 3, "offline: nothing sent"

    edited = kernel.run("%%chat\nThird, edited", cell_id="c3")
    assert edited.status == "error"
    assert edited.error["evalue"] == (
        "Offline (NBCHAT_OFFLINE): no stored answer for this cell in thread 'default': the "
        f"prompt, the endpoint ({shown_at} -> https://api.openai.com/v1) changed since the "
        "answer was stored. Run it online to ask again; to ask the endpoint it was stored "
        "from, set $OPENAI_BASE_URL (or the profile, or ChatMagics.base_url) as it was."
    )
