"""The batch engine (`engine.batch.run_batch`) against its ideal, and its overhead on replays.

    python benchmarks/bench_batch.py [--items 200] [--concurrency 8] [--latency 0.3]
                                     [--replays 1000] [--rounds 2] [--json]

1. Requests: ``--items`` chat requests through a real ``ChatClient`` (its own retries off, as the
   batch uses it) at ``--concurrency``, against the loopback fake server
   (``tests/support/fake_openai.py``, in its own process so it does not share the GIL) answering
   every request after ``--latency`` seconds. The ideal is ``items x latency / concurrency``;
   target: at most 1.3x. Every answer is checked to be the expected text, in input order.
2. Replays: ``--replays`` items that are all answered from a store, once through ``replay=`` (the
   calling thread, no worker) and once through a ``send`` that returns the stored value at once
   (the worker threads). Target: under 2 ms per item. This is the engine's own overhead: the
   store here is a dict.

The exit status is 0 even when a target is missed; it is 1 if an answer is wrong.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from typing import Any

from _server import start_fake_server, stop_fake_server

from nbchat.engine.batch import run_batch
from nbchat.wire.client import ChatClient
from nbchat.wire.completion import completion_text
from nbchat.wire.config import ClientConfig

REQUEST_TARGET = 1.3  # x the ideal
REPLAY_TARGET_MS = 2.0  # per item


def body(i: int) -> dict[str, Any]:
    return {"model": "peer-small", "messages": [{"role": "user", "content": f"item {i}"}]}


def time_requests(client: ChatClient, items: int, concurrency: int) -> tuple[float, bool]:
    """Seconds for one batch of requests, and whether every answer was right."""
    bodies = [body(i) for i in range(items)]
    start = time.perf_counter()
    result = run_batch(bodies, client.chat, concurrency=concurrency, max_retries=0)
    elapsed = time.perf_counter() - start
    answers = [completion_text(value or {}) for value in result.values]
    right = result.ok and answers == [f"Reply #1 to: item {i}" for i in range(items)]
    return elapsed, right


def time_replays(stored: list[dict[str, Any]], through_send: bool) -> tuple[float, bool]:
    """Seconds per item to answer every item from ``stored``, and whether all came back."""
    indices = list(range(len(stored)))
    start = time.perf_counter()
    if through_send:
        result = run_batch(indices, stored.__getitem__, concurrency=8)
    else:
        result = run_batch(indices, lambda i: None, replay=stored.__getitem__)
    per_item = (time.perf_counter() - start) / len(stored)
    return per_item, result.ok and result.values == stored


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--items", type=int, default=200)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--latency", type=float, default=0.3, help="seconds per answer")
    parser.add_argument("--replays", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=2, help="timed batches of requests")
    parser.add_argument("--json", action="store_true", help="also print the results as JSON")
    args = parser.parse_args()

    process, base_url = start_fake_server(None, latency=args.latency)
    try:
        config = ClientConfig(base_url=base_url, api_key_env="", max_retries=0)
        with ChatClient(config) as client:
            client.chat(body(-1))  # warm up: connection, imports
            rounds = [
                time_requests(client, args.items, args.concurrency) for _ in range(args.rounds)
            ]
            stored = [client.chat(body(i)) for i in range(min(args.replays, 20))]
    finally:
        stop_fake_server(process)
    stored = [stored[i % len(stored)] for i in range(args.replays)]
    replay = [time_replays(stored, through_send=False) for _ in range(5)]
    via_send = [time_replays(stored, through_send=True) for _ in range(5)]

    ideal = args.items * args.latency / args.concurrency
    wall = statistics.median(seconds for seconds, _ in rounds)
    replay_ms = statistics.median(seconds for seconds, _ in replay) * 1000
    send_ms = statistics.median(seconds for seconds, _ in via_send) * 1000
    right = all(ok for _, ok in rounds + replay + via_send)
    print(f"requests: {args.items} items, concurrency {args.concurrency}, {args.latency} s latency")
    print(f"  ideal {ideal:.2f} s, median {wall:.2f} s over {args.rounds} rounds")
    print(f"  ratio {wall / ideal:.3f}x (target <= {REQUEST_TARGET}x)")
    print(f"replays: {args.replays} items, median of 5")
    print(
        f"  through replay=  {replay_ms:.4f} ms/item ({replay_ms / REPLAY_TARGET_MS:.4f}x target)"
    )
    print(f"  through send     {send_ms:.4f} ms/item ({send_ms / REPLAY_TARGET_MS:.4f}x target)")
    print(f"  target < {REPLAY_TARGET_MS} ms/item")
    print("answers: all right" if right else "answers: WRONG")
    if args.json:
        results = {
            "ideal_s": ideal,
            "wall_s": wall,
            "rounds_s": [seconds for seconds, _ in rounds],
            "request_ratio": wall / ideal,
            "replay_ms_per_item": replay_ms,
            "replay_via_send_ms_per_item": send_ms,
            "right": right,
        }
        print(json.dumps(results, indent=2))
    return 0 if right else 1


if __name__ == "__main__":
    sys.exit(main())
