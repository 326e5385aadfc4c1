"""``{name}`` interpolation of a cell body from the user namespace.

Only ``{identifier}`` whose name exists in the namespace is replaced; every other brace (code,
JSON, dict literals, ``{{templates}}``, unknown names) is left exactly as written and never raises.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

__all__ = ["interpolate"]

_PLACEHOLDER = re.compile(r"(?<!\{)\{([A-Za-z_][A-Za-z0-9_]*)\}(?!\})")


def interpolate(text: str, namespace: Mapping[str, Any]) -> str:
    """Replace ``{name}`` by ``str(namespace[name])`` where ``name`` is defined."""

    def substitute(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in namespace:
            return match.group(0)
        try:
            return str(namespace[name])
        except Exception:  # a broken __str__ must not break the cell
            return match.group(0)

    return _PLACEHOLDER.sub(substitute, text)
