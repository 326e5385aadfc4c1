"""The README's reference sections are generated from the code, so they cannot drift.

Run ``python tests/test_readme.py`` to rewrite them after changing a flag or a command.
"""

from __future__ import annotations

import contextlib
import io
import os
import re
import sys
from pathlib import Path

README = Path(__file__).resolve().parent.parent / "README.md"


def generated_blocks() -> dict[str, str]:
    from nbchat.cli.main import main
    from nbchat.ipython.commands import _parser
    from nbchat.ipython.help import help_text
    from nbchat.ipython.magics import ChatMagics

    previous = os.environ.get("COLUMNS")
    os.environ["COLUMNS"] = "100"  # argparse wraps to the terminal: pin it
    try:
        cli_help = io.StringIO()
        with contextlib.redirect_stdout(cli_help), contextlib.suppress(SystemExit):
            main(["--help"])
        return {
            "cell-magic-help": help_text(ChatMagics.chat.parser),
            "line-magic-help": help_text(_parser()),
            "cli-help": cli_help.getvalue().strip(),
        }
    finally:
        if previous is None:
            del os.environ["COLUMNS"]
        else:
            os.environ["COLUMNS"] = previous


def render(text: str, blocks: dict[str, str]) -> str:
    for name, body in blocks.items():
        pattern = re.compile(
            rf"(<!-- BEGIN {name} -->\n```text\n).*?(```\n<!-- END {name} -->)", re.DOTALL
        )
        if not pattern.search(text):
            raise AssertionError(f"README.md has no block {name!r}")
        text = pattern.sub(lambda m, body=body: m.group(1) + body + "\n" + m.group(2), text)
    return text


def test_readme_reference_matches_the_code():
    text = README.read_text(encoding="utf-8")
    assert render(text, generated_blocks()) == text, (
        "README.md is out of date: run `python tests/test_readme.py`"
    )


def test_readme_names_both_commands():
    text = README.read_text(encoding="utf-8")
    assert "python -m pytest" in text
    assert "nbchat run --offline demo_notebooks/quickstart.ipynb" in text


if __name__ == "__main__":
    README.write_text(render(README.read_text(encoding="utf-8"), generated_blocks()))
    sys.exit(0)
