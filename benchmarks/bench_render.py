"""Rendering model text in the kernel: a whole answer, and a streamed one as the live view sees it.

    python benchmarks/bench_render.py [--kb 20] [--rounds 30] [--json]

CPU time of this process (not wall time), so a busy machine does not inflate it.

- **Whole answer**: a realistic ``--kb`` kB answer (headings, paragraphs with emphasis, links and
  inline math, lists, a table, fenced Python, display math) through `safe_html.document(
  safe_html.markdown(...))`, the path of every final output (target: under 20 ms for 20 kB).
- **Hostile answers**: text that made mdit-py-plugins' rules and Pygments' lexers quadratic
  (``\\(`` repeated, ``a: `` lines before an e-mail address, ``\\begin{align}`` lines, a C#
  fence of one-word lines), rendered at 20 and 80 kB: linear rendering takes about 4x as long
  for 4x the text, quadratic 16x (target: under 6x, and under 1 s at 80 kB).
- **Streamed answer**: the same answer arriving in 1,000 pieces, rendered after every 10th as a
  throttled live view would, by `GrowingMarkdown` (settled blocks rendered once) vs rendering the
  whole text so far each time; both alternate in one run, and the ratio is reported.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from nbchat.render.html import GrowingMarkdown, document, markdown

TARGET_MS = 20.0

SECTION = """\
## Section {n}: tides and the Moon

The **Moon's gravity** pulls hardest on the water facing it, so the sea rises there; the
*Sun* adds a weaker pull. See [the tide tables](https://tides.example/{n}) and note that the
height goes as $h \\propto M / r^3$ while the period stays near 12.4 h.

- Spring tides come at new and full moon.
- Neap tides come at the quarters, with a range about {n}0% smaller.
- Coasts shape the rest: `amphidromic points` have no tide at all.

| station | mean range (m) | period (h) |
|:--|--:|--:|
| Brest | 4.2 | 12.42 |
| Cadiz | 1.1 | 12.42 |

```python
def tide(t: float, amplitude: float = 1.0) -> float:
    \"\"\"The height of a simple semidiurnal tide at time t (hours).\"\"\"
    return amplitude * math.cos(2 * math.pi * t / 12.42)  # M2 constituent
```

$$
h(t) = \\sum_k A_k \\cos(\\omega_k t + \\phi_k)
$$

"""


def answer_of(kilobytes: int) -> str:
    text, n = "", 0
    while len(text) < kilobytes * 1000:
        text += SECTION.format(n=n)
        n += 1
    return text[: kilobytes * 1000]


HOSTILE = {
    "\\( repeated": lambda n: "\\(" * (n // 2),
    "a: lines, then an address": lambda n: "a: " * (n // 3) + " x@y.com",
    "mailto: repeated": lambda n: "mailto:" * (n // 7),
    "\\begin{align} lines": lambda n: "\\begin{align}\n" * (n // 14),
    "C# fence of one-word lines": lambda n: "```csharp\n" + "x\n" * (n // 2) + "```",
    "[ repeated": lambda n: "[a" * (n // 2),
}


def hostile(rounds: int) -> dict[str, tuple[float, float]]:
    """Seconds to render each hostile text at 20 and 80 kB (the best of ``rounds``)."""
    found = {}
    for name, make in HOSTILE.items():
        small = min(whole(make(20_000)) for _ in range(rounds))
        large = min(whole(make(80_000)) for _ in range(rounds))
        found[name] = (small, large)
    return found


def whole(text: str) -> float:
    start = time.process_time()
    document(markdown(text))
    return time.process_time() - start


def streamed(text: str, growing: bool) -> float:
    pieces = 1_000
    step = max(1, len(text) // pieces)
    view = GrowingMarkdown() if growing else None
    start = time.process_time()
    for count, end in enumerate(range(step, len(text) + step, step)):
        if count % 10 == 0:
            shown = text[:end]
            document(view.html(shown) if view else markdown(shown))
    return time.process_time() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--kb", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=30)
    parser.add_argument("--json", action="store_true", help="also print the results as JSON")
    args = parser.parse_args()
    text = answer_of(args.kb)
    whole(text)  # imports and the parser set up once, as in a kernel's first answer
    times = [whole(text) for _ in range(args.rounds)]
    grow, full = [], []
    for _ in range(max(3, args.rounds // 10)):
        grow.append(streamed(text, growing=True))
        full.append(streamed(text, growing=False))
    result = {
        "kb": args.kb,
        "whole_median_ms": statistics.median(times) * 1000,
        "stream_growing_s": statistics.median(grow),
        "stream_whole_s": statistics.median(full),
    }
    result["stream_ratio"] = result["stream_growing_s"] / result["stream_whole_s"]
    verdict = "PASS" if result["whole_median_ms"] < TARGET_MS else "MISS"
    print(f"a {args.kb} kB answer, {args.rounds} rounds")
    print(
        f"  whole answer rendered and sanitized   median {result['whole_median_ms']:.1f} ms "
        f"(target < {TARGET_MS:.0f} ms: {verdict})"
    )
    growing, whole_text = result["stream_growing_s"], result["stream_whole_s"]
    print(
        f"  streamed, 100 live renders            GrowingMarkdown {growing:.3f} s vs whole text"
        f" each time {whole_text:.3f} s: {result['stream_ratio']:.2f}x"
    )
    attacks = hostile(3)
    print("  hostile answers (CPU s at 20 kB -> 80 kB, and the ratio; linear ~4x):")
    for name, (small, large) in attacks.items():
        verdict = "PASS" if large / max(small, 1e-4) < 6 and large < 1 else "MISS"
        print(
            f"    {name:28} {small:.3f} -> {large:.3f} s: {large / max(small, 1e-4):.1f}x {verdict}"
        )
    result["hostile"] = {name: list(times) for name, times in attacks.items()}
    if args.json:
        print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
