"""Build the demo notebooks: record their answers from the scripted demo endpoint, then prove
that they replay offline.

    python demo_notebooks/build_demos.py             # every notebook
    python demo_notebooks/build_demos.py cache       # only cache.ipynb

It serves the fake OpenAI server of the test suite on 127.0.0.1:8765, the `demo` profile's URL,
with the canned answers of ``demo_answers.json`` (the same as ``python tests/support/fake_openai.py
--port 8765 --any-key --responses demo_notebooks/demo_answers.json --models
nbchat-demo,nbchat-demo-thinker``). An answer there is a text, or, for a thinking model or a
tool turn, a step ``{"reasoning": ..., "text": ..., "tool_calls": [[name, {args}], ...]}`` or a
list of steps, one per request of the turn (``tests/support/fake_shapes.py`` describes the
format). A prompt holding an image is keyed with ``[image]`` in its place.
For each notebook of ``specs.py`` it then

1. writes the notebook (nbformat 4.5, stable cell ids),
2. executes it with nbclient in this folder, ``NBCHAT_NOTEBOOK`` set to the file, and saves it,
3. runs ``nbchat run --offline`` on the saved file: every answer must be replayed and no
   request may reach the server.

Every prompt sent must have a canned answer. The kernel sees none of your nbchat, OpenAI or
provider settings, nor your IPython profile.
"""

from __future__ import annotations

import argparse
import errno
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import nbformat
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tests"))  # the fake server lives with the tests

from nbchat.engine.profiles import BUILTIN_PROFILES  # noqa: E402
from nbchat.store.record import RECORD_MIME  # noqa: E402

from specs import NOTEBOOKS, Cell  # noqa: E402

from support.fake_openai import DEMO_THINKING_MODEL, FakeOpenAI, canned_key  # noqa: E402

ANSWERS = HERE / "demo_answers.json"
MODELS = ("nbchat-demo", DEMO_THINKING_MODEL)
PORT = 8765
KERNELSPEC = {"name": "python3", "display_name": "Python 3 (ipykernel)", "language": "python"}
# Settings of the person building that must not reach the demo kernels.
_PRIVATE = ("OPENAI_", "NBCHAT_", "DASHSCOPE_", "DEEPSEEK_", "VLLM_", "JPY_SESSION_NAME")
_SUMMARY = re.compile(r"^(?P<name>[\w.-]+\.ipynb): \d+ cells? run, .*errors?$", re.MULTILINE)


class BuildError(Exception):
    """A demo could not be built as it should be; the message says why."""


def new_notebook(name: str, cells: list[Cell]) -> nbformat.NotebookNode:
    """The notebook of a spec, with cell ids that stay the same from one build to the next."""
    notebook = nbformat.v4.new_notebook()
    notebook.metadata["kernelspec"] = dict(KERNELSPEC)
    for number, cell in enumerate(cells, start=1):
        v4 = nbformat.v4
        make = v4.new_markdown_cell if cell.kind == "markdown" else v4.new_code_cell
        notebook.cells.append(make(cell.source, id=f"{name.replace('_', '-')}-{number:02d}"))
    return notebook


def kernel_env(notebook: Path, ipython_dir: str) -> dict[str, str]:
    """This process's environment minus private settings, plus what the demo kernel needs."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(_PRIVATE)}
    env.update({"NBCHAT_NOTEBOOK": str(notebook), "IPYTHONDIR": ipython_dir})
    return env


def record(name: str, cells: list[Cell], env: dict[str, str]) -> nbformat.NotebookNode:
    """Write the notebook, execute it against the demo server and save it with its outputs."""
    path = HERE / f"{name}.ipynb"
    notebook = new_notebook(name, cells)
    nbformat.write(notebook, path)
    save_first = {index for index, cell in enumerate(cells) if cell.save_first}

    def before(cell: Any, cell_index: int, **_: Any) -> None:
        if cell_index in save_first:  # the cell reads the saved file, as after Ctrl-S
            nbformat.write(notebook, path)

    client = NotebookClient(
        notebook,
        timeout=60,
        kernel_name="python3",
        resources={"metadata": {"path": str(HERE)}},
        store_widget_state=False,
        record_timing=False,
        on_cell_execute=before,
    )
    try:
        client.execute(env=env, stderr=subprocess.DEVNULL)
    except CellExecutionError as exc:
        raise BuildError(f"{name}.ipynb: a cell failed while recording:\n{exc}") from None
    nbformat.validate(notebook)
    nbformat.write(notebook, path)
    return notebook


def check_recorded(name: str, notebook: nbformat.NotebookNode) -> None:
    """The saved notebook holds answers, and no live widget or anything like a key."""
    text = json.dumps(notebook)
    if RECORD_MIME not in text:
        raise BuildError(f"{name}.ipynb: no stored answer")
    if "widget-view+json" in text or "widgets" in notebook.metadata:
        raise BuildError(f"{name}.ipynb: a widget was saved")
    if re.search(r"sk-[A-Za-z0-9]{8,}", text):
        raise BuildError(f"{name}.ipynb: something that looks like an API key was saved")


def replay_offline(name: str, cells: list[Cell], env: dict[str, str]) -> str:
    """``nbchat run --offline`` on the saved notebook; returns its summary line."""
    offline = {**env, "NBCHAT_OFFLINE": "1"}
    offline.pop("NBCHAT_NOTEBOOK")  # `nbchat run` sets it itself
    command = [sys.executable, "-m", "nbchat.cli.main", "run", "--offline", f"{name}.ipynb"]
    done = subprocess.run(command, cwd=HERE, env=offline, capture_output=True, text=True)
    summary = done.stdout.strip()
    if done.returncode != 0 or ", 0 asked)" not in summary:
        raise BuildError(f"{name}.ipynb does not replay offline:\n{done.stderr}{summary}")
    for cell in cells:  # a summary quoted in the notebook's text must be the real one
        for quoted in _SUMMARY.finditer(cell.source):
            if quoted["name"] == f"{name}.ipynb" and quoted[0] != summary:
                raise BuildError(f"{name}.ipynb quotes {quoted[0]!r}; the real line: {summary!r}")
    return summary


def batches_since(server: FakeOpenAI, before: set[str]) -> list[list[dict[str, Any]]]:
    """The input lines of each provider batch made at the server since ``before`` (its ids)."""
    made = server.batch_api.batches
    return [made[batch_id].lines for batch_id in made if batch_id not in before]


def check_requests(server: FakeOpenAI, since: int, batches_before: set[str]) -> None:
    """Every prompt sent since request ``since``, and every line of a provider batch made
    since, had a canned answer."""
    bodies = [request.body or {} for request in server.chat_requests[since:]]
    bodies += [line["body"] for batch in batches_since(server, batches_before) for line in batch]
    missing = []
    for body in bodies:
        prompt = canned_key(body)
        if prompt not in server.responses and prompt not in missing:
            missing.append(prompt)
    if missing:
        listed = "\n".join(f"  {prompt!r}" for prompt in missing)
        raise BuildError(f"no canned answer in {ANSWERS.name} for:\n{listed}")


def start_server() -> FakeOpenAI:
    """The demo endpoint on the `demo` profile's port, or a clear error if the port is taken."""
    assert BUILTIN_PROFILES["demo"]["base_url"] == f"http://127.0.0.1:{PORT}/v1"
    responses = json.loads(ANSWERS.read_text(encoding="utf-8"))
    server = FakeOpenAI(api_key=None, models=MODELS, port=PORT, responses=responses)
    try:
        return server.start()
    except OSError as exc:
        if exc.errno == errno.EADDRINUSE:
            raise BuildError(
                f"127.0.0.1:{PORT} is busy: the demo endpoint needs that port (the `demo` "
                "profile's URL). Stop whatever listens there and run this again."
            ) from None
        raise


def build(name: str, server: FakeOpenAI, ipython_dir: str) -> None:
    """Record one notebook, then replay it offline; print what happened."""
    cells = NOTEBOOKS[name]
    env = kernel_env(HERE / f"{name}.ipynb", ipython_dir)
    started, sent = time.perf_counter(), len(server.chat_requests)
    batches_before = set(server.batch_api.batches)
    notebook = record(name, cells, env)
    check_requests(server, sent, batches_before)
    check_recorded(name, notebook)
    asked = len(server.chat_requests) - sent
    batch_calls = len(server.batch_requests)
    summary = replay_offline(name, cells, env)
    if len(server.chat_requests) != sent + asked or len(server.batch_requests) != batch_calls:
        raise BuildError(f"{name}.ipynb: the offline run sent a request")
    seconds = time.perf_counter() - started
    requests = "1 request" if asked == 1 else f"{asked} requests"  # a refused one counts too
    made = batches_since(server, batches_before)
    if made:  # a provider batch's lines are answered without a chat request
        kind = "provider batch" if len(made) == 1 else "provider batches"
        requests += f" and {len(made)} {kind} ({sum(len(batch) for batch in made)} lines)"
    print(f"{name}.ipynb: recorded with {requests}; offline: {summary} ({seconds:.1f} s)")


def main(argv: list[str] | None = None) -> int:
    """Build the notebooks named (default: all); exit 1 with one message on failure."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("names", nargs="*", metavar="NAME", help=", ".join(NOTEBOOKS))
    args = parser.parse_args(argv)
    unknown = sorted(set(args.names) - set(NOTEBOOKS))
    if unknown:
        parser.error(f"no such demo: {', '.join(unknown)} (known: {', '.join(NOTEBOOKS)})")
    try:
        server = start_server()
    except BuildError as exc:
        print(f"build_demos: {exc}", file=sys.stderr)
        return 1
    try:
        with tempfile.TemporaryDirectory(prefix="nbchat-demo-ipython-") as ipython_dir:
            for name in args.names or NOTEBOOKS:
                build(name, server, ipython_dir)
    except BuildError as exc:
        print(f"build_demos: {exc}", file=sys.stderr)
        return 1
    finally:
        server.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
