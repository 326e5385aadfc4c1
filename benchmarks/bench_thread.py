"""A long thread: bytes on disk and replay cost per turn, 40 turns against 160.

    python benchmarks/bench_thread.py [--short 40] [--long 160] [--rounds 3] [--json]

For each length, a notebook holding one thread of that many ``%%chat`` turns (a 20-word question,
a 150-word answer) is answered once from the loopback fake server and saved (nbclient, as
``nbchat run`` does). Then, alternating, it is executed offline (every answer replayed from the
file) and so is a notebook of as many trivial cells, for the kernel's own cost of a cell. Each
cell's time is the kernel's, from nbclient's timing metadata (input received to reply sent): the
median over cells and rounds, so the clients' and the machine's noise stay out.

Reported, per length: the file's bytes per turn, against the turn's own text (question and
answer) and against what schema 1 (nbchat 0.1, which stored each request whole) would have
stored; and a replayed turn's cost beyond a trivial cell. Targets: bytes per turn and replay cost
per turn flat in the thread's length (160 against 40 turns at most 1.15x and 1.3x).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
from datetime import datetime
from pathlib import Path
from typing import Any

import nbformat
from _server import REPO_ROOT
from bench_replay import baseline_notebook, execute

sys.path.insert(0, str(REPO_ROOT / "tests"))
from nbchat.store.chain import rebuild
from nbchat.store.notebook import read_records

from support.fake_openai import FakeOpenAI, Fault

BYTES_TARGET, REPLAY_TARGET = 1.15, 1.3
WORDS = [
    "tide",
    "moon",
    "ocean",
    "gravity",
    "bulge",
    "coast",
    "basin",
    "wave",
    "current",
    "shore",
    "sun",
    "orbit",
]


def answer_text(words: int = 150) -> str:
    return " ".join(WORDS[i % len(WORDS)] for i in range(words)) + "."


def thread_notebook(path: Path, turns: int) -> None:
    notebook = nbformat.v4.new_notebook()
    notebook.cells.append(nbformat.v4.new_code_cell("%load_ext nbchat"))
    for i in range(turns):
        question = f"Question {i}: " + " ".join(WORDS[(i + k) % len(WORDS)] for k in range(18))
        notebook.cells.append(nbformat.v4.new_code_cell(f"%%chat\n{question}?"))
    nbformat.write(notebook, path)


def schema1_size(record: Any, by_key: dict[str, Any]) -> int:
    """The JSON size of the record schema 1 would have stored for this turn."""
    sent = rebuild(record, by_key.get).messages
    request = record.request
    v1 = {
        "schema": 1,
        "kind": "answer",
        "key": "v1:" + "0" * 64,
        "prompt": record.prompt,
        "request": {"base_url": request.base_url, "model": request.model, "messages": sent},
        "response": record.completion(),
        "timing": record.timing,
        "stored_at": record.stored_at,
    }
    return len(json.dumps(v1, indent=1))


def sizes(path: Path, turns: int) -> dict[str, float]:
    """Bytes per turn on disk, the turn's own text, and schema 1's bytes per turn."""
    total = path.stat().st_size
    stored = read_records(json.loads(path.read_text()), path)
    records = [record for _, record in stored.records()]
    assert len(records) == turns, (len(records), turns)
    own = sum(len(r.prompt) + len(r.answer) for r in records)
    v2_records = sum(len(json.dumps(r.to_json(), indent=1)) for r in records)
    v1_records = sum(schema1_size(r, stored.by_key) for r in records)
    return {
        "bytes_per_turn": total / turns,
        "own_text_per_turn": own / turns,
        "schema1_bytes_per_turn": (total - v2_records + v1_records) / turns,
    }


def cell_times(notebook: nbformat.NotebookNode) -> list[float]:
    """Each cell's time in the kernel (ms), but the first (``%load_ext``)."""
    times = []
    for cell in notebook.cells[1:]:
        timing = cell.metadata["execution"]
        start, end = timing["iopub.execute_input"], timing["shell.execute_reply"]
        times.append((_moment(end) - _moment(start)) * 1000)
    return times


def _moment(stamp: str) -> float:
    return datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp()


def measure(workdir: Path, turns: int, rounds: int, server: FakeOpenAI) -> dict[str, float]:
    chat, base = workdir / f"thread{turns}.ipynb", workdir / f"trivial{turns}.ipynb"
    thread_notebook(chat, turns)
    baseline_notebook(base, turns)
    env = {"OPENAI_BASE_URL": server.base_url, "NBCHAT_MODEL": "peer-small"}
    execute(chat, {**env, "NBCHAT_NOTEBOOK": str(chat)}, save=True)
    offline = {**env, "NBCHAT_NOTEBOOK": str(chat), "NBCHAT_OFFLINE": "1"}
    chat_times: list[float] = []
    base_times: list[float] = []
    for _ in range(rounds):
        chat_times += cell_times(execute(chat, offline, save=False, timing=True)[1])
        base_times += cell_times(execute(base, env, save=False, timing=True)[1])
    overhead = statistics.median(chat_times) - statistics.median(base_times)
    return {**sizes(chat, turns), "replay_ms_per_turn": overhead}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--short", type=int, default=40)
    parser.add_argument("--long", type=int, default=160)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--json", action="store_true", help="also print the results as JSON")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as workdir, FakeOpenAI(api_key=None) as server:
        server.default_fault = Fault(text=answer_text())
        results = {
            n: measure(Path(workdir), n, args.rounds, server) for n in (args.short, args.long)
        }
    short, long = results[args.short], results[args.long]
    for n, r in results.items():
        print(
            f"{n:4d} turns: {r['bytes_per_turn']:8,.0f} bytes/turn on disk "
            f"({r['bytes_per_turn'] / r['own_text_per_turn']:.1f}x the turn's own text; "
            f"schema 1: {r['schema1_bytes_per_turn']:,.0f}), "
            f"replay {r['replay_ms_per_turn']:.2f} ms/turn beyond a trivial cell"
        )
    size_ratio = long["bytes_per_turn"] / short["bytes_per_turn"]
    replay_ratio = long["replay_ms_per_turn"] / max(short["replay_ms_per_turn"], 1e-6)
    v1_ratio = long["schema1_bytes_per_turn"] / short["schema1_bytes_per_turn"]
    print(
        f"{args.long} vs {args.short} turns: bytes/turn {size_ratio:.2f}x (target <= "
        f"{BYTES_TARGET}x; schema 1: {v1_ratio:.2f}x), replay/turn {replay_ratio:.2f}x "
        f"(target <= {REPLAY_TARGET}x)"
    )
    if args.json:
        print(json.dumps({str(n): r for n, r in results.items()}, indent=2))


if __name__ == "__main__":
    main()
