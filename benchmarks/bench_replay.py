"""Re-executing a 300-cell chat notebook from its stored answers: per-cell overhead.

    python benchmarks/bench_replay.py [--cells 300] [--threads 3] [--rounds 3] [--json]

Generates a notebook of ``--cells`` ``%%chat`` cells spread over ``--threads`` threads, records
every answer once from the loopback fake server, then, alternating, executes headless with
nbclient (as CI or papermill would, no cell ids):

- the chat notebook with ``NBCHAT_OFFLINE=1`` (every answer replayed from the saved file), and
- a baseline of as many trivial cells (the kernel's own cost of a cell), and
- a baseline of as many cells displaying the very same outputs the chat cells replay (the
  kernel's own cost of a cell *and* of moving that output to the frontend).

Each record carries its request's full context, so outputs grow along a long thread; the second
baseline separates that transport from nbchat's own work (context, key, lookup, rendering).
It reports the per-cell overhead of a replayed ``%%chat`` cell beyond each baseline (target:
under 5 ms beyond the kernel's own cost) and how many times nbchat parsed the notebook file during
the whole run (target: once).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import nbformat
from _server import REPO_ROOT
from nbclient import NotebookClient

sys.path.insert(0, str(REPO_ROOT / "tests"))
from support.fake_openai import FakeOpenAI

TARGET_MS = 5.0


def chat_notebook(path: Path, cells: int, threads: int) -> None:
    notebook = nbformat.v4.new_notebook()
    notebook.cells.append(nbformat.v4.new_code_cell("%load_ext nbchat"))
    for i in range(cells):
        source = f"%%chat --thread t{i % threads}\nQuestion {i}: what follows from step {i}?"
        notebook.cells.append(nbformat.v4.new_code_cell(source))
    notebook.cells.append(nbformat.v4.new_code_cell("%chat notebook"))
    nbformat.write(notebook, path)


def baseline_notebook(path: Path, cells: int) -> None:
    notebook = nbformat.v4.new_notebook()
    notebook.cells.append(nbformat.v4.new_code_cell("%load_ext nbchat"))
    notebook.cells += [nbformat.v4.new_code_cell(f"_ = {i}") for i in range(cells)]
    nbformat.write(notebook, path)


def same_output_notebook(path: Path, recorded: Path) -> None:
    """Cells that display exactly the outputs the recorded chat cells hold."""
    bundles = [
        [(o["data"], o.get("metadata", {})) for o in cell.outputs if o.get("data")]
        for cell in nbformat.read(recorded, as_version=4).cells[1:-1]
    ]
    store = path.with_suffix(".json")
    store.write_text(json.dumps(bundles))
    notebook = nbformat.v4.new_notebook()
    setup = (
        f"import json\nfrom IPython.display import display\n_b = json.load(open({str(store)!r}))"
    )
    notebook.cells.append(nbformat.v4.new_code_cell(setup))
    notebook.cells += [
        nbformat.v4.new_code_cell(f"for _d, _m in _b[{i}]: display(_d, raw=True, metadata=_m)")
        for i in range(len(bundles))
    ]
    nbformat.write(notebook, path)


def execute(
    path: Path, env: dict[str, str], *, save: bool, timing: bool = False
) -> tuple[float, nbformat.NotebookNode]:
    notebook = nbformat.read(path, as_version=4)
    client = NotebookClient(
        notebook,
        timeout=600,
        kernel_name="python3",
        resources={"metadata": {"path": str(path.parent)}},
        record_timing=timing,
    )
    saved = dict(os.environ)
    os.environ.update(env)
    try:
        start = time.perf_counter()
        client.execute()
        elapsed = time.perf_counter() - start
    finally:
        os.environ.clear()
        os.environ.update(saved)
    if save:
        nbformat.write(notebook, path)
    return elapsed, notebook


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cells", type=int, default=300)
    parser.add_argument("--threads", type=int, default=3)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--json", action="store_true", help="also print the results as JSON")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as workdir, FakeOpenAI(api_key=None) as server:
        chat, base = Path(workdir) / "chat.ipynb", Path(workdir) / "baseline.ipynb"
        chat_notebook(chat, args.cells, args.threads)
        baseline_notebook(base, args.cells)
        env = {
            "OPENAI_BASE_URL": server.base_url,
            "NBCHAT_MODEL": "peer-small",
            "NBCHAT_NOTEBOOK": str(chat),
        }
        execute(chat, env, save=True)  # record every answer once
        recorded = len(server.chat_requests)
        same = Path(workdir) / "same_output.ipynb"
        same_output_notebook(same, chat)
        offline = {**env, "NBCHAT_OFFLINE": "1"}
        chat_times, base_times, same_times = [], [], []
        for _ in range(args.rounds):
            seconds, replayed = execute(chat, offline, save=False)
            chat_times.append(seconds)
            base_times.append(execute(base, env, save=False)[0])
            same_times.append(execute(same, env, save=False)[0])
        status = "".join(o.get("text", "") for o in replayed.cells[-1].outputs)
        size = chat.stat().st_size
    if recorded != args.cells or len(server.chat_requests) != recorded:
        raise SystemExit(f"expected {args.cells} requests once, got {len(server.chat_requests)}")

    chat_s = statistics.median(chat_times)
    overhead_ms = 1000 * (chat_s - statistics.median(base_times)) / args.cells
    logic_ms = 1000 * (chat_s - statistics.median(same_times)) / args.cells
    parses = int(status.split("parsed ")[1].split()[0])
    result = {
        "cells": args.cells,
        "notebook_bytes": size,
        "chat_run_median_s": chat_s,
        "baseline_run_median_s": statistics.median(base_times),
        "same_output_run_median_s": statistics.median(same_times),
        "overhead_ms_per_cell_vs_trivial_cells": overhead_ms,
        "overhead_ms_per_cell_vs_same_outputs": logic_ms,
        "file_parses": parses,
    }
    print(
        f"{args.cells} replayed %%chat cells in {args.threads} threads "
        f"(notebook {size / 1e6:.1f} MB), {args.rounds} alternating nbclient runs"
    )
    print(f"  chat notebook, offline  median {result['chat_run_median_s']:.2f} s")
    print(f"  trivial cells           median {result['baseline_run_median_s']:.2f} s")
    print(f"  same outputs, no nbchat median {result['same_output_run_median_s']:.2f} s")
    verdict = "PASS" if logic_ms < TARGET_MS else "MISS"
    print(
        f"  nbchat's own cost per replayed cell: {logic_ms:.2f} ms (target < {TARGET_MS} ms: "
        f"{verdict})"
    )
    print(f"  cost per cell beyond a trivial cell, output transport included: {overhead_ms:.2f} ms")
    print(f"  notebook parsed {parses} time(s) in the whole run: {status.strip()}")
    if args.json:
        print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
