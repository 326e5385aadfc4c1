"""What pricing costs: per answer in the kernel, and ``nbchat stats`` on a big notebook.

    python benchmarks/bench_money.py [--answers 1000] [--rounds 5] [--json]

- **Per answer**: the CPU time of pricing one stored answer (`engine.pricing.record_cost`, the
  call every cell makes for its footer and the session's ledger) with genai-prices at the
  provider the base URL names, with your price table, and for a model nobody prices; against
  the time of rendering the same answer's output bundle, which every cell pays anyway. Once
  per kernel, the first priced answer also imports genai-prices: that is measured apart.
  Target: under 0.2 ms per answer.
- **nbchat stats**: wall time of ``nbchat stats`` on a notebook of ``--answers`` answers (half
  priced by genai-prices, half by a table), side by side with ``nbchat show`` on the same file
  (reading and tabulating, no prices). Target: under 1 s for 1,000 answers.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _server import REPO_ROOT

sys.path.insert(0, str(REPO_ROOT / "tests"))
from nbchat.engine.pricing import record_cost
from nbchat.money.prices import PriceBook, price_table
from nbchat.render.bundles import answer_bundle

from support.nbfactory import make_chat_notebook, make_record

PER_ANSWER_TARGET_MS = 0.2
STATS_TARGET_S = 1.0
OPENAI = "https://api.openai.com/v1"
TABLE = {"house-model": {"input": 0.5, "output": 1.5}}


def records(count: int, first: int = 0) -> list:
    """Answers of three kinds, alternating: priced by genai-prices, by the table, not at all;
    each with usage of its own (a price is kept per distinct usage, model and minute)."""
    kinds = [("gpt-4.1-mini", OPENAI), ("house-model", OPENAI), ("nobodys-model", OPENAI)]
    made = []
    for number in range(first, first + count):
        model, url = kinds[number % 3]
        prompt = f"Question {number}: how high is the tide at station {number}?"
        answer = "About 4.2 m at spring tide."
        usage = (100 + number, 7 + number % 11)
        made.append(make_record(prompt, answer, model=model, base_url=url, usage=usage))
    return made


def per_answer(rounds: int) -> dict[str, float]:
    """Milliseconds of CPU per answer: pricing each kind, and rendering the bundle."""
    book = PriceBook(price_table(TABLE))
    start = time.process_time()
    record_cost(records(1)[0], book)  # the import of genai-prices and its first lookup
    first_ms = 1000 * (time.process_time() - start)
    timings: dict[str, list[float]] = {
        name: [] for name in ("library", "table", "unknown", "again", "render")
    }
    for round_ in range(rounds):
        sample = records(300, first=300 * (round_ + 1))  # usages not priced before
        kinds = {"library": sample[::3], "table": sample[1::3], "unknown": sample[2::3]}
        kinds["again"] = kinds["library"]  # the same answers again: a replay of a batch
        for name, chosen in kinds.items():
            start = time.process_time()
            for record in chosen:
                record_cost(record, book)
            timings[name].append(1000 * (time.process_time() - start) / len(chosen))
        start = time.process_time()
        for record in sample:
            answer_bundle(record)
        timings["render"].append(1000 * (time.process_time() - start) / len(sample))
    return {f"{name}_ms": statistics.median(values) for name, values in timings.items()} | {
        "first_ms": first_ms
    }


def command_seconds(arguments: list[str], rounds: int) -> float:
    times = []
    for _ in range(rounds):
        start = time.perf_counter()
        done = subprocess.run(
            [sys.executable, "-m", "nbchat", *arguments], capture_output=True, cwd=REPO_ROOT
        )
        times.append(time.perf_counter() - start)
        if done.returncode != 0:
            raise SystemExit(done.stderr.decode()[-2000:])
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--answers", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--json", action="store_true", help="also print the results as JSON")
    args = parser.parse_args()
    cell = per_answer(args.rounds)
    with tempfile.TemporaryDirectory() as workdir:
        path = Path(workdir) / "big.ipynb"
        made = records(args.answers)
        make_chat_notebook(path, [(f"%%chat\n{r.prompt}", r) for r in made])
        prices = json.dumps(TABLE)
        stats, show = [], []
        for _ in range(args.rounds):  # alternating, so both see the same machine
            stats.append(command_seconds(["stats", str(path), "--prices", prices], 1))
            show.append(command_seconds(["show", str(path), "--width", "100"], 1))
        stats_s, show_s = statistics.median(stats), statistics.median(show)
        size = path.stat().st_size
    result = {**cell, "stats_s": stats_s, "show_s": show_s, "answers": args.answers}
    slowest = max(cell["library_ms"], cell["table_ms"], cell["unknown_ms"])
    verdict = "PASS" if slowest < PER_ANSWER_TARGET_MS else "MISS"
    print(
        f"pricing one answer, ms of CPU: by genai-prices {cell['library_ms']:.3f}, by your table "
        f"{cell['table_ms']:.3f}, no price found {cell['unknown_ms']:.3f}, an answer like one "
        f"priced before {cell['again_ms']:.3f} (target < "
        f"{PER_ANSWER_TARGET_MS} ms: {verdict}); rendering the answer's output: "
        f"{cell['render_ms']:.3f} ({slowest / cell['render_ms']:.2f}x of it at worst)"
    )
    print(
        f"  once per kernel: importing genai-prices and the first lookup, {cell['first_ms']:.0f} ms"
    )
    verdict = "PASS" if stats_s < STATS_TARGET_S else "MISS"
    print(
        f"nbchat stats on {args.answers} answers ({size / 1e6:.1f} MB): {stats_s:.2f} s "
        f"(target < {STATS_TARGET_S:.0f} s: {verdict}); nbchat show on the same file: "
        f"{show_s:.2f} s ({stats_s / show_s:.2f}x)"
    )
    if args.json:
        print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
