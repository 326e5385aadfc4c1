"""Where things are in the repository, for tests that read files beside the code."""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
TESTS = ROOT / "tests"  # on the path of a process that imports support
FIXTURES = Path(__file__).resolve().parent / "fixtures"
DEMOS = ROOT / "demo_notebooks"
DOCS = ROOT / "docs"
README = ROOT / "README.md"
FAKE_SERVER = Path(__file__).resolve().parent / "fake_openai.py"  # also a program: --port 0
