"""Start-up: what loading nbchat costs, and what each entry point imports.

    python benchmarks/bench_startup.py [--rounds 15] [--against PATH] [--json]

Each measurement runs in a fresh interpreter, and the contestants alternate within every round:

- **bare interpreter** (``python -c pass``): the floor every command pays;
- **``%load_ext nbchat``** in an IPython shell that is already up (as in a kernel), timed inside
  the process (target: at most 100 ms);
- **``nbchat --version``**, wall time of the whole process (target: at most 120 ms);
- **``nbchat show``** on a 20-cell notebook of recorded answers, wall time (target: at most
  250 ms).

It also says which modules each entry point loads (nbchat's own, all, and whether httpx, IPython
or nbformat came with them), and, from the source, the modules per package and the deepest chain
of module-level imports. ``--against PATH`` measures another checkout of nbchat (say, a tag) in
the same rounds, side by side: the same notebook, the same interpreter.
"""

from __future__ import annotations

import argparse
import ast
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import tomllib
from collections import Counter
from functools import cache
from pathlib import Path

import nbformat
from _server import REPO_ROOT
from nbclient import NotebookClient

sys.path.insert(0, str(REPO_ROOT / "tests"))
from support.fake_openai import FakeOpenAI

TARGETS_MS = {"load_ext": 100.0, "version": 120.0, "show": 250.0}
HEAVY = ("httpx", "IPython", "nbformat", "ipywidgets", "markdown_it", "nh3")

# Run in the measured interpreter: the entry point, then what it imported, as one JSON line on
# stderr (stdout is the command's own).
PROBE = """
import json, sys, time
mode, entry, *argv = sys.argv[1:]
if mode == "load_ext":
    from IPython.core.interactiveshell import InteractiveShell
    shell = InteractiveShell.instance()
    before = set(sys.modules)
    start = time.perf_counter()
    shell.run_line_magic("load_ext", "nbchat")
    seconds = time.perf_counter() - start
    loaded = set(sys.modules) - before
else:
    before = set(sys.modules)
    module, _, function = entry.partition(":")
    sys.argv = ["nbchat", *argv]
    start = time.perf_counter()
    try:
        getattr(__import__(module, fromlist=[function]), function)()
    except SystemExit:
        pass
    seconds = time.perf_counter() - start
    loaded = set(sys.modules) - before
print(json.dumps({"seconds": seconds, "loaded": sorted(loaded)}), file=sys.stderr)
"""


def entry_point(tree: Path) -> str:
    """The ``nbchat`` console script's target in ``tree``'s pyproject."""
    project = tomllib.loads((tree / "pyproject.toml").read_text(encoding="utf-8"))
    return project["project"]["scripts"]["nbchat"]


def run(tree: Path, mode: str, *argv: str) -> tuple[float, dict[str, object]]:
    """Wall seconds of a fresh interpreter running ``mode`` from ``tree``; its probe's report."""
    env = {**os.environ, "PYTHONPATH": str(tree), "COLUMNS": "100"}
    command = [sys.executable, "-c", PROBE, mode, entry_point(tree), *argv]
    if mode == "bare":
        command = [sys.executable, "-c", "import sys; print('{}', file=sys.stderr)"]
    start = time.perf_counter()
    done = subprocess.run(command, env=env, cwd=tree, capture_output=True, text=True, check=False)
    wall = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"{mode} failed in {tree}:\n{done.stderr[-2000:]}")
    return wall, json.loads(done.stderr.strip().splitlines()[-1])


def recorded_notebook(path: Path, cells: int) -> None:
    """A notebook of ``cells`` ``%%chat`` cells, every answer recorded from the fake server."""
    notebook = nbformat.v4.new_notebook()
    notebook.cells.append(nbformat.v4.new_code_cell("%load_ext nbchat"))
    for i in range(cells - 1):
        source = f"%%chat\nQuestion {i}: what does step {i} add to the tide model?"
        notebook.cells.append(nbformat.v4.new_code_cell(source))
    with FakeOpenAI(api_key=None) as server:
        env = {"OPENAI_BASE_URL": server.base_url, "NBCHAT_MODEL": "peer-small"}
        saved = dict(os.environ)
        os.environ.update({**env, "NBCHAT_NOTEBOOK": str(path)})
        try:
            nbformat.write(notebook, path)
            client = NotebookClient(notebook, timeout=300, kernel_name="python3")
            client.execute(cwd=str(path.parent))
        finally:
            os.environ.clear()
            os.environ.update(saved)
    nbformat.write(notebook, path)


def module_names(tree: Path) -> dict[str, Path]:
    """Dotted name -> path of every module of the nbchat package in ``tree``."""
    names = {}
    for path in sorted((tree / "nbchat").rglob("*.py")):
        parts = path.relative_to(tree).with_suffix("").parts
        names[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return names


def top_level_imports(path: Path, name: str, known: set[str]) -> set[str]:
    """The nbchat modules ``path`` imports when it is imported (module level, not under
    ``if TYPE_CHECKING``, not inside functions)."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.parse(path.read_text(encoding="utf-8")).body:
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(package.split(".")[: len(package.split(".")) - node.level + 1])
                base = f"{base}.{node.module}" if node.module else base
            found.add(base)
            found |= {f"{base}.{alias.name}" for alias in node.names}
    return {imported for imported in found if imported in known and imported != name}


def deepest_chain(tree: Path) -> list[str]:
    """The longest chain of module-level imports among nbchat's modules (cycles cut)."""
    names = module_names(tree)
    graph = {name: top_level_imports(path, name, set(names)) for name, path in names.items()}
    visiting: set[str] = set()

    @cache
    def longest(name: str) -> tuple[str, ...]:
        visiting.add(name)
        chains = [longest(child) for child in graph[name] if child not in visiting]
        visiting.discard(name)
        return (name, *max(chains, key=len, default=()))

    return list(max((longest(name) for name in graph), key=len))


def per_package(tree: Path) -> dict[str, int]:
    counts = Counter(name.split(".")[1] if "." in name else "nbchat" for name in module_names(tree))
    return dict(sorted(counts.items()))


def measure(trees: dict[str, Path], notebook: Path, rounds: int) -> dict[str, dict[str, list]]:
    """Alternating rounds of every contestant: seconds, and the modules the last round loaded."""
    cases = {
        "bare": ("bare",),
        "load_ext": ("load_ext",),
        "version": ("version", "--version"),
        "show": ("show", "show", str(notebook)),
    }
    times: dict[str, dict[str, list]] = {label: {c: [] for c in cases} for label in trees}
    loaded: dict[str, dict[str, list]] = {label: {} for label in trees}
    for _ in range(rounds):
        for label, tree in trees.items():
            for case, (mode, *argv) in cases.items():
                wall, report = run(tree, mode, *argv)
                inner = report.get("seconds")
                times[label][case].append(inner if case == "load_ext" else wall)
                loaded[label][case] = report.get("loaded", [])
    return {"times": times, "loaded": loaded}


def summary(label: str, tree: Path, results: dict, notebook_cells: int) -> dict[str, object]:
    times, loaded = results["times"][label], results["loaded"][label]
    medians = {case: 1000 * statistics.median(values) for case, values in times.items()}
    modules = {
        case: {
            "nbchat": sum(1 for m in loaded[case] if m == "nbchat" or m.startswith("nbchat.")),
            "all": len(loaded[case]),
            "heavy": [h for h in HEAVY if h in loaded[case]],
        }
        for case in ("load_ext", "version", "show")
    }
    chain = deepest_chain(tree)
    return {
        "tree": str(tree),
        "median_ms": medians,
        "ratio_to_bare": {c: medians[c] / medians["bare"] for c in ("version", "show")},
        "modules_loaded": modules,
        "import_nbchat_loads": import_nbchat_loads(tree),
        "modules_per_package": per_package(tree),
        "deepest_chain": chain,
        "notebook_cells": notebook_cells,
    }


def import_nbchat_loads(tree: Path) -> list[str]:
    code = "import sys, nbchat; print(sorted(m for m in sys.modules if m.startswith('nbchat')))"
    env = {**os.environ, "PYTHONPATH": str(tree)}
    out = subprocess.run(
        [sys.executable, "-c", code], env=env, cwd=tree, capture_output=True, text=True, check=True
    )
    return ast.literal_eval(out.stdout.strip())


def report(label: str, result: dict[str, object]) -> None:
    medians, modules = result["median_ms"], result["modules_loaded"]
    print(f"{label}: {result['tree']}")
    print(f"  bare interpreter      {medians['bare']:6.1f} ms")
    for case, words in (
        ("load_ext", "%load_ext nbchat"),
        ("version", "nbchat --version"),
        ("show", f"nbchat show ({result['notebook_cells']} cells)"),
    ):
        target = TARGETS_MS[case]
        verdict = "PASS" if medians[case] <= target else "MISS"
        loads = modules[case]
        heavy = ", ".join(loads["heavy"]) or "none of " + "/".join(HEAVY[:3])
        print(
            f"  {words:<25} {medians[case]:6.1f} ms (target <= {target:.0f} ms: {verdict}); "
            f"loads {loads['nbchat']} nbchat modules, {loads['all']} in all; heavy: {heavy}"
        )
    print(f"  import nbchat loads   {', '.join(result['import_nbchat_loads'])}")
    packages = ", ".join(f"{k} {v}" for k, v in result["modules_per_package"].items())
    print(f"  modules per package   {packages}")
    chain = result["deepest_chain"]
    print(f"  deepest import chain  {len(chain)} modules: {' -> '.join(chain)}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--cells", type=int, default=20)
    parser.add_argument("--against", type=Path, help="another checkout of nbchat, measured too")
    parser.add_argument("--json", action="store_true", help="also print the results as JSON")
    args = parser.parse_args()
    trees = {"this checkout": REPO_ROOT}
    if args.against:
        trees["against"] = args.against.resolve()
    with tempfile.TemporaryDirectory() as workdir:
        notebook = Path(workdir) / "twenty.ipynb"
        recorded_notebook(notebook, args.cells)
        results = measure(trees, notebook, args.rounds)
    print(f"{args.rounds} alternating rounds, each a fresh interpreter; medians")
    summaries = {label: summary(label, tree, results, args.cells) for label, tree in trees.items()}
    for label, result in summaries.items():
        report(label, result)
    if args.against:
        mine, theirs = summaries["this checkout"]["median_ms"], summaries["against"]["median_ms"]
        cases = ("load_ext", "version", "show")
        ratios = ", ".join(f"{c} {mine[c] / theirs[c]:.2f}x" for c in cases)
        print(f"this checkout / against: {ratios}")
    if args.json:
        print(json.dumps(summaries, indent=2))


if __name__ == "__main__":
    main()
