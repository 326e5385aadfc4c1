"""``%%chat --map`` end to end (`nbchat.engine.map.run_map`: template, keys, lookups, the batch
engine, records) against its targets, in one run.

    python benchmarks/bench_map.py [--items 200] [--concurrency 8] [--latency 0.3]
                                   [--replays 1000] [--words 60] [--json]

1. Requests: ``--items`` items at ``--concurrency`` against the loopback fake server (its own
   process) answering each after ``--latency`` seconds. Ideal: items x latency / concurrency;
   target: at most 1.3x.
2. Replay: ``--replays`` items answered (``--words`` words each) and stored in a saved notebook,
   then a fresh session reads that notebook and runs the cell offline: every item replayed.
   Target: under 2 ms per item, the notebook's read included.
3. Growth: the batch record's bytes (as nbformat indents them) for answers of ``--words`` and
   of four times as many words, 200 items each: the bytes each byte of answer adds (target: at
   most 1.5) and the bytes each item adds besides its answer (the constant, reported).

Frontend messages (<= 40 + 30 per second) are checked in a kernel by tests/kernel/test_map.py.
The exit status is 1 if an answer is wrong or the record grows faster than its target.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import nbformat
from _server import fake_server

from nbchat.engine.map import MapJob, MapOutcome, map_items
from nbchat.engine.session import ChatSession
from nbchat.engine.settings import Settings
from nbchat.store.batch_record import read_stored
from nbchat.store.notebook import NotebookWatcher
from nbchat.store.record import RECORD_MIME

REQUEST_TARGET = 1.3
REPLAY_TARGET_MS = 2.0
GROWTH_TARGET = 1.5
TEMPLATE = "Classify the review, one word: {item}"


def settings_for(base_url: str, *, offline: bool = False) -> Settings:
    return Settings(
        base_url=base_url, api_key_env="", model="peer-small", stream=False, offline=offline
    )


def run(items: list[str], settings: Settings, session: ChatSession, notebook: Any) -> MapOutcome:
    """The cell's work, without its display: the values and the summary (with the record)."""
    job = MapJob(
        name="reviews",
        items=items,
        cell=TEMPLATE,
        namespace={},
        settings=settings,
        cell_id="map-cell",
    )
    return map_items(job, session, notebook)


def time_requests(args: argparse.Namespace) -> tuple[float, bool]:
    items = [f"review {i}" for i in range(args.items)]
    with fake_server(None, latency=args.latency) as base_url:
        settings = settings_for(base_url)
        session = ChatSession()
        run(["warm-up"], settings, session, None)
        start = time.perf_counter()
        values = run(items, settings, session, None).values
        elapsed = time.perf_counter() - start
    right = values == [f"Reply #1 to: {TEMPLATE.format(item=item)}" for item in items]
    return elapsed, right


def stored_notebook(args: argparse.Namespace, folder: Path) -> tuple[Path, dict[str, Any], str]:
    """A saved notebook whose --map cell holds ``--replays`` answered items."""
    items = [f"review number {i}" for i in range(args.replays)]
    with fake_server(args.words) as base_url:
        record = run(items, settings_for(base_url), ChatSession(), None).record
    assert record is not None
    path = folder / "batch.ipynb"
    nbformat.write(notebook_with(record), str(path))
    return path, record, base_url


def time_replay(path: Path, base_url: str, count: int) -> tuple[float, bool]:
    """Seconds per item to read the notebook and replay every item offline (fresh session)."""
    items = [f"review number {i}" for i in range(count)]
    start = time.perf_counter()
    notebook = NotebookWatcher(path).get()
    session = ChatSession()
    values = run(items, settings_for(base_url, offline=True), session, notebook).values
    per_item = (time.perf_counter() - start) / count
    return per_item, session.ledger.requests == 0 and all(v is not None for v in values)


def notebook_with(record: dict[str, Any]) -> nbformat.NotebookNode:
    """A notebook whose --map cell holds ``record``, as the frontend would save it."""
    notebook = nbformat.v4.new_notebook()
    cell = nbformat.v4.new_code_cell("%%chat --map reviews -o labels\n" + TEMPLATE)
    cell["id"] = "map-cell"
    cell["outputs"] = [
        nbformat.v4.new_output("display_data", data={"text/plain": "…", RECORD_MIME: record})
    ]
    notebook.cells.append(cell)
    return notebook


def record_size(record: dict[str, Any]) -> tuple[int, int]:
    """(bytes of the saved notebook holding the record, bytes of its answers' own text)."""
    answers = sum(len(item.answer.encode()) for item in read_stored(record, 2))
    return len(nbformat.writes(notebook_with(record)).encode()), answers


def growth(words: int, items: int = 200) -> tuple[float, float]:
    """(bytes the record adds per byte of answer, bytes it adds per item besides the answer),
    from two batches whose answers differ only in length."""
    sizes = []
    for length in (words, 4 * words):
        with fake_server(length) as base_url:
            batch = [f"review number {i}" for i in range(items)]
            record = run(batch, settings_for(base_url), ChatSession(), None).record
        assert record is not None
        sizes.append(record_size(record))
    (small, small_answers), (large, large_answers) = sizes
    slope = (large - small) / (large_answers - small_answers)
    return slope, (small - slope * small_answers) / items


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--items", type=int, default=200)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--latency", type=float, default=0.3)
    parser.add_argument("--replays", type=int, default=1000)
    parser.add_argument("--words", type=int, default=60, help="words per stored answer")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()

    elapsed, requests_right = time_requests(args)
    ideal = args.items * args.latency / args.concurrency
    with tempfile.TemporaryDirectory() as folder:
        path, _, base_url = stored_notebook(args, Path(folder))
        replays = [time_replay(path, base_url, args.replays) for _ in range(3)]
    replay_ms = statistics.median(seconds for seconds, _ in replays) * 1000
    slope, per_item = growth(args.words)
    right = requests_right and all(ok for _, ok in replays) and slope <= GROWTH_TARGET
    print(f"requests: {args.items} items, concurrency {args.concurrency}, {args.latency} s")
    print(f"  ideal {ideal:.2f} s, took {elapsed:.2f} s: {elapsed / ideal:.3f}x")
    print(f"  (target <= {REQUEST_TARGET}x)")
    print(f"replay: {args.replays} stored items, notebook read included, median of 3")
    print(f"  {replay_ms:.3f} ms/item (target < {REPLAY_TARGET_MS} ms)")
    print(f"growth: answers of {args.words} and {4 * args.words} words, 200 items each")
    print(f"  {slope:.2f} bytes per byte of answer (target <= {GROWTH_TARGET})")
    print(f"  plus {per_item:.0f} bytes per item")
    print("answers: all right" if right else "answers: WRONG")
    if args.json:
        results = {
            "request_ratio": elapsed / ideal,
            "replay_ms_per_item": replay_ms,
            "bytes_per_answer_byte": slope,
            "bytes_per_item_besides_answer": per_item,
            "right": right,
        }
        print(json.dumps(results))
    return 0 if right else 1


if __name__ == "__main__":
    sys.exit(main())
