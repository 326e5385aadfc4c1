"""Run ``%%chat`` cells in a kernel (`kernel_driver`) and read what they show: the final HTML,
a short error, and the HTML the live view's widgets were given."""

from __future__ import annotations

import json

from support.env import TEST_KEY
from support.kernel_driver import Execution, Kernel


def chat(
    kernel: Kernel, body: str, *, flags: str = "", cell_id: str | None = None, **kwargs
) -> Execution:
    return kernel.run(f"%%chat {flags}\n{body}", cell_id=cell_id, **kwargs)


def final_html(execution: Execution) -> str:
    """The HTML of the cell's one output that has HTML (its notes aside)."""
    shown = [
        o["data"]["text/html"]
        for o in execution.outputs
        if "text/html" in o.get("data", {})
        and not o.get("metadata", {}).get("nbchat", {}).get("note")
    ]
    (html,) = shown
    return html


def assert_short_error(execution: Execution, *needles: str) -> str:
    assert execution.status == "error"
    message = execution.error["evalue"]
    text = "\n".join(execution.error["traceback"])
    for needle in needles:
        assert needle in message
    for noise in ("httpx", "httpcore", "Traceback", 'File "'):
        assert noise not in text
    assert TEST_KEY not in text and TEST_KEY not in json.dumps(execution.outputs)
    return message


def widget_html(execution: Execution) -> list[str]:
    """Every HTML a widget of the cell's live view was given: the answer's output slot and the
    HTML widgets' values (status, thinking, tool calls)."""
    states = [
        m["content"]["data"].get("state", {})
        for m in execution.messages
        if m["msg_type"] in ("comm_msg", "comm_open")
    ]
    values = [state["value"] for state in states if isinstance(state.get("value"), str)]
    slots = [o["data"]["text/html"] for s in states for o in s.get("outputs", [])]
    return values + slots
