"""Drive a real IPython kernel the way a notebook frontend does.

`Kernel.run` sends an execute request (optionally with the ``cellId`` metadata JupyterLab sends),
collects every IOPub message until the kernel is idle, and applies ``update_display_data`` to the
outputs as a frontend would, so a test sees exactly what a saved notebook would hold. An update
applies wherever its display id was shown, whichever message it answers: a background thread
(nbchat's batch poller) updates the output of a cell that finished long ago, and
`Kernel.follow` reads such updates while no cell runs.
"""

from __future__ import annotations

import os
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import nbformat
from jupyter_client.manager import KernelManager

WIDGET_MIME = "application/vnd.jupyter.widget-view+json"  # a live ipywidgets view


@dataclass
class Execution:
    """What one execute request produced."""

    status: str
    outputs: list[dict[str, Any]]
    messages: list[dict[str, Any]] = field(default_factory=list)
    error: dict[str, Any] | None = None

    @property
    def stdout(self) -> str:
        return "".join(o["text"] for o in self.outputs if o.get("name") == "stdout")

    @property
    def stderr(self) -> str:
        return "".join(o["text"] for o in self.outputs if o.get("name") == "stderr")

    def count(self, msg_type: str) -> int:
        """How many IOPub messages of this type the frontend received."""
        return sum(1 for m in self.messages if m["msg_type"] == msg_type)

    @property
    def displays(self) -> list[dict[str, Any]]:
        """The display outputs, nbchat's quiet notes aside."""
        return [
            o
            for o in self.outputs
            if o["output_type"] in ("display_data", "execute_result") and not _is_note(o)
        ]

    @property
    def notes(self) -> str:
        """nbchat's quiet notes (shown as their own small outputs, not on stderr), one a line;
        in a terminal they go to stderr."""
        return "".join(f"{o['data']['text/plain']}\n" for o in self.outputs if _is_note(o))

    def data(self, mime: str) -> list[Any]:
        """Every value of ``mime`` among the display outputs (notes aside), in order."""
        return [o["data"][mime] for o in self.displays if mime in o.get("data", {})]


def _is_note(output: dict[str, Any]) -> bool:
    marker = output.get("metadata", {}).get("nbchat")
    return isinstance(marker, dict) and marker.get("note") is True


class Kernel:
    """A real ipykernel in a subprocess, with nbchat loaded."""

    def __init__(self, cwd: Path, env: dict[str, str] | None = None) -> None:
        self.manager = KernelManager(kernel_name="python3")
        full_env = {**os.environ, **(env or {})}
        self.manager.start_kernel(cwd=str(cwd), env=full_env)
        self.client = self.manager.client()
        self.client.start_channels()
        self.client.wait_for_ready(timeout=60)
        # display id -> (the outputs of the execution that showed it, the index there)
        self._shown: dict[str, list[tuple[list[dict[str, Any]], int]]] = {}
        self.run("%load_ext nbchat", check=True)

    def close(self) -> None:
        self.client.stop_channels()
        self.manager.shutdown_kernel(now=True)

    def restart(self) -> None:
        self.manager.restart_kernel(now=True)
        self.client.wait_for_ready(timeout=60)
        self.run("%load_ext nbchat", check=True)

    def restart_offline(self, notebook: Path) -> None:
        """Restart, then point nbchat at the saved ``notebook`` with ``NBCHAT_OFFLINE=1``: a
        replay that sends any request fails."""
        self.restart()
        env = {"NBCHAT_NOTEBOOK": str(notebook), "NBCHAT_OFFLINE": "1"}
        self.run(f"import os; os.environ.update({env!r})", check=True)

    def run(
        self,
        code: str,
        *,
        cell_id: str | None = None,
        timeout: float = 60,
        interrupt_after: float | None = None,
        check: bool = False,
    ) -> Execution:
        """Execute ``code`` as one cell and return its outputs."""
        content = {
            "code": code,
            "silent": False,
            "store_history": True,
            "user_expressions": {},
            "allow_stdin": False,
            "stop_on_error": True,
        }
        metadata = {"cellId": cell_id} if cell_id else {}
        msg = self.client.session.msg("execute_request", content, metadata=metadata)
        self.client.shell_channel.send(msg)
        if interrupt_after is not None:
            timer = threading.Timer(interrupt_after, self.manager.interrupt_kernel)
            timer.start()
        execution = self._collect(msg["header"]["msg_id"], timeout)
        if check and execution.status != "ok":
            raise AssertionError(f"cell failed: {execution.error}")
        return execution

    def _collect(self, msg_id: str, timeout: float) -> Execution:
        outputs: list[dict[str, Any]] = []
        messages: list[dict[str, Any]] = []
        error = None
        deadline = time.monotonic() + timeout
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError("the kernel did not finish the cell in time")
            try:
                msg = self.client.get_iopub_msg(timeout=remaining)
            except queue.Empty:
                continue
            kind, content = msg["msg_type"], msg["content"]
            if kind == "update_display_data":  # wherever the id is shown, whoever sent it
                self._update(content)
            if msg["parent_header"].get("msg_id") != msg_id:
                continue
            messages.append({"msg_type": kind, "content": content})
            if kind == "status" and content["execution_state"] == "idle":
                break
            if kind == "stream":
                outputs.append(
                    {"output_type": "stream", "name": content["name"], "text": content["text"]}
                )
            elif kind in ("display_data", "execute_result"):
                out = {
                    "output_type": kind,
                    "data": content["data"],
                    "metadata": content.get("metadata", {}),
                }
                display_id = content.get("transient", {}).get("display_id")
                if display_id:
                    self._shown.setdefault(display_id, []).append((outputs, len(outputs)))
                outputs.append(out)
            elif kind == "clear_output":
                outputs.clear()
                for shown in self._shown.values():
                    shown[:] = [(where, i) for where, i in shown if where is not outputs]
            elif kind == "error":
                error = content
                outputs.append({"output_type": "error", **content})
        return Execution(self._reply(msg_id), outputs, messages, error)

    def _update(self, content: dict[str, Any]) -> None:
        for outputs, index in self._shown.get(content["transient"]["display_id"], []):
            outputs[index] = {
                **outputs[index],
                "data": content["data"],
                "metadata": content.get("metadata", {}),
            }

    def follow(self, done: Callable[[], bool], timeout: float = 30) -> bool:
        """Apply the display updates a kernel sends while no cell runs (a background thread's)
        until ``done()``; False if it never was within ``timeout`` seconds."""
        deadline = time.monotonic() + timeout
        while not done():
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return False
            try:
                msg = self.client.get_iopub_msg(timeout=min(remaining, 0.2))
            except queue.Empty:
                continue
            if msg["msg_type"] == "update_display_data":
                self._update(msg["content"])
        return True

    def _reply(self, msg_id: str) -> str:
        """The status of our execute_reply. Stale replies are skipped: `wait_for_ready` may
        leave extra kernel_info replies behind when the kernel starts slowly."""
        while True:
            reply = self.client.get_shell_msg(timeout=10)
            if reply["parent_header"].get("msg_id") == msg_id:
                return reply["content"]["status"]


def save_notebook(path: Path, cells: list[tuple[str, str, Execution | None]]) -> Path:
    """Write what a frontend would save: each (cell id, source, execution) as a code cell."""
    notebook = nbformat.v4.new_notebook()
    for cell_id, source, execution in cells:
        cell = nbformat.v4.new_code_cell(source)
        cell["id"] = cell_id
        if execution is not None:
            cell["outputs"] = [_to_nbformat(o) for o in execution.outputs]
        notebook.cells.append(cell)
    nbformat.write(notebook, str(path))
    return path


def _to_nbformat(output: dict[str, Any]) -> nbformat.NotebookNode:
    kind = output["output_type"]
    if kind == "stream":
        return nbformat.v4.new_output("stream", name=output["name"], text=output["text"])
    if kind == "error":
        return nbformat.v4.new_output(
            "error", ename=output["ename"], evalue=output["evalue"], traceback=output["traceback"]
        )
    return nbformat.v4.new_output(
        "display_data", data=output["data"], metadata=output.get("metadata", {})
    )
