"""``nbchat run``: execute a notebook headless with nbclient, replaying stored answers.

The kernel starts in the notebook's directory with ``NBCHAT_NOTEBOOK`` set to the file, so the
answers stored in it are found although nbclient tells the kernel no cell ids; ``--offline`` adds
``NBCHAT_OFFLINE=1``, so nothing is ever sent. nbclient is imported only when a notebook is run.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from nbchat._files import atomic_write
from nbchat._text import clip, one_line, plural
from nbchat.cli.help import ExitCode
from nbchat.store.marker import OutputMarker
from nbchat.store.notebook import load_notebook
from nbchat.store.record import RECORD_MIME_PATTERN

if TYPE_CHECKING:
    import nbformat

__all__ = ["RunReport", "cmd_run", "count_answers"]

EXPECTED_ERROR_TAG = "raises-exception"  # nbclient's tag for a cell allowed to fail
MISSING = "run needs nbclient and ipykernel: pip install nbclient ipykernel"


class RunError(Exception):
    """The notebook could not be run at all (exit status 2)."""


@dataclass
class RunReport:
    """What one run did: cells run, answers (replayed or asked) and cell errors."""

    ran: list[int] = field(default_factory=list)  # indices of the cells executed
    answers: int = 0
    replayed: int = 0
    errors: list[tuple[int, str, bool]] = field(default_factory=list)  # (cell, message, expected)

    @property
    def asked(self) -> int:
        """Answers that were requested from the server during the run."""
        return self.answers - self.replayed

    @property
    def failed(self) -> bool:
        """Whether a cell failed that was not tagged ``raises-exception``."""
        return any(not expected for _, _, expected in self.errors)

    def summary(self, name: str) -> str:
        """``NOTEBOOK: N cells run, A answers (R replayed, S asked), E errors``."""
        expected = sum(1 for *_, ok in self.errors if ok)
        note = f" ({expected} expected)" if expected else ""
        return (
            f"{name}: {plural(len(self.ran), 'cell')} run, {plural(self.answers, 'answer')} "
            f"({self.replayed} replayed, {self.asked} asked), "
            f"{plural(len(self.errors), 'error')}{note}"
        )


def _holds_answer(output: Mapping[str, Any]) -> bool:
    """An output that carries an answer record (of any schema; "answer": schema 1)."""
    data = output.get("data")
    for mime, value in data.items() if isinstance(data, Mapping) else ():
        if RECORD_MIME_PATTERN.match(str(mime)) and isinstance(value, Mapping):
            return value.get("kind") in ("turn", "answer")
    return False


def count_answers(cells: list[Any]) -> tuple[int, int]:
    """(answers, replayed answers) among the outputs of ``cells``."""
    answers = replayed = 0
    for cell in cells:
        outputs = cell.get("outputs") if isinstance(cell, Mapping) else None
        for output in outputs if isinstance(outputs, list) else ():
            if not isinstance(output, Mapping):
                continue
            marker = OutputMarker.of(output) or OutputMarker()
            found, again = marker.answers  # a --map summary counts its items
            if not found and _holds_answer(output):  # a record with no marker (nbchat 0.1)
                found = 1
            answers += found
            replayed += again
    return answers, replayed


def _first_line(text: str) -> str:
    """The first line, with no control code (a cell's error may quote model text)."""
    lines = str(text).strip().splitlines()
    return one_line(lines[0]) if lines else ""


def _execute(
    notebook: nbformat.NotebookNode, path: Path, args: argparse.Namespace, report: RunReport
) -> None:
    """Run every cell; errors (and the cell they stopped at) go into ``report``."""
    from jupyter_client.kernelspec import NoSuchKernel
    from nbclient import NotebookClient
    from nbclient.exceptions import CellExecutionError, CellTimeoutError, DeadKernelError

    current = {"index": 0}

    def on_start(cell: Any, cell_index: int, **_: Any) -> None:
        current["index"] = cell_index

    def on_executed(cell: Any, cell_index: int, **_: Any) -> None:
        report.ran.append(cell_index)

    def on_error(cell: Any, cell_index: int, execute_reply: dict[str, Any], **_: Any) -> None:
        content = execute_reply.get("content", {})
        message = f"{content.get('ename', 'Error')}: {_first_line(content.get('evalue', ''))}"
        expected = EXPECTED_ERROR_TAG in cell.get("metadata", {}).get("tags", [])
        report.errors.append((cell_index + 1, message, expected))

    client = NotebookClient(
        notebook,
        timeout=args.timeout,
        resources={"metadata": {"path": str(path.parent)}},
        store_widget_state=False,  # the live views are closed widgets: nothing worth keeping
        record_timing=False,  # no per-cell timestamps written into the saved notebook
        on_cell_execute=on_start,
        on_cell_executed=on_executed,
        on_cell_error=on_error,
    )
    env = {**os.environ, "NBCHAT_NOTEBOOK": str(path)}
    if args.offline:
        env["NBCHAT_OFFLINE"] = "1"
    try:
        # The kernel's own log (e.g. ipykernel's transport warning) is noise here.
        client.execute(env=env, stderr=subprocess.DEVNULL)
    except CellExecutionError:
        pass  # already in report.errors via on_error
    except (CellTimeoutError, DeadKernelError) as exc:
        timeout = isinstance(exc, CellTimeoutError)
        reason = f"timed out after {args.timeout:g} s" if timeout else "the kernel died"
        report.ran.append(current["index"])  # it started: count it like a cell that raised
        report.errors.append((current["index"] + 1, reason, False))
    except NoSuchKernel as exc:
        name = clip(one_line(str(exc.name)), 60)  # from the notebook's own metadata
        raise RunError(f"no such kernel: {name} (see `jupyter kernelspec list`)") from None


def _have_nbclient() -> bool:
    try:
        import ipykernel  # noqa: F401 - the kernel nbclient starts
        import nbclient  # noqa: F401
    except ImportError:
        return False
    return True


def cmd_run(args: argparse.Namespace, out: TextIO) -> int:
    """Execute a notebook headless; print a one-line summary; save it only when asked."""
    import nbformat

    if not _have_nbclient():
        print(f"nbchat: {MISSING}", file=sys.stderr)
        return ExitCode.BAD_INPUT
    notebook = load_notebook(args.notebook)  # a NotebookError: one line, exit 2, in main()
    path = Path(args.notebook).resolve()
    target = path if args.inplace else Path(args.output) if args.output else None
    if target is not None and not target.resolve().parent.is_dir():  # before minutes of work
        print(f"nbchat: {args.output}: no such directory to save into", file=sys.stderr)
        return ExitCode.BAD_INPUT
    report = RunReport()
    try:
        _execute(notebook, path, args, report)
    except RunError as exc:
        print(f"nbchat: {exc}", file=sys.stderr)
        return ExitCode.BAD_INPUT
    report.answers, report.replayed = count_answers([notebook.cells[i] for i in report.ran])
    for cell, message, expected in report.errors:
        note = f" (expected: tagged {EXPECTED_ERROR_TAG})" if expected else ""
        print(f"{args.notebook}: cell {cell}: {message}{note}", file=sys.stderr)
    written = ""
    if target is not None and not report.failed:
        atomic_write(target, lambda handle: nbformat.write(notebook, handle))
        written = f"; saved to {args.output or args.notebook}"
    elif target is not None:
        written = "; not saved (a cell failed)"
    print(report.summary(args.notebook) + written, file=out)
    return ExitCode.PROBLEMS if report.failed else ExitCode.OK
