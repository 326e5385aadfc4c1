"""Reading stored records back out of a saved notebook: parsed as JSON (nbformat 4), with
nbformat only for older versions and for files that are written back.

A `NotebookWatcher` parses the file once and again only when its modification time (or size)
changes, so a long notebook is not re-parsed for every cell.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Container, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from nbchat._gc import gc_paused
from nbchat.errors import NotebookError
from nbchat.store.batch_record import read_stored
from nbchat.store.batch_state import BatchState, iter_batch_states
from nbchat.store.keys import CellKey, CellKind
from nbchat.store.marker import OutputMarker
from nbchat.store.record import RECORD_MIME_PATTERN, Record

if TYPE_CHECKING:
    import nbformat

__all__ = [
    "NotebookRecords",
    "NotebookWatcher",
    "StoredCell",
    "cell_source",
    "explicit_notebook",
    "find_notebook",
    "iter_output_records",
    "load_notebook",
    "read_notebook_json",
    "read_notebook_text",
    "read_records",
]


@dataclass(frozen=True)
class StoredCell:
    """A code cell of the saved notebook that holds at least one record."""

    index: int
    key: CellKey  # the cell by its id when it is unique in the file, else by its index
    records: tuple[Record, ...]


@dataclass
class NotebookRecords:
    """Everything nbchat needs from one saved notebook.

    Cells are placed by their id when it is unique in the file. Cells without one (nbformat < 4.5,
    or an id the raw file repeats) are "anonymous": `locate` finds them by the id an earlier
    session stored in their record, or by their source.
    """

    path: Path
    cells: list[StoredCell] = field(default_factory=list)
    by_key: dict[str, Record] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)
    ids: dict[str, int] = field(default_factory=dict)  # unique cell id -> index
    recorded_ids: dict[str, int] = field(default_factory=dict)  # id in an anonymous cell's record
    anonymous: dict[str, list[int]] = field(default_factory=dict)  # source -> anonymous indices
    chat_cells: list[int] = field(default_factory=list)  # indices of the %%chat cells, in order
    by_key_at: dict[str, list[int]] = field(default_factory=dict)  # key -> cells holding it
    has_v1: bool = False  # some records were written by nbchat 0.1 (found by their v1 key)
    rejected: dict[int, str] = field(default_factory=dict)  # cell index -> why it was skipped
    # (cell index, key) -> the cell's record under that key (a --map cell holds thousands)
    at_cell: dict[tuple[int, str], Record] = field(default_factory=dict)
    # the provider batches --map --batch cells wait for (`store.batch_state`), with their cell
    batches: list[tuple[int, BatchState]] = field(default_factory=list)

    def records(self) -> Iterator[tuple[StoredCell, Record]]:
        """Every record with its cell, in notebook order."""
        for cell in self.cells:
            for record in cell.records:
                yield cell, record

    @property
    def has_anonymous_records(self) -> bool:
        """Whether some stored turns belong to cells that cannot be found by their id."""
        return any(cell.key.kind is CellKind.INDEX for cell in self.cells)

    def stored(self, key: str, at: int | None) -> Record | None:
        """The record stored under ``key``: the one in cell ``at`` (the running cell's own) when
        it holds one, else the first. Two cells may hold the same key (the same request made
        twice) with different answers (one was asked again with --refresh)."""
        own = self.at_cell.get((at, key)) if at is not None else None
        return own if own is not None else self.by_key.get(key)

    def locate(
        self, cell_id: str | None, source: str | None, taken: Container[int] = ()
    ) -> int | None:
        """The index of the running cell in the file, or None when it cannot be known.

        ``taken`` holds the indices other cells of this session were already found at, so that
        two anonymous cells with the same source are told apart in run order.
        """
        if cell_id is not None and cell_id in self.ids:
            return self.ids[cell_id]
        index = self.recorded_ids.get(cell_id) if cell_id is not None else None
        if index is not None and index not in taken:
            return index
        for index in self.anonymous.get(source or "", ()) if source is not None else ():
            if index not in taken:
                return index
        return None


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


def read_notebook_text(path: str | os.PathLike[str]) -> dict[str, Any]:
    """A notebook parsed as JSON with its multiline strings joined, as nbformat would read them
    (sources, stream text, and every non-JSON output and attachment), for readers that look at
    text anywhere in the file, without nbformat's second of imports."""
    notebook = read_notebook_json(path)
    for cell in notebook.get("cells", []):
        if not isinstance(cell, dict):
            continue
        cell["source"] = cell_source(cell)
        bundles = [output for output in cell.get("outputs", []) if isinstance(output, dict)]
        for output in bundles:
            if isinstance(output.get("text"), list):
                output["text"] = _joined(output["text"])
        bundles += [a for a in (cell.get("attachments") or {}).values() if isinstance(a, dict)]
        for bundle in bundles:
            data = bundle.get("data", bundle)
            for mime, value in data.items() if isinstance(data, dict) else ():
                if isinstance(value, list) and not _is_json_mime(mime):
                    data[mime] = _joined(value)
    return notebook


def _joined(lines: list[Any]) -> Any:
    return "".join(lines) if all(isinstance(line, str) for line in lines) else lines


def _is_json_mime(mime: str) -> bool:
    return mime == "application/json" or mime.endswith("+json")


def iter_output_records(outputs: list[Mapping[str, Any]]) -> Iterator[tuple[int, Any]]:
    """(schema version, raw record) for every nbchat record among a cell's outputs: under the
    record MIME type, or as the JSON of a ``--raw`` view that is marked as the record."""
    for output in outputs:
        data = output.get("data") if isinstance(output, dict) else None
        if not isinstance(data, dict):
            continue
        for mime, value in data.items():
            match = RECORD_MIME_PATTERN.match(mime)
            if match:
                yield int(match.group(1)), value
        marker = OutputMarker.of(output)
        if marker is not None and marker.record is not None and "application/json" in data:
            yield marker.record, data["application/json"]


def cell_source(cell: Mapping[str, Any]) -> str:
    """A cell's source as one string (a file stores it as a list of lines)."""
    source = cell.get("source", "")
    return "".join(source) if isinstance(source, list) else str(source)


def _unique_ids(cells: list[Any]) -> dict[str, int]:
    """Cell id -> index for the ids that occur exactly once (the kernel reads the raw file, where
    a copied cell may repeat an id that nbformat would rename on its next write)."""
    seen: dict[str, int] = {}
    repeated: set[str] = set()
    for index, cell in enumerate(cells):
        cell_id = cell.get("id") if isinstance(cell, dict) else None
        if isinstance(cell_id, str) and cell_id:
            if cell_id in seen:
                repeated.add(cell_id)
            seen[cell_id] = index
    return {cell_id: index for cell_id, index in seen.items() if cell_id not in repeated}


def _cell_records(outputs: Any) -> tuple[list[Record], list[str]]:
    """The well-formed, consistent records among a cell's outputs, and why the others are not."""
    records: list[Record] = []
    problems: list[str] = []
    for version, raw in iter_output_records(outputs if isinstance(outputs, list) else []):
        try:
            found = read_stored(raw, version)
        except (ValueError, TypeError, AttributeError, KeyError, IndexError) as exc:
            problems.append(f"malformed record: {exc}")
            continue
        for record in found:
            problem = record.consistency_problem()
            if problem:
                problems.append(problem)
            else:
                records.append(record)
    return records, problems


def _cell_batches(outputs: Any, index: int, found: list[tuple[int, BatchState]]) -> list[str]:
    """Add the cell's pending provider batches to ``found``; why the malformed ones are not."""
    problems = []
    for raw in iter_batch_states(outputs):
        try:
            found.append((index, BatchState.from_json(raw)))
        except (ValueError, TypeError, AttributeError, KeyError) as exc:
            problems.append(f"malformed batches state: {exc}")
    return problems


def read_records(notebook: Mapping[str, Any], path: Path) -> NotebookRecords:
    """Collect the records of a parsed notebook; malformed ones are listed in ``problems``."""
    result = NotebookRecords(path=path)
    cells = notebook.get("cells", [])
    result.ids = _unique_ids(cells)
    unique_index = set(result.ids.values())
    recorded: dict[str, list[int]] = {}
    for index, cell in enumerate(cells):
        if not isinstance(cell, dict):
            result.problems.append(f"cell {index + 1}: not a cell")
            continue
        if cell.get("cell_type") != "code":
            continue
        if cell_source(cell).lstrip().startswith("%%chat"):
            result.chat_cells.append(index)
        anonymous = index not in unique_index
        if anonymous:
            result.anonymous.setdefault(cell_source(cell), []).append(index)
        records, problems = _cell_records(cell.get("outputs"))
        problems += _cell_batches(cell.get("outputs"), index, result.batches)
        result.problems += [f"cell {index + 1}: {problem}" for problem in problems]
        if problems:
            result.rejected[index] = problems[0]
        if not records:
            continue
        key = CellKey.cell(str(cell["id"])) if not anonymous else CellKey.index(index)
        result.cells.append(StoredCell(index, key, tuple(records)))
        for record in records:
            result.has_v1 = result.has_v1 or record.schema == 1
            if record.key:
                result.by_key.setdefault(record.key, record)
                result.by_key_at.setdefault(record.key, []).append(index)
                result.at_cell.setdefault((index, record.key), record)
            if anonymous and record.cell_id:
                recorded.setdefault(record.cell_id, []).append(index)
    result.recorded_ids = {
        cell_id: indices[0] for cell_id, indices in recorded.items() if len(set(indices)) == 1
    }
    return result


def explicit_notebook(environ: Mapping[str, str] = os.environ) -> Path | None:
    """The file named by ``$NBCHAT_NOTEBOOK``, if any."""
    explicit = environ.get("NBCHAT_NOTEBOOK")
    return Path(explicit).expanduser() if explicit else None


def find_notebook(
    user_ns: Mapping[str, Any],
    environ: Mapping[str, str] = os.environ,
    server: Callable[[], Path | None] | None = None,
) -> tuple[Path | None, str]:
    """Where the running notebook is saved, and how we know: the explicit setting comes first,
    then VS Code's variable, then the Jupyter server's session (which follows renames), then
    ``$JPY_SESSION_NAME`` (the path when the kernel started)."""
    explicit = explicit_notebook(environ)
    if explicit is not None:
        return explicit, "NBCHAT_NOTEBOOK"
    vscode = user_ns.get("__vsc_ipynb_file__")
    if isinstance(vscode, str) and vscode:
        return Path(vscode), "VS Code"
    found = server() if server is not None else None
    if found is not None:
        return found, "the Jupyter server's session"
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

    @property
    def records(self) -> NotebookRecords | None:
        """The records as last read (without looking at the file again)."""
        return self._records

    def get(self) -> NotebookRecords | None:
        """The current records, or None (with ``error`` set) when the file cannot be used.

        The file's stamp is remembered once it was read: an interrupted read (Ctrl-C) is tried
        again by the next cell, never taken for a success; a corrupt file is read again when
        it changes.
        """
        try:
            stat = self.path.stat()
        except OSError:
            self._stamp, self._records = None, None
            self.error = f"{self.path}: no such notebook (saved yet?)"
            return None
        stamp = (stat.st_mtime_ns, stat.st_size)
        if stamp == self._stamp:
            return self._records
        self.parse_count += 1
        try:
            with gc_paused():  # a --map cell's thousands of records
                records = read_records(read_notebook_json(self.path), self.path)
        except NotebookError as exc:  # a corrupt file is not read again until it changes
            self._records, self.error = None, str(exc)
        except KeyboardInterrupt:
            raise NotebookError(
                f"Interrupted while reading {self.path.name}; nothing was sent. Run the cell again."
            ) from None
        else:
            self._records, self.error = records, None
        self._stamp = stamp
        return self._records
