"""``nbchat strip`` and ``nbchat upgrade``: the commands that rewrite a notebook (atomically).

``strip`` removes nbchat's records (and raw views), e.g. before sharing a notebook; ``upgrade``
rewrites the schema 1 records of nbchat 0.1 as schema 2 (`nbchat.store.upgrade`).
"""

from __future__ import annotations

import argparse
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from nbchat._files import atomic_write
from nbchat._text import plural
from nbchat.cli.help import ExitCode
from nbchat.store.marker import OutputMarker
from nbchat.store.notebook import iter_output_records, load_notebook
from nbchat.store.upgrade import upgrade_notebook

if TYPE_CHECKING:
    import nbformat

__all__ = ["cmd_strip", "cmd_upgrade", "strip_notebook"]

TEXT_MIMES = ("text/html", "text/markdown", "text/plain")


# -- strip -----------------------------------------------------------------------------------------


def _is_raw_view(output: Mapping[str, Any]) -> bool:
    marker = OutputMarker.of(output)
    return marker is not None and marker.raw


def _text_only(output: nbformat.NotebookNode) -> nbformat.NotebookNode | None:
    """The output with only its text kept, or None when it has no text."""
    data = output.get("data")
    data = {mime: value for mime, value in data.items() if mime in TEXT_MIMES}
    if not data:
        return None
    metadata = output.get("metadata")
    metadata = metadata if isinstance(metadata, Mapping) else {}
    output["metadata"] = {k: v for k, v in metadata.items() if k in data or "/" not in k}
    output["metadata"].pop("nbchat", None)
    output["data"] = data
    return output


def strip_notebook(notebook: nbformat.NotebookNode, keep_text: bool) -> tuple[int, int]:
    """Remove records and raw-JSON views in place; return (records, views without a record)."""
    records = views = 0
    cells = notebook.get("cells")
    for cell in cells if isinstance(cells, list) else []:
        outputs = cell.get("outputs") if isinstance(cell, Mapping) else None
        if not isinstance(outputs, list):
            continue
        kept = []
        for output in outputs:
            found = sum(1 for _ in iter_output_records([output]))
            records += found
            if isinstance(output, Mapping) and _is_raw_view(output):
                views += not found  # a --raw view that holds the record counts as the record
            elif not found:
                kept.append(output)
            elif keep_text and (text := _text_only(output)) is not None:
                kept.append(text)
        cell["outputs"] = kept
    return records, views


def cmd_strip(args: argparse.Namespace, out: TextIO) -> int:
    """Remove nbchat's records from a notebook, in place or into ``-o``."""
    import nbformat  # slow to import (jsonschema): only for the command that writes

    notebook = load_notebook(args.notebook)
    records, views = strip_notebook(notebook, args.keep_text)
    target = Path(args.output or args.notebook)
    if records or views or args.output:
        atomic_write(target, lambda handle: nbformat.write(notebook, handle))
    summary = f"stripped {plural(records, 'record')}"
    if views:
        summary += f" and {plural(views, 'raw view')}"
    into = f" into {args.output}" if args.output else ""
    print(f"{summary} from {args.notebook}{into}", file=out)
    return ExitCode.OK


# -- upgrade ---------------------------------------------------------------------------------------


def cmd_upgrade(args: argparse.Namespace, out: TextIO) -> int:
    """Rewrite schema 1 records as schema 2, in place or into ``-o``; say what it saved."""
    import nbformat  # slow to import (jsonschema): only for the command that writes

    notebook = load_notebook(args.notebook)
    before = Path(args.notebook).stat().st_size  # the bytes on disk, not a re-serialisation
    report = upgrade_notebook(notebook)
    text = nbformat.writes(notebook)
    target = Path(args.output or args.notebook)
    if report.upgraded or args.output:
        atomic_write(target, lambda handle: handle.write(text))
    saved = before - len(text.encode("utf-8"))
    into = f" into {args.output}" if args.output else ""
    summary = f"upgraded {plural(report.upgraded, 'record')} to schema 2 in {args.notebook}{into}"
    if report.upgraded:
        change = f"{saved:,} saved" if saved >= 0 else f"{-saved:,} more"
        summary += f": {before:,} -> {before - saved:,} bytes ({change})"
    lines = [summary]
    if report.kept:
        lines.append(
            f"  kept {plural(report.kept, 'record')} as schema 1: "
            "the turns above them are not in this notebook"
        )
    if report.skipped:
        lines.append(f"  skipped {plural(report.skipped, 'malformed record')}; see `nbchat verify`")
    print(*lines, sep="\n", file=out)
    return ExitCode.OK
