"""Pausing Python's cyclic garbage collector over bulk work.

Reading a ``--map`` cell's 50,000 stored items, or storing a provider batch's 50,000 answers,
allocates millions of small objects that stay alive; each allocation threshold crossed then
starts a collection that walks them all, which costs more than the work itself (twice the time
of reading a large batch record, measured). Reference counting still frees everything that is
not a cycle; the collector runs again when the pause ends.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager

__all__ = ["gc_paused"]


@contextmanager
def gc_paused() -> Iterator[None]:
    """No cyclic collection inside; restored after (a pause inside a pause, or in another
    thread, leaves it to the outermost to restore)."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()
