"""Writing files so that a failure never leaves a half-written one behind."""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import TextIO

__all__ = ["atomic_write"]


def atomic_write(path: str | os.PathLike[str], write: Callable[[TextIO], object]) -> None:
    """Replace ``path`` only once the new content is fully on disk; on any failure keep the old.

    ``write`` gets a UTF-8 text handle on a temporary file beside the target, which then takes
    the target's place in one rename. A symlink is written through, not replaced, and the file
    keeps its mode (a new one gets the usual mode under the umask).
    """
    target = Path(os.path.realpath(path))
    temp: str | None = None
    try:
        with tempfile.NamedTemporaryFile(
            "w", encoding="utf-8", dir=target.parent, prefix=f".{target.name}.", delete=False
        ) as handle:
            temp = handle.name
            write(handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(temp, _file_mode(target))
        os.replace(temp, target)
    except BaseException:
        if temp is not None:
            with contextlib.suppress(OSError):
                os.unlink(temp)
        raise


def _file_mode(target: Path) -> int:
    """The mode the file has, or a new file's usual mode (the temp file's 0600 is too strict)."""
    try:
        return target.stat().st_mode & 0o7777
    except FileNotFoundError:
        umask = os.umask(0)  # the only way to read it; set back at once
        os.umask(umask)
        return 0o666 & ~umask
