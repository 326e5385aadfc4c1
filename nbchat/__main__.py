"""``python -m nbchat``: the ``nbchat`` command."""

from __future__ import annotations

from nbchat.cli.main import main

if __name__ == "__main__":
    raise SystemExit(main())
