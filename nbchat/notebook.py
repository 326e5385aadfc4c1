"""Reading stored records back out of a saved notebook, with nbformat.

A `NotebookWatcher` parses the file once and again only when its modification time (or size)
changes, so a long notebook is not re-parsed for every cell.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from nbchat.errors import NotebookError
from nbchat.record import RECORD_MIME_PATTERN, Record

if TYPE_CHECKING:
    import nbformat

__all__ = [
    "NotebookRecords",
    "NotebookWatcher",
    "StoredCell",
    "find_notebook",
    "iter_output_records",
    "load_notebook",
    "read_notebook_json",
    "read_records",
]


@dataclass(frozen=True)
class StoredCell:
    """A cell of the saved notebook that holds at least one record."""

    index: int
    cell_id: str | None
    source: str
    records: tuple[Record, ...]


@dataclass
class NotebookRecords:
    """Everything nbchat needs from one saved notebook."""

    path: Path
    cells: list[StoredCell] = field(default_factory=list)
    position: dict[str, int] = field(default_factory=dict)
    by_key: dict[str, Record] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)

    def records(self) -> Iterator[tuple[StoredCell, Record]]:
        """Every record with its cell, in notebook order."""
        for cell in self.cells:
            for record in cell.records:
                yield cell, record


def load_notebook(path: str | os.PathLike[str]) -> nbformat.NotebookNode:
    """Read a notebook as nbformat 4; any failure becomes one short `NotebookError`."""
    import nbformat  # costs ~1 s (jsonschema): only when a file is actually read

    path = Path(path)
    try:
        with path.open(encoding="utf-8") as handle:
            return nbformat.read(handle, as_version=4)
    except FileNotFoundError:
        raise NotebookError(f"{path}: no such notebook") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise NotebookError(f"{path}: cannot read it ({exc.__class__.__name__})") from None
    except Exception as exc:  # nbformat raises many kinds for a corrupt file
        reason = str(exc).splitlines()[0][:120] if str(exc) else type(exc).__name__
        raise NotebookError(f"{path}: not a valid notebook ({reason})") from None


def read_notebook_json(path: str | os.PathLike[str]) -> dict[str, Any]:
    """The kernel's fast reader: a v4 notebook parsed as plain JSON.

    Importing nbformat costs 1-3 s in a typical Jupyter install (its validator loads
    jsonschema's format checkers, which compile dozens of grammars), a price the first
    ``%%chat`` cell would pay. nbchat only reads outputs, so nbformat-4 files (what JupyterLab,
    Notebook 7 and VS Code write) are read with `json`; older versions are upgraded by nbformat.
    """
    path = Path(path)
    try:
        with path.open(encoding="utf-8") as handle:
            notebook = json.load(handle)
    except FileNotFoundError:
        raise NotebookError(f"{path}: no such notebook") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise NotebookError(f"{path}: cannot read it ({exc.__class__.__name__})") from None
    except ValueError as exc:
        reason = str(exc).splitlines()[0][:120]
        raise NotebookError(f"{path}: not a valid notebook ({reason})") from None
    if not isinstance(notebook, dict) or not isinstance(notebook.get("cells", []), list):
        raise NotebookError(f"{path}: not a valid notebook (no list of cells)")
    if notebook.get("nbformat") != 4:
        return dict(load_notebook(path))
    return notebook


def iter_output_records(outputs: list[Mapping[str, Any]]) -> Iterator[tuple[int, Any]]:
    """(schema version, raw record) for every nbchat record among a cell's outputs."""
    for output in outputs:
        data = output.get("data") if isinstance(output, dict) else None
        if not isinstance(data, dict):
            continue
        for mime, value in data.items():
            match = RECORD_MIME_PATTERN.match(mime)
            if match:
                yield int(match.group(1)), value


def read_records(notebook: Mapping[str, Any], path: Path) -> NotebookRecords:
    """Collect the records of a parsed notebook; malformed ones are listed in ``problems``."""
    result = NotebookRecords(path=path)
    for index, cell in enumerate(notebook.get("cells", [])):
        if not isinstance(cell, dict):
            result.problems.append(f"cell {index + 1}: not a cell")
            continue
        cell_id = cell.get("id")
        if cell_id:
            result.position[cell_id] = index
        if cell.get("cell_type") != "code":
            continue
        records: list[Record] = []
        for version, raw in iter_output_records(cell.get("outputs") or []):
            try:
                record = Record.from_json(raw, version=version)
                problem = record.consistency_problem()
                record.answer  # noqa: B018 - a response of the wrong shape fails here, not later
            except (ValueError, TypeError, AttributeError, KeyError, IndexError) as exc:
                result.problems.append(f"cell {index + 1}: malformed record ({exc})")
                continue
            if problem:
                result.problems.append(f"cell {index + 1}: {problem}")
                continue
            records.append(record)
            if record.key:
                result.by_key[record.key] = record
        if records:
            source = cell.get("source", "")
            result.cells.append(StoredCell(index, cell_id, source, tuple(records)))
    return result


def find_notebook(
    user_ns: Mapping[str, Any], environ: Mapping[str, str] = os.environ
) -> tuple[Path | None, str]:
    """Where the running notebook is saved, and how we know: the explicit setting comes first."""
    explicit = environ.get("NBCHAT_NOTEBOOK")
    if explicit:
        return Path(explicit).expanduser(), "NBCHAT_NOTEBOOK"
    vscode = user_ns.get("__vsc_ipynb_file__")
    if isinstance(vscode, str) and vscode:
        return Path(vscode), "VS Code"
    session = environ.get("JPY_SESSION_NAME")
    if session and session.endswith(".ipynb"):
        path = Path(session)
        if not path.is_absolute() and not path.exists() and Path(path.name).exists():
            path = Path(path.name)  # relative to the server root, and the kernel runs beside it
        return path, "JPY_SESSION_NAME"
    return None, ""


class NotebookWatcher:
    """The records of one notebook file, re-read only when the file changes."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self.parse_count = 0
        self.error: str | None = None
        self._stamp: tuple[int, int] | None = None
        self._records: NotebookRecords | None = None

    def get(self) -> NotebookRecords | None:
        """The current records, or None (with ``error`` set) when the file cannot be used."""
        try:
            stat = self.path.stat()
        except OSError:
            self._stamp, self._records = None, None
            self.error = f"{self.path}: no such notebook (saved yet?)"
            return None
        stamp = (stat.st_mtime_ns, stat.st_size)
        if stamp == self._stamp:
            return self._records
        self._stamp = stamp
        self.parse_count += 1
        try:
            notebook = read_notebook_json(self.path)
        except NotebookError as exc:
            self._records, self.error = None, str(exc)
            return None
        self._records, self.error = read_records(notebook, self.path), None
        return self._records
