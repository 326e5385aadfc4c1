"""``%%chat --map NAME --batch`` at the provider's limit: 50,000 items in a real kernel against
the fake server's batch API, each step against its target, in one run.

    python benchmarks/bench_provider_batch.py [--items 50000] [--words 20] [--json]

The fake server runs in this process (its threads compete with nothing measured: the kernel is
its own process) and records when each request arrived; the kernel's peak memory is read from
``/proc/PID/status`` (``VmHWM``, reset through ``/proc/PID/clear_refs`` before each step; the
increase over the memory the kernel held before the step is reported).

1. Submit: the cell builds one JSONL line per item and uploads it; then the cell's return time
   after the batch was created (target < 2 s), and a following cell while the batch runs.
2. Store: once the server says the batch completed, the poller downloads the output file,
   checks and stores the 50,000 answers and binds ``-o`` (targets: < 10 s, < 500 MB, for
   building+uploading and for storing).
3. Growth: the saved notebook's bytes beyond the answers' own text, per item (a few hundred).
4. Replay: a restarted kernel runs the cell again from the saved file, online: every item
   replayed (target < 2 s), and no request of any kind; and the engine alone (the notebook
   read, then every item's request, key, lookup and replay, and the record made again), in
   this process.

The exit status is 1 if an answer is wrong, a request is sent on replay, or a target is missed.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from _server import REPO_ROOT

sys.path.insert(0, str(REPO_ROOT / "tests"))
from nbchat.store.record import RECORD_MIME

from support.fake_openai import FakeOpenAI
from support.kernel_driver import Execution, Kernel, save_notebook

KEY = "sk-proj-" + "Zq7Lm2Xv9Pw4" * 4  # a key of a real key's length: redaction costs its due
CELL = "%%chat --map items --batch -o labels\nClassify the review, one word: {item}"
TARGETS = {
    "submit_s": 10.0,
    "submit_mb": 500.0,
    "return_s": 2.0,
    "store_s": 10.0,
    "store_mb": 500.0,
    "replay_s": 2.0,
}


def items_cell(count: int, words: int) -> str:
    filler = " ".join(["good"] * max(words - 4, 1))
    return f"items = [f'review {{i}}: {filler}' for i in range({count})]"


class Memory:
    """The kernel process's peak resident memory over one step, above where it started."""

    def __init__(self, pid: int | None) -> None:
        self.pid = pid
        self.start = 0

    def _field(self, name: str) -> int:
        for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
            if line.startswith(name + ":"):
                return int(line.split()[1]) * 1024
        raise LookupError(name)

    def reset(self) -> None:
        if self.pid is None:
            return
        Path(f"/proc/{self.pid}/clear_refs").write_text("5")  # VmHWM := VmRSS
        self.start = self._field("VmRSS")

    def peak_mb(self) -> float | None:
        return (self._field("VmHWM") - self.start) / 1e6 if self.pid is not None else None


def kernel_pid(kernel: Kernel) -> int | None:
    pid = getattr(kernel.manager.provisioner, "pid", None)
    return pid if isinstance(pid, int) and Path(f"/proc/{pid}/status").exists() else None


def slot(execution: Execution) -> dict[str, Any]:
    [output] = [o for o in execution.displays if "text/plain" in o.get("data", {})]
    return output["data"]


def arrived(server: FakeOpenAI, method: str, path: str, after: float = 0.0) -> float:
    return min(
        r.received
        for r in server.requests
        if r.method == method and r.path.startswith(path) and r.received >= after
    )


def submit(
    kernel: Kernel, server: FakeOpenAI, memory: Memory
) -> tuple[dict[str, float], Execution]:
    memory.reset()
    sent = time.monotonic()
    execution = kernel.run(CELL, cell_id="map", timeout=600, check=True)
    idle = time.monotonic()
    created = arrived(server, "POST", "/v1/batches")
    following = time.monotonic()
    kernel.run("x = 6 * 7", cell_id="next", check=True)
    following = time.monotonic() - following
    running = [b.status for b in server.batch_api.batches.values()] == ["in_progress"] or [
        b.status for b in server.batch_api.batches.values()
    ] == ["validating"]
    return {
        "submit_s": created - sent,
        "submit_mb": memory.peak_mb() or 0.0,
        "return_s": idle - created,
        "following_cell_s": following,
        "following_while_running": float(running),
    }, execution


def store(kernel: Kernel, server: FakeOpenAI, memory: Memory, execution: Execution) -> dict:
    finishing = time.monotonic()
    server.batch_api.finish()  # the server writes its output file now
    ended = time.monotonic()
    memory.reset()
    if not kernel.follow(lambda: RECORD_MIME in slot(execution), timeout=600):
        raise SystemExit("the batch's answers never reached the cell")
    stored = time.monotonic()
    # the first status request after the server's files were written (one that arrived while
    # they were being written waited for them)
    seen = max(arrived(server, "GET", "/v1/batches/", after=finishing), ended)
    return {"store_s": stored - seen, "store_mb": memory.peak_mb() or 0.0}


def growth(path: Path, execution: Execution, items: str, count: int) -> dict[str, float]:
    save_notebook(path, [("items", items, None), ("map", CELL, None)])
    empty = path.stat().st_size
    save_notebook(path, [("items", items, None), ("map", CELL, execution)])
    record = slot(execution)[RECORD_MIME]
    answers = sum(len(json.dumps(item["answer"])) - 2 for item in record["items"])
    fills = sum(len(json.dumps(item["fills"][0])) - 2 for item in record["items"])
    return {
        "notebook_mb": path.stat().st_size / 1e6,
        "bytes_per_item_besides_answer": (path.stat().st_size - empty - answers) / count,
        "answer_bytes_per_item": answers / count,
        "fill_bytes_per_item": fills / count,
    }


def replay(kernel: Kernel, server: FakeOpenAI, path: Path, items: str) -> dict[str, float]:
    kernel.restart()
    kernel.run(f"import os; os.environ['NBCHAT_NOTEBOOK'] = {str(path)!r}", check=True)
    kernel.run(items, cell_id="items", check=True)
    before = len(server.requests)
    start = time.monotonic()
    execution = kernel.run(CELL, cell_id="map", timeout=600, check=True)
    seconds = time.monotonic() - start
    line = slot(execution)["text/plain"].splitlines()[0]
    return {
        "replay_s": seconds,
        "replay_requests": len(server.requests) - before,
        "line": line,
        "engine_replay_s": engine_replay(path, server.base_url, items),
    }


def engine_replay(path: Path, base_url: str, items: str) -> float:
    """Seconds of CPU to read the notebook and replay every item (`map_items`), no kernel."""
    from nbchat.engine.map import MapJob, map_items
    from nbchat.engine.session import ChatSession
    from nbchat.engine.settings import Settings
    from nbchat.store.notebook import NotebookWatcher

    namespace: dict[str, Any] = {}
    exec(items, namespace)
    settings = Settings(base_url=base_url, api_key_env="", model="peer-small", offline=True)
    template = CELL.split("\n", 1)[1]
    start = time.process_time()
    job = MapJob(
        name="items",
        items=namespace["items"],
        cell=template,
        namespace={},
        settings=settings,
        cell_id="map",
    )
    outcome = map_items(job, ChatSession(), NotebookWatcher(path).get())
    seconds = time.process_time() - start
    if outcome.failures or outcome.summary.replayed != len(namespace["items"]):
        raise SystemExit("the engine did not replay every item")
    return seconds


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--items", type=int, default=50_000)
    parser.add_argument("--words", type=int, default=20, help="words per item")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    items = items_cell(args.items, args.words)
    server = FakeOpenAI(api_key=None).start()
    server.batch_api.hold = True
    results: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as folder:
        env = {
            "OPENAI_BASE_URL": server.base_url,
            "OPENAI_API_KEY": KEY,
            "NBCHAT_MODEL": "peer-small",
        }
        kernel = Kernel(Path(folder), env)
        try:
            kernel.run("%config ChatMagics.batch_poll_s = 0.2", check=True)
            kernel.run(items, cell_id="items", check=True)
            memory = Memory(kernel_pid(kernel))
            submitted, execution = submit(kernel, server, memory)
            results.update(submitted)
            results.update(store(kernel, server, memory, execution))
            check = kernel.run("print(len(labels), labels[-1])", check=True).stdout.strip()
            path = Path(folder) / "batch.ipynb"
            results.update(growth(path, execution, items, args.items))
            results.update(replay(kernel, server, path, items))
        finally:
            kernel.close()
            server.stop()
    last = f"Reply #1 to: Classify the review, one word: review {args.items - 1}:"
    right = check.startswith(f"{args.items} {last}") and results["replay_requests"] == 0
    missed = [name for name, target in TARGETS.items() if not results[name] < target]
    report(args, results, right, missed)
    if args.json:
        print(json.dumps({**results, "right": right, "missed": missed}))
    return 0 if right and not missed else 1


def report(args: argparse.Namespace, results: dict[str, Any], right: bool, missed: list) -> None:
    r = results
    print(f"--map --batch: {args.items:,} items of {args.words} words, in a real kernel")
    print(
        f"  build + upload the JSONL: {r['submit_s']:.2f} s (target < 10 s), "
        f"peak +{r['submit_mb']:.0f} MB (target < 500 MB)"
    )
    print(
        f"  cell returned {r['return_s']:.2f} s after the batch was created (target < 2 s); "
        f"a following cell took {r['following_cell_s'] * 1000:.0f} ms while it ran"
    )
    print(
        f"  store the answers: {r['store_s']:.2f} s (target < 10 s), "
        f"peak +{r['store_mb']:.0f} MB (target < 500 MB)"
    )
    print(
        f"  notebook: {r['notebook_mb']:.1f} MB; per item {r['answer_bytes_per_item']:.0f} "
        f"bytes of answer + {r['bytes_per_item_besides_answer']:.0f} bytes (of which "
        f"{r['fill_bytes_per_item']:.0f} the item's own text)"
    )
    print(
        f"  replay from the saved file, restarted kernel: {r['replay_s']:.2f} s "
        f"(target < 2 s), {r['replay_requests']} requests of any kind; the engine alone "
        f"(notebook read included) {r['engine_replay_s']:.2f} s of CPU"
    )
    print(f"  {r['line']}")
    print("answers: all right" if right else "answers: WRONG")
    if missed:
        print("missed: " + ", ".join(missed))


if __name__ == "__main__":
    sys.exit(main())
