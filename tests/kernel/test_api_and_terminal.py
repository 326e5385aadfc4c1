"""nbchat.ask in a real kernel, and %%chat in terminal IPython (no widgets, no cell ids)."""

from __future__ import annotations

import os
import subprocess
import sys

from support.env import TEST_KEY
from support.fake_openai import Fault
from support.html_check import visible_text
from support.kernel_driver import save_notebook


def test_ask_loops_over_prompts_and_replays(kernel, server):
    code = (
        "import nbchat\n"
        "answers = [nbchat.ask(q) for q in ['one', 'two', 'one']]\n"
        "print([a.text for a in answers], [a.replayed for a in answers])"
    )
    printed = kernel.run(code, check=True).stdout
    assert printed.strip() == (
        "['Reply #1 to: one', 'Reply #1 to: two', 'Reply #1 to: one'] [False, False, True]"
    )
    assert len(server.chat_requests) == 2
    assert all(len(r.body["messages"]) == 1 for r in server.chat_requests), "no context"


def test_ask_with_a_thread_continues_the_cells_and_passes_options(kernel, server):
    kernel.run("%%chat\nFirst", cell_id="c1", check=True)
    kernel.run("import nbchat; a = nbchat.ask('Next', thread='default', seed=3)", check=True)
    body = server.chat_requests[-1].body
    assert [m["content"] for m in body["messages"]] == ["First", "Reply #1 to: First", "Next"]
    assert body["seed"] == 3
    shown = kernel.run("a", check=True)
    assert visible_text(shown.data("text/html")[0]).startswith("Reply #2 to: Next")


def test_terminal_ipython_prints_tokens_as_they_come(chat_env, server):
    script = (
        "get_ipython().run_line_magic('load_ext', 'nbchat')\n"
        "get_ipython().run_cell_magic('chat', '', 'Hello terminal')\n"
        "get_ipython().run_cell_magic('chat', '', 'Again')\n"
    )
    (chat_env / "script.ipy").write_text(script)
    env = {
        **os.environ,
        "OPENAI_BASE_URL": server.base_url,
        "OPENAI_API_KEY": TEST_KEY,
        "NBCHAT_MODEL": "peer-small",
    }
    done = subprocess.run(
        [sys.executable, "-m", "IPython", "--no-banner", "--quick", "script.ipy"],
        cwd=chat_env,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert "Reply #1 to: Hello terminal\n[peer-small" in done.stdout
    assert "Reply #2 to: Again" in done.stdout
    assert "notebook file is unknown" in done.stderr
    assert TEST_KEY not in done.stdout + done.stderr


def test_terminal_ipython_never_prints_an_echoed_key(chat_env, server):
    cut = len(TEST_KEY) // 2
    server.script(Fault(pieces=["Your key: ", TEST_KEY[:cut], TEST_KEY[cut:], " ok"], delay=0.05))
    (chat_env / "echo.ipy").write_text(
        "get_ipython().run_line_magic('load_ext', 'nbchat')\n"
        "get_ipython().run_cell_magic('chat', '', 'Echo')\n"
    )
    env = {**os.environ, "OPENAI_BASE_URL": server.base_url, "OPENAI_API_KEY": TEST_KEY}
    done = subprocess.run(
        [sys.executable, "-m", "IPython", "--no-banner", "--quick", "echo.ipy"],
        cwd=chat_env,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert "Your key: *** ok" in done.stdout
    for piece in (TEST_KEY[:cut], TEST_KEY[cut:]):
        assert piece not in done.stdout + done.stderr


def test_a_thread_ask_shown_in_its_cell_replays_after_a_restart(kernel, server, chat_env):
    # The answer an ask displays is saved in its cell; after a restart that saved answer must not
    # become its own context (it sits in the ask's cell, after the cells above).
    path = chat_env / "ask.ipynb"
    kernel.run(f"import os; os.environ['NBCHAT_NOTEBOOK'] = {str(path)!r}", check=True)
    cells = [
        ("c1", "%%chat --thread t\nQ1"),
        ("c2", "import nbchat\nnbchat.ask('Sum up', thread='t')"),
        ("c3", "%%chat --thread t\nQ3"),
    ]
    runs = {cell_id: kernel.run(source, cell_id=cell_id, check=True) for cell_id, source in cells}
    sent = [[m["content"] for m in r.body["messages"]] for r in server.chat_requests]
    assert sent[1] == ["Q1", "Reply #1 to: Q1", "Sum up"]
    assert sent[2][-3:] == ["Sum up", "Reply #2 to: Sum up", "Q3"], "an ask is a turn of its cell"
    save_notebook(path, [(cell_id, source, runs[cell_id]) for cell_id, source in cells])

    kernel.restart_offline(path)
    server.reset()
    for cell_id, source in cells:
        kernel.run(source, cell_id=cell_id, check=True)
        kernel.run(source, cell_id=cell_id, check=True)  # running a cell again replaces its turns
    assert server.chat_requests == []


def test_a_shown_answer_stores_no_record_with_caching_off(kernel, server):
    kernel.run("%config ChatMagics.cache = False", check=True)
    shown = kernel.run("import nbchat\nnbchat.ask('Hello')", cell_id="c1", check=True)
    (markdown,) = shown.data("text/html")
    assert "not stored (--no-cache)" in markdown
    assert not any(
        mime.startswith("application/vnd.nbchat")
        for o in shown.outputs
        for mime in o.get("data", {})
    )


def test_ask_speaks_of_its_own_arguments_never_of_flags(kernel, server):
    """A profile without a model: the cell is told about -m, `ask` about model=."""
    profiles = {"bare": {"base_url": server.base_url, "api_key_env": ""}}
    kernel.run("import os; os.environ.pop('NBCHAT_MODEL', None)", check=True)
    kernel.run(f"%config ChatMagics.profiles = {profiles!r}", check=True)
    cell = kernel.run("%%chat -p bare\nHi", cell_id="c1")
    assert cell.status == "error" and "add -m MODEL to the cell" in cell.error["evalue"]
    code = kernel.run("import nbchat\nnbchat.ask('Hi', profile='bare')", cell_id="c2")
    assert code.status == "error" and "pass model=..." in code.error["evalue"]
    assert "-m MODEL" not in code.error["evalue"]
    rounds = kernel.run("nbchat.ask('Hi', max_tool_rounds=0)", cell_id="c3")
    assert "max_tool_rounds must be at least 1" in rounds.error["evalue"]
    assert server.chat_requests == []
