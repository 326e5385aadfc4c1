"""Streaming throughput: nbchat's client against a bare httpx loop and the openai SDK.

It streams the same long answer (``--chunks`` content chunks ``"w0 "``, ``"w1 "``, ...) from the
loopback fake server (``tests/support/fake_openai.py``, in its own process so it does not share
the GIL) through three contestants, and times each whole answer, request to last chunk:

* ``bare``   -- an httpx ``iter_lines`` loop that only parses each ``data:`` line with ``json``
  and concatenates the content: the floor for a pure-Python client on httpx;
* ``openai`` -- the openai SDK's ``chat.completions.create(stream=True)`` loop;
* ``nbchat`` -- ``"".join(ChatClient(...).stream(body))``, which also decodes SSE at the byte
  level and folds the whole ``chat.completion`` (usage, finish reason, ...).

Each client is created once and warmed up with one untimed answer; the timed rounds alternate
the contestants (bare, openai, nbchat, bare, ...) so machine noise spreads evenly. Every
answer is checked to be exactly the expected text of ``--chunks`` pieces.

The ratios nbchat/bare and nbchat/openai of the median wall times are what matter (absolute
times depend on the machine); targets: nbchat <= 1.1x bare and <= 0.25x openai. The table also
shows the median of the per-round ratios, the ratio of the fastest rounds and the ratio of the
client's CPU time (``process_time``), which other processes on a busy machine disturb less.

Run it with the repository's environment (the openai SDK is in the ``bench`` extra)::

    pip install -e '.[bench]'
    python benchmarks/bench_stream.py [--chunks 30000] [--rounds 7] [--json]

The exit status is 0 even when a target is missed; it is 1 if an answer is wrong.
"""

from __future__ import annotations

import argparse
import gc
import json
import platform
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _server import fake_server

from nbchat.wire.client import ChatClient
from nbchat.wire.config import ClientConfig

try:
    import openai
    from openai import OpenAI
except ImportError:  # pragma: no cover - depends on the environment
    sys.exit("bench_stream needs the openai SDK: pip install openai (or pip install -e '.[bench]')")

MODEL = "peer-small"
MESSAGES = [{"role": "user", "content": "Write a very long answer."}]
TARGET_BARE = 1.1
TARGET_OPENAI = 0.25

Contestant = Callable[[], str]


class WrongAnswer(AssertionError):
    """A contestant returned something other than the expected text."""


def bare_httpx(base_url: str, chunks: int) -> tuple[Contestant, Callable[[], None]]:
    """The floor: parse each data line with json and concatenate, nothing else."""
    client = httpx.Client(timeout=httpx.Timeout(600.0, connect=10.0))
    url = base_url.rstrip("/") + "/chat/completions"
    body = {
        "model": MODEL,
        "messages": MESSAGES,
        "stream": True,
        "stream_options": {"include_usage": True},
    }

    def run() -> str:
        parts: list[str] = []
        with client.stream("POST", url, json=body) as r:
            r.raise_for_status()
            for line in r.iter_lines():
                if line.startswith("data: ") and line != "data: [DONE]":
                    obj = json.loads(line[6:])
                    ch = obj["choices"]
                    if ch:
                        c = ch[0]["delta"].get("content")
                        if c:
                            parts.append(c)
        check_count("bare", parts, chunks)
        return "".join(parts)

    return run, client.close


def openai_sdk(base_url: str, chunks: int) -> tuple[Contestant, Callable[[], None]]:
    """The openai SDK's documented streaming loop."""
    client = OpenAI(base_url=base_url, api_key="x", max_retries=0)

    def run() -> str:
        parts: list[str] = []
        for chunk in client.chat.completions.create(
            model=MODEL,
            messages=MESSAGES,  # type: ignore[arg-type]
            stream=True,
            stream_options={"include_usage": True},
        ):
            if chunk.choices and chunk.choices[0].delta.content:
                parts.append(chunk.choices[0].delta.content)
        check_count("openai", parts, chunks)
        return "".join(parts)

    return run, client.close


def nbchat_client(base_url: str, chunks: int) -> tuple[Contestant, Callable[[], None]]:
    """nbchat: decode SSE, fold the completion, yield the text deltas."""
    client = ChatClient(ClientConfig(base_url=base_url, api_key_env="", max_retries=0))
    body = {"model": MODEL, "messages": MESSAGES}

    def run() -> str:
        stream = client.stream(body)
        text = "".join(stream)
        # Outside nbchat's loop but inside the timed region, like the other contestants' checks.
        completion = stream.completion
        if completion is None or completion["choices"][0]["message"]["content"] != text:
            raise WrongAnswer("nbchat: the folded completion does not match the streamed text")
        tokens = (completion.get("usage") or {}).get("completion_tokens")
        if tokens != chunks:
            raise WrongAnswer(f"nbchat: usage says {tokens} completion tokens, expected {chunks}")
        return text

    return run, client.close


def check_count(name: str, parts: list[str], chunks: int) -> None:
    if len(parts) != chunks:
        raise WrongAnswer(f"{name}: got {len(parts)} pieces, expected {chunks}")


def measure(
    contestants: dict[str, Contestant], expected: str, rounds: int
) -> tuple[dict[str, list[float]], dict[str, list[float]]]:
    """One warm-up per contestant, then ``rounds`` alternating timed rounds of each.

    Returns wall-clock seconds (``perf_counter``) and this process's CPU seconds
    (``process_time``: the client only, the server is another process) per round.
    """
    for name, run in contestants.items():
        verify(name, run(), expected)
    wall: dict[str, list[float]] = {name: [] for name in contestants}
    cpu: dict[str, list[float]] = {name: [] for name in contestants}
    for _ in range(rounds):
        for name, run in contestants.items():
            gc.collect()
            start, start_cpu = time.perf_counter(), time.process_time()
            text = run()
            elapsed, elapsed_cpu = time.perf_counter() - start, time.process_time() - start_cpu
            verify(name, text, expected)
            wall[name].append(elapsed)
            cpu[name].append(elapsed_cpu)
    return wall, cpu


def verify(name: str, text: str, expected: str) -> None:
    if text != expected:
        at = next((i for i, (a, b) in enumerate(zip(text, expected, strict=False)) if a != b), None)
        raise WrongAnswer(
            f"{name}: wrong answer ({len(text)} chars, expected {len(expected)}; "
            f"first difference at {at})"
        )


def summarize(
    wall: dict[str, list[float]], cpu: dict[str, list[float]], chunks: int, rounds: int
) -> dict[str, Any]:
    stats = {
        name: {
            "median_s": statistics.median(ts),
            "min_s": min(ts),
            "max_s": max(ts),
            "chunks_per_s": chunks / statistics.median(ts),
            "cpu_median_s": statistics.median(cpu[name]),
            "times_s": ts,
            "cpu_times_s": cpu[name],
        }
        for name, ts in wall.items()
    }

    def ratio(other: str) -> dict[str, Any]:
        target = TARGET_BARE if other == "bare" else TARGET_OPENAI
        paired = [c / o for c, o in zip(wall["nbchat"], wall[other], strict=True)]
        of_medians = stats["nbchat"]["median_s"] / stats[other]["median_s"]
        return {
            "of_medians": of_medians,
            "median_paired": statistics.median(paired),
            "of_mins": stats["nbchat"]["min_s"] / stats[other]["min_s"],
            "cpu_of_medians": stats["nbchat"]["cpu_median_s"] / stats[other]["cpu_median_s"],
            "target": target,
            "pass": of_medians <= target,
        }

    return {
        "chunks": chunks,
        "rounds": rounds,
        "python": platform.python_version(),
        "httpx": httpx.__version__,
        "openai": openai.__version__,
        "contestants": stats,
        "ratios": {"nbchat/bare": ratio("bare"), "nbchat/openai": ratio("openai")},
    }


def report(result: dict[str, Any]) -> str:
    lines = [
        f"Streaming {result['chunks']:,} chunks x {result['rounds']} rounds "
        f"(Python {result['python']}, httpx {result['httpx']}, openai {result['openai']})",
        "",
        f"{'contestant':<12}{'median s':>10}{'min s':>10}{'max s':>10}{'chunks/s':>12}"
        f"{'cpu s':>10}",
    ]
    for name, s in result["contestants"].items():
        lines.append(
            f"{name:<12}{s['median_s']:>10.4f}{s['min_s']:>10.4f}{s['max_s']:>10.4f}"
            f"{s['chunks_per_s']:>12,.0f}{s['cpu_median_s']:>10.4f}"
        )
    lines += [
        "",
        f"{'ratio':<15}{'median':>8}{'paired':>9}{'min':>9}{'cpu':>9}{'target':>10}  verdict",
    ]
    for name, r in result["ratios"].items():
        lines.append(
            f"{name:<15}{r['of_medians']:>7.3f}x{r['median_paired']:>8.3f}x{r['of_mins']:>8.3f}x"
            f"{r['cpu_of_medians']:>8.3f}x{'<= ' + format(r['target'], 'g') + 'x':>10}  "
            f"{'PASS' if r['pass'] else 'MISS'}"
        )
    lines += [
        "(median: ratio of the median wall times, used for the verdict; paired: median of the",
        " per-round ratios; min: of the fastest rounds; cpu: of the median client CPU times)",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--chunks", type=int, default=30_000, help="content chunks per answer")
    parser.add_argument("--rounds", type=int, default=7, help="timed rounds per contestant")
    parser.add_argument("--json", action="store_true", help="also print the results as JSON")
    args = parser.parse_args(argv)
    if args.chunks < 1 or args.rounds < 1:
        parser.error("--chunks and --rounds must be positive")
    expected = "".join(f"w{i} " for i in range(args.chunks))

    with fake_server(args.chunks) as base_url:
        # bare and nbchat run back to back in each round, so their pairing shares machine load;
        # the slow openai round (seconds) comes after both.
        makers = {"bare": bare_httpx, "nbchat": nbchat_client, "openai": openai_sdk}
        contestants: dict[str, Contestant] = {}
        closers: list[Callable[[], None]] = []
        try:
            for name, make in makers.items():
                run, close = make(base_url, args.chunks)
                contestants[name] = run
                closers.append(close)
            try:
                wall, cpu = measure(contestants, expected, args.rounds)
            except WrongAnswer as exc:
                print(f"FAIL: {exc}", file=sys.stderr)
                return 1
        finally:
            for close in closers:
                close()

    result = summarize(wall, cpu, args.chunks, args.rounds)
    print(report(result))
    if args.json:
        print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
