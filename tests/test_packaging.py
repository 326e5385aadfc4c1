"""What ``pip install nbchat-llm`` needs: every Python the package says it supports can install
its dependencies."""

from __future__ import annotations

import re
from importlib.metadata import metadata
from pathlib import Path

import pytest
from packaging.specifiers import SpecifierSet
from packaging.version import Version

PYPROJECT = Path(__file__).resolve().parent.parent / "pyproject.toml"


@pytest.mark.xfail(
    strict=True,
    reason="genai-prices is a hard dependency, but every genai-prices >= 0.2 (0.2.0 to 0.2.5 on "
    "the index) requires Python >= 3.11, while nbchat-llm says >= 3.10: no install on 3.10",
)
def test_the_oldest_python_supported_can_install_genai_prices():
    text = PYPROJECT.read_text(encoding="utf-8")  # no tomllib on 3.10
    oldest = Version(re.search(r'^requires-python = ">=([\d.]+)"', text, re.M).group(1))
    dependencies = text.split("\ndependencies = [", 1)[1].split("\n]", 1)[0]
    hard = re.findall(r'^    "(genai-prices[^"]*)",', dependencies, re.M)
    needs = SpecifierSet(metadata("genai-prices")["Requires-Python"] or "")
    assert not hard or oldest in needs, f"{hard[0]} needs Python {needs}; nbchat says {oldest}+"
