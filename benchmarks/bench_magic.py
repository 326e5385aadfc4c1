"""A ``%%chat`` cell against a bare httpx loop, in the same real kernel, on the same server.

    python benchmarks/bench_magic.py [--chunks 30000] [--rounds 5] [--json]

The fake server runs in its own process and answers every request with ``--chunks`` chunks.
Each round runs, in one kernel, a cell with a bare httpx streaming loop (parse + concatenate,
nothing displayed) and a ``%%chat --refresh`` cell (parse, fold, live widget, final Markdown,
record), alternating, timed from the frontend side: execute request sent -> kernel idle. It
prints the median ratio chat/bare (target <= 1.1x) and the IOPub messages the ``%%chat`` cell
sent to the frontend (bounded by the update rate, not by the number of chunks).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

from _server import REPO_ROOT, fake_server

sys.path.insert(0, str(REPO_ROOT / "tests"))
from support.kernel_driver import Kernel

TARGET = 1.1

BARE_SETUP = """
import httpx, json
_client = httpx.Client(timeout=120)
def _bare(url):
    parts = []
    body = {{"model": "peer-small", "stream": True,
             "messages": [{{"role": "user", "content": "Everything"}}]}}
    with _client.stream("POST", url + "/chat/completions", json=body) as response:
        for line in response.iter_lines():
            if line.startswith("data: ") and line != "data: [DONE]":
                choices = json.loads(line[6:])["choices"]
                if choices:
                    content = choices[0]["delta"].get("content")
                    if content:
                        parts.append(content)
    return "".join(parts)
_url = {url!r}
"""
BARE_CELL = "_text = _bare(_url)"
CHAT_CELL = "%%chat --refresh -o _answer\nEverything"
CHECK = "print(len(_text), len(_answer), _text == _answer)"


def timed(kernel: Kernel, code: str) -> tuple[float, int, int]:
    start = time.perf_counter()
    execution = kernel.run(code, cell_id="bench", timeout=300, check=True)
    return time.perf_counter() - start, len(execution.messages), execution.count("comm_msg")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--chunks", type=int, default=30_000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--json", action="store_true", help="also print the results as JSON")
    args = parser.parse_args()

    with fake_server(args.chunks) as url, tempfile.TemporaryDirectory() as workdir:
        env = {"OPENAI_BASE_URL": url, "NBCHAT_MODEL": "peer-small", "OPENAI_API_KEY": ""}
        kernel = Kernel(Path(workdir), env)
        try:
            kernel.run(BARE_SETUP.format(url=url), check=True)
            timed(kernel, BARE_CELL)  # warm both paths: connections, imports
            timed(kernel, CHAT_CELL)
            bare, chat, messages, comms = [], [], [], []
            for _ in range(args.rounds):
                bare.append(timed(kernel, BARE_CELL)[0])
                seconds, sent, widget_updates = timed(kernel, CHAT_CELL)
                chat.append(seconds)
                messages.append(sent)
                comms.append(widget_updates)
            check = kernel.run(CHECK, check=True).stdout.split()
        finally:
            kernel.close()
    if check[2] != "True" or int(check[0]) != sum(len(f"w{i} ") for i in range(args.chunks)):
        raise SystemExit(f"the two cells disagree: {check}")

    ratios = sorted(c / b for c, b in zip(chat, bare, strict=True))
    result = {
        "chunks": args.chunks,
        "rounds": args.rounds,
        "bare_median_s": statistics.median(bare),
        "chat_median_s": statistics.median(chat),
        "ratio_median": statistics.median(ratios),
        "iopub_messages_per_chat_cell": max(messages),
        "widget_comm_messages_per_chat_cell": max(comms),
    }
    print(
        f"{args.chunks} chunks, {args.rounds} alternating rounds, one kernel, server in its "
        "own process"
    )
    print(f"  bare httpx loop cell   median {result['bare_median_s']:.3f} s")
    print(f"  %%chat cell            median {result['chat_median_s']:.3f} s")
    verdict = "PASS" if result["ratio_median"] <= TARGET else "MISS"
    print(
        f"  ratio chat/bare        median {result['ratio_median']:.2f}x "
        f"(target <= {TARGET}x: {verdict}; per-round {', '.join(f'{r:.2f}' for r in ratios)})"
    )
    print(
        f"  messages to the frontend per %%chat cell: {result['iopub_messages_per_chat_cell']} "
        f"IOPub, of which {result['widget_comm_messages_per_chat_cell']} widget updates "
        f"(for {args.chunks} chunks)"
    )
    if args.json:
        print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
