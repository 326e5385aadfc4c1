"""A cell with one MCP call against the same cell with a notebook function doing the same work,
and replaying it after a restart against replaying a cell without tools.

    python benchmarks/bench_mcp.py [--rounds 15] [--restarts 5] [--json]

One real kernel, the loopback chat server in this process, and the stdio MCP test server
(``tests/support/mcp_server.py``, the SDK's own MCPServer), started once before anything is
timed. Each round, alternating, times from the frontend side (execute request sent -> kernel
idle) a ``%%chat --refresh`` cell whose model calls the server's ``tide`` tool once, and the same
cell offering a notebook function ``tide`` that returns the same text. Both cells make the same
two chat requests; the difference is what calling through MCP costs: listing the server's tools
(every asked cell does), the call's round trip over stdio and the server's own work. Target: under
50 ms per call. It also prints the call's own time as the kernel measured it (``tool_s``).

Then it saves the notebook, and ``--restarts`` times restarts the kernel offline with the server
declared as a command that does not exist, replays a first cell (the imports any first replay
pays, the notebook file read once), then, in turn, the MCP cell, the same cell with the notebook
function, and a cell without tools: replaying the MCP cell should cost what replaying the
function's costs (both show their stored calls), and never start the server.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

from _server import REPO_ROOT

sys.path.insert(0, str(REPO_ROOT / "tests"))
from support.env import TEST_KEY
from support.fake_openai import FakeOpenAI, Fault
from support.kernel_driver import Execution, Kernel, save_notebook
from support.mcp_fixtures import requests_to, stdio_server

TARGET_MS = 50.0
RECORD = "application/vnd.nbchat.v2+json"
FUNCTION = '''
LEVELS = {"Brest": 4.2, "Cadiz": 1.1}

def tide(station: str) -> str:
    """The tide at a station, from the server.

    Args:
        station: The station's city.
    """
    return f"{station}: {LEVELS[station]} m"
'''
MCP_CELL = "%%chat --refresh --tools mcp:bench/tide\nHow high is the tide in Brest?"
FUNCTION_CELL = "%%chat --refresh --tools tide\nHow high is the tide in Brest?"
MCP_REPLAY = "%%chat --tools mcp:bench/tide\nHow high is the tide in Brest?"
FUNCTION_REPLAY = "%%chat --thread function --tools tide\nHow high is the tide in Brest?"
PLAIN_REPLAY = "%%chat --thread plain\nHow high is the tide in Brest?"
WARM_REPLAY = "%%chat --thread warm\nHow high is the tide in Cadiz?"  # imports, the file read


def timed(kernel: Kernel, server: FakeOpenAI, code: str, cell_id: str) -> tuple[float, Execution]:
    if "--tools" in code:
        server.script(Fault(tool_calls=[("tide", {"station": "Brest"})]))
    else:  # Markdown that needs the whole parser: its imports are paid by the warm-up
        server.script(Fault(text="The tide in *Cadiz*: `1.1 m`, see [^1].\n\n[^1]: a note"))
    start = time.perf_counter()
    done = kernel.run(code, cell_id=cell_id, timeout=120, check=True)
    return time.perf_counter() - start, done


def asked(kernel: Kernel, server: FakeOpenAI, rounds: int, log: Path) -> dict[str, object]:
    """The MCP cell against the function cell, alternating, the server started before."""
    kernel.run("%chat mcp bench", check=True)
    for code, cell_id in ((MCP_CELL, "mcp"), (FUNCTION_CELL, "function")):
        timed(kernel, server, code, cell_id)  # warm: imports, connections
    mcp, function, call = [], [], []
    for _ in range(rounds):
        seconds, done = timed(kernel, server, MCP_CELL, "mcp")
        mcp.append(seconds)
        (record,) = done.data(RECORD)
        call.append(record["timing"]["tool_s"][0])
        function.append(timed(kernel, server, FUNCTION_CELL, "function")[0])
    answers = {r["name"] for r in requests_to(log, "tools/call")}
    assert answers == {"tide"}, answers
    differences = sorted((m - f) * 1000 for m, f in zip(mcp, function, strict=True))
    return {
        "mcp_median_s": statistics.median(mcp),
        "function_median_s": statistics.median(function),
        "mcp_overhead_median_ms": statistics.median(differences),
        "mcp_call_median_ms": statistics.median(call) * 1000,
    }


def replayed(kernel: Kernel, server: FakeOpenAI, restarts: int, path: Path, log: Path) -> dict:
    """After each restart, offline, with the server unusable: the MCP cell and a plain one."""
    reached = len(requests_to(log))
    mcp, function, plain = [], [], []
    for n in range(restarts):
        kernel.restart_offline(path)
        kernel.run("%config ChatMagics.mcp_servers = {'bench': {'command': ['/nonexistent']}}")
        kernel.run(FUNCTION, check=True)  # the notebook's cell that defines it
        kernel.run(WARM_REPLAY, cell_id="warm", check=True)  # the first replay's imports
        order = [
            ("mcp", MCP_REPLAY, mcp),
            ("function", FUNCTION_REPLAY, function),
            ("plain", PLAIN_REPLAY, plain),
        ]
        for cell_id, code, times in order[n % 3 :] + order[: n % 3]:
            start = time.perf_counter()
            done = kernel.run(code, cell_id=cell_id, timeout=60, check=True)
            times.append(time.perf_counter() - start)
            assert "replayed" in done.data("text/html")[0], cell_id
    assert server.chat_requests == [] and len(requests_to(log)) == reached, "nothing was asked"
    return {
        "replay_mcp_median_ms": statistics.median(mcp) * 1000,
        "replay_function_median_ms": statistics.median(function) * 1000,
        "replay_plain_median_ms": statistics.median(plain) * 1000,
        "replay_ratio": statistics.median(mcp) / statistics.median(function),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--restarts", type=int, default=5)
    parser.add_argument("--json", action="store_true", help="also print the results as JSON")
    args = parser.parse_args()

    with FakeOpenAI(api_key=TEST_KEY) as server, tempfile.TemporaryDirectory() as workdir:
        work = Path(workdir)
        log = work / "mcp.log"
        env = {"OPENAI_BASE_URL": server.base_url, "OPENAI_API_KEY": TEST_KEY}
        kernel = Kernel(work, {**env, "NBCHAT_MODEL": "peer-small"})
        try:
            declared = {"bench": stdio_server(log)}
            kernel.run(f"%config ChatMagics.mcp_servers = {declared!r}", check=True)
            kernel.run(FUNCTION, check=True)
            result = asked(kernel, server, args.rounds, log)
            path = work / "bench.ipynb"
            kernel.run(f"import os; os.environ['NBCHAT_NOTEBOOK'] = {str(path)!r}", check=True)
            server.reset()
            cells = [
                ("mcp", MCP_REPLAY),
                ("function", FUNCTION_REPLAY),
                ("plain", PLAIN_REPLAY),
                ("warm", WARM_REPLAY),
            ]
            runs = [timed(kernel, server, code, cell_id)[1] for cell_id, code in cells]
            save_notebook(path, [(c, s, r) for (c, s), r in zip(cells, runs, strict=True)])
            server.reset()
            result |= replayed(kernel, server, args.restarts, path, log)
        finally:
            kernel.close()

    print(f"{args.rounds} alternating rounds, one kernel, the MCP server started before timing")
    print(f"  cell with one MCP call        median {result['mcp_median_s'] * 1000:.1f} ms")
    print(f"  same cell, notebook function  median {result['function_median_s'] * 1000:.1f} ms")
    verdict = "PASS" if result["mcp_overhead_median_ms"] < TARGET_MS else "MISS"
    print(
        f"  MCP beyond the function       median {result['mcp_overhead_median_ms']:.1f} ms "
        f"(target < {TARGET_MS:.0f} ms: {verdict}); the call itself "
        f"{result['mcp_call_median_ms']:.1f} ms (stdio round trip and the server's work)"
    )
    print(f"{args.restarts} restarts, offline, the server's command made unusable")
    print(f"  replay of the MCP cell        median {result['replay_mcp_median_ms']:.1f} ms")
    print(f"  replay, notebook function     median {result['replay_function_median_ms']:.1f} ms")
    print(f"  replay of a cell without tools median {result['replay_plain_median_ms']:.1f} ms")
    print(
        f"  MCP / function replay         {result['replay_ratio']:.2f}x; no server started, "
        "no request sent"
    )
    if args.json:
        print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
