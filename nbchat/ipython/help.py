"""A magic's help as plain text, for ``%%chat?``, ``%chat help`` and the README."""

from __future__ import annotations

import textwrap

from IPython.core.magic_arguments import MagicArgumentParser

__all__ = ["help_text"]


def help_text(parser: MagicArgumentParser) -> str:
    """A magic's argparse help, without the reStructuredText IPython writes for Sphinx (a leading
    ``::`` and an indented usage block), which `%%chat?` and `%chat help` would show as is."""
    text = parser.format_help()
    head, _, rest = text.partition("\n\n")
    if head.strip() == "::":
        usage, _, rest = rest.partition("\n\n")
        text = textwrap.dedent(usage) + "\n\n" + rest
    return text.strip()
