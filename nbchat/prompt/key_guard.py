"""Keys never travel inside a prompt by accident.

A ``{value}`` filled into a cell (a config dict, a DataFrame of settings) may hold an API key read
from the environment. Sent, it would reach the provider (any provider: a DeepSeek key in a prompt
to OpenAI goes to OpenAI) and be stored in the notebook with the prompt. So the text a cell fills
in is checked against the values of the environment's key variables, and a match refuses the
cell in one line naming the placeholder and the variable (never the value), unless the user
says ``--allow-secrets``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping

from nbchat.errors import ConfigError
from nbchat.wire.redaction import runs_of

__all__ = ["KeyGuard"]

# Variables whose names say they hold a secret, besides the key variables of the profiles.
_SECRET_NAME = re.compile(r"(?:API_?KEY|TOKEN|SECRET|PASSWORD|PASSWD)$", re.IGNORECASE)
_MIN_KEY = 8  # shorter values are not key-grade, and would match ordinary text
_PIECE = 16  # a run this long of a key counts as the key (a value may hold a cut-off key)


class KeyGuard:
    """The secrets of the environment, by value, and the check of a prompt's filled values."""

    def __init__(
        self,
        environ: Mapping[str, str],
        names: Iterable[str] = (),
        *,
        flag: str = "--allow-secrets",
    ) -> None:
        self.flag = flag  # how the caller says "send it anyway"
        wanted = {name for name in names if name} | {n for n in environ if _SECRET_NAME.search(n)}
        self._keys = {
            environ[name].strip(): name
            for name in sorted(wanted)
            if len(environ.get(name, "").strip()) >= _MIN_KEY
        }
        # Every run of _PIECE characters of every longer key: a DataFrame cell or a clipped
        # value may show only part of it.
        self._pieces = {
            value[i : i + _PIECE]: name
            for value, name in self._keys.items()
            for i in range(len(value) - _PIECE + 1)
        }
        self._runs = runs_of("".join(self._pieces), _PIECE)

    def variable_in(self, text: str) -> str | None:
        """The name of a variable whose value ``text`` holds, whole or a long run of it (a run
        lies within a run of the keys' characters: only those are scanned)."""
        found = next((name for value, name in self._keys.items() if value in text), None)
        if found is not None or self._runs is None:
            return found
        pieces = self._pieces
        for match in self._runs.finditer(text):
            run = match.group()
            for i in range(len(run) - _PIECE + 1):
                if (piece := run[i : i + _PIECE]) in pieces:
                    return pieces[piece]
        return None

    def check(self, fills: Iterable[tuple[str, str]]) -> None:
        """`ConfigError` when a filled value (``(placeholder, text)``) holds a key."""
        for label, text in fills:
            name = self.variable_in(text)
            if name is not None:
                raise ConfigError(
                    f"{{{label}}} holds the value of ${name}: not sent (a key in a prompt reaches "
                    f"the provider and is stored in the notebook); {self.flag} sends it anyway"
                )
