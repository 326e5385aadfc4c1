"""Every benchmark in ``benchmarks/`` still runs to its report, at a small size: the benchmarks
are not timed here (a loaded machine would make that flaky), but a refactor that breaks one
(an attribute it reads, a module it imports) fails here rather than on the next person who
measures. Exit status 1 is a missed target, which a tiny run may report; a traceback is not."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

BENCHMARKS = Path(__file__).resolve().parents[2] / "benchmarks"

SMALL = {
    "bench_batch.py": ["--items", "16", "--latency", "0.01", "--replays", "50", "--rounds", "1"],
    "bench_magic.py": ["--chunks", "300", "--rounds", "1"],
    "bench_map.py": ["--items", "16", "--latency", "0.01", "--replays", "50"],
    "bench_mcp.py": ["--rounds", "2", "--restarts", "1"],
    "bench_money.py": ["--answers", "20", "--rounds", "1"],
    "bench_provider_batch.py": ["--items", "50"],
    "bench_render.py": ["--kb", "2", "--rounds", "1"],
    "bench_replay.py": ["--cells", "6", "--threads", "2", "--rounds", "1"],
    "bench_startup.py": ["--rounds", "1", "--cells", "4"],
    "bench_stream.py": ["--chunks", "300", "--rounds", "1"],
    "bench_thread.py": ["--short", "3", "--long", "6", "--rounds", "1"],
}


def test_every_benchmark_has_a_small_run() -> None:
    assert sorted(SMALL) == sorted(path.name for path in BENCHMARKS.glob("bench_*.py"))


@pytest.mark.timeout(120)
@pytest.mark.parametrize("name", sorted(SMALL))
def test_the_benchmark_runs_to_its_report(name: str) -> None:
    run = subprocess.run(
        [sys.executable, str(BENCHMARKS / name), *SMALL[name]],
        capture_output=True,
        text=True,
        timeout=110,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    assert "Traceback" not in run.stderr + run.stdout, run.stderr[-2000:]
    assert run.returncode in (0, 1), run.stderr[-2000:]
    assert run.stdout.strip(), "a benchmark prints its report"
